from __future__ import annotations

import json
from typing import Any

import pytest
from fakes import FakeLambdaContext, InMemoryBlobStore, InMemoryTaskStore, a_task
from scenarios import read_fixture, read_json_fixture

from process_task.logic import process_task
from task_common.errors import TaskCancelled, TransientTaskError, ValidationFailed
from task_common.models import ProcessedTask, ProcessRequest, TaskStatus

THRESHOLD = 200_000


def process(
    event: dict[str, Any],
    *,
    tasks: InMemoryTaskStore,
    blobs: InMemoryBlobStore | None = None,
    threshold: int = THRESHOLD,
) -> ProcessedTask:
    request = ProcessRequest.model_validate({"taskId": "task-1", "userId": "alice", "attempt": 1, **event})
    return process_task(request, tasks=tasks, blobs=blobs or InMemoryBlobStore(), claim_check_threshold_bytes=threshold)


def test_the_task_type_runs_and_progress_goes_from_0_to_100():
    # Given a running text.stats task
    tasks = InMemoryTaskStore(a_task())

    # When processed
    processed = process({"type": "text.stats", "params": {"text": read_fixture("text_stats_river.txt")}}, tasks=tasks)

    # Then the result is inline and progress started at 0 and ended at 100
    assert processed.model_dump(mode="json", exclude_none=True) == {
        "taskId": "task-1",
        "type": "text.stats",
        "attempt": 1,
        "result": read_json_fixture("text_stats_river.expected.json"),
    }
    assert tasks.progress["task-1"][0] == 0
    assert tasks.progress["task-1"][-1] == 100


def test_params_are_loaded_from_the_claim_check_location():
    blobs = InMemoryBlobStore(objects={"tasks/task-1/input.json": json.dumps({"text": "one two two"})})

    processed = process(
        {"type": "text.stats", "paramsLocation": "s3://results-bucket/tasks/task-1/input.json"},
        tasks=InMemoryTaskStore(a_task()),
        blobs=blobs,
    )

    assert processed.result is not None
    assert processed.result["topTerms"] == [{"term": "two", "count": 2}, {"term": "one", "count": 1}]


def test_params_are_validated_again_before_running():
    with pytest.raises(ValidationFailed, match="top: Input should be less than or equal to 100"):
        process({"type": "text.stats", "params": {"text": "x", "top": 500}}, tasks=InMemoryTaskStore(a_task()))


def test_a_result_over_the_threshold_is_claim_checked_to_s3():
    # Given a tiny threshold
    blobs = InMemoryBlobStore()

    # When a task's result is larger
    processed = process(
        {"type": "text.stats", "params": {"text": "alpha beta gamma"}},
        tasks=InMemoryTaskStore(a_task()),
        blobs=blobs,
        threshold=20,
    )

    # Then the result travels as a reference, and the object holds it
    body = blobs.objects["tasks/task-1/result-body.json"]
    assert processed.model_dump(mode="json", exclude_none=True) == {
        "taskId": "task-1",
        "type": "text.stats",
        "attempt": 1,
        "resultRef": "s3://results-bucket/tasks/task-1/result-body.json",
        "resultBytes": len(body.encode("utf-8")),
    }
    assert json.loads(body)["words"] == 3


def test_a_cancelled_task_stops_before_its_work_starts():
    # Given a flaky task its owner already cancelled
    tasks = InMemoryTaskStore(a_task(type="diagnostic.flaky", status=TaskStatus.CANCELLED))

    # When processed, then it stops at the first progress report, before running
    with pytest.raises(TaskCancelled):
        process({"type": "diagnostic.flaky", "params": {"failures": 0}}, tasks=tasks)
    assert tasks.counters["task-1", "diagnosticFailures"] == 0


def test_task_errors_propagate_unchanged_for_the_workflow_to_retry():
    tasks = InMemoryTaskStore(a_task(type="diagnostic.flaky"))

    with pytest.raises(TransientTaskError, match=r"diagnostic\.flaky failure 1 of 1"):
        process({"type": "diagnostic.flaky", "params": {"failures": 1}}, tasks=tasks)


class UnreachableBlobStore(InMemoryBlobStore):
    def get_text(self, key: str) -> str:
        raise ConnectionError("S3 is unreachable")


def test_unexpected_exceptions_propagate_unchanged():
    with pytest.raises(ConnectionError, match="S3 is unreachable"):
        process(
            {"type": "csv.summary", "params": {"source": "users/alice/data.csv"}},
            tasks=InMemoryTaskStore(a_task(type="csv.summary")),
            blobs=UnreachableBlobStore(),
        )


# Through the deployed handler, against moto


