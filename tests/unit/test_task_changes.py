"""The outcome outbox (defect 8): every terminal task gets exactly one outcome event, and a FAILED one exactly one
DLQ message, even when a delivery fails and the pipe delivers the record again."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fakes import InMemoryExecutions

from task_changes.logic import handle_changes
from task_changes.outbox import PENDING_ATTRIBUTE, Delivery, Outcome, OutcomePorts, outcome_of
from task_common.models import StreamRecord

OWNER = "AIDALOCALALICE000001"
ARN = "arn:aws:states:us-east-1:123456789012:execution:task-lifecycle:task-1"


def record(status: str, **attributes: Any) -> StreamRecord:
    image: dict[str, Any] = {
        "taskId": {"S": "task-1"},
        "userId": {"S": OWNER},
        "status": {"S": status},
        "executionArn": {"S": ARN},
        "attempt": {"N": "1"},
        PENDING_ATTRIBUTE: {"S": status},
    }
    for name, value in attributes.items():
        if value is None:
            image.pop(name)
        else:
            image[name] = {"N": str(value)} if isinstance(value, int) else {"S": value}
    return StreamRecord.model_validate(
        {"eventName": "MODIFY", "dynamodb": {"Keys": {"taskId": {"S": "task-1"}}, "NewImage": image}}
    )


class FakeOutbox:
    """Idempotency records by key (as Powertools keeps them), the sent messages and events, the item's mark; each
    effect can be made to fail its first N tries."""

    def __init__(self, fail: dict[str, int] | None = None, *, marked: bool = True) -> None:
        self.completed: set[str] = set()
        self.sent: list[dict[str, Any]] = []
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.fail = dict(fail or {})
        self.marks: list[str] = []
        self.marked = marked

    def deliver_once(self, delivery: Delivery) -> None:
        if delivery.key in self.completed:
            return
        if self.fail.get(delivery.kind, 0) > 0:
            self.fail[delivery.kind] -= 1
            raise RuntimeError(f"injected {delivery.kind} failure")
        if delivery.kind == "dlq":
            self.sent.append(json.loads(delivery.body))
        else:
            self.events.append((delivery.detail_type, json.loads(delivery.body)))
        self.completed.add(delivery.key)

    def mark_delivered(self, outcome: Outcome) -> bool:
        if self.fail.get("mark", 0) > 0:
            self.fail["mark"] -= 1
            raise RuntimeError("injected mark failure")
        self.marks.append(outcome.key)
        return self.marked

    @property
    def ports(self) -> OutcomePorts:
        return OutcomePorts(deliver_once=self.deliver_once, mark_delivered=self.mark_delivered)


def deliver_until_done(records: list[StreamRecord], outbox: FakeOutbox, tries: int = 10) -> int:
    """What the pipe does: the same batch again after a function error. Returns the tries it took."""
    for attempt in range(1, tries + 1):
        try:
            handle_changes(records, executions=InMemoryExecutions(), outcomes=outbox.ports)
        except RuntimeError:
            continue
        return attempt
    raise AssertionError("never delivered")


def test_a_failed_task_gets_one_dlq_message_and_one_event_of_todays_shapes() -> None:
    outbox = FakeOutbox()
    handle_changes(
        [record("FAILED", error="PermanentTaskError", cause="boom")],
        executions=InMemoryExecutions(),
        outcomes=outbox.ports,
    )
    print("DLQ:", outbox.sent, "events:", outbox.events)
    assert outbox.sent == [
        {
            "taskId": "task-1",
            "executionArn": ARN,
            "input": ["task-1"],
            "error": "PermanentTaskError",
            "cause": "boom",
            "attempt": 1,
        }
    ]
    assert outbox.events == [
        (
            "TaskFailed",
            {
                "taskId": "task-1",
                "owner": OWNER,
                "outcome": "FAILED",
                "executionArn": ARN,
                "error": "PermanentTaskError",
                "cause": "boom",
            },
        )
    ]
    assert outbox.marks == ["task-1#1#0#FAILED"]


def test_a_succeeded_task_gets_one_event_and_no_dlq_message() -> None:
    outbox = FakeOutbox()
    location = "s3://bucket/tasks/task-1/result.json"
    handle_changes(
        [record("SUCCEEDED", resultLocation=location)], executions=InMemoryExecutions(), outcomes=outbox.ports
    )
    assert outbox.sent == []
    assert outbox.events == [
        (
            "TaskSucceeded",
            {
                "taskId": "task-1",
                "owner": OWNER,
                "outcome": "SUCCEEDED",
                "executionArn": ARN,
                "resultLocation": location,
            },
        )
    ]


@pytest.mark.parametrize("failing", ["dlq", "event", "mark"])
def test_the_final_delivery_fails_and_still_exactly_one_message_and_one_event_arrive(failing: str) -> None:
    outbox = FakeOutbox(fail={failing: 3})
    tries = deliver_until_done([record("FAILED", error="E", cause="c")], outbox)
    print(
        f"{failing} failed 3 times: delivered after {tries} tries; DLQ {len(outbox.sent)}, events {len(outbox.events)}"
    )
    assert tries == 4
    assert len(outbox.sent) == 1
    assert len(outbox.events) == 1
    assert outbox.marks == ["task-1#1#0#FAILED"]


def test_a_delivered_or_non_terminal_record_is_not_an_outcome() -> None:
    assert outcome_of(record("FAILED", **{PENDING_ATTRIBUTE: None, "outcomeDelivered": "task-1#1#0#FAILED"})) is None
    assert outcome_of(record("SUCCEEDED", **{PENDING_ATTRIBUTE: "FAILED"})) is None  # a stale entry
    assert outcome_of(record("RUNNING")) is None
    assert outcome_of(record("CANCELLED")) is None  # a cancel stops the execution; it has no outcome event


def test_a_redrive_and_a_replay_are_new_outcomes() -> None:
    first = outcome_of(record("FAILED"))
    redriven = outcome_of(record("SUCCEEDED", redriveCount=1))
    replayed = outcome_of(record("FAILED", attempt=2))
    assert first is not None and redriven is not None and replayed is not None
    assert len({first.key, redriven.key, replayed.key}) == 3


def test_a_task_that_moved_on_before_the_mark_is_reported() -> None:
    outbox = FakeOutbox(marked=False)
    result = handle_changes(
        [record("REJECTED", error="ValidationFailed", cause="bad")],
        executions=InMemoryExecutions(),
        outcomes=outbox.ports,
    )
    assert result.moved_on == ["task-1#1#0#REJECTED"] and result.delivered == []
    assert [detail_type for detail_type, _ in outbox.events] == ["TaskRejected"]


class AskedExecutions(InMemoryExecutions):
    """Records every stop asked of the port, also of an execution that already ended."""

    def __init__(self, statuses: dict[str, str]) -> None:
        super().__init__(statuses=statuses)
        self.asked: list[str] = []

    def stop(self, execution_arn: str, *, error: str, cause: str) -> Any:
        self.asked.append(execution_arn)
        return super().stop(execution_arn, error=error, cause=cause)


def test_a_same_body_retry_of_a_cancelled_task_stops_nothing_and_a_cancel_still_stops() -> None:
    # Given a task cancelled while RUNNING: the cancel's write (SET CANCELLED, REMOVE pendingShard) stopped it
    executions = AskedExecutions({ARN: "RUNNING"})
    cancel = record("CANCELLED", **{PENDING_ATTRIBUTE: None})
    handled = handle_changes([cancel], executions=executions, outcomes=FakeOutbox().ports)
    assert handled.stopped == [ARN] and executions.statuses[ARN] == "ABORTED"

    # When its owner retries POST /tasks with the same body and Idempotency-Key: nothing changes but pendingShard,
    # which the retry's if_not_exists SET adds back (a MODIFY whose NewImage is CANCELLED: the cancel filter's match)
    retry = record("CANCELLED", **{PENDING_ATTRIBUTE: None, "pendingShard": "0123456789abcdef"})
    executions.asked.clear()
    again = handle_changes([retry], executions=executions, outcomes=FakeOutbox().ports)

    # Then the ended execution is not asked to stop again: the record is no cancel
    print(again.model_dump(by_alias=True))
    assert executions.asked == []
    assert again.stopped == [] and executions.stop_calls == [(ARN, "TaskCancelled", "cancelled by the task's owner")]
