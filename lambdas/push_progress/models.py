"""What crosses the function's boundary: the pipe's stream records (DynamoDB JSON, new image only) in, the
messages out (the contract between the push and its clients: /tmp/team/LIVE-CONTRACT.md, docs/DECISIONS.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from task_common.contract import PROGRESS_MESSAGE, api_time, api_timestamp
from task_common.models import CamelModel, TaskStatus


def plain(value: dict[str, Any]) -> Any:
    """A DynamoDB attribute value as plain JSON: the types a Tasks item has (S, N, BOOL, NULL, M, L)."""
    ((kind, inner),) = value.items()
    if kind == "N":
        number = float(inner)
        return int(number) if number.is_integer() else number
    if kind == "M":
        return {key: plain(item) for key, item in inner.items()}
    if kind == "L":
        return [plain(item) for item in inner]
    if kind == "NULL":
        return None
    return inner


def api_form(stored: str) -> str:
    """A stored ISO time as the API answers it (RFC 3339 UTC, milliseconds, ``Z``: docs/DECISIONS.md "Timestamps"),
    as ``iso_time.vtl`` does for GET: the workflow's ``$$.State.EnteredTime`` is ``…177195+00:00`` locally (moto).
    Text of another shape (no zone, not a time) is kept as stored, never dropped."""
    try:
        moment = datetime.fromisoformat(stored)
    except ValueError:
        return stored
    return api_time(moment) if moment.tzinfo is not None else stored


class StreamChange(BaseModel):
    """``dynamodb`` of a stream record: the item's new image and when the change was written (epoch seconds)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    new_image: dict[str, dict[str, Any]] = Field(alias="NewImage")
    approximate_creation_date_time: float | None = Field(default=None, alias="ApproximateCreationDateTime")
    sequence_number: str | None = Field(default=None, alias="SequenceNumber")


class StreamRecord(BaseModel):
    """One record as the pipe delivers it; ``event_id`` is what a partial batch failure names it by."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    event_id: str | None = Field(default=None, alias="eventID")
    event_name: str = Field(alias="eventName")
    dynamodb: StreamChange


class TaskChange(CamelModel):
    """The few attributes of a Tasks item that a message carries, and its owner."""

    task_id: str
    user_id: str
    status: TaskStatus
    progress: int = 0
    attempt: int = 0
    updated_at: str | None = None
    result_location: str | None = None
    error: str | None = None
    cause: str | None = None

    @classmethod
    def of(cls, record: StreamRecord) -> TaskChange:
        item = {name: plain(value) for name, value in record.dynamodb.new_image.items()}
        if item.get("updatedAt") is None and record.dynamodb.approximate_creation_date_time is not None:
            item["updatedAt"] = api_timestamp(int(record.dynamodb.approximate_creation_date_time * 1000))
        if isinstance(item.get("updatedAt"), int):  # epoch milliseconds (createdAt's form)
            item["updatedAt"] = api_timestamp(item["updatedAt"])
        elif isinstance(item.get("updatedAt"), str):
            item["updatedAt"] = api_form(item["updatedAt"])
        return cls.model_validate(item)


class TaskError(BaseModel):
    code: str
    message: str | None = None


class ProgressMessage(CamelModel):
    """One change of a task, as its owner's clients receive it (JSON, a few hundred bytes: one 32 KB frame)."""

    type: str = PROGRESS_MESSAGE
    task_id: str
    status: TaskStatus
    progress: int
    attempt: int
    updated_at: str | None = None
    result_key: str | None = None  # SUCCEEDED: the result's key in the results bucket
    error: TaskError | None = None  # FAILED, REJECTED: the error code and its message

    def to_bytes(self) -> bytes:
        return self.model_dump_json(by_alias=True, exclude_none=True).encode()


class Connection(BaseModel):
    """A row of the Connections table as the owner index gives it: no ``task_id`` until the client subscribed."""

    connection_id: str
    task_id: str | None = None


class ItemFailure(CamelModel):
    item_identifier: str


class PushSummary(CamelModel):
    """What one batch did. The pipe reads ``batchItemFailures`` only (Pipes' partial batch failure: the records it
    names are retried); the rest is for the logs and tests."""

    records: int = 0
    posted: int = 0
    gone: int = 0
    failed: int = 0
    skipped: int = 0
    batch_item_failures: list[ItemFailure] = Field(default_factory=list)
