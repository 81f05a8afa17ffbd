"""11. Live progress on the local stack (issue 15): from a progress write to a subscribed client receiving it.

A task of alice's is made to wait RUNNING (``diagnostic.sleep``, one step of a minute); alice's WebSocket is subscribed
to it. Each sample is one progress write to the Tasks table (the UpdateItem the process function makes: progress and
updatedAt, while RUNNING), timed from just before the write to the arrival of the message carrying that progress:
the stream, the push pipe's poll and filter, the push function (a Lambda worker: its Query of the owner's
connections and its PostToConnection) and the WebSocket server's write. Writes are sequential (each waits for its
message), so a sample is one change's latency, not a queue's. The task is cancelled at the end.

``python -m bench.live_progress`` runs this section alone on a stack of its own.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

WAIT_SECONDS = 30.0
#: The nearest-rank p99 of n samples is the largest one while n <= 100; with 200 it is the second largest, so one
#: outlier does not make the p99 (and each sample is ~80 ms: the section takes ~20 s).
PUSH_WRITES = 200


@dataclass
class PushLatency:
    samples_ms: list[float] = field(default_factory=list)
    missing: int = 0  # writes whose message did not arrive within WAIT_SECONDS

    def percentile(self, q: float) -> float:
        if not self.samples_ms:
            return float("nan")
        ordered = sorted(self.samples_ms)
        return ordered[self._rank(q) - 1]

    def _rank(self, q: float) -> int:
        return max(1, math.ceil(q / 100 * len(self.samples_ms)))  # nearest rank

    def is_max(self, q: float) -> bool:
        """Whether the ``q`` percentile is the largest sample (too few samples to tell them apart)."""
        return bool(self.samples_ms) and self._rank(q) == len(self.samples_ms)


def _wait_running(client: Any, task_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while client.get(task_id)["status"] != "RUNNING":
        if time.monotonic() > deadline:
            raise TimeoutError(f"task {task_id} did not start within {timeout} s")
        time.sleep(0.05)


def push_latency(stack: Any, *, writes: int = PUSH_WRITES) -> PushLatency:
    from websockets.sync.client import connect

    from taskrail.live import signed_connect_url
    from taskrail.local.accounts import credentials_of, user_client
    from taskrail.local.region import REGION

    info = stack.info
    client = user_client(info, "alice")
    task_id = client.submit("diagnostic.sleep", {"seconds": 600, "steps": 1})["taskId"]
    result = PushLatency()
    try:
        _wait_running(client, task_id)
        url = signed_connect_url(info.websocket_url, credentials_of("alice"), REGION)
        with connect(url, open_timeout=30, ping_interval=None) as socket:
            socket.send(json.dumps({"action": "subscribe", "taskId": task_id}))
            assert json.loads(socket.recv(timeout=30))["type"] == "subscribed"
            dynamodb = stack.clients("dynamodb")
            for progress in range(1, writes + 1):
                started = time.perf_counter()
                dynamodb.update_item(
                    TableName=info.tasks_table,
                    Key={"taskId": {"S": task_id}},
                    UpdateExpression="SET #p = :p, #u = :u",
                    ConditionExpression="#s = :running",
                    ExpressionAttributeNames={"#p": "progress", "#u": "updatedAt", "#s": "status"},
                    ExpressionAttributeValues={
                        ":p": {"N": str(progress)},
                        ":u": {"S": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"},
                        ":running": {"S": "RUNNING"},
                    },
                )
                deadline = started + WAIT_SECONDS
                while True:
                    remaining = deadline - time.perf_counter()
                    if remaining <= 0:
                        result.missing += 1
                        break
                    try:
                        message = json.loads(socket.recv(timeout=remaining))
                    except TimeoutError:
                        result.missing += 1
                        break
                    if message.get("taskId") == task_id and message.get("progress") == progress:
                        result.samples_ms.append((time.perf_counter() - started) * 1000)
                        break
    finally:
        client.cancel(task_id)
    return result


def push_latency_lines(result: PushLatency | None) -> str:
    lines = ["## 11. Live progress: from a progress write to the client (local stack)", ""]
    if result is None:
        return "\n".join([*lines, "not measured (the phase failed: see the errors above)", ""])
    samples = result.samples_ms

    def cell(q: float) -> str:
        value = f"{result.percentile(q):.1f}"
        return f"{value} (the max: too few samples)" if result.is_max(q) else value

    lines += [
        "| samples | missing | p50 ms | p95 ms | p99 ms | max ms | mean ms |",
        "|---|---|---|---|---|---|---|",
        f"| {len(samples)} | {result.missing} | {cell(50)} | {cell(95)} | {cell(99)} | "
        f"{max(samples, default=float('nan')):.1f} | {statistics.mean(samples) if samples else float('nan'):.1f} |",
        "",
        "One write at a time (UpdateItem of progress on a RUNNING task) → Tasks stream → push pipe (poll, filter) → "
        "push function (Query of the owner's connections, PostToConnection) → the WebSocket frame received.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import argparse

    from taskrail.local.stack import LocalStack, StackOptions

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--writes", type=int, default=PUSH_WRITES, help=f"progress writes timed (default {PUSH_WRITES})"
    )
    args = parser.parse_args(argv)
    stack = LocalStack(StackOptions(time_scale=0.01, with_console=False))
    stack.start()
    try:
        result = push_latency(stack, writes=args.writes)
    finally:
        stack.stop()
    print(push_latency_lines(result))
    return 0 if result.samples_ms else 1


if __name__ == "__main__":
    sys.exit(main())
