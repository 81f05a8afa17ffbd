"""Step Functions Local's mock workflow against a running local stack (`taskrail local up --mock-config FILE`).

Evidence: "Configuration file for mocked service integrations" (https://docs.aws.amazon.com/step-functions/latest/dg/
sfn-local-mock-cfg-file.html) and "Using mocked service integrations for testing in Step Functions Local"
(https://docs.aws.amazon.com/step-functions/latest/dg/sfn-local-test-sm-exec.html): the documented example
MockConfigFile (MockConfigFile.json here, unchanged), its LambdaSQSIntegration state machine (LambdaState invokes
Lambda with a Retry, SQSState sends a message), SFN_MOCK_CONFIG naming the file, and StartExecution on
"<state machine ARN>#<TestCase>" running that test case: HappyPath returns the mocked SQS response; RetryPath's
Lambda mock throws three times (ResourceNotReady, then two timeouts) and returns on the 4th attempt.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from taskrail.local.stack import LOCAL_CREDENTIALS, SFN_MOCK_CONFIG_ENV, LocalStack, StackOptions

MOCK_CONFIG = Path(__file__).with_name("MockConfigFile.json")
QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/myQueue"
DEFINITION = {
    "Comment": "A state machine that invokes a Lambda function and sends its result to SQS (AWS's example)",
    "StartAt": "LambdaState",
    "States": {
        "LambdaState": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"Payload.$": "$", "FunctionName": "HelloWorldFunction"},
            "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 2, "MaxAttempts": 3, "BackoffRate": 2}],
            "Next": "SQSState",
        },
        "SQSState": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sqs:sendMessage",
            "Parameters": {
                "QueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/myQueue",
                "MessageBody.$": "$",
            },
            "End": True,
        },
    },
}


@pytest.fixture(scope="module")
def stack(monkeypatch_module: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    # as Step Functions Local reads it: the file named by SFN_MOCK_CONFIG (`taskrail local up` reads it too)
    monkeypatch_module.setenv(SFN_MOCK_CONFIG_ENV, str(MOCK_CONFIG))
    local = LocalStack(StackOptions(time_scale=0.01, with_console=False))
    local.start()
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patcher:
        yield patcher


@pytest.fixture(scope="module")
def machine(stack: LocalStack) -> tuple[Any, str]:
    assert stack.info is not None
    sfn = boto3.Session(region_name="us-east-1", **LOCAL_CREDENTIALS).client(
        "stepfunctions", endpoint_url=stack.info.aws_endpoint_url
    )
    role = "arn:aws:iam::123456789012:role/StepFunctionsLocalExample"
    arn = sfn.create_state_machine(name="LambdaSQSIntegration", definition=json.dumps(DEFINITION), roleArn=role)
    return sfn, arn["stateMachineArn"]


def run(sfn: Any, arn: str, test_case: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    execution = sfn.start_execution(stateMachineArn=f"{arn}#{test_case}", name=test_case, input="{}")["executionArn"]
    deadline = time.monotonic() + 30
    while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
        assert time.monotonic() < deadline, f"{test_case} did not end"
        time.sleep(0.05)
    return described, sfn.get_execution_history(executionArn=execution)["events"]


def test_happy_path_returns_the_mocked_responses(machine: tuple[Any, str]) -> None:
    sfn, arn = machine
    described, _ = run(sfn, arn, "HappyPath")
    print("HappyPath", described["status"], described.get("output"))
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {
        "MD5OfMessageBody": "3bcb6e8e-7h85-4375-b0bc-1a59812c6e51",
        "MessageId": "3bcb6e8e-8b51-4375-b0bc-1a59812c6e51",
    }
    assert described["executionArn"].split(":")[-2] == "LambdaSQSIntegration"  # the machine, not "#HappyPath"


def test_retry_path_fails_three_times_then_succeeds(machine: tuple[Any, str]) -> None:
    sfn, arn = machine
    described, events = run(sfn, arn, "RetryPath")
    failures = [e["taskFailedEventDetails"]["error"] for e in events if e["type"] == "TaskFailed"]
    print("RetryPath", described["status"], failures)
    assert described["status"] == "SUCCEEDED"
    assert failures == ["Lambda.ResourceNotReadyException", "Lambda.TimeoutException", "Lambda.TimeoutException"]


def test_an_unknown_test_case_is_refused(machine: tuple[Any, str]) -> None:
    sfn, arn = machine
    with pytest.raises(sfn.exceptions.ClientError) as refused:
        sfn.start_execution(stateMachineArn=f"{arn}#NoSuchCase", name="unknown", input="{}")
    print("unknown test case:", refused.value.response["Error"])
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
