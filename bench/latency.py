"""4. Latency of one task: submit -> terminal on the local stack (happy path), and where the time goes.

Tasks run one at a time on an otherwise idle stack. The client submits over HTTP, then reads the task from the
table every 20 ms until it is terminal (what a polling client sees, to within 20 ms). The time per state comes
from the execution's history (StateEntered -> StateExited); "stream + pipe" is from the API's answer to
ExecutionStarted.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from task_common.contract import TERMINAL_STATUSES

POLL_SECONDS = 0.02
TEXT = "the cat sat on the mat\nthe mat sat on the cat"


@dataclass
class LatencyResult:
    total_ms: list[float] = field(default_factory=list)  # POST sent -> terminal status seen
    accept_ms: list[float] = field(default_factory=list)  # POST round trip
    pipe_ms: list[float] = field(default_factory=list)  # POST answered -> ExecutionStarted
    execution_ms: list[float] = field(default_factory=list)  # ExecutionStarted -> execution ended
    states: dict[str, list[float]] = field(default_factory=dict)
    statuses: list[str] = field(default_factory=list)

    def median(self, values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")


def _timestamp(event: dict[str, Any]) -> float:
    value = event["timestamp"]
    return float(value.timestamp()) if hasattr(value, "timestamp") else float(value)


def single_task_latency(stack: Any, *, runs: int = 5, timeout: float = 60) -> LatencyResult:
    from taskrail.history import state_visits
    from taskrail.local.accounts import user_client

    client = user_client(stack.info, "alice")
    dynamodb, sfn = stack.clients("dynamodb"), stack.clients("stepfunctions")
    result = LatencyResult()
    for _ in range(runs):
        sent = time.time()
        task_id = client.submit("text.stats", {"text": TEXT})["taskId"]
        answered = time.time()
        deadline, item = time.monotonic() + timeout, {}
        while time.monotonic() < deadline:
            raw = dynamodb.get_item(
                TableName=stack.info.tasks_table, Key={"taskId": {"S": task_id}}, ConsistentRead=True
            )
            item = {k: next(iter(v.values())) for k, v in raw.get("Item", {}).items()}
            if item.get("status") in TERMINAL_STATUSES:
                break
            time.sleep(POLL_SECONDS)
        seen = time.time()
        result.statuses.append(str(item.get("status", "TIMEOUT")))
        result.total_ms.append((seen - sent) * 1000)
        result.accept_ms.append((answered - sent) * 1000)
        arn = item.get("executionArn")
        if not arn:
            continue
        while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING" and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
        events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        started = next(_timestamp(e) for e in events if e["type"] == "ExecutionStarted")
        result.pipe_ms.append((started - answered) * 1000)
        result.execution_ms.append((_timestamp(events[-1]) - started) * 1000)
        for visit in state_visits(events):
            result.states.setdefault(visit.name, []).append(visit.seconds * 1000)
    return result
