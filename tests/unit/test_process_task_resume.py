"""A redriven ProcessTask resumes its task (process_task/resume.py): FAILED (or RUNNING, the failure not yet
recorded) → RUNNING under the same execution, attempt and a redrive count not newer; anything else is no longer
this execution's task, and the redrive must not run it (TaskCancelled)."""

from __future__ import annotations

from typing import Any

import pytest
from fakes import InMemoryBlobStore, InMemoryTaskStore, a_task
from moto_aws import TASKS_TABLE, Aws

from process_task.logic import process_task
from process_task.resume import DynamoDBTaskResumer, RedrivableProcessRequest, TaskResumer
from task_common.contract import PENDING_SHARD_ATTRIBUTE, pending_shard
from task_common.errors import TaskCancelled

ARN = "arn:aws:states:us-east-1:123456789012:execution:taskrail-TaskLifecycleStateMachine:t-1-p1"


class RecordingResumer(TaskResumer):
    def __init__(self, answer: bool) -> None:
        self.answer, self.calls = answer, []

    def resume(self, task_id: str, *, execution_arn: str, attempt: int, redrive_count: int) -> bool:
        self.calls.append((task_id, execution_arn, attempt, redrive_count))
        return self.answer


def request(redrive_count: int) -> RedrivableProcessRequest:
    return RedrivableProcessRequest.model_validate(
        {
            "taskId": "task-1",
            "userId": "alice",
            "type": "text.stats",
            "attempt": 1,
            "params": {"text": "a b"},
            "executionArn": ARN,
            "redriveCount": redrive_count,
        }
    )


def run(redrive_count: int, resumer: TaskResumer) -> Any:
    return process_task(
        request(redrive_count),
        tasks=InMemoryTaskStore(a_task()),
        blobs=InMemoryBlobStore(),
        claim_check_threshold_bytes=200_000,
        resumer=resumer,
    )


def test_a_first_run_does_not_touch_the_task_status():
    resumer = RecordingResumer(answer=False)
    assert run(0, resumer).result is not None
    assert resumer.calls == []


def test_a_redrive_resumes_the_task_before_it_runs():
    resumer = RecordingResumer(answer=True)
    assert run(2, resumer).result is not None
    assert resumer.calls == [("task-1", ARN, 1, 2)]


def test_a_redrive_of_a_task_that_moved_on_does_not_run_it():
    with pytest.raises(TaskCancelled, match="no longer FAILED under this execution"):
        run(1, RecordingResumer(answer=False))


def item(aws: Aws, **attributes: Any) -> None:
    aws.put_task(
        **{"taskId": "task-1", "userId": "alice", "type": "text.stats", "attempt": 1, "executionArn": ARN, **attributes}
    )


@pytest.mark.parametrize(
    ("stored", "redrive", "resumes"),
    [
        ({"status": "FAILED", "redriveCount": 0, "error": "PermanentTaskError", "outcomePending": "FAILED"}, 1, True),
        ({"status": "FAILED"}, 1, True),  # claimed before redriveCount existed
        ({"status": "RUNNING", "redriveCount": 0}, 1, True),  # the recorder's event has not arrived yet
        ({"status": "RUNNING", "redriveCount": 1}, 1, True),  # a retry of this redrive's ProcessTask
        ({"status": "FAILED", "redriveCount": 2}, 1, False),  # a newer redrive's failure
        ({"status": "QUEUED", "redriveCount": 0}, 1, False),  # a DLQ replay requeued it first
        ({"status": "CANCELLED", "redriveCount": 0}, 1, False),
        ({"status": "SUCCEEDED", "redriveCount": 0}, 1, False),
        ({"status": "FAILED", "redriveCount": 0, "executionArn": ARN + "-r2"}, 1, False),  # another execution's
        ({"status": "FAILED", "redriveCount": 0, "attempt": 2}, 1, False),  # another attempt's
    ],
)
def test_the_resume_is_one_conditional_write(aws_environment: Aws, stored: dict[str, Any], redrive: int, resumes: bool):
    item(aws_environment, **stored)
    resumer = DynamoDBTaskResumer(TASKS_TABLE, aws_environment.dynamodb)

    resumed = resumer.resume("task-1", execution_arn=ARN, attempt=1, redrive_count=redrive)

    after = aws_environment.task_item("task-1")
    assert resumed is resumes, stored
    if resumes:
        assert (after["status"]["S"], after["redriveCount"]["N"]) == ("RUNNING", str(redrive))
        assert not {"error", "cause", "outcomePending", "finishedAt"} & set(after)
        # RUNNING again: back in the reconciler's pending index, in case this run's end is lost too
        assert after[PENDING_SHARD_ATTRIBUTE] == {"S": pending_shard("task-1")}
    else:
        assert after["status"]["S"] == stored["status"]
