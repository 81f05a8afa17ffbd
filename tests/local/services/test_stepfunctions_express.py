"""EXPRESS executions answer as on AWS (taskrail/local/services/stepfunctions_express.py).

The evidence: LocalStack's AWS-recorded snapshot tests/aws/services/stepfunctions/v2/test_sfn_api_express.snapshot.json
(``test_start_async_describe_history_execution``, recorded 03-07-2024 against AWS): ListExecutions of an EXPRESS
machine is ``StateMachineTypeNotSupported`` "This operation is not supported by this type of state machine";
DescribeExecution, StopExecution and GetExecutionHistory of an Express execution are ``InvalidArn`` "Invalid Arn:
'Resource type not valid in this context: express'", HTTP 400; the execution ARN is
``arn:aws:states:<region>:<account>:express:<machine>:<name>:<uuid>`` and each logged event is ``{id,
previous_event_id, event_timestamp, type, execution_arn, details}``. RedriveExecution and
DescribeStateMachineForExecution: "This API action is not supported by EXPRESS state machines" (their API
references), answered by the same check of the ARN's resource type.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from taskrail.local.services import stepfunctions_express, stepfunctions_redrive
from tests.local.services.harness import ROLE_ARN, wait_for

PASS = json.dumps(
    {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "Result": {"Arg1": "argument1"}, "End": True}}}
)
EXPRESS_ARN = re.compile(
    r"^arn:aws:states:us-east-1:123456789012:express:quick:run-1:"
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
)
DEADLINE_SECONDS = 10.0


@pytest.fixture
def sfn(aws: dict[str, Any]) -> Iterator[Any]:
    stepfunctions_express.install_express_semantics()
    stepfunctions_redrive.install_redrive()
    try:
        yield aws["stepfunctions"]
    finally:
        stepfunctions_redrive.uninstall_redrive()
        stepfunctions_express.uninstall_express_semantics()


def _machine(sfn: Any, kind: str, name: str = "quick", **extra: Any) -> str:
    return str(
        sfn.create_state_machine(name=name, definition=PASS, roleArn=ROLE_ARN, type=kind, **extra)["stateMachineArn"]
    )


def _express_run(sfn: Any, **extra: Any) -> tuple[str, str]:
    machine = _machine(sfn, "EXPRESS", **extra)
    return machine, str(sfn.start_execution(stateMachineArn=machine, name="run-1", input="{}")["executionArn"])


def _finished(arn: str) -> None:
    """Polls the emulator's own view (the harness's, on this thread) until the execution ends."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    with stepfunctions_express.inspecting():
        from moto.stepfunctions.responses import get_backend

        while time.monotonic() < deadline:
            if get_backend("123456789012", "us-east-1").describe_execution(arn).status != "RUNNING":
                return
            time.sleep(0.02)
    raise AssertionError(f"{arn} still RUNNING after {DEADLINE_SECONDS}s")


def test_an_express_execution_is_named_as_aws_names_it(sfn: Any) -> None:
    _, arn = _express_run(sfn)
    print("express execution:", arn)
    assert EXPRESS_ARN.match(arn), arn


@pytest.mark.parametrize(
    "call",
    [
        lambda sfn, arn: sfn.describe_execution(executionArn=arn),
        lambda sfn, arn: sfn.get_execution_history(executionArn=arn),
        lambda sfn, arn: sfn.stop_execution(executionArn=arn),
        lambda sfn, arn: sfn.redrive_execution(executionArn=arn),
        lambda sfn, arn: sfn.describe_state_machine_for_execution(executionArn=arn),
    ],
    ids=["DescribeExecution", "GetExecutionHistory", "StopExecution", "RedriveExecution", "DescribeSMForExecution"],
)
def test_no_api_reads_or_stops_an_express_execution(sfn: Any, call: Any) -> None:
    _, arn = _express_run(sfn)
    _finished(arn)
    with pytest.raises(ClientError) as refused:
        call(sfn, arn)
    error = refused.value.response
    print(error["Error"])
    assert error["Error"] == {
        "Code": "InvalidArn",
        "Message": "Invalid Arn: 'Resource type not valid in this context: express'",
    }
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_an_express_machine_lists_no_executions_and_a_standard_one_still_does(sfn: Any) -> None:
    machine, _ = _express_run(sfn)
    with pytest.raises(ClientError) as refused:
        sfn.list_executions(stateMachineArn=machine)
    print(refused.value.response["Error"])
    assert refused.value.response["Error"] == {
        "Code": "StateMachineTypeNotSupported",
        "Message": "This operation is not supported by this type of state machine",
    }
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    standard = _machine(sfn, "STANDARD", name="slow")
    arn = sfn.start_execution(stateMachineArn=standard, name="run-1", input="{}")["executionArn"]
    assert arn == "arn:aws:states:us-east-1:123456789012:execution:slow:run-1"
    assert wait_for(sfn, arn)["status"] == "SUCCEEDED"
    assert [e["executionArn"] for e in sfn.list_executions(stateMachineArn=standard)["executions"]] == [arn]
    assert sfn.get_execution_history(executionArn=arn)["events"][-1]["type"] == "ExecutionSucceeded"