def put_running_task(aws_environment, task_id: str, task_type: str) -> None:
    aws_environment.put_task(
        taskId=task_id, userId="alice", type=task_type, params="{}", status="RUNNING", progress=0, attempt=1
    )


def flaky_event(task_id: str, attempt: int, failures: int) -> dict[str, Any]:
    return {
        "taskId": task_id,
        "userId": "alice",
        "type": "diagnostic.flaky",
        "attempt": attempt,
        "params": {"failures": failures},
    }


def counter(aws_environment, task_id: str) -> int:
    return int(aws_environment.task_item(task_id)["diagnosticFailures"]["N"])


def test_handler_runs_the_task_and_records_progress(aws_environment, load_handler):
    # Given alice's text uploaded to the bucket and her running task
    aws_environment.s3.put_object(
        Bucket="taskrail-results", Key="users/alice/river.txt", Body=read_fixture("text_stats_river.txt")
    )
    put_running_task(aws_environment, "task-1", "text.stats")
    handler = load_handler("process_task.handler")
    event = {
        "taskId": "task-1",
        "userId": "alice",
        "type": "text.stats",
        "attempt": 1,
        "params": {"source": "users/alice/river.txt"},
    }

    # When the function is invoked
    response = handler.handler(event, FakeLambdaContext())

    # Then it returns the result and the task shows 100 %
    assert response == {
        "taskId": "task-1",
        "type": "text.stats",
        "attempt": 1,
        "result": read_json_fixture("text_stats_river.expected.json"),
    }
    assert aws_environment.task_item("task-1")["progress"] == {"N": "100"}


def test_a_repeated_invocation_of_the_same_attempt_runs_the_task_once(aws_environment, load_handler):
    # Given a flaky task that succeeds at once
    put_running_task(aws_environment, "task-1", "diagnostic.flaky")
    handler = load_handler("process_task.handler")
    event = flaky_event("task-1", attempt=1, failures=0)

    # When the same attempt is delivered twice
    first = handler.handler(event, FakeLambdaContext())
    second = handler.handler(event, FakeLambdaContext())

    # Then the second delivery returns the stored response without running the task again
    assert (
        first
        == second
        == {
            "taskId": "task-1",
            "type": "diagnostic.flaky",
            "attempt": 1,
            "result": {"failuresBeforeSuccess": 0},
        }
    )
    assert counter(aws_environment, "task-1") == 1

    # And a new attempt (a replay) does run again
    handler.handler(flaky_event("task-1", attempt=2, failures=0), FakeLambdaContext())
    assert counter(aws_environment, "task-1") == 2


def test_a_failed_invocation_runs_again_when_the_workflow_retries(aws_environment, load_handler):
    # Given a flaky task that fails once
    put_running_task(aws_environment, "task-1", "diagnostic.flaky")
    handler = load_handler("process_task.handler")
    event = flaky_event("task-1", attempt=1, failures=1)

    # When the first invocation fails, and the workflow retries the same attempt
    with pytest.raises(TransientTaskError, match=r"diagnostic\.flaky failure 1 of 1"):
        handler.handler(event, FakeLambdaContext())
    response = handler.handler(event, FakeLambdaContext())

    # Then the retry ran the task (the failure left no idempotency record behind)
    assert response["result"] == {"failuresBeforeSuccess": 1}
    assert counter(aws_environment, "task-1") == 2


def test_handler_raises_task_cancelled_for_a_cancelled_task(aws_environment, load_handler):
    aws_environment.put_task(
        taskId="task-1", userId="alice", type="diagnostic.sleep", params="{}", status="CANCELLED", attempt=1
    )
    handler = load_handler("process_task.handler")
    event = {
        "taskId": "task-1",
        "userId": "alice",
        "type": "diagnostic.sleep",
        "attempt": 1,
        "params": {"seconds": 0.01},
    }

    with pytest.raises(TaskCancelled, match="task task-1 is no longer RUNNING"):
        handler.handler(event, FakeLambdaContext())


def test_handler_claim_checks_a_result_over_the_configured_threshold(aws_environment, load_handler, monkeypatch):
    monkeypatch.setenv("CLAIM_CHECK_THRESHOLD_BYTES", "40")
    put_running_task(aws_environment, "task-1", "text.stats")
    handler = load_handler("process_task.handler")
    event = {
        "taskId": "task-1",
        "userId": "alice",
        "type": "text.stats",
        "attempt": 1,
        "params": {"text": "a b"},
    }

    response = handler.handler(event, FakeLambdaContext())

    assert response["resultRef"] == "s3://taskrail-results/tasks/task-1/result-body.json"
    body = aws_environment.object_text("tasks/task-1/result-body.json")
    assert response["resultBytes"] == len(body.encode("utf-8"))
    assert json.loads(body)["words"] == 2
