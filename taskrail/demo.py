"""`make demo`: real tasks through the real design on this machine, then a replay of the DLQ.

HTTP request → VTL → DynamoDB → stream → pipe → Step Functions → Lambda handlers (awslambdaric workers)
→ S3/DynamoDB/SNS → status back over HTTP. Exits 0 only if every expectation held.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from task_common.contract import TERMINAL_STATUSES
from taskrail.client import ApiError, TaskrailClient
from taskrail.local import accounts
from taskrail.local.stack import LocalStack, StackOptions, local_client
from taskrail.local.users import ALICE
from taskrail.operator import Operator

console = Console(width=None if sys.stdout.isatty() else 150)
# Retry intervals elapse 20x faster than on AWS, so the demo takes seconds, not minutes.
TIME_SCALE = 0.05
SALES_CSV = "region,units,price\nnorth,10,2.5\nsouth,7,3.0\nnorth,3,2.5\neast,12,1.75\nsouth,1,3.0\n"
POEM = "The river runs past the mill,\nthe mill turns and the river runs;\nstill the river, still the mill.\n"


@dataclass
class Expectation:
    label: str
    task_type: str
    params: dict[str, Any]
    expected: str
    task_id: str = ""
    submitted_at: float = 0.0
    finished_at: float = 0.0
    final: dict[str, Any] = field(default_factory=dict)


def planned_tasks() -> list[Expectation]:
    plan = [Expectation(f"text #{i}", "text.stats", {"text": POEM * i, "top": 3}, "SUCCEEDED") for i in range(1, 7)]
    plan += [Expectation(f"csv #{i}", "csv.summary", {"csv": SALES_CSV * i}, "SUCCEEDED") for i in range(1, 6)]
    plan += [
        Expectation("csv from S3", "csv.summary", {"source": f"users/{ALICE.principal_id}/sales.csv"}, "SUCCEEDED"),
        Expectation("flaky (2 failures)", "diagnostic.flaky", {"failures": 2}, "SUCCEEDED"),
        Expectation("sleep 1 s", "diagnostic.sleep", {"seconds": 1, "steps": 4}, "SUCCEEDED"),
        Expectation("invalid params", "text.stats", {"text": "x", "top": 1000}, "REJECTED"),
        Expectation("source of another user", "csv.summary", {"source": "users/someone-else/x.csv"}, "REJECTED"),
        Expectation("poison", "diagnostic.poison", {}, "FAILED"),
        Expectation("text (same key twice)", "text.stats", {"text": "idempotent"}, "SUCCEEDED"),
    ]
    return plan


def progress_table(plan: list[Expectation], tasks: dict[str, dict[str, Any]]) -> Table:
    table = Table(title="tasks", expand=False)
    for column in ("task", "type", "status", "progress", "attempts"):
        table.add_column(column)
    for item in plan:
        task = tasks.get(item.task_id, {})
        bar = "█" * (int(task.get("progress", 0)) // 10)
        table.add_row(
            item.label,
            item.task_type,
            task.get("status", "…"),
            f"{bar:<10} {task.get('progress', 0)}%",
            str(task.get("attempt", 0)),
        )
    return table


def cause_message(cause: str) -> str:
    """A Lambda error's cause is its JSON error body: show the message."""
    try:
        return str(json.loads(cause).get("errorMessage", cause))
    except (ValueError, AttributeError):
        return cause


def summary_table(plan: list[Expectation]) -> Table:
    table = Table(title="summary")
    for column in ("task", "type", "status", "expected", "attempt", "duration", "result / error"):
        table.add_column(column)
    for item in plan:
        task = item.final
        outcome = task.get("resultLocation") or f"{task.get('error', '')}: {cause_message(task.get('cause', ''))[:70]}"
        mark = "[green]" if task.get("status") == item.expected else "[red]"
        table.add_row(
            item.label,
            item.task_type,
            f"{mark}{task.get('status')}",
            item.expected,
            str(task.get("attempt", 0)),
            f"{item.finished_at - item.submitted_at:.1f} s",
            outcome,
        )
    return table


def refuse_invalid_request(client: TaskrailClient, failures: list[str]) -> None:
    console.rule("1. a request invalid at the edge is refused with the reason")
    try:
        client.submit("Not A Type!", {})
        failures.append("an invalid request was accepted")
    except ApiError as error:
        console.print(f"  POST /tasks → {error.status} {error.message}", markup=False)
        if error.status != 400:
            failures.append(f"invalid request got {error.status}, expected 400")


