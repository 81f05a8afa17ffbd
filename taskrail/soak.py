"""`make soak`: many tasks through the local stack under injected faults; then fix the poison and replay.

Accounts for every accepted task: its final status, and each side effect it must have had exactly once (a
notification per outcome it reached, a result when it succeeded). The invariants (0 lost, 0 missing and 0
duplicated side effects, DLQ messages one-to-one with FAILED tasks) are what ``tests/reliability`` asserts on a
small run.

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

from task_common.contract import OUTCOME_DETAIL_TYPE, TERMINAL_STATUSES
from taskrail.client import TaskrailClient
from taskrail.local import accounts
from taskrail.local.faults import FaultPlan
from taskrail.local.stack import LocalStack, StackOptions
from taskrail.operator import Operator

TIME_SCALE = 0.01
POISON_SHARE = 0.05
# Outcome notifications travel event bus -> rule -> SNS -> archive queue after the status is written: the
# accounting polls for the expected ones up to this long before it counts one as missing.
NOTIFICATION_DEADLINE_SECONDS = 60.0
NOTIFIED_OUTCOMES = tuple(OUTCOME_DETAIL_TYPE)  # the outcomes the workflow publishes
IAM_DENIALS_SHOWN = 10


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
    lost_tasks: list[str]
    missing_notifications: int
    missing_results: int
    missing: list[str]
    unexpected_notifications: list[str]
    duplicated_side_effects: int
    duplicates: list[str]
    replay_details: list[str]
    faults_injected: dict[str, int]
    wall_seconds: float
    final_statuses: dict[str, int]
    iam_enforced: bool  # every principal's call evaluated against the template's policies (issue 12)
    iam_decisions: int
    iam_denials: int  # a denial on a retried or dead-lettered path would otherwise pass unnoticed
    iam_denied: list[str]  # "principal: action on resource", the first few


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


class Accounting(BaseModel):
    """Every task's side effects against what its statuses say it must have had."""

    lost: list[str]
    missing_notifications: list[str]
    missing_results: list[str]
    unexpected_notifications: list[str]
    duplicates: list[str]

    @property
    def duplicated(self) -> int:
        return sum(int(d.rsplit(" x", 1)[1]) - 1 for d in self.duplicates)


def expected_notifications(first: dict[str, str], after: dict[str, str]) -> set[tuple[str, str]]:
    """One notification per outcome a task reached: its first outcome, and its outcome after a replay."""
    expected = {(task_id, status) for task_id, status in first.items() if status in NOTIFIED_OUTCOMES}
    return expected | {(task_id, status) for task_id, status in after.items() if status in NOTIFIED_OUTCOMES}


def account(
    accepted: list[str],
    first: dict[str, str],
    after: dict[str, str],
    notifications: Counter[tuple[str, str]],
    result_versions: Counter[str],
) -> Accounting:
    """``first``/``after``: each task's status after the run and after the replay (absent: never seen)."""
    final = {task_id: after.get(task_id, first.get(task_id, "UNKNOWN")) for task_id in accepted}
    expected = expected_notifications(first, after)
    succeeded = {task_id for task_id, status in final.items() if status == "SUCCEEDED"}
    return Accounting(
        lost=sorted(f"{task_id} {status}" for task_id, status in final.items() if status not in TERMINAL_STATUSES),
        missing_notifications=sorted(f"{t} {o}" for t, o in expected if notifications[(t, o)] == 0),
        missing_results=sorted(t for t in succeeded if result_versions[t] == 0),
        unexpected_notifications=sorted(
            f"{t} {o} x{n}" for (t, o), n in notifications.items() if (t, o) not in expected
        ),
        duplicates=[f"notification {k[0]} {k[1]} x{n}" for k, n in sorted(notifications.items()) if n > 1]
        + [f"result {task_id} x{n}" for task_id, n in sorted(result_versions.items()) if n > 1],
    )


def _notifications(
    stack: LocalStack, expected: set[tuple[str, str]], deadline_seconds: float = NOTIFICATION_DEADLINE_SECONDS
) -> Counter[tuple[str, str]]:
    """Drains the archive queue (each message hidden once received, so counted once) until every expected
    notification arrived or the deadline passed; the count includes whatever else arrived."""
    assert stack.info is not None
    sqs = stack.clients("sqs")
    seen: Counter[tuple[str, str]] = Counter()
    deadline = time.monotonic() + deadline_seconds
    while True:
        batch = sqs.receive_message(
            QueueUrl=stack.info.notifications_queue_url, MaxNumberOfMessages=10, VisibilityTimeout=3600
        ).get("Messages", [])
        for message in batch:
            body = json.loads(message["Body"])
            seen[(body["taskId"], body["outcome"])] += 1
        if not batch:
            if expected <= set(seen) or time.monotonic() > deadline:
                return seen
            time.sleep(0.2)


