from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fakes import FakeLambdaContext, InMemoryExecutions
from moto.core.config import default_user_config

from cancel_task.logic import cancel_executions
from task_common.models import StreamRecord
from taskrail.local.services.stepfunctions import install_aws_stop_semantics, uninstall_aws_stop_semantics

RUNNING_ARN = "arn:aws:states:us-east-1:123456789012:execution:task-lifecycle:task-1"
STREAM_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/Tasks/stream/2025-01-01T00:00:00.000"


def wait_for(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def stream_record(task_id: str, status: str, execution_arn: str | None = None) -> dict[str, Any]:
    """A MODIFY record of the Tasks table's stream, as the EventBridge Pipe delivers it."""
    new_image: dict[str, Any] = {"taskId": {"S": task_id}, "userId": {"S": "alice"}, "status": {"S": status}}
    if execution_arn is not None:
        new_image["executionArn"] = {"S": execution_arn}
    return {
        "eventID": f"event-{task_id}",
        "eventName": "MODIFY",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "Keys": {"taskId": {"S": task_id}},
            "NewImage": new_image,
            "SequenceNumber": "100",
            "SizeBytes": 120,
            "StreamViewType": "NEW_IMAGE",
        },
        "eventSourceARN": STREAM_ARN,
    }


def cancel(records: list[dict[str, Any]], executions: InMemoryExecutions) -> dict[str, Any]:
    parsed = [StreamRecord.model_validate(record) for record in records]
    return cancel_executions(parsed, executions=executions).model_dump(mode="json", exclude_none=True)


def test_a_cancelled_tasks_running_execution_is_stopped_as_task_cancelled():
    # Given a running execution
    executions = InMemoryExecutions(statuses={RUNNING_ARN: "RUNNING"})

    # When its task is cancelled
    result = cancel([stream_record("task-1", "CANCELLED", RUNNING_ARN)], executions)

    # Then the execution is stopped with the error the workflow and the client recognise
    assert result == {"stopped": [RUNNING_ARN], "skipped": []}
    assert executions.stop_calls == [(RUNNING_ARN, "TaskCancelled", "cancelled by the task's owner")]


def test_finished_missing_or_absent_executions_are_skipped():
    # Given one finished execution
    finished = "arn:aws:states:us-east-1:123456789012:execution:task-lifecycle:task-2"
    gone = "arn:aws:states:us-east-1:123456789012:execution:task-lifecycle:task-3"
    executions = InMemoryExecutions(statuses={finished: "SUCCEEDED"})

    # When tasks are cancelled whose executions finished, do not exist, or were never started
    result = cancel(
        [
            stream_record("task-2", "CANCELLED", finished),
            stream_record("task-3", "CANCELLED", gone),
            stream_record("task-4", "CANCELLED"),
        ],
        executions,
    )

    # Then nothing is stopped, and each record says why
    assert result == {
        "stopped": [],
        "skipped": [
            {"taskId": "task-2", "executionArn": finished, "reason": "execution not running"},
            {"taskId": "task-3", "executionArn": gone, "reason": "execution not found"},
            {"taskId": "task-4", "reason": "task has no execution"},
        ],
    }
    assert executions.stop_calls == []


def test_a_record_of_a_task_that_is_not_cancelled_is_ignored():
    executions = InMemoryExecutions(statuses={RUNNING_ARN: "RUNNING"})

    result = cancel([stream_record("task-1", "RUNNING", RUNNING_ARN)], executions)

    assert result["skipped"] == [{"taskId": "task-1", "executionArn": RUNNING_ARN, "reason": "task is not cancelled"}]
    assert executions.statuses[RUNNING_ARN] == "RUNNING"


def test_a_redelivered_record_stops_the_execution_only_once():
    executions = InMemoryExecutions(statuses={RUNNING_ARN: "RUNNING"})
    record = stream_record("task-1", "CANCELLED", RUNNING_ARN)

    result = cancel([record, record], executions)

    assert result["stopped"] == [RUNNING_ARN]
    assert len(executions.stop_calls) == 1


# Through the deployed handler, against moto's Step Functions


@pytest.fixture
def executing_state_machines(aws_environment: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Executions really run, as on AWS (plain mock_aws() leaves every execution RUNNING for ever)."""
    monkeypatch.setitem(default_user_config, "stepfunctions", {"execute_state_machine": True})
    install_aws_stop_semantics()
    yield
    uninstall_aws_stop_semantics()


def load_task_changes(load_handler: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The task-changes function (cancels and outcomes, one pipe), with where outcomes go."""
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/dlq")
    monkeypatch.setenv("EVENT_BUS_NAME", "task-bus")
    return load_handler("task_changes.handler")


def test_handler_stops_a_running_execution_and_skips_finished_or_unknown_ones(
    aws_environment, load_handler, executing_state_machines, monkeypatch
):
    # Given a running execution of the task-lifecycle state machine (a long Wait, so it is still running)
    sfn = aws_environment.sfn
    state_machine_arn = sfn.create_state_machine(
        name="task-lifecycle",
        definition=json.dumps({"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 600, "End": True}}}),
        roleArn="arn:aws:iam::123456789012:role/task-lifecycle",
    )["stateMachineArn"]
    execution_arn = sfn.start_execution(stateMachineArn=state_machine_arn, name="task-1")["executionArn"]
    finished_arn = sfn.start_execution(
        stateMachineArn=sfn.create_state_machine(
            name="quick",
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}),
            roleArn="arn:aws:iam::123456789012:role/task-lifecycle",
        )["stateMachineArn"],
        name="task-2",
    )["executionArn"]
    wait_for(lambda: sfn.describe_execution(executionArn=finished_arn)["status"] == "SUCCEEDED")
    assert sfn.describe_execution(executionArn=execution_arn)["status"] == "RUNNING"
    unknown_arn = execution_arn.replace(":task-1", ":task-9")
    handler = load_task_changes(load_handler, monkeypatch)

    # When the Pipe delivers the cancellation, twice, alongside one for an unknown execution
    record = stream_record("task-1", "CANCELLED", execution_arn)
    event = [record, record, stream_record("task-2", "CANCELLED", finished_arn)]
    event.append(stream_record("task-9", "CANCELLED", unknown_arn))
    response = handler.handler(event, FakeLambdaContext())

    # Then the execution is stopped once and the rest is skipped
    assert response == {
        "stopped": [execution_arn],
        "skipped": [
            {"taskId": "task-1", "executionArn": execution_arn, "reason": "execution not running"},
            {"taskId": "task-2", "executionArn": finished_arn, "reason": "execution not running"},
            {"taskId": "task-9", "executionArn": unknown_arn, "reason": "execution not found"},
        ],
        "delivered": [],
        "movedOn": [],
    }
    assert sfn.describe_execution(executionArn=execution_arn)["status"] == "ABORTED"


def test_handler_accepts_an_empty_batch(aws_environment, load_handler, monkeypatch):
    handler = load_task_changes(load_handler, monkeypatch)

    assert handler.handler([], FakeLambdaContext()) == {"stopped": [], "skipped": [], "delivered": [], "movedOn": []}
