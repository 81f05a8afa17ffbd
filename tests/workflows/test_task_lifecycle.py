"""The generated ASL, run by moto's Step Functions interpreter with the real handlers in-process."""

import json
import time

import pytest

from tests.claim_race import ClaimRace, gate_condition_checks
from tests.workflows.conftest import Lifecycle

HAPPY_PATH_STATES = [
    "ClaimTask",
    "ValidateParameters",
    "ProcessTask",
    "StoreResult",
    "MarkSucceeded",
    "TaskSucceeded",
]


def failed_attempts(lifecycle: Lifecycle, execution_arn: str) -> int:
    return sum(1 for e in lifecycle.history(execution_arn) if e["type"] == "TaskFailed")


def test_happy_path_stores_the_result_and_marks_the_task_succeeded(lifecycle: Lifecycle):
    # Given a stored text.stats task; When its workflow runs
    execution = lifecycle.run("t-happy", "text.stats", {"text": "the cat sat\non the mat with the cat"})

    # Then the task succeeded, with its result stored once and one notification sent
    assert execution["status"] == "SUCCEEDED"
    task = lifecycle.task("t-happy")
    assert task["status"] == "SUCCEEDED"
    assert task["progress"] == "100"
    assert task["attempt"] == "1"
    assert task["resultLocation"] == f"s3://{lifecycle.resources.ref('ResultsBucket')}/tasks/t-happy/result.json"
    result = lifecycle.result("t-happy")
    assert result["result"]["lines"] == 2
    assert result["result"]["words"] == 9
    assert len(lifecycle.result_versions("t-happy")) == 1
    notifications = lifecycle.drain("NotificationsArchiveQueue")
    assert [(n["taskId"], n["outcome"]) for n in notifications] == [("t-happy", "SUCCEEDED")]
    assert lifecycle.drain("TaskDeadLetterQueue") == []


def test_happy_path_costs_six_billable_transitions_within_the_limit_of_eight(lifecycle: Lifecycle):
    execution = lifecycle.run("t-cost", "text.stats", {"text": "a b c"})

    entered = lifecycle.states_entered(execution["executionArn"])
    assert entered == HAPPY_PATH_STATES
    assert len(entered) == 6  # the target is at most 8; the outcome event leaves from the table (the outbox)


def test_transient_errors_are_retried_with_capped_full_jitter_backoff(lifecycle: Lifecycle):
    # Given a task that fails transiently twice
    execution = lifecycle.run("t-flaky", "diagnostic.flaky", {"failures": 2})

    # Then it succeeds on the third attempt of ProcessTask
    assert execution["status"] == "SUCCEEDED"
    assert failed_attempts(lifecycle, execution["executionArn"]) == 2
    # And the two waits follow IntervalSeconds 1, BackoffRate 2, FULL jitter (each in [0, 1 * 2^k])
    retries = lifecycle.sleeps.retries()
    assert len(retries) == 2
    assert 0 <= retries[0] <= 1
    assert 0 <= retries[1] <= 2
    assert lifecycle.task("t-flaky")["status"] == "SUCCEEDED"


def test_validation_error_is_rejected_without_retry_and_without_a_dlq_message(lifecycle: Lifecycle):
    execution = lifecycle.run("t-invalid", "text.stats", {"text": "x", "top": 1000})

    # A handled outcome: the execution succeeds in TaskRejected (ExecutionsFailed counts only FAILED tasks)
    assert execution["status"] == "SUCCEEDED"
    entered = lifecycle.states_entered(execution["executionArn"])
    assert entered[-1] == "TaskRejected"
    assert entered.count("ValidateParameters") == 1
    assert "ProcessTask" not in entered
    assert lifecycle.sleeps.retries() == []
    task = lifecycle.task("t-invalid")
    assert task["status"] == "REJECTED"
    assert task["error"] == "ValidationFailed"
    assert "top" in task["cause"]
    assert lifecycle.drain("TaskDeadLetterQueue") == []
    assert [n["outcome"] for n in lifecycle.drain("NotificationsArchiveQueue")] == ["REJECTED"]


def test_unknown_task_type_is_rejected(lifecycle: Lifecycle):
    execution = lifecycle.run("t-unknown", "no.such.type", {})

    assert execution["status"] == "SUCCEEDED"
    task = lifecycle.task("t-unknown")
    assert (task["status"], task["error"]) == ("REJECTED", "ValidationFailed")
    assert "known types" in task["cause"]


def test_permanent_failure_is_recorded_and_sent_to_the_dlq_with_full_context(lifecycle: Lifecycle):
    execution = lifecycle.run("t-poison", "diagnostic.poison", {})
    lifecycle.settle()

    assert execution["status"] == "FAILED"
    task = lifecycle.task("t-poison")
    assert task["status"] == "FAILED"
    assert task["error"] == "PermanentTaskError"
    [message] = lifecycle.drain("TaskDeadLetterQueue")
    cause = json.loads(message.pop("cause"))
    assert message == {
        "taskId": "t-poison",
        "executionArn": execution["executionArn"],
        "input": ["t-poison"],
        "error": "PermanentTaskError",
        "attempt": 1,
    }
    assert cause["errorType"] == "PermanentTaskError"
    assert "diagnostics/poison-fixed" in cause["errorMessage"]
    assert lifecycle.sleeps.retries() == [], "a permanent error is not retried"
    assert [n["outcome"] for n in lifecycle.drain("NotificationsArchiveQueue")] == ["FAILED"]


