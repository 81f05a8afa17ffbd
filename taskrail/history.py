"""One reader of a Step Functions execution history (the ``events`` of ``GetExecutionHistory``).

Everything that reads a history -- ``taskrail watch`` and ``taskrail history`` (the client), the console, the cost
model, the benchmarks and the workflow tests -- reads it here, so they agree on what the history says:

* a **visit** is one ``*StateEntered`` event up to the state's ``*StateExited`` (or the end of the execution);
* an **attempt** is one ``*Scheduled`` event inside a visit (a Task state's call of its service);
* a **retry** is an attempt beyond the first inside one visit: the state's Retry ran it again, whatever the error
  was (a ``TaskFailed`` or a ``TaskTimedOut`` with ``States.Timeout``). Entering a state again (a loop) is a new
  visit, not a retry; a failure that is caught, or that ends the execution, is not a retry;
* a **failure** is a failed or timed-out attempt (``*Failed``, ``*TimedOut``, ``*StartFailed``, …) with its
  error and cause. An attempt has one outcome: the first success or failure after its ``*Scheduled``; a later
  answer (moto records the late result of a task that already timed out, AWS does not) is not read;
* the **billable transitions** of a STANDARD execution are the states entered plus the retries (Step Functions
  pricing counts each retry as a transition);
* the **current state** is the last state entered (the state the execution is in, or ended in).

Plain data in, plain data out: no boto3, moto or CDK. Timestamps may be ``datetime`` (boto3), ISO-8601 text
(recorded fixtures) or epoch seconds; events without ``id`` or ``timestamp`` are read too.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from task_common.contract import api_time

ATTEMPT_EVENTS: Final = frozenset({"TaskScheduled", "LambdaFunctionScheduled", "ActivityScheduled"})
SUCCESS_EVENTS: Final = frozenset({"TaskSucceeded", "LambdaFunctionSucceeded", "ActivitySucceeded"})
TIMEOUT_EVENTS: Final = frozenset({"TaskTimedOut", "LambdaFunctionTimedOut", "ActivityTimedOut"})
FAILURE_EVENTS: Final = TIMEOUT_EVENTS | frozenset(
    {
        "TaskFailed",
        "TaskStartFailed",
        "TaskSubmitFailed",
        "LambdaFunctionFailed",
        "LambdaFunctionStartFailed",
        "LambdaFunctionScheduleFailed",
        "ActivityFailed",
        "ActivityScheduleFailed",
    }
)
# The event that closes an execution -> the execution's status (DescribeExecution's words).
EXECUTION_END_EVENTS: Final = {
    "ExecutionSucceeded": "SUCCEEDED",
    "ExecutionFailed": "FAILED",
    "ExecutionAborted": "ABORTED",
    "ExecutionTimedOut": "TIMED_OUT",
}
RUNNING: Final = "RUNNING"


class Outcome(StrEnum):
    """What became of one visit (the console colours states by it)."""

    SUCCEEDED = "succeeded"  # left after its work succeeded the first time
    RETRIED = "retried"  # an attempt failed and a later one succeeded
    CAUGHT = "caught"  # the last attempt failed and a Catch moved on
    FAILED = "failed"  # a Fail state, or the execution ended inside it
    RUNNING = "running"  # entered, and the execution still runs
    NOT_REACHED = "not_reached"  # never entered (for a state of the definition without a visit)


@dataclass(frozen=True)
class Failure:
    """One failed (or timed-out) attempt: its event, error and cause."""

    event: int | None
    error: str | None
    cause: str | None
    timed_out: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"event": self.event, "error": self.error, "cause": self.cause}


@dataclass
class Visit:
    """One ``*StateEntered`` of the execution, up to its ``*StateExited`` (or the end of the history)."""

    name: str
    state_type: str  # "Task", "Choice", "Succeed", "Fail", "Pass", "Wait", "Map", "Parallel"
    entered_event: int | None
    entered_at: datetime | None
    input: Any = None
    exited_event: int | None = None
    exited_at: datetime | None = None
    ended_at: datetime | None = None  # exited, or the next event that closes the visit (the execution's end)
    output: Any = None
    task_attempts: int = 0  # ``*Scheduled`` events (0 for a state that calls no service)
    failures: list[Failure] = field(default_factory=list)
    last_attempt_failed: bool = False

    @property
    def attempts(self) -> int:
        """How many times the state ran: its task attempts, or 1 for a state that calls no service."""
        return max(1, self.task_attempts)

    @property
    def retries(self) -> int:
        return max(0, self.task_attempts - 1)

    @property
    def errors(self) -> tuple[str, ...]:
        return tuple(str(f.error) for f in self.failures)

    @property
    def is_fail_state(self) -> bool:
        return self.state_type == "Fail"

    @property
    def exited(self) -> bool:
        return self.exited_event is not None or (self.exited_at is not None)

    @property
    def seconds(self) -> float:
        """From entering the state to leaving it (or to the end of the execution; 0 without timestamps)."""
        if self.entered_at is None or self.ended_at is None:
            return 0.0
        return max(0.0, (self.ended_at - self.entered_at).total_seconds())

    def outcome(self, execution_status: str) -> Outcome:
        if self.is_fail_state:
            return Outcome.FAILED
        if not self.exited:
            return Outcome.RUNNING if execution_status == RUNNING else Outcome.FAILED
        if self.last_attempt_failed:
            return Outcome.CAUGHT
        return Outcome.RETRIED if self.failures else Outcome.SUCCEEDED

    def as_dict(self) -> dict[str, Any]:
        """The visit as plain data (timestamps as ISO-8601 text; ``attempts`` counts task attempts, 0 for a state
        that calls no service), as the console's JSON API gives it."""
        return {
            "entered_event": self.entered_event,
            "entered_at": _iso(self.entered_at),
            "input": self.input,
            "is_fail_state": self.is_fail_state,
            "exited_event": self.exited_event,
            "exited_at": _iso(self.exited_at),
            "output": self.output,
            "attempts": self.task_attempts,
            "failures": [f.as_dict() for f in self.failures],
        }


