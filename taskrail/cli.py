"""`taskrail`: thin commands over taskrail.client and taskrail.local (the functions tests call)."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from taskrail.client import ApiError, Endpoints, TaskrailClient

app = typer.Typer(
    help="Storage-first task workflows on Step Functions, on AWS or on this machine.", no_args_is_help=True
)
local_app = typer.Typer(help="The local stack (emulated AWS services on 127.0.0.1).", no_args_is_help=True)
app.add_typer(local_app, name="local")
console = Console()

UserOption = Annotated[str, typer.Option("--user", help="local user (alice or bob)")]
StackOption = Annotated[str | None, typer.Option("--stack", help="a deployed stack's name (default: the local stack)")]
JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def make_client(user: str, stack: str | None) -> TaskrailClient:
    if stack is None:
        from taskrail.local.stack import STATE_FILE

        if not STATE_FILE.exists():
            console.print(
                "[red]no local stack is running.[/] Start one with `taskrail local up` (or pass --stack NAME)."
            )
            raise typer.Exit(2)
        return TaskrailClient.local(user)
    return aws_client(stack)


def aws_client(stack: str) -> TaskrailClient:
    import boto3

    session = boto3.Session()
    cloudformation = session.client("cloudformation")
    try:
        outputs = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]
    except Exception as error:
        names = [
            s["StackName"]
            for s in cloudformation.list_stacks(StackStatusFilter=["CREATE_COMPLETE", "UPDATE_COMPLETE"]).get(
                "StackSummaries", []
            )
        ]
        console.print(f"[red]no stack named {stack} in {session.region_name}[/] ({error}); deployed stacks are {names}")
        raise typer.Exit(2) from error
    values = {o["OutputKey"]: o["OutputValue"] for o in outputs}
    endpoints = Endpoints(
        api_url=values["ApiUrl"].rstrip("/"),
        region=session.region_name or "us-east-1",
        tasks_table=values["TasksTableName"],
        results_bucket=values["ResultsBucketName"],
        state_machine_arn=values["StateMachineArn"],
        dead_letter_queue_url=values["DeadLetterQueueUrl"],
    )
    credentials = session.get_credentials()
    assert credentials is not None, "no AWS credentials found"
    return TaskrailClient(endpoints, credentials.get_frozen_credentials(), session.client)  # type: ignore[arg-type]


def emit(data: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(data, indent=2, default=str))
    else:
        console.print(data)


def tasks_table(tasks: list[dict[str, Any]]) -> Table:
    table = Table()
    for column in ("taskId", "type", "status", "progress", "attempt", "result / error"):
        table.add_column(column)
    for task in tasks:
        outcome = task.get("resultLocation") or task.get("error") or ""
        table.add_row(
            task["taskId"],
            task["type"],
            task["status"],
            f"{task.get('progress', 0)}%",
            str(task.get("attempt", 0)),
            outcome,
        )
    return table


def parse_params(pairs: list[str], file: Path | None) -> dict[str, Any]:
    params: dict[str, Any] = json.loads(file.read_text()) if file else {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params


@app.command()
def submit(
    task_type: str,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="k=v (v parsed as JSON when it is)")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="a JSON file of parameters")] = None,
    idempotency_key: Annotated[str | None, typer.Option("--idempotency-key")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="wait until the task is terminal")] = False,
    user: UserOption = "alice",
    stack: StackOption = None,
    as_json: JsonOption = False,
) -> None:
    """Submit a task; prints its id (202 means it is stored and will run)."""
    client = make_client(user, stack)
    try:
        accepted = client.submit(task_type, parse_params(param or [], file), idempotency_key)
    except ApiError as error:
        console.print(f"[red]refused ({error.status}):[/] {error.message}")
        raise typer.Exit(1) from error
    if wait:
        accepted = client.wait([accepted["taskId"]], timeout=900)[accepted["taskId"]]
    emit(accepted, as_json)


@app.command()
def status(task_id: str, user: UserOption = "alice", stack: StackOption = None, as_json: JsonOption = False) -> None:
    """A task's status, progress, attempts and result location or error."""
    try:
        emit(make_client(user, stack).get(task_id), as_json)
    except ApiError as error:
        console.print(f"[red]{error.message}[/] ({error.status})")
        raise typer.Exit(1) from error


@app.command("list")
def list_command(
    status_filter: Annotated[str | None, typer.Option("--status")] = None,
    limit: Annotated[int, typer.Option("--limit")] = 25,
    user: UserOption = "alice",
    stack: StackOption = None,
    as_json: JsonOption = False,
) -> None:
    """Your tasks, newest first."""
    tasks = make_client(user, stack).list_tasks(status_filter, limit)
    if as_json:
        emit(tasks, True)
    else:
        console.print(tasks_table(tasks))