def _result_versions(stack: LocalStack) -> Counter[str]:
    assert stack.info is not None
    s3 = stack.clients("s3")
    counts: Counter[str] = Counter()
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=stack.info.results_bucket, Prefix="tasks/"):
        for version in page.get("Versions", []):
            if version["Key"].endswith("/result.json"):
                counts[version["Key"].split("/")[1]] += 1
    return counts


def _statuses(client: TaskrailClient, task_ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    """Each task as last seen: when some are still not terminal at the deadline they are returned as they are
    (and counted as lost), rather than raising before anything is accounted for."""
    seen: dict[str, dict[str, Any]] = {}
    try:
        return client.wait(task_ids, timeout=timeout, interval=1.0, on_update=seen.update)
    except TimeoutError:
        return seen


# The outbox (TaskChangesFunction) sends a FAILED task's DLQ message just after the task is marked FAILED.
DLQ_DEADLINE_SECONDS = 60.0


def _dead_letters(operator: Operator, failed: set[str], count: int, *, timeout: float) -> list[dict[str, Any]]:
    """The DLQ once it holds a message for every failed task, or as it is at the deadline (a missing or extra
    message is then what the report shows)."""
    deadline = time.monotonic() + timeout
    while True:
        dlq = operator.dlq_messages(max_messages=count)
        if {m["taskId"] for m in dlq} >= failed or time.monotonic() > deadline:
            return dlq
        time.sleep(0.5)  # the polling interval; the deadline bounds the wait


def run_soak(count: int, *, plan: FaultPlan | None = None, seed: int = 7, timeout: float = 1800) -> SoakReport:
    started = time.monotonic()
    stack = LocalStack(
        StackOptions(time_scale=TIME_SCALE, with_console=False, concurrency=3, faults=plan or default_plan(seed))
    )
    info = stack.start()
    try:
        client = accounts.user_client(info, "alice")
        operator = Operator.over_aws(client, stack.clients)
        submissions = planned_submissions(count, seed)
        with ThreadPoolExecutor(max_workers=8) as pool:
            accepted = list(pool.map(lambda job: client.submit(job[0], job[1])["taskId"], submissions))
        tasks = _statuses(client, accepted, timeout)
        first = Counter(t["status"] for t in tasks.values())
        failed = {i for i, t in tasks.items() if t["status"] == "FAILED"}
        dlq = _dead_letters(operator, failed, count, timeout=DLQ_DEADLINE_SECONDS)
        dlq_ids = [m["taskId"] for m in dlq]

        stack.clients("s3").put_object(Bucket=info.results_bucket, Key="diagnostics/poison-fixed", Body=b"fixed")
        replayed = [o for o in operator.replay_dlq() if o.started]
        after = _statuses(client, [o.task_id for o in replayed], timeout) if replayed else {}
        final = {**tasks, **after}
        first_status = {task_id: task["status"] for task_id, task in tasks.items()}
        after_status = {task_id: task["status"] for task_id, task in after.items()}
        notifications = _notifications(stack, expected_notifications(first_status, after_status))
        accounting = account(accepted, first_status, after_status, notifications, _result_versions(stack))
        replay_details = [f"{o.task_id} {o.detail}" for o in replayed]
        injected = dict(stack.faults.injected) if stack.faults else {}
        iam_records = stack.iam.log.records if stack.iam is not None else []
        iam_enforced = stack.iam is not None and stack.iam.enforce
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
        lost=len(accounting.lost) + (count - len(accepted)),
        lost_tasks=accounting.lost,
        missing_notifications=len(accounting.missing_notifications),
        missing_results=len(accounting.missing_results),
        missing=[f"notification {m}" for m in accounting.missing_notifications]
        + [f"result {m}" for m in accounting.missing_results],
        unexpected_notifications=accounting.unexpected_notifications,
        duplicated_side_effects=accounting.duplicated,
        duplicates=accounting.duplicates,
        replay_details=replay_details,
        faults_injected=injected,
        wall_seconds=round(time.monotonic() - started, 1),
        final_statuses=dict(Counter(t["status"] for t in final.values())),
        iam_enforced=iam_enforced,
        iam_decisions=len(iam_records),
        iam_denials=sum(1 for r in iam_records if not r.allowed),
        iam_denied=[
            f"{r.principal.rsplit('/', 1)[-1]}: {r.action} on {r.resource}" for r in iam_records if not r.allowed
        ][:IAM_DENIALS_SHOWN],
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
    ok = (
        report.lost == 0
        and report.missing_notifications == report.missing_results == 0
        and not report.unexpected_notifications
        and report.duplicated_side_effects == 0
        and report.dlq_matches_failed
        and report.iam_enforced
        and report.iam_denials == 0
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
