"""One failure path for every kind of failure (issue 19): the execution ends where it failed, its status-change
event on the default bus starts the failure recorder, and the recorder's one conditional write sets the task
FAILED; the outbox then sends exactly one DLQ message and one outcome event. No reconciler run is involved.

And a redrive is a replay: the same execution ARN resumes its FAILED task, ends SUCCEEDED with one result object
and one success notification; a REJECTED or SUCCEEDED task's execution cannot be redriven (ExecutionNotRedrivable,
"RedriveExecution", Step Functions API Reference).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from task_types.diagnostic_poison import FIX_MARKER_KEY
from taskrail.local.services.lambda_ import InvokeOutcome, lambda_invoker
from tests.workflows.conftest import Lifecycle

Invoker = Callable[[str, bytes, "str | None"], Any]
HANG_GUARD_SECONDS = 30


def process_answers(lifecycle: Lifecycle, answer: Callable[[dict[str, Any]], InvokeOutcome]) -> Invoker:
    """The real functions, but ProcessTask's function answers ``answer(payload)``."""

    def invoke(name: str, payload: bytes, qualifier: str | None) -> Any:
        if name.endswith("ProcessTaskFunction"):
            return answer(json.loads(payload))
        return lifecycle.functions(name, payload, qualifier)

    return invoke


def assert_recorded_once(lifecycle: Lifecycle, task_id: str, execution: dict[str, Any]) -> dict[str, Any]:
    """Exactly one FAILED record, one DLQ message and one outcome event, from the recorder, not the reconciler."""
    lifecycle.settle()
    task = lifecycle.task(task_id)
    runs = lifecycle.recorder_runs()
    ends = [lifecycle.states_entered(run["executionArn"])[-1] for run in runs]
    messages = [m for m in lifecycle.drain("TaskDeadLetterQueue") if m["taskId"] == task_id]
    events = [n for n in lifecycle.drain("NotificationsArchiveQueue") if n["taskId"] == task_id]
    reconciler = lifecycle.resources.state_machines["ReconcilerStateMachine"]
    reconciler_runs = lifecycle.client("stepfunctions").list_executions(stateMachineArn=reconciler)["executions"]
    print(
        f"{task_id}: execution {execution['status']}, task {task['status']} ({task.get('error')}), recorder {ends}, "
        f"DLQ {len(messages)}, events {[e['outcome'] for e in events]}, reconciler runs {len(reconciler_runs)}"
    )
    assert task["status"] == "FAILED"
    assert ends == ["TaskFailureRecorded"]
    assert [(m["executionArn"], m["error"], m["cause"]) for m in messages] == [
        (execution["executionArn"], task["error"], task["cause"])
    ]
    assert [(e["outcome"], e["error"]) for e in events] == [("FAILED", task["error"])]
    assert reconciler_runs == []
    return task


def test_a_processing_error_after_its_retries_fails_the_execution_at_process_task(lifecycle: Lifecycle):
    # Given a task whose error is retried (TransientTaskError), every try failing
    def transient(_payload: dict[str, Any]) -> InvokeOutcome:
        return InvokeOutcome.unhandled("TransientTaskError", "the source is down")

    lifecycle.store_task("t-transient", "text.stats", {"text": "a b"})
    with lambda_invoker(process_answers(lifecycle, transient)):
        execution = lifecycle.wait(lifecycle.start("t-transient"))

    # Then its retries were taken, and the execution failed at ProcessTask (no Catch), recorded once
    assert len(lifecycle.sleeps.retries()) == 4
    assert lifecycle.states_entered(execution["executionArn"])[-1] == "ProcessTask"
    task = assert_recorded_once(lifecycle, "t-transient", execution)
    assert task["error"] == "TransientTaskError"


def test_an_unexpected_error_fails_the_execution_at_process_task(lifecycle: Lifecycle):
    def crash(_payload: dict[str, Any]) -> InvokeOutcome:
        return InvokeOutcome.unhandled("KeyError", "'rows'")

    lifecycle.store_task("t-crash", "text.stats", {"text": "a b"})
    with lambda_invoker(process_answers(lifecycle, crash)):
        execution = lifecycle.wait(lifecycle.start("t-crash"))

    assert (execution["status"], execution["error"]) == ("FAILED", "KeyError")
    task = assert_recorded_once(lifecycle, "t-crash", execution)
    assert json.loads(task["cause"])["errorMessage"] == "'rows'"


def test_a_state_runtime_error_is_recorded_like_any_other(lifecycle: Lifecycle):
    # Given ProcessTask's function answers without the fields its ResultSelector reads
    lifecycle.store_task("t-runtime", "text.stats", {"text": "a b"})
    with lambda_invoker(process_answers(lifecycle, lambda _payload: InvokeOutcome.success(["not", "an", "object"]))):
        execution = lifecycle.wait(lifecycle.start("t-runtime"))

    assert (execution["status"], execution["error"]) == ("FAILED", "States.Runtime")
    task = assert_recorded_once(lifecycle, "t-runtime", execution)
    assert task["error"] == "States.Runtime"


