"""Every execution of one task (`taskrail history`): the pipe's, each replay's ``-rN``, each reconciler start's
``-qN``; a redrive resumes the same execution (its ``redriveCount`` says how often).

Replays and reconciler starts have deterministic names (``task_common.contract.execution_name``), so they are found
by DescribeExecution on their ARN. The pipe names its execution itself (a random name, Pipes cannot name one); it is
the item's ``executionArn`` until a replay or the reconciler takes over, and after that it is found by listing the
state machine's executions started around the task's creation and reading their input (at most ``MAX_DESCRIBED``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from task_common.contract import RECONCILER_SUFFIX, REPLAY_SUFFIX, api_time, execution_arn_of, execution_name
from taskrail import execution_logs
from taskrail.client import epoch_seconds

ORIGINS = {REPLAY_SUFFIX: "replay", RECONCILER_SUFFIX: "reconciler"}
#: how long after the task's creation the pipe's execution may start (a pipe outage delays it; past this the
#: reconciler starts a -q execution instead)
PIPE_WINDOW = timedelta(hours=1)
MAX_DESCRIBED = 200
NOT_FOUND = frozenset({"ExecutionDoesNotExist", "ResourceNotFoundException"})


@dataclass(frozen=True)
class TaskExecution:
    arn: str
    name: str
    origin: str  # pipe, replay, reconciler
    status: str
    started: datetime | None
    stopped: datetime | None
    redrive_count: int

    def to_json(self) -> dict[str, Any]:
        return {
            "executionArn": self.arn,
            "name": self.name,
            "origin": self.origin,
            "status": self.status,
            "startDate": api_time(self.started) if self.started else None,
            "stopDate": api_time(self.stopped) if self.stopped else None,
            "redriveCount": self.redrive_count,
        }


def _described(sfn: Any, arn: str) -> dict[str, Any] | None:
    try:
        return dict(sfn.describe_execution(executionArn=arn))
    except Exception as error:  # botocore's ClientError, without importing botocore here
        code = getattr(error, "response", {}).get("Error", {}).get("Code")
        if code in NOT_FOUND:
            return None
        raise


def _execution(described: dict[str, Any], origin: str) -> TaskExecution:
    return TaskExecution(
        arn=described["executionArn"],
        name=described.get("name") or described["executionArn"].rsplit(":", 1)[-1],
        origin=origin,
        status=described.get("status", ""),
        started=described.get("startDate"),
        stopped=described.get("stopDate"),
        redrive_count=int(described.get("redriveCount") or 0),
    )


def _created(task: dict[str, Any]) -> datetime | None:
    seconds = epoch_seconds(task.get("createdAt"))
    return datetime.fromtimestamp(seconds, UTC) if seconds is not None else None


def task_executions(
    sfn: Any, state_machine_arn: str, task: dict[str, Any], *, logs: Callable[[], Any] | None = None
) -> list[TaskExecution]:
    """The task's executions, oldest first. On an EXPRESS lifecycle, from its log group (``logs`` makes the
    CloudWatch Logs client): Step Functions neither lists nor describes Express executions."""
    if logs is not None:
        machine = sfn.describe_state_machine(stateMachineArn=state_machine_arn)
        if machine.get("type") == execution_logs.EXPRESS:
            return _express_executions(logs(), execution_logs.log_group_name(machine), task)
    task_id, attempts = task["taskId"], int(task.get("attempt") or 1)
    found: dict[str, TaskExecution] = {}
    for number in range(1, attempts + 2):
        for suffix, origin in ORIGINS.items():
            arn = execution_arn_of(state_machine_arn, execution_name(task_id, number, suffix))
            described = _described(sfn, arn)
            if described is not None:
                found[arn] = _execution(described, origin)
    latest = task.get("executionArn")
    if latest and latest not in found:
        described = _described(sfn, latest)
        if described is not None:
            found[latest] = _execution(described, "pipe")
    if not any(e.origin == "pipe" for e in found.values()):
        pipe = _pipe_execution(sfn, state_machine_arn, task, skip=set(found))
        if pipe is not None:
            found[pipe.arn] = pipe
    return sorted(found.values(), key=lambda e: (e.started is None, e.started or datetime.min))


def _express_executions(logs: Any, group: str | None, task: dict[str, Any]) -> list[TaskExecution]:
    if group is None:
        return []
    created = _created(task)
    start_ms = int((created - timedelta(minutes=1)).timestamp() * 1000) if created else None
    task_id, attempts = str(task["taskId"]), int(task.get("attempt") or 1)
    arns = execution_logs.task_execution_arns(logs, group, task, start_ms=start_ms)
    events = {arn: execution_logs.history(logs, group, arn, start_ms=start_ms) for arn in arns}
    found = [
        _execution(described, execution_logs.origin_of(task_id, described["executionArn"], attempts))
        for described in execution_logs.executions_of(events)
    ]
    return sorted(found, key=lambda e: (e.started is None, e.started or datetime.min.replace(tzinfo=UTC)))


def _pipe_execution(sfn: Any, state_machine_arn: str, task: dict[str, Any], *, skip: set[str]) -> TaskExecution | None:
    created = _created(task)
    if created is None:
        return None
    described_count = 0
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=state_machine_arn):
        for summary in page["executions"]:  # newest first
            started = summary.get("startDate")
            if started is not None and started < created - timedelta(minutes=1):
                return None
            if summary["executionArn"] in skip or (started is not None and started > created + PIPE_WINDOW):
                continue
            described_count += 1
            if described_count > MAX_DESCRIBED:
                return None
            described = _described(sfn, summary["executionArn"])
            if described is not None and _names_task(described.get("input"), task["taskId"]):
                return _execution(described, "pipe")
    return None


def _names_task(execution_input: Any, task_id: str) -> bool:
    text = execution_input if isinstance(execution_input, str) else json.dumps(execution_input)
    return f'"{task_id}"' in (text or "")


def choose(executions: list[TaskExecution], wanted: str | None) -> TaskExecution:
    """``wanted``: a number (1 = the first execution), an execution's name or ARN, or its suffix (``r2``, ``-q1``);
    None: the latest. Raises LookupError naming the choices."""
    if not executions:
        raise LookupError("the task has no execution yet")
    if wanted is None:
        return executions[-1]
    if wanted.isdigit() and 1 <= int(wanted) <= len(executions):
        return executions[int(wanted) - 1]
    suffix = "-" + wanted.lstrip("-")
    for execution in executions:
        if wanted in (execution.name, execution.arn) or execution.name.endswith(suffix):
            return execution
    names = ", ".join(f"{i} ({e.name})" for i, e in enumerate(executions, start=1))
    raise LookupError(f"no execution {wanted!r} of this task; its executions: {names}")