def test_duplicate_start_ends_quietly_at_claim_with_one_result_and_one_notification(lifecycle: Lifecycle):
    # Given a task whose workflow already ran (a pipe may deliver the same record twice)
    first = lifecycle.run("t-dup", "text.stats", {"text": "one two"})

    # When a second execution starts for the same task
    second = lifecycle.wait(lifecycle.start("t-dup"))

    # Then it ends at the claim, and no side effect happened twice
    assert first["status"] == second["status"] == "SUCCEEDED"
    assert lifecycle.states_entered(second["executionArn"]) == ["ClaimTask", "TaskAlreadyClaimed"]
    assert len(lifecycle.result_versions("t-dup")) == 1
    assert len(lifecycle.drain("NotificationsArchiveQueue")) == 1
    assert lifecycle.task("t-dup")["attempt"] == "1"


def test_concurrent_duplicate_starts_process_the_task_once(lifecycle: Lifecycle, monkeypatch: pytest.MonkeyPatch):
    # Given three executions started at once for one task (a pipe redelivering quickly), each claim held after
    # its condition check until another claim has reached its own check or the write lock (tests/claim_race.py)
    lifecycle.store_task("t-race", "text.stats", {"text": "race"})
    gate_condition_checks(monkeypatch, ClaimRace())
    arns = [lifecycle.start("t-race") for _ in range(3)]

    # Then exactly one claims it: the conditional claim is atomic (in moto via install_atomic_dynamodb_writes)
    outcomes = [lifecycle.states_entered(lifecycle.wait(arn)["executionArn"])[-1] for arn in arns]
    assert sorted(outcomes) == ["TaskAlreadyClaimed", "TaskAlreadyClaimed", "TaskSucceeded"]
    assert len(lifecycle.result_versions("t-race")) == 1


def test_large_parameters_travel_by_reference_through_s3(lifecycle: Lifecycle):
    # Given parameters larger than the claim-check threshold (the workflow payload limit is 256 KB)
    text = ("lorem ipsum dolor sit amet " * 12_000).strip()
    assert len(text) > 256 * 1024

    execution = lifecycle.run("t-large", "text.stats", {"text": text})

    assert execution["status"] == "SUCCEEDED"
    s3 = lifecycle.client("s3")
    stored = s3.get_object(Bucket=lifecycle.resources.ref("ResultsBucket"), Key="tasks/t-large/input.json")
    assert json.loads(stored["Body"].read())["text"] == text
    # And no state of the execution carried the parameters inline
    for event in lifecycle.history(execution["executionArn"]):
        for details in event.values():
            if isinstance(details, dict) and "input" in details:
                assert len(details["input"]) < 64 * 1024
    assert lifecycle.result("t-large")["result"]["words"] == 60_000


def test_cancelled_task_is_not_marked_succeeded(lifecycle: Lifecycle):
    # Given a task cancelled before its workflow claims it
    lifecycle.store_task("t-cancel", "text.stats", {"text": "x"})
    lifecycle.client("dynamodb").update_item(
        TableName=lifecycle.resources.ref("TasksTable"),
        Key={"taskId": {"S": "t-cancel"}},
        UpdateExpression="SET #s = :c",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":c": {"S": "CANCELLED"}},
    )
    execution = lifecycle.wait(lifecycle.start("t-cancel"))

    assert lifecycle.states_entered(execution["executionArn"]) == ["ClaimTask", "TaskAlreadyClaimed"]
    assert lifecycle.task("t-cancel")["status"] == "CANCELLED"


def test_stopping_an_execution_reports_aborted_at_once_while_its_function_runs_on(lifecycle: Lifecycle):
    # Given a task whose ProcessTask is inside a 2-second Lambda invocation
    lifecycle.store_task("t-stop", "diagnostic.sleep", {"seconds": 2, "steps": 1})
    arn = lifecycle.start("t-stop")
    sfn = lifecycle.client("stepfunctions")
    deadline = time.monotonic() + 10
    while "ProcessTask" not in lifecycle.states_entered(arn):
        assert time.monotonic() < deadline, "ProcessTask never started"
        time.sleep(0.02)

    # When it is stopped, Then it is ABORTED at once (as on AWS), and stays so when the function returns
    sfn.stop_execution(executionArn=arn, error="TaskCancelled", cause="test")
    assert sfn.describe_execution(executionArn=arn)["status"] == "ABORTED"
    # (the worker thread records ExecutionAborted once the invocation returns; wait for it before leaving moto)
    while "ExecutionAborted" not in [e["type"] for e in lifecycle.history(arn)]:
        assert time.monotonic() < deadline + 10, "the execution's worker never finished"
        time.sleep(0.05)
    assert sfn.describe_execution(executionArn=arn)["status"] == "ABORTED"
    assert "StoreResult" not in lifecycle.states_entered(arn)