def test_an_execution_timeout_is_recorded_as_ended(lifecycle: Lifecycle):
    # Given the lifecycle (same ARN, so its rule applies) with a one-second execution timeout, and a ProcessTask
    # that does not answer before it
    sfn = lifecycle.client("stepfunctions")
    arn = lifecycle.state_machine_arn
    definition = json.loads(sfn.describe_state_machine(stateMachineArn=arn)["definition"])
    sfn.update_state_machine(stateMachineArn=arn, definition=json.dumps({**definition, "TimeoutSeconds": 1}))
    release = threading.Event()

    def hang(_payload: dict[str, Any]) -> InvokeOutcome:
        release.wait(HANG_GUARD_SECONDS)
        return InvokeOutcome.unhandled("LateAnswer", "answered after the execution timed out")

    lifecycle.store_task("t-timeout", "text.stats", {"text": "a b"})
    try:
        with lambda_invoker(process_answers(lifecycle, hang)):
            execution = lifecycle.wait(lifecycle.start("t-timeout"))
    finally:
        release.set()

    assert execution["status"] == "TIMED_OUT"
    task = assert_recorded_once(lifecycle, "t-timeout", execution)
    assert task["cause"] == "the execution ended TIMED_OUT while the task ran" or task["error"] == "States.Timeout"


def test_an_abort_not_caused_by_a_cancel_fails_the_task(lifecycle: Lifecycle):
    # Given a task inside ProcessTask
    started, release = threading.Event(), threading.Event()

    def block(_payload: dict[str, Any]) -> InvokeOutcome:
        started.set()
        release.wait(HANG_GUARD_SECONDS)
        return InvokeOutcome.unhandled("LateAnswer", "answered after the stop")

    lifecycle.store_task("t-stopped", "text.stats", {"text": "a b"})
    try:
        with lambda_invoker(process_answers(lifecycle, block)):
            arn = lifecycle.start("t-stopped")
            assert started.wait(HANG_GUARD_SECONDS)
            # When an operator stops the execution (the task is still RUNNING: no cancel)
            lifecycle.client("stepfunctions").stop_execution(
                executionArn=arn, error="OperatorStopped", cause="stopped from the console"
            )
            execution = lifecycle.wait(arn)
    finally:
        release.set()

    assert execution["status"] == "ABORTED"
    task = assert_recorded_once(lifecycle, "t-stopped", execution)
    # What the event carries is recorded; an abort without an error is ExecutionEnded, as the reconciler records it
    (run,) = lifecycle.recorder_runs()
    detail = json.loads(run["input"])["detail"]
    expected = (
        (detail["error"], detail["cause"] or "the execution ended ABORTED while the task ran")
        if detail["error"]
        else ("ExecutionEnded", "the execution ended ABORTED while the task ran")
    )
    print("abort event error/cause:", detail["error"], detail["cause"])
    assert (task["error"], task["cause"]) == expected


def test_a_repeated_status_change_event_records_nothing_more(lifecycle: Lifecycle):
    # Given a failure recorded once
    execution = lifecycle.run("t-twice", "diagnostic.poison", {})
    assert_recorded_once(lifecycle, "t-twice", execution)
    (run,) = lifecycle.recorder_runs()

    # When EventBridge delivers the same event again (at least once)
    sfn = lifecycle.client("stepfunctions")
    recorder = lifecycle.resources.state_machines["FailureRecorderStateMachine"]
    again = lifecycle.wait(sfn.start_execution(stateMachineArn=recorder, input=run["input"])["executionArn"])

    # Then the recorder's condition refuses it: no second DLQ message or event
    assert lifecycle.states_entered(again["executionArn"])[-1] == "TaskAlreadySettled"
    lifecycle.settle()
    assert [m for m in lifecycle.drain("TaskDeadLetterQueue") if m["taskId"] == "t-twice"] == []
    assert [n for n in lifecycle.drain("NotificationsArchiveQueue") if n["taskId"] == "t-twice"] == []


# -- redrive ---------------------------------------------------------------------------------------------------


