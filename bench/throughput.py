"""2. End-to-end throughput: N tasks from POST to a terminal status, on the local stack and on the bare interpreter.

*Local stack*: N POST /tasks from a client process (8 threads), then the Tasks table is read until every task
is terminal. *Bare interpreter*: moto's Step Functions interpreter in this process (``mock_aws``) running the same
``asl/`` definition against the same provisioned resources, with no-op handlers -- they answer what the real
handlers answered for one real task, at once -- and each task stored and its execution started directly (what
the API and the pipe do). Both: tasks/s = N / (last task's ``finishedAt`` - first request sent).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bench.intake import BURST_PARAMS, burst
from task_common.contract import TERMINAL_STATUSES


@dataclass
class ThroughputResult:
    label: str
    n: int
    succeeded: int
    wall_s: float
    timed_out: bool = False

    @property
    def tasks_per_s(self) -> float:
        return self.succeeded / self.wall_s if self.wall_s > 0 else 0.0


def epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def wait_terminal(dynamodb: Any, table: str, task_ids: Iterable[str], timeout: float) -> dict[str, dict[str, Any]]:
    """Reads the tasks (BatchGetItem, 100 at a time) until all are terminal or ``timeout`` passes."""
    pending, done = set(task_ids), {}
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        batch = sorted(pending)
        for start in range(0, len(batch), 100):
            keys = [{"taskId": {"S": task_id}} for task_id in batch[start : start + 100]]
            request = {
                table: {
                    "Keys": keys,
                    "ConsistentRead": True,
                    "ProjectionExpression": "taskId, #s, finishedAt",
                    "ExpressionAttributeNames": {"#s": "status"},
                }
            }
            try:
                response = dynamodb.batch_get_item(RequestItems=request)
            except Exception:  # moto's tables are not thread-safe: a read racing a write may fail; read again
                continue
            for item in response["Responses"].get(table, []):
                flat = {k: next(iter(v.values())) for k, v in item.items()}
                if flat.get("status") in TERMINAL_STATUSES:
                    done[flat["taskId"]] = flat
                    pending.discard(flat["taskId"])
        if pending:
            time.sleep(0.25)
    return done


def _result(label: str, n: int, started_at: float, items: dict[str, dict[str, Any]]) -> ThroughputResult:
    finished = [epoch(i["finishedAt"]) for i in items.values() if i.get("status") == "SUCCEEDED" and "finishedAt" in i]
    wall = (max(finished) - started_at) if finished else 0.0
    return ThroughputResult(label, n, len(finished), wall, timed_out=len(items) < n)


def local_stack_throughput(stack: Any, n: int, *, concurrency: int = 8, timeout: float = 240) -> ThroughputResult:
    submitted = burst(stack.info, n, concurrency, warm_up=False)
    items = wait_terminal(stack.clients("dynamodb"), stack.info.tasks_table, submitted.task_ids, timeout)
    return _result("local stack", n, submitted.started_at, items)


class _Recorder:
    """Passes invocations through and keeps each function's last answer."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.answers: dict[str, Any] = {}

    def __call__(self, function_name: str, payload: bytes, qualifier: str | None) -> Any:
        outcome = self.inner(function_name, payload, qualifier)
        self.answers[function_name] = outcome
        return outcome


class _Replay:
    """A no-op handler per function: the recorded answer, with the recorded task id replaced by this one's."""

    def __init__(self, answers: dict[str, Any], recorded_task_id: str) -> None:
        self.answers, self.recorded = answers, recorded_task_id
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, function_name: str, payload: bytes, qualifier: str | None) -> Any:
        from taskrail.local.services.lambda_ import InvokeOutcome

        with self._lock:
            self.calls += 1
        task_id = str(json.loads(payload or b"{}").get("taskId", ""))
        answer = self.answers[function_name]
        return InvokeOutcome(payload=answer.payload.replace(self.recorded.encode(), task_id.encode()))


def bare_interpreter_throughput(
    n: int, *, concurrency: int = 8, template: Any = None, timeout: float = 240
) -> ThroughputResult:
    from taskrail.local.inprocess import in_process_platform, quiet

    with quiet(), in_process_platform(template) as platform:
        recorder = _Recorder(platform.functions)
        with platform.invoking(recorder):
            platform.store_task("bare-recorded", "text.stats", BURST_PARAMS)
            first = platform.wait(platform.start("bare-recorded"))
        if first["status"] != "SUCCEEDED":
            raise RuntimeError(f"the recorded task ended {first['status']}")
        dynamodb = platform.client("dynamodb")
        task_ids = [f"bare-{i:05d}-{time.monotonic_ns()}" for i in range(n)]

        def submit(task_id: str) -> None:
            item = platform.task_item(task_id, "text.stats", BURST_PARAMS)
            dynamodb.put_item(TableName=platform.tasks_table, Item=item)
            platform.start(task_id)

        with platform.invoking(_Replay(recorder.answers, "bare-recorded")):
            started_at = time.time()
            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                list(pool.map(submit, task_ids))
            # Wait on the executions, not the items: moto's in-process tables are not thread-safe, and reading
            # an item while an execution writes it can fail either side.
            platform.drain_executions(timeout)
            items = wait_terminal(dynamodb, platform.tasks_table, task_ids, 10)
    return _result("bare interpreter", n, started_at, items)
