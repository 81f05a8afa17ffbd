"""A DLQ replay and a redrive of the same task never both mark it (issue 19, audit gap G1), also when the redrive
resumes after ProcessTask, whose resume write is the gate for a redrive that reruns it: at StoreResult (then
MarkSucceeded) or at ValidateParameters (then MarkRejected). Those terminal writes are conditional on the task
being this execution's (``executionArn = :arn``), so the execution that lost ends quietly in TaskWasCancelled.

Both orders: the replay wins (its requeue and its new execution ``-r1`` come first, the redrive finds the task
another execution's) and the redrive wins (no replay: it resumes the FAILED task and ends it once).

A redriven StoreResult is not gated: it writes the task's result object before MarkSucceeded refuses (the
trade-off in docs/DECISIONS.md, "Failures end where they failed", point 3).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from taskrail.local.services.lambda_ import InvokeOutcome, lambda_invoker
from taskrail.operator.aws import DynamoTaskRecords
from tests.workflows.conftest import Lifecycle
from tests.workflows.test_failure_path import HANG_GUARD_SECONDS, assert_recorded_once

REPLAY = "-r1"


@contextmanager
def results_bucket_gone(lifecycle: Lifecycle) -> Iterator[None]:
    """StoreResult fails after its retries (S3.NoSuchBucketException) while the block runs; the bucket (with its
    versioning) is back after it."""
    s3, bucket = lifecycle.client("s3"), lifecycle.results_bucket
    versioning = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    listing = s3.list_object_versions(Bucket=bucket)
    for version in listing.get("Versions", []) + listing.get("DeleteMarkers", []):
        s3.delete_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])
    s3.delete_bucket(Bucket=bucket)
    try:
        yield
    finally:
        s3.create_bucket(Bucket=bucket)
        if versioning:
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": versioning})


def requeue(lifecycle: Lifecycle, task_id: str, execution_arn: str) -> bool:
    """The DLQ replay's own requeue (DynamoTaskRecords.requeue_failed): FAILED → QUEUED under the failed execution."""
    return DynamoTaskRecords(lifecycle.client, lifecycle.tasks_table).requeue_failed(task_id, execution_arn)


class HeldProcessTask:
    """The real functions, but ProcessTask waits until released (the replay's new execution, mid-run)."""

    def __init__(self, lifecycle: Lifecycle) -> None:
        self.started, self.release = threading.Event(), threading.Event()
        self._lifecycle = lifecycle

    def __call__(self, name: str, payload: bytes, qualifier: str | None) -> Any:
        if name.endswith("ProcessTaskFunction"):
            self.started.set()
            self.release.wait(HANG_GUARD_SECONDS)
        return self._lifecycle.functions(name, payload, qualifier)


def fail_at_store_result(lifecycle: Lifecycle, task_id: str) -> dict[str, Any]:
    lifecycle.store_task(task_id, "text.stats", {"text": "a b"})
    with results_bucket_gone(lifecycle):
        first = lifecycle.wait(lifecycle.start(task_id))
    assert lifecycle.states_entered(first["executionArn"])[-1] == "StoreResult"
    assert_recorded_once(lifecycle, task_id, first)
    return first


def outcomes(lifecycle: Lifecycle, task_id: str) -> list[str]:
    return [n["outcome"] for n in lifecycle.drain("NotificationsArchiveQueue") if n["taskId"] == task_id]