@app.command()
def watch(task_ids: list[str], user: UserOption = "alice", stack: StackOption = None) -> None:
    """Live progress until every task is terminal."""
    from rich.live import Live

    client = make_client(user, stack)
    with Live(console=console, refresh_per_second=4) as live:
        final = client.wait(task_ids, timeout=3600, on_update=lambda t: live.update(tasks_table(list(t.values()))))
    failed = [t for t in final.values() if t["status"] != "SUCCEEDED"]
    for task in failed:
        console.print(f"{task['taskId']}: {task['status']} {task.get('error', '')}: {task.get('cause', '')}")
    raise typer.Exit(1 if failed else 0)


@app.command()
def cancel(task_id: str, user: UserOption = "alice", stack: StackOption = None, as_json: JsonOption = False) -> None:
    """Cancel a QUEUED or RUNNING task (its execution is stopped)."""
    try:
        emit(make_client(user, stack).cancel(task_id), as_json)
    except ApiError as error:
        console.print(f"[red]{error.message}[/] ({error.status})")
        raise typer.Exit(1) from error


@app.command()
def result(task_id: str, user: UserOption = "alice", stack: StackOption = None) -> None:
    """The task's result object."""
    client = make_client(user, stack)
    client.get(task_id)  # the owner check: 404 for somebody else's task
    emit(client.result(task_id), True)


@app.command()
def dlq(stack: StackOption = None, as_json: JsonOption = False) -> None:
    """Dead-letter queue: messages grouped by error."""
    messages = make_client("alice", stack).dlq_messages(max_messages=100)
    if as_json:
        emit(messages, True)
        return
    groups: dict[str, list[str]] = {}
    for message in messages:
        groups.setdefault(message["error"], []).append(message["taskId"])
    console.print(f"{len(messages)} message(s)")
    for error, ids in groups.items():
        console.print(f"  {error}: {len(ids)}  e.g. {ids[:3]}")


@app.command()
def replay(
    task_ids: Annotated[list[str] | None, typer.Argument()] = None,
    from_dlq: Annotated[bool, typer.Option("--dlq", help="replay every DLQ message")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run")] = False,
    stack: StackOption = None,
    as_json: JsonOption = False,
) -> None:
    """Replay failed tasks from the DLQ: a new execution {taskId}-r{attempt}, no duplicated side effects."""
    if not task_ids and not from_dlq:
        console.print("[red]name task ids or pass --dlq[/]")
        raise typer.Exit(2)
    outcomes = make_client("alice", stack).replay_dlq(None if from_dlq else set(task_ids or []), dry_run=dry_run)
    emit([o.__dict__ for o in outcomes], as_json)


@app.command()
def history(task_id: str, stack: StackOption = None, as_json: JsonOption = False) -> None:
    """The task's execution events as a timeline."""
    events = make_client("alice", stack).history(task_id)
    if as_json:
        emit(events, True)
        return
    for event in events:
        details: dict[str, Any] = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
        name = details.get("name") or details.get("error") or ""
        console.print(f"{event['timestamp']:%H:%M:%S.%f}  {event['type']:<32} {name}")


@local_app.command("up")
def local_up(
    api_port: Annotated[int, typer.Option(help="0 picks a free port")] = 4566,
    aws_port: Annotated[int, typer.Option()] = 4567,
    console_port: Annotated[int, typer.Option()] = 4568,
    time_scale: Annotated[float, typer.Option(help="Retry/Wait time factor (1 = real time, as on AWS)")] = 1.0,
    concurrency: Annotated[int, typer.Option(help="worker processes per function")] = 2,
) -> None:
    """Start the local stack in the foreground; Ctrl-C stops it cleanly."""
    from taskrail.local.stack import LocalStack, StackOptions

    stack = LocalStack(
        StackOptions(
            api_port=api_port,
            aws_port=aws_port,
            console_port=console_port,
            time_scale=time_scale,
            concurrency=concurrency,
        )
    )
    info = stack.start()
    stack.write_state()
    console.print(f"API            {info.api_url}")
    console.print(f"AWS endpoint   {info.aws_endpoint_url}")
    console.print(f"console        {info.console_url or '-'}")
    console.print("users: alice, bob (see taskrail/local/users.py). Ctrl-C to stop.")
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while not stopping:
            time.sleep(0.2)
    finally:
        stack.stop()
        console.print("local stack stopped")


@local_app.command("down")
def local_down() -> None:
    """Stop a local stack started in another terminal or in the background."""
    from taskrail.local.stack import STATE_FILE, StackInfo

    if not STATE_FILE.exists():
        console.print("no local stack is running")
        return
    pid = StackInfo.load().pid
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        STATE_FILE.unlink(missing_ok=True)
        console.print("the local stack had already stopped")
        return
    deadline = time.monotonic() + 30
    while STATE_FILE.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    console.print("local stack stopped" if not STATE_FILE.exists() else "[red]the stack did not stop within 30 s[/]")


def main() -> None:
    sys.exit(app())


if __name__ == "__main__":
    main()
