"""What every task type is made of: a params model, a ``run`` function, and the context ``run`` receives."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from task_common.errors import ValidationFailed
from task_common.ports import BlobStore, TaskStore

MAX_REPORTED_ERRORS = 5
# Lambda's longest timeout: what a type that declares no maximum duration may take.
LAMBDA_MAX_SECONDS = 900.0


class TaskParams(BaseModel):
    """Parameters as users write them: camelCase names only, nothing unknown."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        serialize_by_alias=True,
        frozen=True,
        defer_build=True,  # built when its type is first used (as task_common.models.CamelModel)
    )

    def normalized(self) -> dict[str, Any]:
        """The parameters as JSON, defaults filled in and unset options left out."""
        return self.model_dump(mode="json", exclude_none=True)


@dataclass(frozen=True)
class TaskCounters:
    """Counters stored on the task item, so they survive retries and replays."""

    store: TaskStore
    task_id: str

    def increment(self, name: str) -> int:
        return self.store.increment_counter(self.task_id, name)


class TaskContext:
    """What a running task may know and do besides computing its result."""

    def __init__(self, *, task_id: str, user_id: str, attempt: int, store: TaskStore, blobs: BlobStore) -> None:
        self.task_id = task_id
        self.user_id = user_id
        self.attempt = attempt
        self.blobs = blobs
        self.counters = TaskCounters(store, task_id)
        self._store = store
        self._last_progress: int | None = None

    def report_progress(self, percent: float) -> None:
        """Record progress (clamped to 0..100, repeats skipped); raises TaskCancelled once the task was
        cancelled, which is how a running task learns that it should stop."""
        value = max(0, min(100, int(percent)))
        if value != self._last_progress:
            self._store.update_progress(self.task_id, value)
            self._last_progress = value


@dataclass(frozen=True)
class TaskType:
    name: str
    params_model: type[TaskParams]
    run: Callable[[Any, TaskContext], dict[str, Any]]
    # The longest one try may take: Validate refuses the type where its tries cannot finish in time (EXPRESS).
    max_duration_seconds: float = LAMBDA_MAX_SECONDS

    def parse_params(self, raw: Any, *, user_id: str) -> TaskParams:
        """Validate ``raw`` against this type's model for the task's owner; ValidationFailed says why not."""
        if not isinstance(raw, dict):
            raise ValidationFailed(f"invalid params for {self.name}: params must be a JSON object")
        try:
            return self.params_model.model_validate(raw, context={"user_id": user_id})
        except ValidationError as error:
            raise ValidationFailed(f"invalid params for {self.name}: {summarize(error)}") from error


def summarize(error: ValidationError) -> str:
    """``field: message; ...`` — short enough for a status page, and never echoing the input."""
    parts = []
    for detail in error.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in detail["loc"]) or "params"
        message = detail["msg"].removeprefix("Value error, ")
        parts.append(f"{field}: {message}")
    hidden = len(parts) - MAX_REPORTED_ERRORS
    summary = "; ".join(parts[:MAX_REPORTED_ERRORS])
    return f"{summary}; and {hidden} more" if hidden > 0 else summary
