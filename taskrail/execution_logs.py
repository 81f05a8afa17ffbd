"""An EXPRESS execution's history, read from CloudWatch Logs (Step Functions keeps none for Express executions).

AWS: DescribeExecution, GetExecutionHistory and ListExecutions do not serve EXPRESS state machines (their API
references; an Express ARN is ``InvalidArn`` "Resource type not valid in this context: express"): "Execution
history is not captured by Step Functions. Logging must be enabled through Amazon CloudWatch Logs" (Developer Guide,
"Standard and Express workflow types"). The EXPRESS lifecycle logs ALL events to its log group
(infra/constructs/workflow.py); each log event is one JSON object ``{id, previous_event_id, event_timestamp, type,
execution_arn, details, redrive_count}`` (LocalStack's AWS-recorded snapshot test_sfn_api_express.snapshot.json).

Here those records become history events of GetExecutionHistory's shape (``id``, ``previousEventId``, ``type``,
``timestamp``, and the details under the event's ``...EventDetails`` key), so :mod:`taskrail.history` reads them as
it reads a Standard history: ``taskrail watch`` (state, retries), ``taskrail history`` and the demo.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from task_common.contract import RECONCILER_SUFFIX, REPLAY_SUFFIX, execution_name

EXPRESS: Final = "EXPRESS"
EXPRESS_RESOURCE: Final = "express"
_ORIGINS: Final = {REPLAY_SUFFIX: "replay", RECONCILER_SUFFIX: "reconciler"}
_ENDS: Final = {
    "ExecutionSucceeded": "SUCCEEDED",
    "ExecutionFailed": "FAILED",
    "ExecutionAborted": "ABORTED",
    "ExecutionTimedOut": "TIMED_OUT",
}


def is_express_arn(arn: str | None) -> bool:
    parts = str(arn or "").split(":")
    return len(parts) > 5 and parts[5] == EXPRESS_RESOURCE


def execution_name_of(arn: str) -> str:
    """An execution's name: the last part of a Standard ARN, the one before the UUID of an Express ARN."""
    parts = arn.split(":")
    return parts[7] if is_express_arn(arn) and len(parts) > 7 else parts[-1]


def log_group_name(state_machine: Mapping[str, Any]) -> str | None:
    """The log group DescribeStateMachine's ``loggingConfiguration`` names (``...:log-group:NAME:*``)."""
    for destination in (state_machine.get("loggingConfiguration") or {}).get("destinations") or []:
        arn = str((destination.get("cloudWatchLogsLogGroup") or {}).get("logGroupArn") or "")
        if ":log-group:" in arn:
            return arn.split(":log-group:", 1)[1].split(":", 1)[0]
    return None


def _details_key(kind: str) -> str:
    if kind.endswith("StateEntered"):
        return "stateEnteredEventDetails"
    if kind.endswith("StateExited"):
        return "stateExitedEventDetails"
    return kind[:1].lower() + kind[1:] + "EventDetails"


def history_event(record: Mapping[str, Any]) -> dict[str, Any]:
    """One logged record as a GetExecutionHistory event."""
    kind = str(record.get("type", ""))
    event: dict[str, Any] = {
        "id": int(record.get("id") or 0),
        "previousEventId": int(record.get("previous_event_id") or 0),
        "type": kind,
        "timestamp": datetime.fromtimestamp(int(record.get("event_timestamp") or 0) / 1000, tz=UTC),
    }
    if isinstance(record.get("details"), dict):
        event[_details_key(kind)] = dict(record["details"])
    return event


def _records(logs: Any, group: str, phrase: str, start_ms: int | None) -> Iterator[dict[str, Any]]:
    """The group's JSON log events whose text holds ``phrase`` (a quoted filter-pattern term)."""
    request: dict[str, Any] = {"logGroupName": group, "filterPattern": json.dumps(phrase)}
    if start_ms is not None:
        request["startTime"] = start_ms
    while True:
        page = logs.filter_log_events(**request)
        for event in page.get("events", []):
            try:
                record = json.loads(event["message"])
            except (KeyError, ValueError):
                continue
            if isinstance(record, dict) and phrase in str(record.get("execution_arn", "")):
                yield record
        token = page.get("nextToken")
        if not token or token == request.get("nextToken"):
            return
        request["nextToken"] = token


def history(logs: Any, group: str, execution_arn: str, *, start_ms: int | None = None) -> list[dict[str, Any]]:
    """The execution's events logged so far, oldest first (one event per id)."""
    events = {}
    for record in _records(logs, group, execution_arn, start_ms):
        if record.get("execution_arn") == execution_arn:
            event = history_event(record)
            events[event["id"]] = event
    return [events[key] for key in sorted(events)]


def executions_of(
    events_by_arn: Mapping[str, list[dict[str, Any]]],
) -> list[dict[str, Any]]:
    """DescribeExecution-like summaries (``executionArn``, ``name``, ``status``, ``startDate``, ``stopDate``,
    ``redriveCount``) of the executions whose events are given: RUNNING until an end event is logged."""
    described = []
    for arn, events in events_by_arn.items():
        if not events:
            continue
        ends = [e for e in events if e["type"] in _ENDS]
        described.append(
            {
                "executionArn": arn,
                "name": execution_name_of(arn),
                "status": _ENDS[ends[-1]["type"]] if ends else "RUNNING",
                "startDate": events[0]["timestamp"],
                "stopDate": ends[-1]["timestamp"] if ends else None,
                "redriveCount": 0,
            }
        )
    return described


def task_execution_arns(logs: Any, group: str, task: Mapping[str, Any], *, start_ms: int | None) -> set[str]:
    """The Express executions of one task that logged: its latest (the item's ``executionArn``, the pipe's random
    name until a replay or the reconciler takes over) and each replay's ``-rN`` and reconciler start's ``-qN``."""
    task_id, attempts = str(task["taskId"]), int(task.get("attempt") or 1)
    found: set[str] = set()
    if is_express_arn(task.get("executionArn")):
        found.add(str(task["executionArn"]))
    names = [execution_name(task_id, n, suffix) for n in range(1, attempts + 2) for suffix in _ORIGINS]
    for name in names:
        for record in _records(logs, group, f":{name}:", start_ms):
            found.add(str(record["execution_arn"]))
    return found


def origin_of(task_id: str, arn: str, attempts: int) -> str:
    name = execution_name_of(arn)
    for suffix, origin in _ORIGINS.items():
        if name in {execution_name(task_id, n, suffix) for n in range(1, attempts + 2)}:
            return origin
    return "pipe"


def grouped(records: Iterable[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    by_arn: dict[str, dict[int, dict[str, Any]]] = {}
    for record in records:
        event = history_event(record)
        by_arn.setdefault(str(record.get("execution_arn")), {})[event["id"]] = event
    return {arn: [events[k] for k in sorted(events)] for arn, events in by_arn.items()}
