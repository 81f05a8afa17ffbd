"""1. Intake under burst: many POST /tasks at once against the local stack, idle and while the backlog drains.

The load comes from its own process (``python -m bench.intake``): a thread pool, one ``requests`` session and
SigV4 signer per thread (``TaskrailClient``), so the client's own Python does not share a GIL with the stack
it measures. Each thread first sends one request that is not counted (connection set-up, imports); latency is
the wall time of each request as the client sees it; accepted = answered 2xx.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.common import ROOT, percentile

BURST_PARAMS = {"text": "storage first: the request is durable before any compute runs"}


@dataclass
class BurstResult:
    n: int
    concurrency: int
    accepted: int
    wall_s: float
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    started_at: float = 0.0  # epoch seconds, first request sent
    task_ids: list[str] = field(default_factory=list)

    @property
    def accepted_per_s(self) -> float:
        return self.accepted / self.wall_s if self.wall_s > 0 else 0.0

    def p(self, q: float) -> float:
        return percentile(self.latencies_ms, q)


def _client(info: dict[str, Any], user: str) -> Any:
    from taskrail.local.accounts import user_client
    from taskrail.local.stack import StackInfo

    return user_client(StackInfo(**info), user)


def run_burst(
    info: dict[str, Any],
    n: int,
    concurrency: int,
    *,
    user: str = "alice",
    task_type: str = "text.stats",
    warm_up: bool = True,
) -> BurstResult:
    """In this process: ``n`` POST /tasks from ``concurrency`` threads (after one uncounted request each,
    unless ``warm_up`` is off)."""
    local = threading.local()
    lock = threading.Lock()
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    task_ids: list[str] = []

    def client() -> Any:
        if not hasattr(local, "client"):
            local.client = _client(info, user)
        return local.client

    def post(counted: bool) -> None:
        body = {"type": task_type, "params": BURST_PARAMS}
        started = time.perf_counter()
        try:
            status, payload = client().request("POST", "/tasks", body)
            outcome = str(status)
        except Exception as error:  # a refused connection or a timeout is an outcome, not a crash
            status, payload, outcome = 0, {}, type(error).__name__
        elapsed = (time.perf_counter() - started) * 1000
        if counted:
            with lock:
                latencies.append(elapsed)
                statuses[outcome] = statuses.get(outcome, 0) + 1
                if 200 <= status < 300 and isinstance(payload, dict) and "taskId" in payload:
                    task_ids.append(str(payload["taskId"]))

    barrier = threading.Barrier(concurrency)

    def warm(_: int) -> None:
        if warm_up:
            post(counted=False)
        else:
            client()
        barrier.wait(timeout=60)

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(warm, range(concurrency)))
        started_at, started = time.time(), time.perf_counter()
        list(pool.map(lambda _: post(counted=True), range(n)))
        wall = time.perf_counter() - started
    accepted = sum(count for status, count in statuses.items() if status.startswith("2"))
    return BurstResult(n, concurrency, accepted, wall, latencies, statuses, started_at, task_ids)


def burst(
    info: Any, n: int, concurrency: int, *, user: str = "alice", warm_up: bool = True, timeout: float = 600
) -> BurstResult:
    """``run_burst`` in a child process (``python -m bench.intake``); ``info`` is the stack's StackInfo."""
    command = [sys.executable, "-m", "bench.intake", "--n", str(n), "--concurrency", str(concurrency), "--user", user]
    if not warm_up:
        command.append("--no-warm-up")
    completed = subprocess.run(
        command,
        input=json.dumps(asdict(info)),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"the burst client failed ({completed.returncode}): {completed.stderr[-2000:]}")
    return BurstResult(**json.loads(completed.stdout))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="POST /tasks burst client (reads the StackInfo JSON on stdin)")
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--user", default="alice")
    parser.add_argument("--no-warm-up", action="store_true", help="count every request (no uncounted first one)")
    args = parser.parse_args(argv)
    info = json.loads(sys.stdin.read())
    result = run_burst(info, args.n, args.concurrency, user=args.user, warm_up=not args.no_warm_up)
    print(json.dumps(asdict(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
