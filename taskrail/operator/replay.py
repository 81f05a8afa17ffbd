"""Replay and redrive (ARCHITECTURE §6): a task whose failure was caught gets a new execution from its DLQ
message; an execution that failed outside the Catch path is redriven from the state that failed."""

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
from taskrail import history
from taskrail.client import ApiError
from taskrail.operator import dlq
from taskrail.operator.ports import DeadLetters, Executions, OwnedTasks, TaskRecords

REPLAYABLE_STATUSES = frozenset({Status.FAILED.value, Status.QUEUED.value})


@dataclass(frozen=True)
class ReplayOutcome:
    """``started`` means the DLQ message is dealt with (deleted); ``action`` says what happened, for people and
    scripts: started, already-replayed, dropped, would-start, redriven, would-redrive, refused, unsupported,
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


def replay_one(
    message: dict[str, Any], *, tasks: TaskRecords, executions: Executions, dry_run: bool = False
) -> ReplayOutcome:
    """QUEUED again, then a new execution ``{taskId}-r{attempt}`` with the stored input. Deterministic names make
    a second replay of the same attempt find the first one's execution instead of starting another."""
    task_id = message["taskId"]
    item = tasks.get(task_id)
    if item is None:
        return ReplayOutcome(task_id, "", True, "task no longer exists; message dropped", "dropped")
    status, attempt = item["status"], int(item.get("attempt", 0))
    name = replay_execution_name(task_id, attempt)
    if status not in REPLAYABLE_STATUSES:
        return ReplayOutcome(task_id, name, True, f"already {status}; message dropped", "dropped")
    if dry_run:
        return ReplayOutcome(task_id, name, False, f"would replay attempt {attempt + 1}", "would-start")
    if status == Status.FAILED:
        tasks.requeue_failed(task_id)  # False: a concurrent replay requeued it first; the start below decides
    if not executions.start(name, message["input"]):
        return ReplayOutcome(task_id, name, True, "already replayed", "already-replayed")
    return ReplayOutcome(task_id, name, True, f"started attempt {attempt + 1}", "started")


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


def _not_redrivable(task: dict[str, Any], execution: dict[str, Any], executions: Executions) -> str:
    status = execution["status"]
    if status not in UNSUCCESSFUL_EXECUTION_STATUSES:
        return f"task is {task.get('status')}, its execution {status}; nothing to replay"
    if task.get("status") == Status.CANCELLED:
        return "task was cancelled; nothing to replay"
    state, _ = history.execution_summary(executions.history(execution["executionArn"]))
    if state in CATCH_PATH_END_STATES:
        return (
            f"task is {task.get('status')}: its failure was caught ({state}) and has no message in the DLQ "
            "(already replayed, or being replayed)"
        )
    return ""


def redrive(task: dict[str, Any], *, executions: Executions, is_local: bool, dry_run: bool = False) -> ReplayOutcome:
    """RedriveExecution for a task whose execution failed outside the Catch path (no DLQ message): it resumes
    from the state that failed. Redriving twice never runs twice: a redriven execution is RUNNING (or done)."""
    task_id, arn = task["taskId"], task.get("executionArn")
    if not arn:
        detail = f"task is {task.get('status')} and has no execution; nothing to replay"
        return ReplayOutcome(task_id, "", False, detail, "nothing-to-replay")
    name = arn.rsplit(":", 1)[-1]
    execution = executions.describe(arn)
    reason = _not_redrivable(task, execution, executions)
    if reason:
        return ReplayOutcome(task_id, name, False, reason, "nothing-to-replay")
    described = f"execution {name} ended {execution['status']} outside the Catch path"
    if is_local:
        return ReplayOutcome(
            task_id,
            name,
            False,
            f"{described}; it needs RedriveExecution, which the local stack does not have (moto does not "
            "implement it). On AWS, `taskrail replay ID --stack NAME` resumes it from the state that failed.",
            "unsupported",
        )
    if execution.get("redriveStatus") == "NOT_REDRIVABLE":
        why = execution.get("redriveStatusReason") or "Step Functions says it is not redrivable"
        return ReplayOutcome(task_id, name, False, f"{described}, but cannot be redriven: {why}", "not-redrivable")
    if dry_run:
        return ReplayOutcome(task_id, name, False, f"{described}; would redrive it", "would-redrive")
    redrives = int(execution.get("redriveCount", 0))
    executions.redrive(arn, hashlib.sha256(f"{arn}#{redrives}".encode()).hexdigest()[:64])
    return ReplayOutcome(task_id, name, True, f"{described}; redriven (redrive {redrives + 1})", "redriven")


def replay_tasks(
    task_ids: Iterable[str],
    *,
    owned: OwnedTasks,
    queue: DeadLetters,
    tasks: TaskRecords,
    executions: Executions,
    is_local: bool,
    dry_run: bool = False,
) -> list[ReplayOutcome]:
    """Replay the caller's own tasks: from the DLQ when their failure was caught (a new execution), otherwise,
    on AWS, RedriveExecution of an execution that failed, timed out or was aborted outside the Catch path.

    Ownership is checked through the API first: somebody else's task is refused exactly like a missing one.
    """
    outcomes: dict[str, ReplayOutcome] = {}
    mine: dict[str, dict[str, Any]] = {}
    for task_id in dict.fromkeys(task_ids):
        try:
            mine[task_id] = owned.get(task_id)
        except ApiError as error:
            if error.status != 404:
                raise
            outcomes[task_id] = ReplayOutcome(task_id, "", False, "task not found (or not yours)", "refused")
    if mine:
        for outcome in replay_dlq(set(mine), queue=queue, tasks=tasks, executions=executions, dry_run=dry_run):
            outcomes.setdefault(outcome.task_id, outcome)
    for task_id, task in mine.items():
        if task_id not in outcomes:
            outcomes[task_id] = redrive(task, executions=executions, is_local=is_local, dry_run=dry_run)
    return [outcomes[i] for i in dict.fromkeys(task_ids)]
