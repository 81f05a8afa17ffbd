"""Replay and redrive (ARCHITECTURE §6, docs/DECISIONS.md "Failures end where they failed; one failure path;
redrive is a replay (issue 19)"): a failed task is resumed with RedriveExecution when its latest execution can be
redriven (same execution ARN, from the step that failed), otherwise it gets a new execution ``{taskId}-r{attempt}``
from its DLQ message.

A DLQ replay and a redrive of the same task never both run it: each leaves FAILED by one conditional write on the
task (the replay's requeue FAILED → QUEUED here; the redriven ProcessTask's FAILED → RUNNING, conditional on the
same executionArn, in the workflow), so whichever comes second finds the task no longer FAILED and runs nothing; a
redrive that resumes after ProcessTask is stopped at MarkSucceeded or MarkRejected, which write only a task their
execution holds.
The operator also checks before acting: it redrives only a FAILED task whose executionArn is the execution it
redrives, and a DLQ message of an execution that no longer holds the task is dropped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from task_common.contract import (
    CATCH_PATH_END_STATES,
    UNSUCCESSFUL_EXECUTION_STATUSES,
    Status,
    replay_execution_name,
)
from taskrail.client import ApiError
from taskrail.execution_logs import execution_name_of
from taskrail.history import parse_json
from taskrail.operator import dlq
from taskrail.operator.ports import DeadLetters, Executions, OwnedTasks, TaskRecords

REPLAYABLE_STATUSES = frozenset({Status.FAILED.value, Status.QUEUED.value})
FAIL_STATE_ENTERED = "FailStateEntered"
# Which of a task's DLQ outcomes tells its story (the rest are older messages dropped).
OUTCOME_WEIGHT = {"started": 0, "would-start": 1, "already-replayed": 2, "dropped": 3}
# What `taskrail replay` refuses (it exits 1 then): somebody else's task, a rejected one, an execution AWS says
# cannot be redriven and that has no DLQ message either.
REFUSED_ACTIONS = frozenset({"refused", "not-replayable", "not-redrivable"})


@dataclass(frozen=True)
class ReplayOutcome:
    """``started`` means the DLQ message is dealt with (deleted); ``action`` says what happened, for people and
    scripts: redriven (the same execution resumed), started (a new execution), already-replayed, dropped,
    would-redrive, would-start, refused, not-replayable (REJECTED: invalid input), not-redrivable,
    nothing-to-replay."""

    task_id: str
    execution_name: str
    started: bool
    detail: str
    action: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "taskId": self.task_id,
            "action": self.action,
            "executionName": self.execution_name or None,
            "detail": self.detail,
        }


def _superseded(message: dict[str, Any], item: dict[str, Any]) -> str:
    """Why the message is not the task's latest failure ('' when it is): a later execution holds the task, a later
    attempt claimed it, or a redrive resumed it since (the message's fields are the item's when it was sent)."""
    arn = message.get("executionArn")
    if arn and item.get("executionArn") and arn != item["executionArn"]:
        return f"its execution {arn.rsplit(':', 1)[-1]} no longer holds the task"
    if "attempt" in message and "attempt" in item and int(message["attempt"]) != int(item["attempt"]):
        return f"it is of attempt {message['attempt']}, the task is at attempt {item['attempt']}"
    # Only a message that says its redrive count can be older than a redrive (today's messages do not say it: a
    # redriven task's new failure sends a message of the same execution and attempt, which must stay replayable)
    if "redriveCount" in message and int(message["redriveCount"]) < int(item.get("redriveCount") or 0):
        return f"the task was redriven since (redrive {item['redriveCount']})"
    return ""


def _why_dropped(message: dict[str, Any], item: dict[str, Any] | None) -> str:
    """Why the message replays nothing ('' when it replays the task): the task is gone, ran on, or the message
    is not of its latest failure."""
    if item is None:
        return "task no longer exists"
    if item["status"] not in REPLAYABLE_STATUSES:
        return f"already {item['status']}"
    if item["status"] == Status.FAILED and (why := _superseded(message, item)):
        return f"superseded: {why}"
    return ""


def replay_one(
    message: dict[str, Any], *, tasks: TaskRecords, executions: Executions, dry_run: bool = False
) -> ReplayOutcome:
    """QUEUED again, then a new execution ``{taskId}-r{attempt}`` with the stored input. Deterministic names make
    a second replay of the same attempt find the first one's execution instead of starting another."""
    task_id = message["taskId"]
    item = tasks.get(task_id)
    attempt = int((item or {}).get("attempt", 0))
    name = replay_execution_name(task_id, attempt) if item else ""
    if why := _why_dropped(message, item):
        return ReplayOutcome(task_id, name, True, f"{why}; message dropped", "dropped")
    assert item is not None
    if dry_run:
        return ReplayOutcome(task_id, name, False, f"would replay attempt {attempt + 1}", "would-start")
    if item["status"] == Status.FAILED and not tasks.requeue_failed(task_id, item.get("executionArn")):
        # Another write left FAILED first. A concurrent replay's (QUEUED): the start below is the same name, so
        # one execution. A redrive's (RUNNING, then anything): it runs the task; this message has nothing to do.
        now = (tasks.get(task_id) or {}).get("status")
        if now != Status.QUEUED:
            return ReplayOutcome(
                task_id, name, True, f"already {now} (redriven or replayed); message dropped", "dropped"
            )
    if not executions.start(name, message["input"]):
        return ReplayOutcome(task_id, name, True, "already replayed", "already-replayed")
    return ReplayOutcome(task_id, name, True, f"started attempt {attempt + 1} as a new execution", "started")