@dataclass(frozen=True)
class History:
    """An execution's history, read once."""

    events: tuple[Mapping[str, Any], ...]
    visits: tuple[Visit, ...]
    status: str  # RUNNING until an ``Execution{Succeeded,Failed,Aborted,TimedOut}`` event closes it
    error: str | None = None  # of the closing event (ExecutionFailed, ExecutionAborted, ExecutionTimedOut)
    cause: str | None = None

    @property
    def current_state(self) -> str | None:
        """The last state entered: the one the execution is in, or ended in."""
        return self.visits[-1].name if self.visits else None

    @property
    def states_entered(self) -> list[str]:
        return [v.name for v in self.visits]

    @property
    def retries(self) -> int:
        return retries(self.visits)

    @property
    def billable_transitions(self) -> int:
        return billable_transitions(self.visits)

    @property
    def failures(self) -> list[tuple[str, Failure]]:
        """Every failed attempt, with its state's name, in order."""
        return [(v.name, f) for v in self.visits for f in v.failures]

    @property
    def first_failure(self) -> str:
        """The first failure event, as text for assertion messages ("no failure" if there is none)."""
        for event in self.events:
            kind = str(event.get("type", ""))
            for key, value in event.items():
                if key.endswith("FailedEventDetails"):
                    return f"{kind}: {value}"
        return "no failure"

    def visits_of(self, name: str) -> list[Visit]:
        return [v for v in self.visits if v.name == name]

    def transitions(self) -> list[tuple[str, str]]:
        """The state-to-state moves taken, in order."""
        return [(a.name, b.name) for a, b in itertools.pairwise(self.visits)]

    def timeline(self) -> list[dict[str, Any]]:
        return timeline(self.events)


def read(events: Iterable[Mapping[str, Any]]) -> History:
    """Read a history (the ``events`` of ``GetExecutionHistory``, oldest first)."""
    reader = _Reader()
    events = tuple(events)
    for event in events:
        reader.feed(event)
    if reader.current is not None and events:
        reader.current.ended_at = timestamp(events[-1])
    return History(events, tuple(reader.visits), reader.status, reader.error, reader.cause)