def test_redriving_a_poison_task_after_the_fix_resumes_it_under_the_same_arn(lifecycle: Lifecycle):
    # Given a poison task that failed at ProcessTask, recorded FAILED with its DLQ message
    first = lifecycle.run("t-poison", "diagnostic.poison", {})
    assert_recorded_once(lifecycle, "t-poison", first)

    # When the fix marker is set and the execution is redriven (the console's Redrive, the CLI's redrive-execution)
    lifecycle.client("s3").put_object(Bucket=lifecycle.results_bucket, Key=FIX_MARKER_KEY, Body=b"fixed")
    sfn = lifecycle.client("stepfunctions")
    sfn.redrive_execution(executionArn=first["executionArn"])
    redriven = lifecycle.wait(first["executionArn"])
    lifecycle.settle()

    # Then the same execution ends SUCCEEDED, having resumed at ProcessTask, and the task SUCCEEDED (same attempt)
    entered = lifecycle.states_entered(first["executionArn"])
    task = lifecycle.task("t-poison")
    print("redriven:", redriven["status"], redriven.get("redriveCount"), entered, task["status"], task["attempt"])
    assert (redriven["executionArn"], redriven["status"], redriven["redriveCount"]) == (
        first["executionArn"],
        "SUCCEEDED",
        1,
    )
    assert entered.count("ValidateParameters") == 1 and entered[-4:] == [
        "ProcessTask",
        "StoreResult",
        "MarkSucceeded",
        "TaskSucceeded",
    ]
    assert (task["status"], task["attempt"], task["redriveCount"], task["executionArn"]) == (
        "SUCCEEDED",
        "1",
        "1",
        first["executionArn"],
    )
    assert "error" not in task and "cause" not in task
    # And one result object, one success notification, no second DLQ message; the first one names a task that is
    # no longer FAILED under that execution (the replay tooling drops it)
    assert len(lifecycle.result_versions("t-poison")) == 1
    assert [n["outcome"] for n in lifecycle.drain("NotificationsArchiveQueue") if n["taskId"] == "t-poison"] == [
        "SUCCEEDED"
    ]
    assert [m for m in lifecycle.drain("TaskDeadLetterQueue") if m["taskId"] == "t-poison"] == []
    # And the failure recorder ran once only (the redrive's RUNNING and SUCCEEDED are not failures)
    assert len(lifecycle.recorder_runs()) == 1


def test_a_redrive_that_fails_again_is_recorded_again_once(lifecycle: Lifecycle):
    # Given a poison task FAILED, redriven without the fix
    first = lifecycle.run("t-again", "diagnostic.poison", {})
    assert_recorded_once(lifecycle, "t-again", first)
    sfn = lifecycle.client("stepfunctions")
    sfn.redrive_execution(executionArn=first["executionArn"])
    again = lifecycle.wait(first["executionArn"])
    lifecycle.settle()

    # Then the redrive failed at ProcessTask too, and was recorded for its own redrive count: one more message
    task = lifecycle.task("t-again")
    assert (again["status"], again["redriveCount"], task["status"], task["redriveCount"]) == (
        "FAILED",
        1,
        "FAILED",
        "1",
    )
    (message,) = [m for m in lifecycle.drain("TaskDeadLetterQueue") if m["taskId"] == "t-again"]
    assert message["executionArn"] == first["executionArn"]
    assert [n["outcome"] for n in lifecycle.drain("NotificationsArchiveQueue") if n["taskId"] == "t-again"] == [
        "FAILED"
    ]


def test_a_redrive_of_a_task_replayed_meanwhile_does_not_run_it(lifecycle: Lifecycle):
    # Given a FAILED task that a DLQ replay requeued first (its requeue is conditional on FAILED)
    first = lifecycle.run("t-raced", "diagnostic.poison", {})
    assert_recorded_once(lifecycle, "t-raced", first)
    lifecycle.client("dynamodb").update_item(
        TableName=lifecycle.tasks_table,
        Key={"taskId": {"S": "t-raced"}},
        UpdateExpression="SET #s = :queued",
        ConditionExpression="#s = :failed",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":queued": {"S": "QUEUED"}, ":failed": {"S": "FAILED"}},
    )

    # When the old execution is redriven as well
    lifecycle.client("stepfunctions").redrive_execution(executionArn=first["executionArn"])
    redriven = lifecycle.wait(first["executionArn"])

    # Then it ends quietly without running the task, which stays the replay's to run
    assert lifecycle.states_entered(first["executionArn"])[-1] == "TaskWasCancelled"
    assert redriven["status"] == "SUCCEEDED"
    assert lifecycle.task("t-raced")["status"] == "QUEUED"
    assert lifecycle.result_versions("t-raced") == []


@pytest.mark.parametrize(
    ("task_type", "params", "end_state"),
    [("text.stats", {"text": "a b"}, "TaskSucceeded"), ("text.stats", {"words": 1}, "TaskRejected")],
    ids=["succeeded", "rejected"],
)
def test_redriving_a_succeeded_or_rejected_task_is_refused_as_aws_refuses_it(
    lifecycle: Lifecycle, task_type: str, params: dict[str, Any], end_state: str
):
    execution = lifecycle.run(f"t-{end_state}", task_type, params)
    assert lifecycle.states_entered(execution["executionArn"])[-1] == end_state

    with pytest.raises(ClientError) as refused:
        lifecycle.client("stepfunctions").redrive_execution(executionArn=execution["executionArn"])

    print(end_state, refused.value.response["Error"])
    assert refused.value.response["Error"]["Code"] == "ExecutionNotRedrivable"
    assert lifecycle.wait(execution["executionArn"])["status"] == "SUCCEEDED"
