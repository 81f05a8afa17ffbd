"""GET /tasks/{taskId}/result's function (lambdas/read_result): the owner's result inline when small, a
time-limited link when large, 404 for anybody else's task exactly as for a missing one, 409 while there is none."""

from __future__ import annotations

from typing import Any

import pytest

from read_result.logic import NOT_FOUND, ForgedResultReference, read_result
from read_result.models import ResultRequest, TaskSummary
from read_result.ports import ResultObjects, ResultTasks
from task_common.contract import Status, result_body_key, result_key

BUCKET = "results"
OWNER = "AIDAALICE"
NOW_MS = 1_764_603_262_123


class FakeTasks(ResultTasks):
    def __init__(self, *tasks: TaskSummary) -> None:
        self.tasks = {t.task_id: t for t in tasks}

    def find(self, task_id: str) -> TaskSummary | None:
        return self.tasks.get(task_id)


class FakeObjects(ResultObjects):
    bucket = BUCKET

    def __init__(self, objects: dict[str, Any] | None = None) -> None:
        self.objects = objects or {}
        self.presigned: list[tuple[str, int]] = []

    def read_json(self, key: str) -> Any | None:
        return self.objects.get(key)

    def presigned_get(self, key: str, *, expires_in: int) -> str:
        self.presigned.append((key, expires_in))
        return f"https://{BUCKET}.s3.example/{key}?X-Amz-Signature=sig"


def task(status: Status = Status.SUCCEEDED, *, task_id: str = "t-1", owner: str = OWNER, **extra: Any) -> TaskSummary:
    return TaskSummary(task_id=task_id, user_id=owner, type="text.stats", status=status, **extra)


def ask(tasks: ResultTasks, objects: ResultObjects, *, task_id: str = "t-1", owner: str = OWNER) -> Any:
    request = ResultRequest(task_id=task_id, owner=owner)
    return read_result(request, tasks=tasks, objects=objects, url_seconds=300, now_ms=lambda: NOW_MS)


def test_a_small_result_is_answered_inline():
    objects = FakeObjects({result_key("t-1"): {"taskId": "t-1", "type": "text.stats", "result": {"words": 3}}})

    answer = ask(FakeTasks(task()), objects)

    assert (answer.status_code, answer.body) == (200, {"taskId": "t-1", "type": "text.stats", "result": {"words": 3}})
    assert objects.presigned == []


def test_a_large_result_is_answered_as_a_time_limited_link_to_its_body():
    reference = f"s3://{BUCKET}/{result_body_key('t-1')}"
    objects = FakeObjects({result_key("t-1"): {"taskId": "t-1", "resultRef": reference, "resultBytes": 300_000}})

    answer = ask(FakeTasks(task()), objects)

    assert answer.status_code == 200
    assert answer.body == {
        "taskId": "t-1",
        "type": "text.stats",
        "resultUrl": f"https://{BUCKET}.s3.example/{result_body_key('t-1')}?X-Amz-Signature=sig",
        "expiresAt": "2025-12-01T15:39:22.123Z",
        "resultBytes": 300_000,
    }
    assert objects.presigned == [(result_body_key("t-1"), 300)]


@pytest.mark.parametrize(
    "tasks",
    [FakeTasks(), FakeTasks(task(owner="AIDABOB")), FakeTasks(task(owner=f"{OWNER} "))],
    ids=["missing", "another-owner", "owner-almost-equal"],
)
def test_another_owners_task_is_not_found_exactly_like_a_missing_one(tasks: ResultTasks):
    objects = FakeObjects({result_key("t-1"): {"result": {"secret": True}}})

    assert ask(tasks, objects) == NOT_FOUND
    assert NOT_FOUND.body == {"message": "task not found"}


@pytest.mark.parametrize("status", [Status.QUEUED, Status.RUNNING])
def test_a_task_still_running_has_no_result_yet(status: Status):
    answer = ask(FakeTasks(task(status)), FakeObjects())

    assert answer.status_code == 409
    assert answer.body == {
        "message": f"task t-1 is {status.value}: no result yet; GET /tasks/t-1 until its status is SUCCEEDED"
    }


@pytest.mark.parametrize("status", [Status.FAILED, Status.REJECTED, Status.CANCELLED])
def test_a_task_that_ended_without_succeeding_has_no_result_and_says_why(status: Status):
    error = None if status == Status.CANCELLED else "PermanentTaskError"
    answer = ask(FakeTasks(task(status, error=error)), FakeObjects())

    reason = f" (error {error})" if error else ""
    assert (answer.status_code, answer.body) == (
        409,
        {"message": f"task t-1 is {status.value}: it has no result{reason}"},
    )


def test_a_succeeded_task_whose_result_object_is_gone_is_404_with_the_reason():
    answer = ask(FakeTasks(task()), FakeObjects())

    assert (answer.status_code, answer.body) == (404, {"message": "the result object of task t-1 is missing"})


@pytest.mark.parametrize(
    "reference",
    [
        f"s3://{BUCKET}/{result_body_key('t-2')}",
        f"s3://other-bucket/{result_body_key('t-1')}",
        f"s3://{BUCKET}/users/x",
    ],
    ids=["another-tasks-body", "another-bucket", "another-key"],
)
def test_a_reference_that_is_not_the_tasks_own_result_body_is_never_presigned(reference: str):
    objects = FakeObjects({result_key("t-1"): {"resultRef": reference}})

    with pytest.raises(ForgedResultReference):
        ask(FakeTasks(task()), objects)
    assert objects.presigned == []