def _matches(entry: dict[str, Any], task_ids: set[str] | None, errors: set[str] | None, since_ms: int | None) -> bool:
    if task_ids is not None and entry["taskId"] not in task_ids:
        return False
    if errors is not None and entry.get("error") not in errors:
        return False
    return since_ms is None or (entry.get("sentAt") or 0) >= since_ms


def replay_dlq(
    task_ids: set[str] | None = None,
    *,
    queue: DeadLetters,
    tasks: TaskRecords,
    executions: Executions,
    dry_run: bool = False,
    errors: set[str] | None = None,
    since_ms: int | None = None,
) -> list[ReplayOutcome]:
    """Every matching DLQ message replayed; a message is deleted only after its start succeeded, so running it
    twice never starts twice. Filters: the tasks, the error name, messages sent at or after ``since_ms``."""
    outcomes: list[ReplayOutcome] = []
    with closing(dlq.scan(queue, hide_seconds=60)) as messages:
        for message in messages:
            entry = dlq.entry(message)
            if not _matches(entry, task_ids, errors, since_ms):
                continue
            outcome = replay_one(entry, tasks=tasks, executions=executions, dry_run=dry_run)
            outcomes.append(outcome)
            if outcome.started and not dry_run:
                queue.delete(message)
                message["handled"] = True
    return outcomes


def retire_messages(task_id: str, execution_arn: str, *, queue: DeadLetters) -> int:
    """Deletes the task's DLQ messages of ``execution_arn`` (its redrive replaces them); returns how many."""
    retired = 0
    with closing(dlq.scan(queue, hide_seconds=60)) as messages:
        for message in messages:
            entry = dlq.entry(message)
            if entry["taskId"] == task_id and entry.get("executionArn", execution_arn) == execution_arn:
                queue.delete(message)
                message["handled"] = True
                retired += 1
    return retired


def _name(arn: str) -> str:
    return execution_name_of(arn)  # an Express ARN ends in a UUID, after the name


def not_redrivable(task: dict[str, Any], execution: dict[str, Any], executions: Executions) -> str:
    """Why ``execution`` is not redriven for ``task`` ('' when it is): it is not the task's latest execution, the
    task is not FAILED in it, it did not fail, Step Functions refuses it (over 14 days, …), or its failure was
    caught into a Fail state (a redrive would run that Fail state again: the DLQ message replays it instead)."""
    status, arn = execution["status"], execution["executionArn"]
    if task.get("executionArn") != arn:
        return f"execution {_name(arn)} no longer holds the task"
    if status not in UNSUCCESSFUL_EXECUTION_STATUSES:
        return f"its execution {_name(arn)} is {status}"
    if task.get("status") != Status.FAILED:
        return f"the task is {task.get('status')}, not FAILED (its failure is still being recorded)"
    if execution.get("redriveStatus") == "NOT_REDRIVABLE":
        return f"Step Functions cannot redrive it: {execution.get('redriveStatusReason') or 'NOT_REDRIVABLE'}"
    state, kind = _last_state(executions.history(arn))
    if state in CATCH_PATH_END_STATES or kind == FAIL_STATE_ENTERED:
        return f"its failure was caught into {state}: a redrive would run {state} again"
    return ""


def _last_state(events: list[dict[str, Any]]) -> tuple[str | None, str | None]:
    """The state the execution ended in and the type of its entered event (``FailStateEntered`` for a Fail state:
    an execution of an earlier definition, which caught its failures into one, is redriven into it again)."""
    entered = [e for e in events if e.get("type", "").endswith("StateEntered")]
    last = entered[-1] if entered else {}
    return (last.get("stateEnteredEventDetails") or {}).get("name"), last.get("type")