def test_a_redrive_resuming_at_store_result_does_not_mark_a_task_a_replay_runs(lifecycle: Lifecycle):
    # Given a task whose execution A failed at StoreResult (FAILED, its DLQ message sent), then a DLQ replay:
    # requeued, and its new execution B is inside ProcessTask (attempt 2)
    a = fail_at_store_result(lifecycle, "t-store")["executionArn"]
    assert requeue(lifecycle, "t-store", a)
    held = HeldProcessTask(lifecycle)
    try:
        with lambda_invoker(held):
            b = lifecycle.start("t-store", name=f"t-store{REPLAY}")
            assert held.started.wait(HANG_GUARD_SECONDS)

            # When A is redriven meanwhile (the console's Redrive): it resumes at StoreResult
            lifecycle.client("stepfunctions").redrive_execution(executionArn=a)
            redriven = lifecycle.wait(a)
            during = lifecycle.task("t-store")
            print(
                "A redriven:", redriven["status"], lifecycle.states_entered(a)[-3:],
                "task while B runs:", during["status"], during["attempt"], during["executionArn"].rsplit(":", 1)[-1],
            )  # fmt: skip
            held.release.set()
            done = lifecycle.wait(b)
    finally:
        held.release.set()
    lifecycle.settle()

    # Then A's MarkSucceeded refused the task B holds: A ended quietly, the task stayed B's (RUNNING, attempt 2)
    assert (redriven["status"], lifecycle.states_entered(a)[-3:]) == (
        "SUCCEEDED",
        ["StoreResult", "MarkSucceeded", "TaskWasCancelled"],
    )
    assert (during["status"], during["attempt"], during["executionArn"]) == ("RUNNING", "2", b)
    # And B alone ended it: SUCCEEDED under B, one SUCCEEDED outcome (after A's one FAILED), B's result document
    task = lifecycle.task("t-store")
    print("B:", done["status"], lifecycle.states_entered(b)[-1], "task:", task["status"], task["attempt"])
    assert (done["status"], lifecycle.states_entered(b)[-1]) == ("SUCCEEDED", "TaskSucceeded")
    assert (task["status"], task["attempt"], task["executionArn"]) == ("SUCCEEDED", "2", b)
    assert outcomes(lifecycle, "t-store") == ["SUCCEEDED"]
    assert lifecycle.result("t-store")["attempt"] == 2
    # (A's StoreResult wrote a version of the object before MarkSucceeded refused; B's replaced it)
    assert len(lifecycle.result_versions("t-store")) == 2


def test_a_redrive_after_the_replay_succeeded_leaves_the_task_as_the_replay_ended_it(lifecycle: Lifecycle):
    # Given A failed at StoreResult, and a DLQ replay's execution B then ended the task SUCCEEDED (attempt 2)
    a = fail_at_store_result(lifecycle, "t-late")["executionArn"]
    assert requeue(lifecycle, "t-late", a)
    b = lifecycle.wait(lifecycle.start("t-late", name=f"t-late{REPLAY}"))["executionArn"]
    lifecycle.settle()
    assert outcomes(lifecycle, "t-late") == ["SUCCEEDED"]
    before = lifecycle.task("t-late")

    # When A, still FAILED and REDRIVABLE in the console, is redriven
    lifecycle.client("stepfunctions").redrive_execution(executionArn=a)
    lifecycle.wait(a)
    lifecycle.settle()

    # Then its MarkSucceeded refuses: the task record is B's, untouched, and no second outcome is published
    after = lifecycle.task("t-late")
    print("A:", lifecycle.states_entered(a)[-3:], "task:", after["status"], after["attempt"], after["updatedAt"])
    assert lifecycle.states_entered(a)[-1] == "TaskWasCancelled"
    assert after == before and after["executionArn"] == b
    assert outcomes(lifecycle, "t-late") == []
    # The trade-off (DECISIONS): the ungated StoreResult rewrote the object with attempt 1's document; B's
    # version stays in the versioned bucket
    versions = lifecycle.result_versions("t-late")
    print("result:", lifecycle.result("t-late")["attempt"], "versions:", len(versions))
    assert (lifecycle.result("t-late")["attempt"], len(versions)) == (1, 2)


def test_a_redrive_resuming_at_store_result_with_no_replay_succeeds_once(lifecycle: Lifecycle):
    # Given A failed at StoreResult (FAILED, its one DLQ message and FAILED outcome), the bucket back
    a = fail_at_store_result(lifecycle, "t-resume")["executionArn"]

    # When A is redriven, and no replay ran
    lifecycle.client("stepfunctions").redrive_execution(executionArn=a)
    redriven = lifecycle.wait(a)
    lifecycle.settle()

    # Then MarkSucceeded resumed its FAILED task: SUCCEEDED under A, same attempt, one result, one outcome
    task = lifecycle.task("t-resume")
    print("A redriven:", redriven["status"], lifecycle.states_entered(a)[-3:], task["status"], task["redriveCount"])
    assert (redriven["status"], lifecycle.states_entered(a)[-1]) == ("SUCCEEDED", "TaskSucceeded")
    assert (task["status"], task["attempt"], task["redriveCount"], task["executionArn"]) == ("SUCCEEDED", "1", "1", a)
    assert outcomes(lifecycle, "t-resume") == ["SUCCEEDED"]
    assert len(lifecycle.result_versions("t-resume")) == 1
    # And a DLQ replay of its old message now finds nothing FAILED to requeue
    assert not requeue(lifecycle, "t-resume", a), "the requeue of a SUCCEEDED task went through"


