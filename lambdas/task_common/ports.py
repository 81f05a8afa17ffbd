"""The small interfaces the logic depends on; ``aws.py`` implements them, the unit tests fake them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import StrEnum

from task_common import contract
from task_common.models import DeadLetterMessage, TaskRecord, TaskStatus

S3_SCHEME = "s3://"
# The ARN of a named execution: the contract's rule (the logic and its fakes import it from here).
execution_arn_of = contract.execution_arn_of


class TaskNotFound(LookupError):
    """The task does not exist."""


class BlobNotFound(LookupError):
    """The object does not exist."""


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """Split ``s3://bucket/key`` into ``(bucket, key)``; raise ValueError for anything else."""
    if not uri.startswith(S3_SCHEME):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[len(S3_SCHEME) :].partition("/")
    if not bucket or not key:
        raise ValueError(f"an s3:// URI needs a bucket and a key: {uri!r}")
    return bucket, key


class TaskStore(ABC):
    @abstractmethod
    def get_task(self, task_id: str) -> TaskRecord:
        """Raise TaskNotFound when the task does not exist."""

    @abstractmethod
    def update_progress(self, task_id: str, percent: int) -> None:
        """Record progress while the task is RUNNING; raise TaskCancelled once it no longer is."""

    @abstractmethod
    def increment_counter(self, task_id: str, name: str) -> int:
        """Atomically add one to the task's counter ``name`` and return the new value."""


class BlobStore(ABC):
    """Objects in one bucket, addressed by key."""

    bucket: str

    @abstractmethod
    def get_text(self, key: str) -> str:
        """Raise BlobNotFound when the object does not exist."""

    @abstractmethod
    def put_text(self, key: str, text: str) -> None: ...

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    def uri(self, key: str) -> str:
        return f"{S3_SCHEME}{self.bucket}/{key}"

    def key_of(self, uri: str) -> str:
        """The key of an ``s3://`` URI in this store's bucket; ValueError for any other bucket."""
        bucket, key = parse_s3_uri(uri)
        if bucket != self.bucket:
            raise ValueError(f"{uri} is not in the bucket {self.bucket}")
        return key


class StopOutcome(StrEnum):
    STOPPED = "stopped"
    NOT_RUNNING = "not running"
    NOT_FOUND = "not found"
    # An EXPRESS lifecycle: StopExecution does not serve its executions; the task's CANCELLED status stops the work
    # (ProcessTask's TaskCancelled at its next progress report, MarkSucceeded's condition).
    NOT_STOPPABLE = "not stoppable (EXPRESS)"


class WorkflowExecutions(ABC):
    @abstractmethod
    def stop(self, execution_arn: str, *, error: str, cause: str) -> StopOutcome:
        """Stop the execution if it is still running."""


class ExpressExecutions(WorkflowExecutions):
    """An EXPRESS lifecycle's executions: never asked to stop (StopExecution "is not supported by EXPRESS state
    machines", its API reference)."""

    def stop(self, execution_arn: str, *, error: str, cause: str) -> StopOutcome:
        return StopOutcome.NOT_STOPPABLE


class ReconcilerTasks(ABC):
    """What the reconciler reads and writes in the Tasks table."""

    @abstractmethod
    def tasks_with_status(self, status: TaskStatus, *, created_before: int, limit: int) -> list[TaskRecord]:
        """Up to ``limit`` tasks in ``status`` created before ``created_before`` (epoch ms), oldest first.
        Read from the status index, which is eventually consistent."""

    @abstractmethod
    def get_task(self, task_id: str) -> TaskRecord:
        """A strongly consistent read; raise TaskNotFound when the task does not exist."""

    @abstractmethod
    def fail_task(self, task: TaskRecord, *, execution_arn: str, error: str, cause: str) -> bool:
        """Mark the task FAILED with the execution that ended, only if its status, attempt and execution are
        still those of ``task``; False when the task changed since it was read."""

    @abstractmethod
    def finished_in_pending_index(self, *, limit: int) -> list[TaskRecord]:
        """Up to ``limit`` finished tasks the pending index still holds: a same-body retry of a finished task's
        Idempotency-Key re-adds its shard (the submission's ``if_not_exists``, docs/DECISIONS.md)."""

    @abstractmethod
    def leave_pending_index(self, task: TaskRecord) -> bool:
        """Remove the task's shard, only if its status is still a terminal one; False when it is not."""


@dataclass(frozen=True)
class ExecutionEnd:
    """What DescribeExecution says of an execution: its status, and the error and cause it ended with, if any."""

    status: str
    error: str | None = None
    cause: str | None = None


class LifecycleExecutions(ABC):
    """Starting and inspecting executions of the task-lifecycle state machine."""

    @abstractmethod
    def status(self, execution_arn: str) -> str | None:
        """The execution's status (RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED, PENDING_REDRIVE); None when
        no such execution exists."""

    def describe(self, execution_arn: str) -> ExecutionEnd | None:
        """The status with the error and cause (None when no such execution exists); without an override, no
        error or cause is known."""
        status = self.status(execution_arn)
        return None if status is None else ExecutionEnd(status)

    @abstractmethod
    def start(self, state_machine_arn: str, *, name: str, input_json: str) -> bool:
        """Start the execution ``name``; False when an execution of that name already exists."""


class DeadLetterQueue(ABC):
    @abstractmethod
    def send(self, message: DeadLetterMessage) -> None: ...