class _Reader:
    def __init__(self) -> None:
        self.visits: list[Visit] = []
        self.current: Visit | None = None
        self.status: str = RUNNING
        self.error: str | None = None
        self.cause: str | None = None
        self.attempt_open = False  # a ``*Scheduled`` without its success or failure yet

    def feed(self, event: Mapping[str, Any]) -> None:
        kind, details = str(event.get("type", "")), _details(event)
        if kind.endswith("StateEntered"):
            self._close(event)
            self.current = Visit(
                name=str(details["name"]),
                state_type=kind.removesuffix("StateEntered"),
                entered_event=event.get("id"),
                entered_at=timestamp(event),
                input=parse_json(details.get("input")),
            )
            self.visits.append(self.current)
        elif kind in EXECUTION_END_EVENTS:
            self.status, self.error, self.cause = EXECUTION_END_EVENTS[kind], details.get("error"), details.get("cause")
            self._close(event)
        elif self.current is not None:
            self._inside(self.current, kind, details, event)

    def _close(self, event: Mapping[str, Any]) -> None:
        if self.current is not None:
            self.current.ended_at = timestamp(event)
        self.current, self.attempt_open = None, False

    def _inside(self, visit: Visit, kind: str, details: dict[str, Any], event: Mapping[str, Any]) -> None:
        if kind.endswith("StateExited"):
            visit.exited_event, visit.exited_at = event.get("id"), timestamp(event)
            visit.output = parse_json(details.get("output"))
            self._close(event)
        elif kind in ATTEMPT_EVENTS:
            visit.task_attempts += 1
            visit.last_attempt_failed, self.attempt_open = False, True
        elif not self.attempt_open:
            return  # a late answer of an attempt that already ended (moto records a timed-out task's late result)
        elif kind in SUCCESS_EVENTS:
            visit.last_attempt_failed, self.attempt_open = False, False
        elif kind in FAILURE_EVENTS:
            visit.last_attempt_failed, self.attempt_open = True, False
            timed_out = kind in TIMEOUT_EVENTS
            visit.failures.append(Failure(event.get("id"), details.get("error"), details.get("cause"), timed_out))


def state_visits(events: Iterable[Mapping[str, Any]]) -> list[Visit]:
    """The states entered, in order, with their attempts and failures."""
    return list(read(events).visits)


def retries(visits: Iterable[Visit]) -> int:
    return sum(v.retries for v in visits)


def billable_transitions(visits: Sequence[Visit]) -> int:
    """STANDARD bills every state entered and every retry."""
    return len(visits) + retries(visits)


def execution_summary(events: Iterable[Mapping[str, Any]]) -> tuple[str | None, int]:
    """The state the execution is in (or ended in) and how many retries it made."""
    history = read(events)
    return history.current_state, history.retries


def timeline(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """An execution's history as rows a person can read: when, in which state, what happened."""
    rows: list[dict[str, Any]] = []
    start: datetime | None = None
    state: str | None = None
    for event in events:
        at = timestamp(event)
        start = start or at
        entered = event.get("stateEnteredEventDetails")
        if entered:
            state = entered["name"]
        rows.append(
            {
                "id": event.get("id"),
                "timestamp": _iso(at),
                "elapsedSeconds": round((at - start).total_seconds(), 3) if at and start else 0.0,
                "type": event.get("type"),
                "state": state,
                "detail": event_detail(event),
            }
        )
        if event.get("stateExitedEventDetails"):
            state = None
    return rows


def event_detail(event: Mapping[str, Any]) -> str:
    """One line about an event: its error and cause, or the resource it called (empty for state entries)."""
    details = _details(event)
    if "error" in details or "cause" in details:
        cause = str(details.get("cause") or "")
        return f"{details.get('error', '')}: {cause}" if cause else str(details.get("error", ""))
    if "resourceType" in details:
        return f"{details['resourceType']}:{details.get('resource', '')}"
    return ""  # entering or leaving a state: the row's state column says which


def timestamp(event: Mapping[str, Any]) -> datetime | None:
    value = event.get("timestamp")
    if isinstance(value, datetime):
        return value
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), tz=UTC)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def parse_json(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _details(event: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict):
            return value
    return {}


def _iso(value: datetime | None) -> str | None:
    return api_time(value) if value is not None else None
