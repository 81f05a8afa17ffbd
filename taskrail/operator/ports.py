"""What the operator's functions need from AWS, as small interfaces: the boto3 adapters are in
:mod:`taskrail.operator.aws`, the unit tests pass in-memory fakes (as ``lambdas/task_common/ports.py`` does)."""

from __future__ import annotations

from typing import Any, Protocol


class OwnedTasks(Protocol):
    """The caller's tasks through the API (the owner check): :class:`taskrail.client.TaskrailClient` is one."""

    def get(self, task_id: str) -> dict[str, Any]:
        """The task, or :class:`taskrail.client.ApiError` 404 when it does not exist or is somebody else's."""
        ...


class TaskRecords(Protocol):
    """The Tasks table, read and reset by a replay (the operator's own credentials)."""

    def get(self, task_id: str) -> dict[str, Any] | None:
        """The stored item as plain values (``status``, ``attempt``, ``executionArn``), read consistently."""
        ...

    def requeue_failed(self, task_id: str, execution_arn: str | None = None) -> bool:
        """FAILED becomes QUEUED (error and cause removed); False when the task was not FAILED (in
        ``execution_arn``, when given: a redrive's resume of that execution is the other way out of FAILED)."""
        ...


class Executions(Protocol):
    """The lifecycle state machine's executions."""

    def start(self, name: str, execution_input: Any) -> bool:
        """Starts the execution ``name``; False when an execution of that name exists already."""
        ...

    def describe(self, execution_arn: str) -> dict[str, Any]: ...

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        """Every event of the execution, oldest first."""
        ...

    def redrive(self, execution_arn: str, client_token: str) -> str | None:
        """RedriveExecution; None when redriven, else Step Functions' refusal (ExecutionNotRedrivable: why)."""
        ...

    def supports_redrive(self) -> bool:
        """False for an EXPRESS lifecycle: its executions are neither described nor redriven by Step Functions."""
        ...


class DeadLetters(Protocol):
    """The task dead-letter queue."""

    def receive(self, hide_seconds: int) -> list[dict[str, Any]]:
        """Up to 10 messages (with ``SentTimestamp``), each hidden for ``hide_seconds``; [] when none is left."""
        ...

    def release(self, messages: list[dict[str, Any]]) -> None:
        """Received messages become visible again."""
        ...

    def delete(self, message: dict[str, Any]) -> None: ...

    def counts(self) -> tuple[int, int]:
        """(visible, in flight): the queue's approximate numbers of messages."""
        ...


class Results(Protocol):
    """The results bucket (and the buckets a claim-check reference points into)."""

    def read_json(self, bucket: str, key: str) -> Any: ...