def test_the_standard_form_of_an_express_execution_names_nothing(sfn: Any) -> None:
    _express_run(sfn)
    standard_form = "arn:aws:states:us-east-1:123456789012:execution:quick:run-1"
    with pytest.raises(ClientError) as refused:
        sfn.describe_execution(executionArn=standard_form)
    assert refused.value.response["Error"]["Code"] == "ExecutionDoesNotExist"


def test_an_express_execution_logs_its_events_to_its_machines_log_group(aws: dict[str, Any], sfn: Any) -> None:
    import boto3

    logs = boto3.client("logs", region_name="us-east-1")
    logs.create_log_group(logGroupName="/aws/vendedlogs/states/quick")
    group_arn = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/vendedlogs/states/quick:*"
    logging = {
        "level": "ALL",
        "includeExecutionData": False,
        "destinations": [{"cloudWatchLogsLogGroup": {"logGroupArn": group_arn}}],
    }
    _, arn = _express_run(sfn, loggingConfiguration=logging)
    _finished(arn)
    deadline = time.monotonic() + DEADLINE_SECONDS
    records: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not any(r["type"] == "ExecutionSucceeded" for r in records):
        found = logs.filter_log_events(logGroupName="/aws/vendedlogs/states/quick", filterPattern=f'"{arn}"')
        records = [json.loads(e["message"]) for e in found["events"]]
    print([r["type"] for r in records])
    assert [r["type"] for r in records] == [
        "ExecutionStarted",
        "PassStateEntered",
        "PassStateExited",
        "ExecutionSucceeded",
    ]
    assert {r["execution_arn"] for r in records} == {arn}
    assert set(records[-1]) >= {"id", "previous_event_id", "event_timestamp", "type", "execution_arn"}
    assert "output" not in records[-1].get("details", {})  # includeExecutionData false


def test_the_harness_may_look_at_an_express_execution_on_its_own_thread_only(sfn: Any) -> None:
    machine, arn = _express_run(sfn)
    _finished(arn)
    with stepfunctions_express.inspecting():
        assert sfn.describe_execution(executionArn=arn)["status"] == "SUCCEEDED"
        assert [e["executionArn"] for e in sfn.list_executions(stateMachineArn=machine)["executions"]] == [arn]
    with pytest.raises(ClientError):
        sfn.describe_execution(executionArn=arn)


def test_two_starts_of_one_name_are_two_express_executions_and_one_standard(sfn: Any) -> None:
    """Asynchronous Express: "Starting multiple workflows with the same name results in concurrent executions"
    (Step Functions Developer Guide, "Execution guarantees"); Standard: the same name again is ExecutionAlreadyExists
    once the first has ended."""
    machine, first = _express_run(sfn)
    _finished(first)
    second = sfn.start_execution(stateMachineArn=machine, name="run-1", input="{}")["executionArn"]
    print(first, second)
    assert second != first and EXPRESS_ARN.match(second)
    standard = _machine(sfn, "STANDARD", name="slow")
    arn = sfn.start_execution(stateMachineArn=standard, name="run-1", input="{}")["executionArn"]
    wait_for(sfn, arn)
    with pytest.raises(ClientError) as refused:
        sfn.start_execution(stateMachineArn=standard, name="run-1", input="{}")
    assert refused.value.response["Error"]["Code"] == "ExecutionAlreadyExists"
