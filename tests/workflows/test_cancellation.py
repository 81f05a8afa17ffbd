"""A task cancelled while it runs: its execution ends ABORTED (or SUCCEEDED in the cancel's own state), never
FAILED (issue 9, defect 7)."""

import time
from typing import Any

from taskrail.local.services.lambda_ import lambda_invoker
from tests.workflows.conftest import Lifecycle

CLOSING_EVENTS = {"ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"}


def wait_for_closing_event(lifecycle: Lifecycle, arn: str, timeout: float = 20) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        types = [e["type"] for e in lifecycle.history(arn)]
        if CLOSING_EVENTS & set(types):
            return types
        assert time.monotonic() < deadline, f"the execution's worker never finished: {types[-5:]}"
        time.sleep(0.05)


def cancel(lifecycle: Lifecycle, task_id: str) -> None:
    """What DELETE /tasks/{id} writes (the cancel mapping template's UpdateItem, without its condition)."""
    lifecycle.client("dynamodb").update_item(
        TableName=lifecycle.resources.ref("TasksTable"),
        Key={"taskId": {"S": task_id}},
        UpdateExpression="SET #s = :c",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":c": {"S": "CANCELLED"}},
    )


def wait_until_processing(lifecycle: Lifecycle, arn: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while "ProcessTask" not in lifecycle.states_entered(arn):
        assert time.monotonic() < deadline, "ProcessTask never started"
        time.sleep(0.02)


def cancelling_during_process(lifecycle: Lifecycle, task_id: str) -> Any:
    """An invoker that runs the real functions and cancels the task while ProcessTask's function runs, after its
    last progress report (so the function itself never notices)."""

    def invoke(name: str, payload: bytes, qualifier: str | None) -> Any:
        outcome = lifecycle.functions(name, payload, qualifier)
        if name.endswith("ProcessTaskFunction"):
            cancel(lifecycle, task_id)
        return outcome

    return invoke


def test_a_task_stopped_while_its_function_runs_stays_aborted_when_the_function_then_fails(lifecycle: Lifecycle):
    # Given a task inside ProcessTask, whose next progress report will find the task CANCELLED
    lifecycle.store_task("t-cancel-mid", "diagnostic.sleep", {"seconds": 1, "steps": 2})
    arn = lifecycle.start("t-cancel-mid")
    wait_until_processing(lifecycle, arn)

    # When the owner cancels it and the cancel function stops the execution (as the cancel pipe does)
    cancel(lifecycle, "t-cancel-mid")
    sfn = lifecycle.client("stepfunctions")
    sfn.stop_execution(executionArn=arn, error="TaskCancelled", cause="cancelled by the task's owner")

    # Then the function's TaskCancelled error, which arrives after the stop, does not turn it into FAILED
    events = wait_for_closing_event(lifecycle, arn)
    assert "ExecutionFailed" not in events
    assert events[-1] == "ExecutionAborted"
    assert sfn.describe_execution(executionArn=arn)["status"] == "ABORTED"
    # And the abort's status-change event reaches the failure recorder, which leaves the CANCELLED task alone
    lifecycle.settle()
    [run] = lifecycle.recorder_runs()
    assert lifecycle.states_entered(run["executionArn"])[-1] == "TaskAlreadySettled"
    assert lifecycle.task("t-cancel-mid")["status"] == "CANCELLED"
    assert [m for m in lifecycle.drain("TaskDeadLetterQueue") if m["taskId"] == "t-cancel-mid"] == []


def test_a_task_cancelled_before_the_stop_arrives_ends_in_the_cancel_state(lifecycle: Lifecycle):
    # Given a task inside ProcessTask; When it is cancelled and no stop arrives (the cancel pipe is slower)
    lifecycle.store_task("t-cancel-race", "diagnostic.sleep", {"seconds": 0.4, "steps": 2})
    arn = lifecycle.start("t-cancel-race")
    wait_until_processing(lifecycle, arn)
    cancel(lifecycle, "t-cancel-race")

    # Then the function's next progress report ends it quietly in the state named for the cancel
    execution = lifecycle.wait(arn)
    assert execution["status"] == "SUCCEEDED"
    assert lifecycle.states_entered(arn)[-1] == "TaskWasCancelled"
    assert lifecycle.task("t-cancel-race")["status"] == "CANCELLED"


def test_a_task_cancelled_while_its_function_finishes_is_never_marked_succeeded(lifecycle: Lifecycle):
    # Given ProcessTask's function completes its work, but the owner cancels the task meanwhile (after its last
    # progress report, so the function itself never notices)
    lifecycle.store_task("t-cancel-late", "text.stats", {"text": "a b c"})
    with lambda_invoker(cancelling_during_process(lifecycle, "t-cancel-late")):
        execution = lifecycle.wait(lifecycle.start("t-cancel-late"))

    # Then MarkSucceeded's condition (RUNNING) refuses the write: the workflow ends in TaskWasCancelled, the
    # task stays CANCELLED, and no success is announced
    entered = lifecycle.states_entered(execution["executionArn"])
    assert entered[-2:] == ["MarkSucceeded", "TaskWasCancelled"]
    assert "PublishSuccessEvent" not in entered
    task = lifecycle.task("t-cancel-late")
    assert task["status"] == "CANCELLED"
    assert "resultLocation" not in task
    assert [n for n in lifecycle.drain("NotificationsArchiveQueue") if n["taskId"] == "t-cancel-late"] == []


def test_a_task_cancelled_while_its_function_fails_is_never_marked_failed_nor_dead_lettered(lifecycle: Lifecycle):
    # Given ProcessTask's function fails permanently, and the owner cancelled the task meanwhile
    lifecycle.store_task("t-cancel-fail", "diagnostic.poison", {})
    with lambda_invoker(cancelling_during_process(lifecycle, "t-cancel-fail")):
        execution = lifecycle.wait(lifecycle.start("t-cancel-fail"))

    # Then the execution fails at ProcessTask, and the failure recorder's condition (RUNNING) refuses its write: no
    # FAILED status and no DLQ message
    lifecycle.settle()
    assert (execution["status"], lifecycle.states_entered(execution["executionArn"])[-1]) == ("FAILED", "ProcessTask")
    [run] = lifecycle.recorder_runs()
    assert lifecycle.states_entered(run["executionArn"])[-1] == "TaskAlreadySettled"
    assert lifecycle.task("t-cancel-fail")["status"] == "CANCELLED"
    assert [m for m in lifecycle.drain("TaskDeadLetterQueue") if m["taskId"] == "t-cancel-fail"] == []
