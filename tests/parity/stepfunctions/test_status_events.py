"""Execution status-change events on the default bus, delivered to rule targets.

Evidence: [EB] "Automating Step Functions event delivery with EventBridge", Step Functions Developer Guide
(https://docs.aws.amazon.com/step-functions/latest/dg/eventbridge-integration.html): Standard workflows send
"Step Functions Execution Status Change" events (source "aws.states", resources = [execution ARN]) to the default
bus for RUNNING, SUCCEEDED, FAILED, TIMED_OUT and ABORTED, with detail executionArn, stateMachineArn, name,
status, startDate/stopDate (epoch ms), input, output, inputDetails, outputDetails, error, cause, redriveCount,
redriveDate, redriveStatus, redriveStatusReason. [TARGETS] "Amazon EventBridge targets", EventBridge User Guide:
a Step Functions state machine target starts an execution with the event as its input.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from tests.parity.stepfunctions.cases import machine, start, wait_until

PATTERN = {"source": ["aws.states"], "detail-type": ["Step Functions Execution Status Change"]}


def queue_rule(aws: dict[str, Any], state_machine_arn: str, **detail: Any) -> str:
    """A rule on the default bus for this machine's status changes, targeting a fresh SQS queue; its URL."""
    sqs, events = aws["sqs"], aws["events"]
    url = sqs.create_queue(QueueName=f"parity-{uuid.uuid4().hex[:10]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    name = f"parity-{uuid.uuid4().hex[:10]}"
    pattern = {**PATTERN, "detail": {"stateMachineArn": [state_machine_arn], **detail}}
    events.put_rule(Name=name, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=name, Targets=[{"Id": "q", "Arn": queue_arn}])
    return str(url)


def drain(sqs: Any, url: str, count: int, within: float = 15.0) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + within
    while len(got) < count and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", []):
            got.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        if len(got) < count:
            time.sleep(0.05)
    return got


def test_running_and_failed_events_with_the_documented_detail(aws: dict[str, Any]) -> None:
    """[EB] one event per status change, source/detail-type/resources and the detail members."""
    sfn, sqs = aws["stepfunctions"], aws["sqs"]
    sm = machine(sfn, {"Boom": {"Type": "Fail", "Error": "Poison", "Cause": "bad task"}}, "Boom")
    url = queue_rule(aws, sm)
    arn = start(sfn, sm, {"taskId": "t-7"})
    wait_until(sfn, arn)
    events = drain(sqs, url, 2)
    print("statuses:", [e["detail"]["status"] for e in events])
    assert [e["detail"]["status"] for e in events] == ["RUNNING", "FAILED"]
    failed = events[1]
    assert (failed["source"], failed["detail-type"], failed["resources"]) == (
        "aws.states",
        "Step Functions Execution Status Change",
        [arn],
    )
    detail = failed["detail"]
    assert set(detail) >= {
        "executionArn", "stateMachineArn", "name", "status", "startDate", "stopDate", "input", "output",
        "inputDetails", "outputDetails", "error", "cause", "redriveCount", "redriveDate", "redriveStatus",
        "redriveStatusReason",
    }  # fmt: skip
    assert (detail["executionArn"], detail["stateMachineArn"], detail["name"]) == (arn, sm, "run-1")
    assert (detail["error"], detail["cause"], detail["output"]) == ("Poison", "bad task", None)
    assert json.loads(detail["input"]) == {"taskId": "t-7"}
    assert isinstance(detail["startDate"], int) and detail["stopDate"] >= detail["startDate"]
    assert (detail["redriveCount"], detail["redriveStatus"]) == (0, "REDRIVABLE")
    assert events[0]["detail"]["stopDate"] is None


def test_running_is_sent_even_when_the_execution_ends_before_start_execution_returns(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """[EB] RUNNING precedes FAILED even when the execution thread finishes at once.

    The worker runs inline here, so the execution is FAILED before StartExecution returns. An event sent after
    Execution.start returned was lost this way in CI: ['FAILED'] instead of ['RUNNING', 'FAILED'].
    """
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    monkeypatch.setattr(ExecutionWorker, "start", lambda worker: worker._execution_logic())
    sfn, sqs = aws["stepfunctions"], aws["sqs"]
    sm = machine(sfn, {"Boom": {"Type": "Fail", "Error": "Poison"}}, "Boom")
    url = queue_rule(aws, sm)
    arn = start(sfn, sm)
    assert sfn.describe_execution(executionArn=arn)["status"] == "FAILED"  # ended inside StartExecution
    events = drain(sqs, url, 2)
    assert [e["detail"]["status"] for e in events] == ["RUNNING", "FAILED"]


def test_a_redrive_sends_running_again_counting_it(aws: dict[str, Any]) -> None:
    """[EB] a redrive's RUNNING (and its end) are status changes, with redriveCount 1."""
    sfn, sqs = aws["stepfunctions"], aws["sqs"]
    sm = machine(sfn, {"Boom": {"Type": "Fail", "Error": "Poison"}}, "Boom")
    url = queue_rule(aws, sm)
    arn = start(sfn, sm)
    wait_until(sfn, arn)
    drain(sqs, url, 2)
    sfn.redrive_execution(executionArn=arn)
    wait_until(sfn, arn)
    events = drain(sqs, url, 2)
    print("after redrive:", [(e["detail"]["status"], e["detail"]["redriveCount"]) for e in events])
    assert [(e["detail"]["status"], e["detail"]["redriveCount"]) for e in events] == [("RUNNING", 1), ("FAILED", 1)]
    assert events[0]["detail"]["redriveDate"] is not None


def test_succeeded_and_aborted_events_once_each(aws: dict[str, Any]) -> None:
    """[EB] SUCCEEDED carries the output; StopExecution gives exactly one ABORTED."""
    sfn, sqs = aws["stepfunctions"], aws["sqs"]
    ok = machine(sfn, {"P": {"Type": "Pass", "Result": {"ok": True}, "End": True}}, "P")
    url = queue_rule(aws, ok, status=["SUCCEEDED"])
    wait_until(sfn, start(sfn, ok))
    (succeeded,) = drain(sqs, url, 1)
    assert json.loads(succeeded["detail"]["output"]) == {"ok": True}
    assert succeeded["detail"]["redriveStatusReason"] == "Execution is SUCCEEDED and cannot be redriven"

    waiting = machine(sfn, {"W": {"Type": "Wait", "Seconds": 3600, "End": True}}, "W")
    url = queue_rule(aws, waiting, status=["ABORTED"])
    from taskrail.local.services import stepfunctions

    with stepfunctions.time_scale(1):
        arn = start(sfn, waiting)
        wait_until(sfn, arn, lambda d: d["status"] == "RUNNING")
        sfn.stop_execution(executionArn=arn)
        wait_until(sfn, arn)
    aborted = drain(sqs, url, 2, within=2.0)  # a second ABORTED would arrive within the deadline
    print("aborted events:", len(aborted))
    assert [e["detail"]["status"] for e in aborted] == ["ABORTED"]


def test_a_rule_with_a_state_machine_target_starts_it_with_the_event(aws: dict[str, Any]) -> None:
    """[TARGETS] a Step Functions target: StartExecution with the event as input."""
    sfn, events = aws["stepfunctions"], aws["events"]
    failing = machine(sfn, {"Boom": {"Type": "Fail", "Error": "Poison"}}, "Boom")
    recorder = machine(sfn, {"R": {"Type": "Pass", "End": True}}, "R")
    name = f"parity-{uuid.uuid4().hex[:10]}"
    pattern = {**PATTERN, "detail": {"stateMachineArn": [failing], "status": ["FAILED"]}}
    events.put_rule(Name=name, EventPattern=json.dumps(pattern))
    role = "arn:aws:iam::123456789012:role/parity-events"
    events.put_targets(Rule=name, Targets=[{"Id": "sfn", "Arn": recorder, "RoleArn": role}])
    arn = start(sfn, failing)
    wait_until(sfn, arn)
    deadline = time.monotonic() + 15
    started: list[dict[str, Any]] = []
    while not started and time.monotonic() < deadline:
        started = sfn.list_executions(stateMachineArn=recorder)["executions"]
        time.sleep(0.05)
    assert len(started) == 1, started
    run = wait_until(sfn, started[0]["executionArn"])
    event = json.loads(run["input"])
    print("target execution input:", event["detail-type"], event["detail"]["status"])
    assert (event["detail"]["executionArn"], event["detail"]["status"]) == (arn, "FAILED")
