"""`make demo`: real tasks through the real design on this machine, then a replay of the DLQ.

HTTP request → VTL → DynamoDB → stream → pipe → Step Functions → Lambda handlers (awslambdaric workers)
→ S3/DynamoDB/SNS → status back over HTTP. Exits 0 only if every expectation held. ``--keep`` leaves the stack
running afterwards (console, API and `taskrail` commands on the demo's tasks) until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from task_common.contract import TERMINAL_STATUSES

if TYPE_CHECKING:
    from taskrail.client import TaskrailClient
    from taskrail.local.stack import LocalStack
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
    #: how many times the work ran in the latest execution: 1 + the retries its history shows (the task's
    #: ``attempt`` counts executions: 1 for a task that failed twice and succeeded on its workflow's retry)
    tries: int = 0


def planned_tasks() -> list[Expectation]:
    from infra.synth import DEFAULT_LIFECYCLE_TYPE
    from taskrail.local.users import ALICE
    from workflows.lifecycle_type import EXPRESS

    # An EXPRESS lifecycle (TASKRAIL_LIFECYCLE_TYPE=EXPRESS) refuses diagnostic.sleep at Validate: its tries could
    # outlast the 5-minute execution (docs/DECISIONS.md, "An EXPRESS lifecycle").
    sleeps_to = "REJECTED" if DEFAULT_LIFECYCLE_TYPE == EXPRESS else "SUCCEEDED"

    plan = [Expectation(f"text #{i}", "text.stats", {"text": POEM * i, "top": 3}, "SUCCEEDED") for i in range(1, 7)]
    plan += [Expectation(f"csv #{i}", "csv.summary", {"csv": SALES_CSV * i}, "SUCCEEDED") for i in range(1, 6)]
    plan += [
        Expectation("csv from S3", "csv.summary", {"source": f"users/{ALICE.principal_id}/sales.csv"}, "SUCCEEDED"),
        Expectation("flaky (2 failures)", "diagnostic.flaky", {"failures": 2}, "SUCCEEDED"),
        Expectation("sleep 1 s", "diagnostic.sleep", {"seconds": 1, "steps": 4}, sleeps_to),
        Expectation("invalid params", "text.stats", {"text": "x", "top": 1000}, "REJECTED"),
        Expectation("source of another user", "csv.summary", {"source": "users/someone-else/x.csv"}, "REJECTED"),
        Expectation("poison", "diagnostic.poison", {}, "FAILED"),
        Expectation("text (same key twice)", "text.stats", {"text": "idempotent"}, "SUCCEEDED"),
    ]
    return plan


def progress_table(plan: list[Expectation], tasks: dict[str, dict[str, Any]]) -> Table:
    table = Table(title="tasks", expand=False)
    for column in ("task", "type", "status", "progress", "tries"):
        table.add_column(column)
    for item in plan:
        task = tasks.get(item.task_id, {})
        bar = "█" * (int(task.get("progress", 0)) // 10)
        table.add_row(
            item.label,
            item.task_type,
            task.get("status", "…"),
            f"{bar:<10} {task.get('progress', 0)}%",
            str(item.tries or "-"),
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
    for column in ("task", "type", "status", "expected", "tries", "executions", "duration", "result / error"):
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
            str(item.tries),
            str(task.get("attempt", 0)),
            f"{item.finished_at - item.submitted_at:.1f} s",
            outcome,
        )
    return table


def tries_of(events: list[dict[str, Any]]) -> int:
    """How many times the work ran in one execution: 1, plus each retry its history shows."""
    from taskrail.history import execution_summary

    return 1 + execution_summary(events)[1]


def count_tries(operator: Operator, item: Expectation, task: dict[str, Any]) -> None:
    if task.get("executionArn"):
        item.tries = tries_of(operator.execution_events(task["executionArn"]))


def refuse_invalid_request(client: TaskrailClient, failures: list[str]) -> None:
    from taskrail.client import ApiError

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


def watch_until_terminal(
    client: TaskrailClient, operator: Operator, plan: list[Expectation], failures: list[str]
) -> None:
    from rich.live import Live

    console.rule("3. watch them run (live)")
    with Live(progress_table(plan, {}), console=console, refresh_per_second=8) as live:

        def update(tasks: dict[str, dict[str, Any]]) -> None:
            for item in plan:
                task = tasks.get(item.task_id, {})
                if task.get("status") in TERMINAL_STATUSES and not item.finished_at:
                    item.finished_at = time.monotonic()
                    count_tries(operator, item, task)  # once, at the end: the history is complete
                elif task.get("status") == "RUNNING":
                    count_tries(operator, item, task)
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
    console.print(f"  poison task is now {replayed['status']} (execution {replayed['attempt']})")
    if replayed["status"] != "SUCCEEDED":
        failures.append(f"replayed poison task is {replayed['status']}")
    if operator.dlq_messages():
        failures.append("the DLQ is not empty after the replay")
    if operator.replay_dlq():
        failures.append("a second replay found something to start")


def check_iam(stack: LocalStack, failures: list[str]) -> None:
    """Every AWS call of the demo was made as its principal and evaluated (issue 12); none may have been denied:
    a denial on a path that retries or dead-letters (the outbox, a DLQ write) would otherwise pass unnoticed."""
    iam = stack.iam
    if iam is None or not iam.enforce:
        failures.append("IAM enforcement is off (TASKRAIL_IAM=off is for debugging only)")
        return
    records = iam.log.records
    denied = [r for r in records if not r.allowed]
    principals = {r.principal for r in records}
    console.print(f"  IAM decisions: {len(records)} by {len(principals)} principals; IAM denials: {len(denied)}")
    for record in denied[:5]:
        console.print(f"    denied {record.principal.rsplit('/', 1)[-1]}: {record.action} on {record.resource}")
    if denied:
        failures.append(f"IAM denials: {len(denied)} (expected 0)")


def run_demo(*, keep: bool = False) -> int:
    from taskrail.local import accounts
    from taskrail.local.stack import LocalStack, StackOptions, local_client
    from taskrail.local.users import ALICE
    from taskrail.operator import Operator

    failures: list[str] = []
    started = time.monotonic()
    with console.status("starting the local stack (moto, functions via awslambdaric, pipes, API, console)…"):
        stack = LocalStack(StackOptions(time_scale=TIME_SCALE))
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
        watch_until_terminal(client, operator, plan, failures)
        poison = next(i for i in plan if i.task_type == "diagnostic.poison")
        fix_and_replay(client, operator, s3, info.results_bucket, poison, failures)
        console.rule("result")
        check_iam(stack, failures)
        console.print(f"demo wall time {time.monotonic() - started:.1f} s")
        for failure in failures:
            console.print(f"[red]✗ {failure}")
        if not failures:
            console.print("[green]✓ every expectation held")
        console.print(f"console        {info.console_url} (the demo's tasks, as alice)")
        if keep:
            explore(stack)
        else:
            console.print(
                "the stack stops now; to explore it, run `python -m taskrail.demo --keep` (it stays up until "
                "Ctrl-C, for the console and `taskrail list`), or start one with `taskrail local up`"
            )
    finally:
        with console.status("stopping the local stack…"):
            stack.stop()
    return 1 if failures else 0


def explore(stack: LocalStack) -> None:
    """Keep the demo's stack up, found by `taskrail` commands (its state file), until Ctrl-C or SIGTERM."""
    from taskrail.local.state import STATE_FILE

    stopping: list[int] = []
    # As `taskrail local up` waits: Python runs signal handlers in the main thread, whichever of the stack's
    # threads the signal reached, so the main thread checks the flag the handlers set (installed first: a
    # signal from then on stops the stack cleanly).
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, lambda number, _frame: stopping.append(number))
    stack.write_state(STATE_FILE)
    console.print(
        "the stack stays up: `taskrail list` (alice's tasks), `taskrail history <taskId>`, `taskrail logs "
        "<taskId>`; Ctrl-C to stop"
    )
    while not stopping:
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m taskrail.demo",
        description="Real tasks through the real design on a local stack (the same as `make demo`), then a replay "
        "of the dead-letter queue. Exits 0 only if every expectation held.",
    )
    parser.add_argument(
        "--keep", action="store_true", help="leave the stack running afterwards (console, `taskrail` commands)"
    )
    args = parser.parse_args(argv)
    return run_demo(keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
