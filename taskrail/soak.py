"""`make soak`: many tasks through the local stack under injected faults; then fix the poison and replay.

Accounts for every accepted task and counts duplicated side effects. The invariants (0 lost, 0 duplicated
side effects, DLQ messages one-to-one with FAILED tasks) are what ``tests/reliability`` asserts on a small run.

    python -m taskrail.soak --tasks 1000 [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import BaseModel

from taskrail.client import TERMINAL_STATUSES, TaskrailClient
from taskrail.local.faults import FaultPlan
from taskrail.local.stack import LocalStack, StackOptions, local_client

TIME_SCALE = 0.01
POISON_SHARE = 0.05


class SoakReport(BaseModel):
    tasks: int
    accepted: int
    succeeded: int
    rejected: int
    failed_to_dlq: int
    failed_by_error: dict[str, int]
    dlq_messages: int
    dlq_matches_failed: bool
    replayed: int
    succeeded_after_replay: int
    lost: int
    duplicated_side_effects: int
    duplicates: list[str]
    replay_details: list[str]
    faults_injected: dict[str, int]
    wall_seconds: float
    final_statuses: dict[str, int]


def default_plan(seed: int = 7) -> FaultPlan:
    return FaultPlan(
        seed=seed,
        transient={"ProcessTaskFunction": 0.20},
        throttled={"ValidateTaskFunction": 0.03, "ProcessTaskFunction": 0.03},
        duplicate_deliveries=0.10,
        kill_every={"ProcessTaskFunction": 7.0},
        poller_outage=(3.0, 2.0),
    )


def planned_submissions(count: int, seed: int) -> list[tuple[str, dict[str, Any]]]:
    chooser = random.Random(seed)
    plan: list[tuple[str, dict[str, Any]]] = []
    for index in range(count):
        roll = chooser.random()
        if roll < POISON_SHARE:
            plan.append(("diagnostic.poison", {}))
        elif roll < POISON_SHARE + 0.02:
            plan.append(("text.stats", {"text": "x", "top": 1000}))  # rejected by Validate
        elif index % 2:
            plan.append(("text.stats", {"text": f"soak task {index} " * 20}))
        else:
            plan.append(("csv.summary", {"csv": f"a,b\n{index},2\n3,4\n"}))
    return plan


def _notifications(stack: LocalStack) -> Counter[tuple[str, str]]:
    assert stack.info is not None
    sqs = stack.clients("sqs")
    seen: Counter[tuple[str, str]] = Counter()
    while True:
        batch = sqs.receive_message(
            QueueUrl=stack.info.notifications_queue_url, MaxNumberOfMessages=10, VisibilityTimeout=600
        ).get("Messages", [])
        if not batch:
            return seen
        for message in batch:
            body = json.loads(message["Body"])
            seen[(body["taskId"], body["outcome"])] += 1


def _result_versions(stack: LocalStack) -> Counter[str]:
    assert stack.info is not None
    s3 = stack.clients("s3")
    counts: Counter[str] = Counter()
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=stack.info.results_bucket, Prefix="tasks/"):
        for version in page.get("Versions", []):
            if version["Key"].endswith("/result.json"):
                counts[version["Key"].split("/")[1]] += 1
    return counts


def run_soak(count: int, *, plan: FaultPlan | None = None, seed: int = 7, timeout: float = 1800) -> SoakReport:
    started = time.monotonic()
    stack = LocalStack(
        StackOptions(time_scale=TIME_SCALE, with_console=False, concurrency=3, faults=plan or default_plan(seed))
    )
    info = stack.start()
    try:
        client = TaskrailClient.for_stack(info, "alice", lambda s: local_client(s, info.aws_endpoint_url))
        submissions = planned_submissions(count, seed)
        with ThreadPoolExecutor(max_workers=8) as pool:
            accepted = list(pool.map(lambda job: client.submit(job[0], job[1])["taskId"], submissions))
        tasks = client.wait(accepted, timeout=timeout, interval=1.0)
        first = Counter(t["status"] for t in tasks.values())
        failed = {i for i, t in tasks.items() if t["status"] == "FAILED"}
        dlq = client.dlq_messages(max_messages=count)
        dlq_ids = [m["taskId"] for m in dlq]

        stack.clients("s3").put_object(Bucket=info.results_bucket, Key="diagnostics/poison-fixed", Body=b"fixed")
        replayed = [o for o in client.replay_dlq() if o.started]
        after = client.wait([o.task_id for o in replayed], timeout=timeout, interval=1.0) if replayed else {}
        final = {**tasks, **after}
        notifications = _notifications(stack)
        versions = _result_versions(stack)
        duplicates = [f"notification {k[0]} {k[1]} x{n}" for k, n in notifications.items() if n > 1]
        duplicates += [f"result {task_id} x{n}" for task_id, n in versions.items() if n > 1]
        duplicated = sum(n - 1 for n in notifications.values() if n > 1) + sum(
            v - 1 for v in versions.values() if v > 1
        )
        replay_details = [f"{o.task_id} {o.detail}" for o in replayed]
        injected = dict(stack.faults.injected) if stack.faults else {}
    finally:
        stack.stop()
    return SoakReport(
        tasks=count,
        accepted=len(accepted),
        succeeded=first["SUCCEEDED"],
        rejected=first["REJECTED"],
        failed_to_dlq=len(failed),
        failed_by_error=dict(Counter(tasks[i].get("error", "?") for i in failed)),
        dlq_messages=len(dlq),
        dlq_matches_failed=sorted(dlq_ids) == sorted(failed),
        replayed=len(replayed),
        succeeded_after_replay=sum(1 for t in after.values() if t["status"] == "SUCCEEDED"),
        lost=sum(1 for t in final.values() if t["status"] not in TERMINAL_STATUSES) + (count - len(final)),
        duplicated_side_effects=duplicated,
        duplicates=duplicates,
        replay_details=replay_details,
        faults_injected=injected,
        wall_seconds=round(time.monotonic() - started, 1),
        final_statuses=dict(Counter(t["status"] for t in final.values())),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report = run_soak(args.tasks, seed=args.seed)
    if args.json:
        print(report.model_dump_json())
    else:
        for key, value in report.model_dump().items():
            shown = (
                value if not isinstance(value, list) or len(value) <= 3 else [*value[:3], f"… ({len(value)} in all)"]
            )
            print(f"{key:>26}  {shown}")
    ok = report.lost == 0 and report.duplicated_side_effects == 0 and report.dlq_matches_failed
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
