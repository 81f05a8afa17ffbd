"""In-memory implementations of the ports, for testing logic without AWS."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from task_common.contract import TERMINAL_STATUSES
from task_common.errors import TaskCancelled
from task_common.models import DeadLetterMessage, TaskRecord, TaskStatus
from task_common.ports import (
    BlobNotFound,
    BlobStore,
    DeadLetterQueue,
    LifecycleExecutions,
    ReconcilerTasks,
    StopOutcome,
    TaskNotFound,
    TaskStore,
    WorkflowExecutions,
    execution_arn_of,
)


class InMemoryTaskStore(TaskStore, ReconcilerTasks):
    def __init__(self, *tasks: TaskRecord) -> None:
        self.tasks = {task.task_id: task for task in tasks}
        # Entries the status index still shows after the table moved on (the index is eventually consistent).
        self.stale_index: dict[str, TaskRecord] = {}
        # Finished tasks whose pendingShard a same-body Idempotency-Key retry re-added (the pending index holds them).
        self.readded_shards: set[str] = set()
        self.progress: dict[str, list[int]] = {}
        self.counters: Counter[tuple[str, str]] = Counter()
        self.failures: dict[str, tuple[str, str]] = {}
        self._cancel_after: dict[str, int] = {}

    def cancel(self, task_id: str, *, after_progress_updates: int = 0) -> None:
        """Mark the task CANCELLED, now or once it has recorded that many progress updates."""
        self._cancel_after[task_id] = after_progress_updates
        self._apply_cancellation(task_id)

    def get_task(self, task_id: str) -> TaskRecord:
        if task_id not in self.tasks:
            raise TaskNotFound(f"task {task_id} does not exist")
        return self.tasks[task_id]

    def update_progress(self, task_id: str, percent: int) -> None:
        if self.get_task(task_id).status is not TaskStatus.RUNNING:
            raise TaskCancelled(f"task {task_id} is no longer RUNNING")
        self.progress.setdefault(task_id, []).append(percent)
        self.tasks[task_id] = self.tasks[task_id].model_copy(update={"progress": percent})
        self._apply_cancellation(task_id)

    def increment_counter(self, task_id: str, name: str) -> int:
        self.get_task(task_id)
        self.counters[task_id, name] += 1
        return self.counters[task_id, name]

    def tasks_with_status(self, status: TaskStatus, *, created_before: int, limit: int) -> list[TaskRecord]:
        index = {**self.tasks, **self.stale_index}.values()
        found = [t for t in index if t.status is status and (t.created_at or 0) < created_before]
        return sorted(found, key=lambda t: t.created_at or 0)[:limit]

    def fail_task(self, task: TaskRecord, *, execution_arn: str, error: str, cause: str) -> bool:
        current = self.tasks.get(task.task_id)
        if current is None or (current.status, current.attempt, current.execution_arn) != (
            task.status,
            task.attempt,
            task.execution_arn,
        ):
            return False
        self.tasks[task.task_id] = current.model_copy(
            update={"status": TaskStatus.FAILED, "execution_arn": execution_arn}
        )
        self.failures[task.task_id] = (error, cause)
        return True

    def finished_in_pending_index(self, *, limit: int) -> list[TaskRecord]:
        found = [self.tasks[t] for t in sorted(self.readded_shards) if self.tasks[t].status.value in TERMINAL_STATUSES]
        return found[:limit]

    def leave_pending_index(self, task: TaskRecord) -> bool:
        if task.task_id not in self.readded_shards or self.tasks[task.task_id].status.value not in TERMINAL_STATUSES:
            return False
        self.readded_shards.discard(task.task_id)
        return True

    def _apply_cancellation(self, task_id: str) -> None:
        after = self._cancel_after.get(task_id)
        if after is not None and len(self.progress.get(task_id, [])) >= after:
            self.tasks[task_id] = self.tasks[task_id].model_copy(update={"status": TaskStatus.CANCELLED})


class InMemoryBlobStore(BlobStore):
    def __init__(self, bucket: str = "results-bucket", objects: dict[str, str] | None = None) -> None:
        self.bucket = bucket
        self.objects = dict(objects or {})

    def get_text(self, key: str) -> str:
        if key not in self.objects:
            raise BlobNotFound(f"{self.uri(key)} does not exist")
        return self.objects[key]

    def put_text(self, key: str, text: str) -> None:
        self.objects[key] = text

    def exists(self, key: str) -> bool:
        return key in self.objects


@dataclass
class InMemoryExecutions(WorkflowExecutions, LifecycleExecutions):
    statuses: dict[str, str] = field(default_factory=dict)
    stop_calls: list[tuple[str, str, str]] = field(default_factory=list)
    started: list[tuple[str, str]] = field(default_factory=list)  # (execution ARN, input)

    def stop(self, execution_arn: str, *, error: str, cause: str) -> StopOutcome:
        if execution_arn not in self.statuses:
            return StopOutcome.NOT_FOUND
        if self.statuses[execution_arn] != "RUNNING":
            return StopOutcome.NOT_RUNNING
        self.stop_calls.append((execution_arn, error, cause))
        self.statuses[execution_arn] = "ABORTED"
        return StopOutcome.STOPPED

    def status(self, execution_arn: str) -> str | None:
        return self.statuses.get(execution_arn)

    def start(self, state_machine_arn: str, *, name: str, input_json: str) -> bool:
        execution_arn = execution_arn_of(state_machine_arn, name)
        if execution_arn in self.statuses:
            return False
        self.statuses[execution_arn] = "RUNNING"
        self.started.append((execution_arn, input_json))
        return True


@dataclass
class InMemoryDeadLetterQueue(DeadLetterQueue):
    messages: list[dict[str, object]] = field(default_factory=list)

    def send(self, message: DeadLetterMessage) -> None:
        self.messages.append(message.model_dump(mode="json"))


@dataclass
class FakeLambdaContext:
    function_name: str = "taskrail-test-function"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:taskrail-test-function"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def a_task(**fields: object) -> TaskRecord:
    """A RUNNING task of user ``alice``; ``fields`` override any attribute (Python names)."""
    values: dict[str, object] = {
        "task_id": "task-1",
        "user_id": "alice",
        "type": "text.stats",
        "params": '{"text": "hello world"}',
        "status": TaskStatus.RUNNING,
        "attempt": 1,
        "created_at": 1735689600000,
    }
    values.update(fields)
    return TaskRecord.model_validate(values)
