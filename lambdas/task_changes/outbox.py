"""The outcome outbox: a task's terminal transition, read from the Tasks stream, becomes its outcome event (and,
for FAILED, its dead-letter message), exactly once per (task, attempt, redrive, outcome).

The table is the outbox. Every terminal write (MarkSucceeded, MarkRejected, RecordFailure, the reconciler's
failure) sets ``outcomePending`` to the new status; the task-changes pipe passes such records to this function,
which delivers each effect once (an idempotency record per effect, so a retry after a failed SendMessage does not
publish the event again) and then marks the item: ``outcomeDelivered`` = the delivery key, ``outcomePending``
removed (so the mark's own stream record is filtered out). A delivery that
fails raises: the pipe retries the record, and the reconciler touches a terminal task left undelivered, which
sends its record again. See docs/DECISIONS.md, "Failures end where they failed; outcomes leave from the table".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from task_common.contract import EVENT_SOURCE, OUTCOME_DETAIL_TYPE, Status
from task_common.models import DeadLetterMessage, StreamRecord

PENDING_ATTRIBUTE = "outcomePending"
DELIVERED_ATTRIBUTE = "outcomeDelivered"
OUTCOME_STATUSES = frozenset(OUTCOME_DETAIL_TYPE)


@dataclass(frozen=True)
class Outcome:
    """A terminal task as its stream record shows it."""

    task_id: str
    status: str
    attempt: int
    redrive_count: int
    execution_arn: str
    error: str | None
    cause: str | None
    result_location: str | None
    owner: str = ""  # the task's userId

    @property
    def key(self) -> str:
        """One delivery per outcome of one attempt (and redrive) of one task."""
        return f"{self.task_id}#{self.attempt}#{self.redrive_count}#{self.status}"

    def event_detail(self) -> dict[str, Any]:
        """The event's detail is the notification's body (the outcome rule's target input): ``owner`` is there so
        that each user's email subscription filters on it with FilterPolicyScope MessageBody (infra/constructs/
        users.py), together with ``outcome``."""
        detail: dict[str, Any] = {
            "taskId": self.task_id,
            "owner": self.owner,
            "outcome": self.status,
            "executionArn": self.execution_arn,
        }
        if self.status == Status.SUCCEEDED:
            detail["resultLocation"] = self.result_location
        else:
            detail["error"], detail["cause"] = self.error, self.cause
        return detail

    def dead_letter(self) -> DeadLetterMessage:
        return DeadLetterMessage(
            task_id=self.task_id,
            execution_arn=self.execution_arn,
            input=[self.task_id],
            error=self.error or "",
            cause=self.cause or "",
            attempt=self.attempt,
        )


def _number(image: Mapping[str, Any], name: str) -> int:
    value = image.get(name, {}).get("N")
    return int(value) if isinstance(value, str) else 0


def outcome_of(record: StreamRecord) -> Outcome | None:
    """The pending outcome the record shows, or None (not terminal, or not pending: delivered already)."""
    image = record.dynamodb.new_image
    status, task_id = record.new_string("status"), record.task_id
    if status not in OUTCOME_STATUSES or task_id is None or record.new_string(PENDING_ATTRIBUTE) != status:
        return None
    return Outcome(
        task_id=task_id,
        owner=record.new_string("userId") or "",
        status=status,
        attempt=_number(image, "attempt"),
        redrive_count=_number(image, "redriveCount"),
        execution_arn=record.new_string("executionArn") or "",
        error=record.new_string("error"),
        cause=record.new_string("cause"),
        result_location=record.new_string("resultLocation"),
    )


@dataclass(frozen=True)
class Delivery:
    """One effect of an outcome: ``kind`` "dlq" (the message body) or "event" (the detail, on the task bus)."""

    key: str
    kind: str
    body: str
    detail_type: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "key": self.key,
            "kind": self.kind,
            "body": self.body,
            "source": EVENT_SOURCE,
            "detailType": self.detail_type,
        }


def deliveries(outcome: Outcome) -> list[Delivery]:
    """The DLQ message first (for FAILED): a task whose event went out is one an operator can replay."""
    found = []
    if outcome.status == Status.FAILED:
        found.append(Delivery(f"{outcome.key}#dlq", "dlq", outcome.dead_letter().model_dump_json()))
    detail_type = OUTCOME_DETAIL_TYPE[outcome.status]
    found.append(Delivery(f"{outcome.key}#event", "event", json.dumps(outcome.event_detail()), detail_type))
    return found


@dataclass(frozen=True)
class OutcomePorts:
    """``deliver_once`` performs a delivery unless one with the same key completed (Powertools idempotency in the
    function; a fake in the unit tests); ``mark_delivered`` is the conditional write that ends the outbox entry."""

    deliver_once: Callable[[Delivery], None]
    mark_delivered: Callable[[Outcome], bool]


def deliver(outcome: Outcome, ports: OutcomePorts) -> bool:
    """Every effect, then the mark; any failure raises for a retry. Returns whether this call marked the item
    (False: it moved on meanwhile, e.g. a replay requeued it)."""
    for delivery in deliveries(outcome):
        ports.deliver_once(delivery)
    return ports.mark_delivered(outcome)