def redrive(task: dict[str, Any], *, executions: Executions, dry_run: bool = False) -> ReplayOutcome:
    """RedriveExecution of the task's latest execution, when it can be redriven: it resumes from the step that
    failed, same ARN. Asked once per redrive count (the client token), so asking twice never redrives twice."""
    task_id, arn = task["taskId"], task.get("executionArn")
    if not arn:
        detail = f"task is {task.get('status')} and has no execution; nothing to redrive"
        return ReplayOutcome(task_id, "", False, detail, "nothing-to-replay")
    if not executions.supports_redrive():
        detail = "the lifecycle is EXPRESS, whose executions cannot be redriven"
        return ReplayOutcome(task_id, _name(arn), False, detail, "nothing-to-replay")
    execution = executions.describe(arn)
    reason = not_redrivable(task, execution, executions)
    if reason:
        return ReplayOutcome(task_id, _name(arn), False, reason, "nothing-to-replay")
    state, _ = _last_state(executions.history(arn))
    described = f"execution {_name(arn)} ended {execution['status']} in {state}"
    if dry_run:
        return ReplayOutcome(task_id, _name(arn), False, f"{described}; would redrive it from there", "would-redrive")
    redrives = int(execution.get("redriveCount", 0))
    token = hashlib.sha256(f"{arn}#{redrives}".encode()).hexdigest()[:64]
    refusal = executions.redrive(arn, token)
    if refusal:
        return ReplayOutcome(task_id, _name(arn), False, f"{described}; not redriven: {refusal}", "not-redrivable")
    detail = f"{described}; redriven from there, same execution (redrive {redrives + 1})"
    return ReplayOutcome(task_id, _name(arn), True, detail, "redriven")


def _message_of(cause: Any) -> str:
    """A Lambda error's cause is its whole error document (type, message, stack trace): its message."""
    document = parse_json(cause)
    if isinstance(document, dict) and document.get("errorMessage"):
        return str(document["errorMessage"])
    return str(cause or "")


def _not_replayable(task: dict[str, Any]) -> ReplayOutcome | None:
    task_id, status = task["taskId"], task.get("status")
    if status == Status.REJECTED:
        why = f" ({task.get('error')}: {_message_of(task.get('cause'))})" if task.get("error") else ""
        detail = f"task was REJECTED: its input is invalid{why}; it is not replayable: submit it again, corrected"
        return ReplayOutcome(task_id, "", False, detail, "not-replayable")
    if status == Status.CANCELLED:
        return ReplayOutcome(task_id, "", False, "task was cancelled; nothing to replay", "nothing-to-replay")
    return None


def replay_task(
    task: dict[str, Any], *, queue: DeadLetters, tasks: TaskRecords, executions: Executions, dry_run: bool = False
) -> ReplayOutcome:
    """One task (already owner-checked): redriven when its latest execution can be (its DLQ messages of that
    execution are then deleted), otherwise replayed from its DLQ message as a new execution."""
    task_id = task["taskId"]
    item = tasks.get(task_id) or task  # consistent, and with the operator's fields (redriveCount)
    refused = _not_replayable(item)
    if refused:
        return refused
    why_not = "it has no execution"
    if item.get("executionArn"):
        redriven = redrive(item, executions=executions, dry_run=dry_run)
        if redriven.action != "nothing-to-replay":
            if redriven.action == "redriven":
                retired = retire_messages(task_id, item["executionArn"], queue=queue)
                redriven = ReplayOutcome(
                    task_id, redriven.execution_name, True, f"{redriven.detail}; DLQ messages retired: {retired}",
                    redriven.action,
                )  # fmt: skip
            return redriven
        why_not = redriven.detail
    replayed = replay_dlq({task_id}, queue=queue, tasks=tasks, executions=executions, dry_run=dry_run)
    if replayed:
        # The task's messages, its latest failure's first: a start (or a dry run's) says what happened to the task
        first = min(replayed, key=lambda o: OUTCOME_WEIGHT.get(o.action, len(OUTCOME_WEIGHT)))
        if first.action in ("started", "would-start"):
            return ReplayOutcome(
                task_id, first.execution_name, first.started, f"{first.detail} (not redriven: {why_not})", first.action
            )
        return first
    status = item.get("status")
    detail = f"task is {status} and has no DLQ message; nothing to replay (not redriven: {why_not})"
    return ReplayOutcome(task_id, "", False, detail, "nothing-to-replay")


def replay_tasks(
    task_ids: Iterable[str],
    *,
    owned: OwnedTasks,
    queue: DeadLetters,
    tasks: TaskRecords,
    executions: Executions,
    dry_run: bool = False,
) -> list[ReplayOutcome]:
    """Replay the caller's own tasks, each by :func:`replay_task`.

    Ownership is checked through the API first: somebody else's task is refused exactly like a missing one.
    """
    outcomes: dict[str, ReplayOutcome] = {}
    for task_id in dict.fromkeys(task_ids):
        try:
            task = owned.get(task_id)
        except ApiError as error:
            if error.status != 404:
                raise
            outcomes[task_id] = ReplayOutcome(task_id, "", False, "task not found (or not yours)", "refused")
            continue
        outcomes[task_id] = replay_task(task, queue=queue, tasks=tasks, executions=executions, dry_run=dry_run)
    return [outcomes[i] for i in dict.fromkeys(task_ids)]
