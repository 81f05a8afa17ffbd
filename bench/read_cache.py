"""10. The read routes, and what a cache in front of them would save (issue 16 §3).

On the local stack, as alice over HTTP (SigV4, as a user's client): the latency of ``GET /tasks/{taskId}``,
``GET /tasks`` (a page of 25) and ``GET /tasks/{taskId}/result``, interleaved, ``runs`` times each; the DynamoDB
size of the real items those routes read (the task's item, and its owner-index entry: the keys and the index's
projected attributes, from the template); and how fast a task's answer goes stale (one task polled every 50 ms
from its submission: each change of status or progress seen). The sizes go into :mod:`taskrail.cost.reads` with
``docs/prices.json``: read units and dollars per million reads of each route, and each cache option's break-even.
The local latencies are moto's and this machine's, not AWS's: the AWS side is cited in docs/DECISIONS.md.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from bench.common import fmt_ms, percentile

POLL_SECONDS = 0.05
TEXT = "the cat sat on the mat\nthe mat sat on the cat"
TASKS = 3  # tasks read by the latency runs
INDEX_KEYS = ("taskId", "userId", "createdAt")  # the table's key and the owner index's (storage.py)


@dataclass
class ReadCacheResult:
    latency_ms: dict[str, list[float]] = field(default_factory=dict)  # route -> one figure per request
    task_item_bytes: list[int] = field(default_factory=list)
    index_entry_bytes: list[int] = field(default_factory=list)
    changes: list[tuple[float, str, int]] = field(default_factory=list)  # (s since submit, status, progress)
    statuses: list[str] = field(default_factory=list)


def _owner_index_attributes(template: dict[str, Any], index_name: str) -> set[str]:
    from taskrail.cost.units import tables_from_template

    for table in tables_from_template(template, {}).values():
        for index in table.indexes:
            if index.name == index_name:
                return set(index.keys | table.key | index.included)
    raise LookupError(f"no index {index_name} in the template")


def _timed(results: dict[str, list[float]], route: str, call: Any) -> None:
    started = time.perf_counter()
    call()
    results.setdefault(route, []).append((time.perf_counter() - started) * 1000)


def read_cache_bench(stack: Any, *, runs: int = 30, timeout: float = 120) -> ReadCacheResult:
    from task_common.contract import TERMINAL_STATUSES, USER_INDEX
    from taskrail.cost.reads import GET_RESULT, GET_TASK, LIST_TASKS
    from taskrail.item_size import item_size_bytes
    from taskrail.local.accounts import user_client

    client = user_client(stack.info, "alice")
    result = ReadCacheResult()
    ids = [client.submit("text.stats", {"text": f"{TEXT} {n}"})["taskId"] for n in range(TASKS)]
    result.statuses = [str(t.get("status")) for t in client.wait(ids, timeout=timeout, interval=0.1).values()]

    submitted = time.monotonic()
    polled = client.submit("text.stats", {"text": TEXT})["taskId"]
    deadline, seen = submitted + timeout, None
    while time.monotonic() < deadline:
        task = client.get(polled)
        state = (str(task["status"]), int(task.get("progress", 0)))
        if state != seen:
            result.changes.append((time.monotonic() - submitted, *state))
            seen = state
        if state[0] in TERMINAL_STATUSES:
            break
        time.sleep(POLL_SECONDS)

    for n in range(runs):
        task_id = ids[n % len(ids)]
        _timed(result.latency_ms, GET_TASK, partial(client.get, task_id))
        _timed(result.latency_ms, LIST_TASKS, client.list_page)
        _timed(result.latency_ms, GET_RESULT, partial(client.result, task_id))

    projected = _owner_index_attributes(stack.template, USER_INDEX)
    dynamodb = stack.clients("dynamodb")
    for task_id in [*ids, polled]:
        item = dynamodb.get_item(TableName=stack.info.tasks_table, Key={"taskId": {"S": task_id}})["Item"]
        result.task_item_bytes.append(item_size_bytes(item))
        result.index_entry_bytes.append(item_size_bytes({k: v for k, v in item.items() if k in projected}))
    return result


def _money(usd_per_read: float) -> str:
    from taskrail.cost.reads import per_million

    return f"${per_million(usd_per_read):.3f}"


def read_cache_lines(result: ReadCacheResult | None) -> str:
    """The section as markdown (printed by `make bench` and appended to docs/BENCHMARKS.md)."""
    title = "## 10. Read routes and caching (local stack latency; AWS read cost from real item sizes)"
    if result is None or not result.task_item_bytes:
        return f"{title}\n\nnot measured (the phase failed)\n"
    from taskrail.cost import load_prices
    from taskrail.cost.reads import SKIPPED, ItemSizes, api_request_usd, cache_costs, route_reads

    prices = load_prices()
    sizes = ItemSizes(max(result.task_item_bytes), max(result.index_entry_bytes))
    routes = route_reads(sizes)
    lines = [
        title,
        "",
        f"Items read: a task's item {min(result.task_item_bytes)}-{max(result.task_item_bytes)} bytes, its "
        f"owner-index entry {min(result.index_entry_bytes)}-{max(result.index_entry_bytes)} bytes (DynamoDB sizes of "
        f"{len(result.task_item_bytes)} finished text.stats tasks; the largest is priced). Every read also pays API "
        f"Gateway {_money(api_request_usd(prices))} per million, cached or not.",
        "",
        "| route | DynamoDB read | read units | $/1M reads: DynamoDB | all behind the method | local p50 | local p95 |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for route in routes:
        ms = result.latency_ms.get(route.route, [])
        lines.append(
            f"| {route.route} | {route.read} | {route.read_units:g} | {_money(route.dynamodb_usd(prices))} | "
            f"{_money(route.backend_usd(prices))} | {fmt_ms(statistics.median(ms) if ms else float('nan'))} | "
            f"{fmt_ms(percentile(ms, 95))} |"
        )
    lines += [
        "",
        "| option | route | $/month fixed | $/1M reads added | $/1M hits saved | break-even (hits/s, all hits) | "
        "owner check on a hit | note |",
        "|---|---|---:|---:|---:|---:|---|---|",
    ]
    for cost in cache_costs(routes, prices):
        even = cost.break_even_hits_per_second()
        lines.append(
            f"| {cost.option} | {cost.route} | ${cost.monthly_usd:.2f} | {_money(cost.added_per_read_usd)} | "
            f"{_money(cost.saved_per_hit_usd)} | {'never pays' if even is None else f'{even:.1f}/s'} | "
            f"{cost.owner_check_on_hit.upper() if cost.owner_check_on_hit == SKIPPED else cost.owner_check_on_hit} | "
            f"{cost.note} |"
        )
    changes = ", ".join(f"{s:.2f} s {status} {progress}%" for s, status, progress in result.changes)
    lines += [
        "",
        f"Staleness: one task polled every {POLL_SECONDS * 1000:.0f} ms from its submission changed "
        f"{max(0, len(result.changes) - 1)} time(s): {changes}. A cached answer is wrong for the rest of its TTL "
        "after each change (API Gateway's default TTL is 300 s).",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    """``python -m bench.read_cache``: a stack of its own (time scale 0.01, no console)."""
    import argparse

    from taskrail.local.stack import LocalStack, StackOptions

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30, help="requests per route (default 30)")
    args = parser.parse_args()
    stack = LocalStack(StackOptions(time_scale=0.01, with_console=False))
    stack.start()
    try:
        result = read_cache_bench(stack, runs=args.runs)
    finally:
        stack.stop()
    print(read_cache_lines(result))
    return 0


if __name__ == "__main__":
    import os
    import sys

    code = main()
    sys.stdout.flush()
    os._exit(code)