def submit_all(client: TaskrailClient, plan: list[Expectation], failures: list[str]) -> None:
    console.rule("2. submit tasks over HTTP (SigV4-signed as alice); the API answers 202 at once")
    for item in plan:
        key = "demo-same-key" if "same key" in item.label else None
        item.submitted_at = time.monotonic()
        item.task_id = client.submit(item.task_type, item.params, idempotency_key=key)["taskId"]
    again = client.submit("text.stats", {"text": "idempotent"}, idempotency_key="demo-same-key")
    console.print(f"  {len(plan)} tasks accepted; the same Idempotency-Key again → {again['taskId'][:24]}…")
    if again["taskId"] != plan[-1].task_id:
        failures.append("the same Idempotency-Key produced a second task")


def watch_until_terminal(client: TaskrailClient, plan: list[Expectation], failures: list[str]) -> None:
    console.rule("3. watch them run (live)")
    with Live(progress_table(plan, {}), console=console, refresh_per_second=8) as live:

        def update(tasks: dict[str, dict[str, Any]]) -> None:
            for item in plan:
                if tasks.get(item.task_id, {}).get("status") in TERMINAL_STATUSES and not item.finished_at:
                    item.finished_at = time.monotonic()
            live.update(progress_table(plan, tasks))

        final = client.wait([i.task_id for i in plan], timeout=180, on_update=update)
    for item in plan:
        item.final = final[item.task_id]
        if item.final["status"] != item.expected:
            failures.append(f"{item.label}: {item.final['status']}, expected {item.expected}")
    console.print(summary_table(plan))


def fix_and_replay(
    client: TaskrailClient, operator: Operator, s3: Any, bucket: str, poison: Expectation, failures: list[str]
) -> None:
    # The DLQ message leaves from the FAILED item (the task-changes pipe's outbox), just after the status changed.
    deadline = time.monotonic() + 30
    while not (dlq := operator.dlq_messages()) and time.monotonic() < deadline:
        time.sleep(0.2)
    console.print(f"  dead-letter queue: {len(dlq)} message(s): {[m['error'] for m in dlq]}")
    if [m["taskId"] for m in dlq] != [poison.task_id]:
        failures.append(f"DLQ should hold exactly the poison task, holds {[m['taskId'] for m in dlq]}")
    console.rule("4. fix the poison, replay the DLQ")
    s3.put_object(Bucket=bucket, Key="diagnostics/poison-fixed", Body=b"fixed")
    for outcome in operator.replay_dlq():
        console.print(f"  replay {outcome.task_id[:24]}… → execution {outcome.execution_name[:40]}: {outcome.detail}")
    replayed = client.wait([poison.task_id], timeout=60)[poison.task_id]
    console.print(f"  poison task is now {replayed['status']} (attempt {replayed['attempt']})")
    if replayed["status"] != "SUCCEEDED":
        failures.append(f"replayed poison task is {replayed['status']}")
    if operator.dlq_messages():
        failures.append("the DLQ is not empty after the replay")
    if operator.replay_dlq():
        failures.append("a second replay found something to start")


def run_demo() -> int:
    failures: list[str] = []
    started = time.monotonic()
    with console.status("starting the local stack (moto, functions via awslambdaric, pipes, API)…"):
        stack = LocalStack(StackOptions(time_scale=TIME_SCALE, with_console=False))
        info = stack.start()
    try:
        console.print(f"[bold]local stack up[/] in {time.monotonic() - started:.1f} s")
        console.print(f"  API            {info.api_url}\n  AWS endpoint   {info.aws_endpoint_url}")
        client = accounts.user_client(info, "alice")
        operator = Operator.over_aws(client, stack.clients)
        s3 = local_client("s3", info.aws_endpoint_url)
        s3.put_object(Bucket=info.results_bucket, Key=f"users/{ALICE.principal_id}/sales.csv", Body=SALES_CSV.encode())
        plan = planned_tasks()
        refuse_invalid_request(client, failures)
        submit_all(client, plan, failures)
        watch_until_terminal(client, plan, failures)
        poison = next(i for i in plan if i.task_type == "diagnostic.poison")
        fix_and_replay(client, operator, s3, info.results_bucket, poison, failures)
    finally:
        with console.status("stopping the local stack…"):
            stack.stop()
    console.rule("result")
    console.print(f"demo wall time {time.monotonic() - started:.1f} s")
    for failure in failures:
        console.print(f"[red]✗ {failure}")
    if not failures:
        console.print("[green]✓ every expectation held")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(run_demo())