class ValidateAnswers:
    """The real functions, but ValidateParameters' function answers ``answers`` in turn (then the real one)."""

    def __init__(self, lifecycle: Lifecycle, *answers: InvokeOutcome) -> None:
        self._lifecycle, self._answers = lifecycle, list(answers)

    def then(self, answer: InvokeOutcome) -> None:
        self._answers.append(answer)

    def __call__(self, name: str, payload: bytes, qualifier: str | None) -> Any:
        if name.endswith("ValidateTaskFunction") and self._answers:
            return self._answers.pop(0)
        return self._lifecycle.functions(name, payload, qualifier)


CRASH = InvokeOutcome.unhandled("KeyError", "'schema'")
REJECT = InvokeOutcome.unhandled("ValidationFailed", "invalid params for text.stats: text is required")


def fail_at_validate(lifecycle: Lifecycle, task_id: str) -> str:
    lifecycle.store_task(task_id, "text.stats", {"text": "a b"})
    with lambda_invoker(ValidateAnswers(lifecycle, CRASH)):
        first = lifecycle.wait(lifecycle.start(task_id))
    assert lifecycle.states_entered(first["executionArn"])[-1] == "ValidateParameters"
    assert_recorded_once(lifecycle, task_id, first)
    return str(first["executionArn"])


def test_a_redriven_rejection_does_not_reject_a_task_a_replay_runs(lifecycle: Lifecycle):
    # Given A failed at ValidateParameters (an unexpected error), and a DLQ replay's B is inside ProcessTask
    a = fail_at_validate(lifecycle, "t-reject")
    assert requeue(lifecycle, "t-reject", a)
    held = HeldProcessTask(lifecycle)
    validate = ValidateAnswers(lifecycle)

    def invoke(name: str, payload: bytes, qualifier: str | None) -> Any:
        handler = validate if name.endswith("ValidateTaskFunction") else held
        return handler(name, payload, qualifier)

    try:
        with lambda_invoker(invoke):
            b = lifecycle.start("t-reject", name=f"t-reject{REPLAY}")
            assert held.started.wait(HANG_GUARD_SECONDS)
            # When A is redriven and its ValidateParameters now rejects the parameters
            validate.then(REJECT)
            lifecycle.client("stepfunctions").redrive_execution(executionArn=a)
            redriven = lifecycle.wait(a)
            during = lifecycle.task("t-reject")
            held.release.set()
            done = lifecycle.wait(b)
    finally:
        held.release.set()
    lifecycle.settle()

    # Then A's MarkRejected refused the task B holds, and B alone ended it
    task = lifecycle.task("t-reject")
    print("A:", lifecycle.states_entered(a)[-3:], "during:", during["status"], "then:", task["status"], task["attempt"])
    assert lifecycle.states_entered(a)[-3:] == ["ValidateParameters", "MarkRejected", "TaskWasCancelled"]
    assert redriven["status"] == "SUCCEEDED"
    assert (during["status"], during["executionArn"]) == ("RUNNING", b)
    assert (done["status"], task["status"], task["attempt"], task["executionArn"]) == ("SUCCEEDED", "SUCCEEDED", "2", b)
    assert outcomes(lifecycle, "t-reject") == ["SUCCEEDED"]


def test_a_redriven_rejection_with_no_replay_rejects_the_task_once(lifecycle: Lifecycle):
    # Given A failed at ValidateParameters (FAILED, its DLQ message and FAILED outcome)
    a = fail_at_validate(lifecycle, "t-rejected")

    # When A is redriven and its ValidateParameters now rejects the parameters
    with lambda_invoker(ValidateAnswers(lifecycle, REJECT)):
        lifecycle.client("stepfunctions").redrive_execution(executionArn=a)
        redriven = lifecycle.wait(a)
    lifecycle.settle()

    # Then MarkRejected resumed its FAILED task: REJECTED under A with the rejection, one REJECTED outcome
    task = lifecycle.task("t-rejected")
    print("A:", redriven["status"], lifecycle.states_entered(a)[-2:], task["status"], task.get("error"))
    assert lifecycle.states_entered(a)[-2:] == ["MarkRejected", "TaskRejected"]
    assert (task["status"], task["error"], task["redriveCount"], task["executionArn"]) == (
        "REJECTED",
        "ValidationFailed",
        "1",
        a,
    )
    assert outcomes(lifecycle, "t-rejected") == ["REJECTED"]
