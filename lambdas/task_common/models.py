"""The shapes that cross a boundary: the Tasks item, and each function's event and response."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from task_common.contract import Status

# The statuses are the task contract's (task_common/contract.py); the models validate against them.
TaskStatus = Status


class CamelModel(BaseModel):
    """Python names in code, camelCase names on the wire (events, responses, DynamoDB attributes)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=True,
        serialize_by_alias=True,
        extra="ignore",
        frozen=True,
        # Each function uses a few of these models: one is built on its first use, not when the module is imported
        # (pydantic's defer_build), so a function's init builds none of them.
        defer_build=True,
    )


class TaskRecord(CamelModel):
    """The Tasks item as API Gateway writes it and the workflow updates it."""

    task_id: str
    user_id: str
    type: str
    params: str | None = None
    params_location: str | None = None
    status: TaskStatus
    progress: int = 0
    attempt: int = 0
    # Epoch milliseconds: API Gateway's $context.requestTimeEpoch, a number so the GSIs sort by it.
    created_at: int | None = None
    execution_arn: str | None = None
    idempotency_key: str | None = None
    # When ClaimTask claimed it (ISO 8601, the state's EnteredTime).
    started_at: str | None = None


class ValidateRequest(CamelModel):
    task_id: str = Field(min_length=1)
    attempt: int = Field(default=0, ge=0)


class ValidatedTask(CamelModel):
    """Validate's output, which is also Process's input: parameters inline, or past the claim-check
    threshold an ``s3://`` location."""

    task_id: str = Field(min_length=1)
    user_id: str = Field(min_length=1)
    type: str
    attempt: int = Field(default=0, ge=0)
    params: dict[str, Any] | None = None
    params_location: str | None = None

    @model_validator(mode="after")
    def _exactly_one_source_of_params(self) -> ValidatedTask:
        if (self.params is None) == (self.params_location is None):
            raise ValueError("exactly one of params or paramsLocation is required")
        return self

    def to_work_order(self) -> dict[str, Any]:
        """Process's input with both parameter keys present (one of them null): the workflow names every field
        of it, and a path to a missing key fails the state."""
        return {
            **self.model_dump(mode="json", exclude_none=True),
            "params": self.params,
            "paramsLocation": self.params_location,
        }


class ProcessRequest(ValidatedTask):
    # The workflow's $$.State.RetryCount: each Retry of ProcessTask is new work (a timed-out or crashed try
    # leaves an in-progress idempotency record behind), while Lambda's own redelivery of the same try is not.
    retry: int = Field(default=0, ge=0)


class ProcessedTask(CamelModel):
    """Process's output, which becomes the whole state data after ProcessTask (the work order, with its
    parameters, is dropped there: no state carries both payloads): the result inline, or past the claim-check
    threshold a reference to it in S3."""

    task_id: str
    type: str
    attempt: int = Field(default=0, ge=0)
    result: dict[str, Any] | None = None
    result_ref: str | None = None
    result_bytes: int | None = None


class StreamChange(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    keys: dict[str, dict[str, Any]] = Field(default_factory=dict, alias="Keys")
    new_image: dict[str, dict[str, Any]] = Field(default_factory=dict, alias="NewImage")


class StreamRecord(BaseModel):
    """A DynamoDB stream record as an EventBridge Pipe delivers it (the event is a list of these)."""

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    event_name: str | None = Field(default=None, alias="eventName")
    dynamodb: StreamChange

    def new_string(self, attribute: str) -> str | None:
        value = self.dynamodb.new_image.get(attribute, {}).get("S")
        return value if isinstance(value, str) else None

    @property
    def task_id(self) -> str | None:
        value = self.dynamodb.keys.get("taskId", {}).get("S")
        return value if isinstance(value, str) else self.new_string("taskId")


class SkippedExecution(CamelModel):
    task_id: str | None = None
    execution_arn: str | None = None
    reason: str


class CancelResult(CamelModel):
    stopped: list[str] = Field(default_factory=list)
    skipped: list[SkippedExecution] = Field(default_factory=list)


class TaskChangesResult(CancelResult):
    """What one batch of task changes did: the executions stopped (cancels) and the outcomes delivered, by key
    (``moved_on``: delivered, but the task had changed before the mark)."""

    delivered: list[str] = Field(default_factory=list)
    moved_on: list[str] = Field(default_factory=list)


class DeadLetterMessage(CamelModel):
    """What the dead-letter queue holds for a failed task: the task-changes function sends it from the FAILED
    item (``task_changes.outbox``), whoever failed the task, and ``taskrail replay`` reads it."""

    task_id: str
    execution_arn: str
    input: list[str]
    error: str
    cause: str
    attempt: int


class ReconcileRequest(CamelModel):
    """What the reconciler workflow hands the function: the lifecycle state machine it reconciles against."""

    lifecycle_state_machine_arn: str = Field(min_length=1)


class ReconcileResult(CamelModel):
    """How many tasks one reconciler run looked at, and what it did with each."""

    queued: int = 0
    running: int = 0
    started: int = 0
    already_started: int = 0
    still_running: int = 0
    marked_failed: int = 0
    changed_meanwhile: int = 0
    succeeded_but_running: int = 0
    without_execution: int = 0
    # Outcomes still undelivered after the threshold, re-triggered through the task-changes pipe (the outbox).
    outcomes_retriggered: int = 0
    # Finished tasks a same-body Idempotency-Key retry put back in the pending index, taken out of it again.
    left_pending_index: int = 0
    truncated: bool = False
