"""`taskrail`: thin commands over taskrail.client and taskrail.local (the functions tests call).

Each command parses its arguments, calls the client, and renders: tables and live progress for people, `--json`
(stable field names, every key always present) for scripts. Errors say what went wrong and what to do, on stderr;
with `--json` they are also printed as `{"error": {...}}` on stdout. Exit codes: 0 done, 1 refused or failed,
2 no stack to talk to or a usage error.
"""

from __future__ import annotations

import functools
import json
import os
import re
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table  # typer's help loads it anyway

from task_common.contract import ALL_STATUSES, CLIENT_OUTPUTS, Output
from taskrail import cli_params

if TYPE_CHECKING:
    from taskrail.client import ApiError, TaskrailClient
    from taskrail.operator import Operator, ReplayOutcome
    from taskrail.operator.aws import AwsClients

# Instant commands: what a command needs is imported when it runs (botocore, the client, the operator),
# never the emulator (moto, taskrail.local.stack) for a command that talks to a running stack. `taskrail --help`
# loads typer and rich only. tests/unit/test_cli_imports.py holds this; `make bench` measures it (bench/cli_latency).

cli_params.install()  # plain parameters are coerced without pydantic (typer's own coercion loads it: ~100 ms)
# Plain help and usage errors (rich_markup_mode=None): typer's rich help loads rich.markdown and markdown-it, a
# third of `taskrail --help`'s time.
app = typer.Typer(
    help="Storage-first task workflows on Step Functions, on AWS or on this machine.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
local_app = typer.Typer(
    help="The local stack (emulated AWS services on 127.0.0.1).", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(local_app, name="local")
console = Console()
err_console = Console(stderr=True)
# A terminal gets tables fitted to its width; a pipe or a file gets whole values: nothing cut, folded or wrapped
# (`taskrail result X > out.json` writes only the result document). Set per command by bind_output().
whole_values = False
WHOLE_WIDTH = 1_000_000


def bind_output() -> None:
    """Consoles for this command's stdout and stderr, as they are now (CliRunner swaps them per invocation)."""
    global console, err_console, whole_values  # noqa: PLW0603 - every renderer reads them; one place sets them
    whole_values = not sys.stdout.isatty()
    console = Console(width=WHOLE_WIDTH if whole_values else None)
    err_console = Console(stderr=True)


DEFAULT_USER = "alice"
# Replay outcomes that did not do what was asked: the command exits 1.
# taskrail.operator.replay.REFUSED_ACTIONS (not imported here: the CLI starts without the operator)
REPLAY_REFUSALS = frozenset({"refused", "not-replayable", "not-redrivable"})

UserOption = Annotated[
    str | None,
    typer.Option("--user", help="local stack only: the local user to act as (alice, bob; or the role ci or batch)"),
]
StackOption = Annotated[
    str | None,
    typer.Option("--stack", envvar="TASKRAIL_STACK", help="a deployed stack's name (default: the local stack)"),
]
RegionOption = Annotated[str | None, typer.Option("--region", help="the deployed stack's region")]
ProfileOption = Annotated[str | None, typer.Option("--profile", help="the AWS profile to sign with")]
StateOption = Annotated[
    Path | None,
    typer.Option(
        "--local-state",
        envvar="TASKRAIL_STATE_FILE",
        help="the local stack's state file (default .taskrail/local.json, written by `taskrail local up`)",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output with stable field names")]
TimeoutOption = Annotated[float, typer.Option("--timeout", help="seconds to wait before giving up")]


class CliError(Exception):
    """A failure the user can act on: what happened, and what to do about it."""

    def __init__(self, message: str, *, hint: str = "", exit_code: int = 1, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code
        self.status = status


@dataclass(frozen=True)
class Target:
    """Which stack a command talks to, and as whom."""

    user: str | None = None
    stack: str | None = None
    region: str | None = None
    profile: str | None = None
    local_state: Path | None = None


# -- reaching a stack ---------------------------------------------------------------------------------------


def make_client(target: Target) -> TaskrailClient:
    """The user API of the target stack."""
    return reach(target)[0]


def make_operator(target: Target) -> Operator:
    """The operator's view of the target stack: owner checks through the API, the rest through AWS."""
    return operator_of(*reach(target))


def operator_of(client: TaskrailClient, aws: AwsClients) -> Operator:
    from taskrail.operator import Operator

    return Operator.over_aws(client, aws)


def reach(target: Target) -> tuple[TaskrailClient, AwsClients]:
    if target.stack is None:
        return local_reach(target.user or DEFAULT_USER, target.local_state)
    if target.user is not None:
        raise CliError(
            "--user picks a local user; on AWS your credentials say who you are",
            hint="drop --user, or pick the identity with --profile",
            exit_code=2,
        )
    return aws_reach(target.stack, target.region, target.profile)


def local_client(user: str, state_file: Path | None = None) -> TaskrailClient:
    return local_reach(user, state_file)[0]


def local_reach(user: str, state_file: Path | None = None) -> tuple[TaskrailClient, AwsClients]:
    from taskrail.local.state import STATE_FILE, StackInfo
    from taskrail.local.users import ROLES, USERS

    path = state_file or STATE_FILE
    if not path.exists():
        raise CliError(
            f"no local stack is running (no state file at {path})",
            hint="start one with `taskrail local up`, or pass --stack NAME to use a deployed stack",
            exit_code=2,
        )
    if user not in USERS and user not in ROLES:
        names = ", ".join([*USERS, *(f"{role} (a role: a new session each run)" for role in ROLES)])
        raise CliError(f"no local user named {user}", hint=f"local users are {names}", exit_code=2)
    info = StackInfo.load(path)
    from taskrail.local.preflight import process_alive

    if not process_alive(info.pid):
        raise CliError(
            f"the local stack recorded in {path} is not running (process {info.pid} has exited)",
            hint="start one with `taskrail local up`",
            exit_code=2,
        )
    from taskrail.local import accounts

    return accounts.user_client(info, user), local_aws_clients(info.aws_endpoint_url)


def local_aws_clients(endpoint_url: str) -> AwsClients:
    """The local stack's AWS clients, each made when first asked for (taskrail/aws_clients.py: one lean botocore
    session, one client per service): a command that makes no AWS call does not even load botocore's client."""

    @functools.cache
    def clients() -> AwsClients:
        from taskrail.aws_clients import local_clients
        from taskrail.local.region import REGION
        from taskrail.local.state import LOCAL_CREDENTIALS

        return local_clients(endpoint_url, REGION, LOCAL_CREDENTIALS)

    return lambda service: clients()(service)  # noqa: PLW0108 - the clients are made at the first call, not now


def aws_client(
    stack: str, region: str | None = None, profile: str | None = None, *, session: Any = None
) -> TaskrailClient:
    """A client of a deployed stack: endpoints from the stack's outputs, API requests signed with your credentials."""
    return aws_reach(stack, region, profile, session=session)[0]


def aws_reach(
    stack: str, region: str | None = None, profile: str | None = None, *, session: Any = None
) -> tuple[TaskrailClient, AwsClients]:
    session = session or _aws_session(region, profile)
    if not session.region_name:
        raise CliError(
            f"no AWS region to look for stack {stack} in",
            hint="pass --region, or set AWS_REGION or a region in your AWS profile",
            exit_code=2,
        )
    credentials = session.get_credentials()
    if credentials is None:
        raise CliError(
            "no AWS credentials found",
            hint="run `aws configure` (or `aws sso login`), or pass --profile NAME",
            exit_code=2,
        )
    from taskrail.client import Endpoints, TaskrailClient

    outputs = stack_outputs(session.client("cloudformation"), stack, session.region_name)
    endpoints = Endpoints(
        api_url=outputs[Output.API_URL].rstrip("/"),
        region=session.region_name,
        tasks_table=outputs[Output.TASKS_TABLE_NAME],
        results_bucket=outputs[Output.RESULTS_BUCKET_NAME],
        state_machine_arn=outputs[Output.STATE_MACHINE_ARN],
        dead_letter_queue_url=outputs[Output.DEAD_LETTER_QUEUE_URL],
        websocket_url=outputs.get(Output.WEBSOCKET_URL, ""),
        state_machine_alias_arn=outputs.get(Output.STATE_MACHINE_ALIAS_ARN, ""),
    )
    # The refreshable credentials, not a frozen copy: a long `watch` outlives temporary credentials.
    return TaskrailClient(endpoints, credentials), functools.cache(session.client)


def _aws_session(region: str | None, profile: str | None) -> Any:
    import boto3
    from botocore.exceptions import ProfileNotFound

    try:
        return boto3.Session(profile_name=profile, region_name=region)
    except ProfileNotFound as error:
        profiles = boto3.Session().available_profiles
        raise CliError(
            f"no AWS profile named {profile}",
            hint=f"profiles in your AWS config: {', '.join(profiles) or 'none'}",
            exit_code=2,
        ) from error


def stack_outputs(cloudformation: Any, stack: str, region: str) -> dict[str, str]:
    from botocore.exceptions import ClientError

    try:
        found = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as error:
        if error.response["Error"]["Code"] != "ValidationError":
            raise
        names = deployed_stacks(cloudformation)
        raise CliError(
            f"no stack named {stack} in {region}; deployed stacks are {', '.join(names) or 'none'}",
            hint="pass one of them with --stack NAME, or --region if yours is in another region",
            exit_code=2,
        ) from error
    outputs = {o["OutputKey"]: o["OutputValue"] for o in found[0].get("Outputs", [])}
    missing = [name for name in CLIENT_OUTPUTS if name not in outputs]
    if missing:
        raise CliError(
            f"stack {stack} in {region} is not a taskrail stack: it has no output {', '.join(missing)}",
            hint="deploy this project's app (README: Using it on AWS), or name the stack it created",
            exit_code=2,
        )
    return outputs


def deployed_stacks(cloudformation: Any) -> list[str]:
    names: set[str] = set()
    for page in cloudformation.get_paginator("list_stacks").paginate():
        names.update(s["StackName"] for s in page["StackSummaries"] if s["StackStatus"] != "DELETE_COMPLETE")
    return sorted(names)


# -- parsing ------------------------------------------------------------------------------------------------

DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
SECONDS_PER_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, now: float | None = None) -> int:
    """`30m`, `1h`, `2d` (before now) or an ISO-8601 time, as epoch milliseconds (tasks' createdAt)."""
    match = DURATION.match(text.strip().lower())
    if match:
        seconds = float(match.group(1)) * SECONDS_PER_UNIT[match.group(2)]
        return int(((now if now is not None else time.time()) - seconds) * 1000)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CliError(
            f"--since {text!r} is neither a duration nor a time",
            hint="use a duration such as 45s, 30m, 1h, 2d, 1w, or an ISO time such as 2025-06-01T09:00",
            exit_code=2,
        ) from None
    return int(moment.timestamp() * 1000)


def parse_params(pairs: list[str], file: Path | None, json_pairs: list[str] | None = None) -> dict[str, Any]:
    """`--file params.json` first, then each `-p k=v` (v is always a string), then each `--param-json k=JSON`."""
    params: dict[str, Any] = {}
    if file is not None:
        try:
            loaded = json.loads(file.read_text())
        except OSError as error:
            raise CliError(f"cannot read {file}: {error.strerror}", exit_code=2) from error
        except ValueError as error:
            raise CliError(f"{file} is not valid JSON: {error}", exit_code=2) from error
        if not isinstance(loaded, dict):
            raise CliError(f"{file} must hold a JSON object of parameters", exit_code=2)
        params.update(loaded)
    for pair in pairs:
        key, value = _key_value(pair, "--param", "for example -p text='hello world'")
        params[key] = value
    for pair in json_pairs or []:
        key, value = _key_value(pair, "--param-json", "for example --param-json top=5 or --param-json 'tags=[\"a\"]'")
        try:
            params[key] = json.loads(value)
        except ValueError as error:
            raise CliError(
                f"--param-json {key}: {value!r} is not JSON ({error})",
                hint=f"a string goes in -p {key}=...; JSON text needs its quotes: --param-json '{key}=\"text\"'",
                exit_code=2,
            ) from None
    return params


def _key_value(pair: str, option: str, example: str) -> tuple[str, str]:
    key, separator, value = pair.partition("=")
    if not separator or not key:
        raise CliError(f"{option} {pair!r} is not key=value", hint=example, exit_code=2)
    return key, value


def parse_status(value: str | None) -> str | None:
    if value is None:
        return None
    if value.upper() not in ALL_STATUSES:
        raise CliError(
            f"--status {value!r} is not a task status", hint=f"one of {', '.join(ALL_STATUSES)}", exit_code=2
        )
    return value.upper()


# -- errors and output --------------------------------------------------------------------------------------

F = TypeVar("F", bound=Callable[..., Any])


def reports_errors(command: F) -> F:
    """Turns the failures a user can act on into a message with the fix, and an exit code."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        bind_output()
        try:
            return command(*args, **kwargs)
        except CliError as error:
            fail(error, kwargs)
        except Exception as error:
            known = known_failure(error, kwargs.get("task_id"))
            if known is None:
                raise
            fail(known, kwargs)

    return run  # type: ignore[return-value]


def known_failure(error: Exception, task_id: str | None) -> CliError | None:
    """The failure a user can act on behind ``error`` (None: a bug, shown as one). An error of the client or botocore
    can only happen once that library is loaded, so only the loaded ones are looked at."""
    if isinstance(error, TimeoutError):
        return CliError(str(error), hint="raise --timeout, or watch again later")
    client, botocore = (sys.modules.get(m) for m in ("taskrail.client", "botocore.exceptions"))
    if client is not None and isinstance(error, client.ApiError):
        return _api_failure(error, task_id)
    connection_errors = tuple(
        e
        for e in (
            getattr(client, "StackUnreachable", None),
            getattr(botocore, "EndpointConnectionError", None),
        )
        if e
    )
    if connection_errors and isinstance(error, connection_errors):
        hint = "locally: start a stack with `taskrail local up`; on AWS: check --stack, --region and the network"
        return CliError(f"cannot reach the stack: {error}", hint=hint, exit_code=2)
    return _aws_failure(error, botocore) if botocore is not None else None


def _aws_failure(error: Exception, botocore: Any) -> CliError | None:
    if isinstance(error, botocore.NoCredentialsError):
        return CliError(str(error), hint="run `aws configure`, or pass --profile NAME", exit_code=2)
    if isinstance(error, botocore.ClientError):
        details = error.response.get("Error", {})
        message = f"AWS refused {error.operation_name}: {details.get('Code')}: {details.get('Message')}"
        return CliError(message, hint="check your credentials (--profile) and their permissions")
    return None


def _api_failure(error: ApiError, task_id: str | None) -> CliError:
    if error.status == 404:
        subject = f"task {task_id}" if task_id else "task"
        return CliError(
            f"{subject} not found: it does not exist, or it belongs to another user",
            hint="`taskrail list` shows your tasks",
            status=404,
        )
    if error.status == 403:
        return CliError(
            f"the API refused your credentials (403): {error.message}",
            hint="on AWS, your identity needs execute-api:Invoke on the stack's API; check --profile",
            status=403,
        )
    if error.retryable:
        return CliError(
            f"{error.message} ({error.status})",
            hint="retried with backoff and still busy: try again in a moment (a submission is retried only with "
            "--idempotency-key, which makes a retry return the same task)",
            status=error.status,
        )
    return CliError(f"{error.message} ({error.status})", status=error.status)


def stale_type_error(error: Exception, task_type: str) -> CliError | None:
    """The API refused a type that this checkout's registry has: the stack was built before the type was added."""
    if getattr(error, "status", None) != 400:
        return None
    from taskrail.scaffold import stale_stack_hint

    hint = stale_stack_hint(task_type, getattr(error, "message", ""))
    return CliError(f"{getattr(error, 'message', error)} (400)", hint=hint, status=400) if hint else None


def fail(error: CliError, kwargs: dict[str, Any]) -> NoReturn:
    err_console.print(f"[red]error:[/] {escape(error.message)}")
    if error.hint:
        err_console.print(f"  {escape(error.hint)}")
    if kwargs.get("as_json"):
        emit_json({"error": {"message": error.message, "hint": error.hint or None, "status": error.status}})
    raise typer.Exit(error.exit_code)


def emit_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def output(data: Any, *, as_json: bool, render: Callable[[Any], None]) -> None:
    """A command's answer: ``data`` as JSON for scripts (--json, stable field names), else ``render(data)`` for
    people."""
    if as_json:
        emit_json(data)
    else:
        render(data)


def when(value: Any) -> str:
    """Epoch milliseconds or an ISO-8601 time, as local time (the date only when it is not today)."""
    from taskrail.client import epoch_seconds

    epoch = epoch_seconds(value)
    if epoch is None:
        return "-"
    moment = datetime.fromtimestamp(epoch)
    return moment.strftime("%H:%M:%S" if moment.date() == datetime.now().date() else "%Y-%m-%d %H:%M")


def readable_cause(cause: Any) -> str:
    """A Lambda error's cause is its whole error document (message, type, stack trace): people want the message."""
    text = str(cause or "")
    try:
        document = json.loads(text)
    except ValueError:
        return text
    if isinstance(document, dict) and document.get("errorMessage"):
        return str(document["errorMessage"])
    return text


def short(text: str, length: int) -> str:
    """On one line, and cut to ``length`` for a terminal (whole when the output is piped)."""
    flat = " ".join(text.split())
    return flat if whole_values or len(flat) <= length else flat[: length - 1] + "…"


def readable_error(task: dict[str, Any], length: int = 200) -> str:
    if not task.get("error"):
        return ""
    cause = readable_cause(task.get("cause"))
    return short(f"{task['error']}: {cause}" if cause else str(task["error"]), length)


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def table_of_tasks(*columns: str, title: str | None = None) -> Table:
    """A table whose first column is the task id, never shortened: people copy it into the next command."""
    table = Table(title=title)
    table.add_column("taskId", no_wrap=True, min_width=36)
    for column in columns:
        table.add_column(column)
    return table


def tasks_table(tasks: list[dict[str, Any]]) -> Table:
    table = table_of_tasks("type", "status", "attempt", "created", "error")
    table.columns[2].min_width = 9  # "SUCCEEDED" on one line; the error gives way first
    if not whole_values:
        table.columns[-1].max_width = 60
    for task in tasks:
        shown_status = task["status"] + (f" {task.get('progress') or 0}%" if task["status"] == "RUNNING" else "")
        table.add_row(
            task["taskId"],
            task.get("type") or "",
            shown_status,
            str(task.get("attempt") or 0),
            when(task.get("createdAt")),
            escape(readable_error(task, 80)),
        )
    return table


def progress_table(views: list[dict[str, Any]]) -> Table:
    from rich.progress_bar import ProgressBar

    table = table_of_tasks("status", "state", "progress", "retries", "elapsed")
    for view in views:
        progress = float(view.get("progress") or 0)
        bar = Table.grid(padding=(0, 1))
        bar.add_row(ProgressBar(total=100, completed=progress, width=20), f"{progress:.0f}%")
        table.add_row(
            view["taskId"],
            view["status"],
            view.get("state") or "-",
            bar,
            "-" if view.get("retries") is None else str(view["retries"]),
            seconds(view.get("elapsedSeconds")),
        )
    return table


def final_line(view: dict[str, Any]) -> str:
    task_id, status = escape(view["taskId"]), view["status"]
    took = seconds(view.get("elapsedSeconds"))
    if status == "SUCCEEDED":
        return f"[green]✓[/] {task_id} SUCCEEDED in {took} → {escape(view.get('resultLocation') or '')}"
    if status == "CANCELLED":
        return f"[yellow]■[/] {task_id} CANCELLED after {took}"
    retries = "" if view.get("retries") is None else f", {view['retries']} retries"
    return f"[red]✗[/] {task_id} {status} after {took}{retries}: {escape(readable_error(view, 500))}"


#: With the live channel, a task is read again when a change of it is pushed, and at least this often.
LIVE_BACKSTOP_SECONDS = 30.0


def live_channel(operator: Operator, task_ids: list[str]) -> tuple[Any, str]:
    """The stack's live-progress channel subscribed to ``task_ids`` (one task, or all of the caller's), or None
    with the reason to poll: the stack has no WebSocketUrl, or connecting failed."""
    client: Any = operator.owned  # a TaskrailClient: its endpoints and credentials
    endpoints = getattr(client, "endpoints", None)
    url = getattr(endpoints, "websocket_url", "")
    if not url or endpoints is None:
        return None, "no WebSocket channel"
    from taskrail.live import LiveChannel, LiveUnavailable

    task_id = task_ids[0] if len(set(task_ids)) == 1 else None
    try:
        return LiveChannel(url, client.credentials, endpoints.region, task_id=task_id).open(), ""
    except LiveUnavailable as error:
        return None, f"the WebSocket channel is unavailable: {error}"


def follow(operator: Operator, task_ids: list[str], *, as_json: bool, timeout: float) -> list[dict[str, Any]]:
    """Waits until every task is terminal; people see live progress, then how each one ended. Pushed over the live
    channel when the stack has one (woken by each change), else polled; the first line on stderr says which."""
    # Each poll reads every unfinished task's execution history: on AWS, stay well inside its API rate.
    interval = 0.5 if operator.is_local else max(1.0, 0.25 * len(task_ids))
    channel, reason = live_channel(operator, task_ids)
    if channel is not None:
        err_console.print(f"live: WebSocket ({channel.url}), polling only as a backstop")
        interval = LIVE_BACKSTOP_SECONDS
    else:
        err_console.print(f"polling every {interval:g}s: {reason}")
    wait = channel.wait if channel is not None else None
    try:
        if as_json:
            return operator.watch(task_ids, timeout=timeout, interval=interval, wait=wait)
        from rich.live import Live

        with Live(console=console, refresh_per_second=4) as live:
            views = operator.watch(
                task_ids,
                timeout=timeout,
                interval=interval,
                on_update=lambda v: live.update(progress_table(v)),
                wait=wait,
            )
    finally:
        if channel is not None:
            channel.close()
    if not console.is_terminal:
        console.line()  # Live ends its display with a newline in a terminal only
    for view in views:
        console.print(final_line(view))
    return views


# -- commands -----------------------------------------------------------------------------------------------


@app.command()
@reports_errors
def submit(
    task_type: Annotated[str, typer.Argument(help="the task type, e.g. text.stats")],
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="k=v: v is a string, as typed (repeatable)")
    ] = None,
    param_json: Annotated[
        list[str] | None,
        typer.Option("--param-json", help="k=JSON: v parsed as JSON, for numbers, booleans, lists, objects"),
    ] = None,
    file: Annotated[Path | None, typer.Option("--file", help="a JSON file of parameters")] = None,
    idempotency_key: Annotated[
        str | None, typer.Option("--idempotency-key", help="the same key again returns the same task")
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="follow the task until it is terminal")] = False,
    timeout: TimeoutOption = 900,
    user: UserOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    profile: ProfileOption = None,
    local_state: StateOption = None,
    as_json: JsonOption = False,
) -> None:
    """Submit a task; prints its id (accepted means it is stored and will run)."""
    params = parse_params(param or [], file, param_json)
    client, aws = reach(Target(user, stack, region, profile, local_state))
    try:
        accepted = client.submit(task_type, params, idempotency_key)
    except Exception as error:
        stale = stale_type_error(error, task_type)
        if stale is None:
            raise
        raise stale from error
    task_id = accepted["taskId"]
    if wait:
        view = follow(operator_of(client, aws), [task_id], as_json=as_json, timeout=timeout)[0]
        if as_json:
            emit_json(view)
        raise typer.Exit(0 if view["status"] == "SUCCEEDED" else 1)
    duplicate = bool(accepted.get("duplicate"))
    if as_json:
        emit_json({"taskId": task_id, "status": accepted["status"], "duplicate": duplicate})
    elif duplicate:
        console.print(f"already submitted with this idempotency key: {task_id} ({accepted['status']})")
    else:
        console.print(f"accepted {task_id} ({accepted['status']}); follow it with `taskrail watch {task_id}`")


@app.command()
@reports_errors
def status(
    task_id: str,
    user: UserOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    profile: ProfileOption = None,
    local_state: StateOption = None,
    as_json: JsonOption = False,
) -> None:
    """A task's status, progress, attempts, and its result location or error."""
    task = make_client(Target(user, stack, region, profile, local_state)).get(task_id)
    from taskrail.client import elapsed_seconds, task_view  # loaded by make_client

    view = {**task_view(task), "elapsedSeconds": elapsed_seconds(task)}
    if as_json:
        emit_json(view)
        return
    table = Table(show_header=False, box=None)
    for field in ("taskId", "type", "status", "attempt"):
        table.add_row(field, escape(str(view[field])))
    table.add_row("progress", f"{view['progress'] or 0}%")
    for field in ("createdAt", "startedAt", "finishedAt"):
        table.add_row(field, when(view[field]))
    table.add_row("elapsed", seconds(view["elapsedSeconds"]))
    for field, shown in (
        ("resultLocation", view["resultLocation"]),
        ("error", view["error"]),
        ("cause", readable_cause(view["cause"])),
        ("executionArn", view["executionArn"]),
    ):
        if shown:
            table.add_row(field, escape(str(shown)))
    console.print(table)


@app.command("list")
@reports_errors
def list_command(
    status_filter: Annotated[str | None, typer.Option("--status", help="only tasks with this status")] = None,
    since: Annotated[str | None, typer.Option("--since", help="created within (30m, 1h, 2d) or after a time")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="at most this many")] = 25,
    all_tasks: Annotated[bool, typer.Option("--all", help="every matching task (follows next to the end)")] = False,
    next_token: Annotated[
        str | None, typer.Option("--next", help="continue where a previous list stopped (its next token)")
    ] = None,
    user: UserOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    profile: ProfileOption = None,
    local_state: StateOption = None,
    as_json: JsonOption = False,
) -> None:
    """Your tasks, newest first; --all for every one, --next TOKEN for the page after a previous list."""
    wanted = parse_status(status_filter)
    since_ms = parse_since(since) if since else None
    client = make_client(Target(user, stack, region, profile, local_state))
    page = client.find_page(wanted, since_ms=since_ms, limit=None if all_tasks else limit, next_token=next_token)
    if as_json:
        from taskrail.client import task_view

        emit_json({"tasks": [task_view(t) for t in page.tasks], "count": len(page.tasks), "next": page.next})
        return
    if page.tasks:
        console.print(tasks_table(page.tasks))
    else:
        console.print("no tasks match; submit one with `taskrail submit TYPE -p k=v`")
    if page.next:
        console.print(f"more: `taskrail list --next {page.next}` (same filters), or --all")


@app.command()
@reports_errors
def watch(
    task_ids: Annotated[list[str], typer.Argument(help="one or more task ids")],
    timeout: TimeoutOption = 3600,
    user: UserOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    profile: ProfileOption = None,
    local_state: StateOption = None,
    as_json: JsonOption = False,
) -> None:
    """Live progress until every task is terminal.

    Shows each task's current state, a progress bar, the retries so far and the time elapsed; ends with the result
    location or the error and its cause. Exits 1 unless every task succeeded.
    """
    views = follow(
        make_operator(Target(user, stack, region, profile, local_state)), task_ids, as_json=as_json, timeout=timeout
    )
    if as_json:
        emit_json({"tasks": views})
    raise typer.Exit(0 if all(v["status"] == "SUCCEEDED" for v in views) else 1)


@app.command()
@reports_errors
def cancel(
    task_id: str,
    user: UserOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    profile: ProfileOption = None,
    local_state: StateOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cancel a QUEUED or RUNNING task (its execution is stopped)."""
    cancelled = make_client(Target(user, stack, region, profile, local_state)).cancel(task_id)
    if as_json:
        emit_json({"taskId": cancelled["taskId"], "status": cancelled["status"]})
    else:
        console.print(f"cancelled {escape(cancelled['taskId'])}: nothing after this takes effect")


@app.command()
@reports_errors
def result(
    task_id: str,
    user: UserOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    profile: ProfileOption = None,
    local_state: StateOption = None,
    as_json: JsonOption = False,
) -> None:
    """The task's result document, through the API (GET /tasks/{taskId}/result; a large result's time-limited
    link is followed), so API access alone is enough."""
    from taskrail.client import ApiError

    try:
        answer = make_client(Target(user, stack, region, profile, local_state)).result(task_id)
    except ApiError as error:
        if error.status != 409:
            raise
        raise CliError(error.message, hint=_no_result_hint(task_id, error.message), status=409) from error
    value = answer.get("result")
    if as_json:  # {taskId, type, result}, and for a large result its resultUrl, expiresAt, resultBytes
        emit_json(answer)
        return
    if whole_values:
        print(json.dumps(value, indent=2, default=str))  # the document alone: `taskrail result X > out.json`
        return
    if answer.get("resultUrl"):
        size, until = answer.get("resultBytes"), answer.get("expiresAt")
        console.print(f"{size} bytes, downloaded through a link valid until {until}")
    console.print_json(json.dumps(value, default=str))


def _no_result_hint(task_id: str, message: str) -> str:
    """The API's 409 says why there is no result (task X is STATUS: ...): the command that helps."""
    if " is FAILED:" in message:
        return f"fix the cause, then `taskrail replay {task_id}`"
    if "no result yet" in message:
        return f"`taskrail watch {task_id}` until it ends"
    return f"`taskrail status {task_id}` says why"


@app.command()
@reports_errors
def dlq(
    peek: Annotated[int, typer.Option("--peek", min=0, help="show this many messages")] = 5,
    stack: StackOption = None,
    region: RegionOption = None,
    profile: ProfileOption = None,
    local_state: StateOption = None,
    as_json: JsonOption = False,
) -> None:
    """The dead-letter queue: its size, messages grouped by error, and a peek.

    Every user's failures (operator credentials). Peeking leaves the messages in the queue.
    """
    summary = make_operator(Target(None, stack, region, profile, local_state)).dlq_summary(peek=peek)
    output(summary, as_json=as_json, render=_print_dlq)


@app.command()
@reports_errors
def mail(
    to: Annotated[str | None, typer.Option("--to", help="only the messages to this address")] = None,
    confirm: Annotated[
        str | None, typer.Option("--confirm", help="confirm the subscription of the message with this token (prefix)")
    ] = None,
    local_state: StateOption = None,
    as_json: JsonOption = False,
) -> None:
    """The local stack's mailbox: the emails SNS would have sent (subscription confirmations, task outcomes).

    A profile's notification preference (PUT /me/profile) subscribes its address; as on AWS, nothing is delivered
    until the subscription is confirmed: --confirm TOKEN does what the confirmation email's link does.
    """
    from taskrail import mail as mailbox

    log_dir = _local_log_dir(local_state)
    if confirm is not None:
        try:
            arn = mailbox.confirm(log_dir, confirm, lambda: local_reach("alice", local_state)[1]("sns"))
        except mailbox.MailError as error:
            raise CliError(
                str(error), hint="`taskrail mail` lists the messages and their tokens", exit_code=2
            ) from None
        output({"confirmed": arn}, as_json=as_json, render=lambda data: console.print(f"confirmed {data['confirmed']}"))
        return
    found = [mailbox.as_json(m) for m in mailbox.messages(log_dir, to)]
    output(found, as_json=as_json, render=_print_mail)


def _print_mail(found: list[dict[str, Any]]) -> None:
    if not found:
        console.print("no mail yet")
        return
    table = Table("sent", "to", "subject", "what")
    for mail in found:
        message = mail.get("message")
        if mail["kind"] == "SubscriptionConfirmation":
            what = f"confirm: taskrail mail --confirm {mail['token'][:12]}"
        elif isinstance(message, dict):
            what = f"task {message.get('taskId')} {message.get('outcome')}"
        else:
            what = short(mail["body"], 60)
        table.add_row(when(mail["sent_at"] * 1000), escape(mail["to"]), escape(mail["subject"]), escape(what))
    console.print(table)


def _print_dlq(summary: dict[str, Any]) -> None:
    console.print(f"dead-letter queue: {summary['count']} message(s), {summary['inFlight']} being handled")
    if summary["groups"]:
        groups = Table("error", "count", "tasks", title="by error")
        for group in summary["groups"]:
            examples = ", ".join(group["taskIds"][:3]) + (" …" if group["count"] > 3 else "")
            groups.add_row(escape(group["error"]), str(group["count"]), examples)
        console.print(groups)
    if summary["messages"]:
        messages = table_of_tasks("error: cause", "attempt", "failed at", title="first messages")
        for message in summary["messages"]:
            sent = when(message.get("sentAt"))
            messages.add_row(message["taskId"], escape(readable_error(message, 100)), str(message["attempt"]), sent)
        console.print(messages)
        console.print("replay them with `taskrail replay --dlq` (narrow with --error E, --since T; try --dry-run)")


@app.command()
@reports_errors
def replay(
    task_ids: Annotated[list[str] | None, typer.Argument(help="your tasks to replay")] = None,
    from_dlq: Annotated[bool, typer.Option("--dlq", help="replay the dead-letter queue's messages")] = False,
    error: Annotated[list[str] | None, typer.Option("--error", help="with --dlq: only this error (repeatable)")] = None,
    since: Annotated[str | None, typer.Option("--since", help="with --dlq: failed within (1h) or after a time")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="say what would happen; start nothing")] = False,
    user: UserOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    profile: ProfileOption = None,
    local_state: StateOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run failed tasks again; running it twice never starts twice.

    A task id is redriven when its execution can be (RedriveExecution: the same execution resumes from the step
    that failed; action "redriven"), otherwise it gets a new execution {taskId}-r{attempt} from its DLQ message
    (action "started"); either way its DLQ message is deleted. A REJECTED task has invalid input: not replayable
    (exit 1). Task ids must be yours; --dlq replays every user's failures (operator credentials).
    """
    if bool(task_ids) == from_dlq:
        raise CliError(
            "name task ids or pass --dlq (not both)", hint="e.g. `taskrail replay --dlq --dry-run`", exit_code=2
        )
    if (error or since) and not from_dlq:
        raise CliError("--error and --since filter the dead-letter queue: use them with --dlq", exit_code=2)
    since_ms = parse_since(since) if since else None
    operator = make_operator(Target(user, stack, region, profile, local_state))
    if from_dlq:
        outcomes = operator.replay_dlq(None, dry_run=dry_run, errors=set(error) if error else None, since_ms=since_ms)
    else:
        outcomes = operator.replay_tasks(task_ids or [], dry_run=dry_run)
    output(
        {"dryRun": dry_run, "replays": [o.to_json() for o in outcomes]},
        as_json=as_json,
        render=lambda _: _print_replays(outcomes, dry_run=dry_run),
    )
    if any(o.action in REPLAY_REFUSALS for o in outcomes):
        raise typer.Exit(1)


def _print_replays(outcomes: list[ReplayOutcome], *, dry_run: bool) -> None:
    if not outcomes:
        console.print("nothing to replay: no message in the dead-letter queue matches")
        return
    table = table_of_tasks("action", "execution", "detail", title="dry run: nothing started" if dry_run else None)
    for outcome in outcomes:
        name = outcome.execution_name or "-"
        # A replay is named {taskId}-r{attempt}: the suffix is what is new.
        shown = "…" + name.removeprefix(outcome.task_id) if name.startswith(outcome.task_id) else name
        table.add_row(outcome.task_id, outcome.action, shown, escape(outcome.detail))
    console.print(table)


@app.command()
@reports_errors
def history(
    task_id: str,
    execution: Annotated[
        str | None,
        typer.Option("--execution", "-e", help="which execution: its number in the list, its name, or r2 / q1"),
    ] = None,
    user: UserOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    profile: ProfileOption = None,
    local_state: StateOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every execution of the task (the pipe's, replays -rN, the reconciler's -qN; redrives resume one), then the
    events of one of them as a timeline: the latest, or the one --execution names."""
    from taskrail.history import timeline
    from taskrail.task_executions import choose, task_executions

    client, aws = reach(Target(user, stack, region, profile, local_state))
    task = client.get(task_id)  # the owner check
    executions = task_executions(
        aws("stepfunctions"), client.endpoints.state_machine_arn, task, logs=lambda: aws("logs")
    )
    chosen = None
    if executions or execution:
        try:
            chosen = choose(executions, execution)
        except LookupError as error:
            raise CliError(str(error), hint=f"`taskrail history {task_id}` lists them", exit_code=2) from None
    rows = timeline(operator_of(client, aws).execution_events(chosen.arn)) if chosen else []
    answer = {
        "taskId": task_id,
        "status": task["status"],
        "attempt": task.get("attempt"),
        "executions": [e.to_json() for e in executions],
        "executionArn": chosen.arn if chosen else None,
        "events": rows,
    }
    output(answer, as_json=as_json, render=lambda _: _print_history(task_id, task, executions, chosen, rows))


def _print_history(
    task_id: str, task: dict[str, Any], executions: list[Any], chosen: Any, rows: list[dict[str, Any]]
) -> None:
    from taskrail.execution_logs import is_express_arn

    if chosen is None:
        console.print(f"task {escape(task_id)} is {task['status']}: no execution has claimed it yet")
        return
    console.print(f"task {escape(task_id)} is {task['status']}")
    runs = Table("#", "execution", "origin", "status", "started", "redrives", title="executions", title_justify="left")
    for number, run in enumerate(executions, start=1):
        mark = " ←" if run is chosen else ""
        runs.add_row(
            str(number), escape(run.name) + mark, run.origin, run.status, when(run.started), str(run.redrive_count)
        )
    console.print(runs)
    if is_express_arn(chosen.arn):
        console.print("an EXPRESS execution: Step Functions keeps no history of it; its events are read from the")
        console.print("lifecycle's CloudWatch Logs group, as logged (without inputs and outputs)")
        if not any(run.origin == "pipe" for run in executions):
            console.print("its first execution (the pipe's, a random name, no input logged) is not found by task once")
            console.print("a replay or the reconciler took the task over")
    table = Table("at", "state", "event", "detail", title=f"events of {escape(chosen.name)}", title_justify="left")
    for row in rows:
        error_name, _, cause = row["detail"].partition(": ")
        detail = f"{error_name}: {readable_cause(cause)}" if cause else row["detail"]
        table.add_row(f"+{row['elapsedSeconds']:.3f}s", row["state"] or "", row["type"], escape(short(detail, 120)))
    console.print(table)
    if len(executions) > 1:
        console.print(f"another execution: `taskrail history {task_id} --execution N`")


@app.command()
@reports_errors
def logs(
    task_id: str,
    follow_logs: Annotated[bool, typer.Option("--follow", "-f", help="keep printing new lines until Ctrl-C")] = False,
    interval: Annotated[float, typer.Option("--interval", min=0.1, help="with --follow: seconds between reads")] = 1.0,
    user: UserOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    profile: ProfileOption = None,
    local_state: StateOption = None,
    as_json: JsonOption = False,
) -> None:
    """One task's log lines across all its functions and tries, oldest first.

    Locally from the workers' logs; on AWS a CloudWatch Logs Insights query on the task id (Powertools'
    correlation_id) over the stack's log groups. --json prints one JSON object per line.
    """
    from taskrail import task_logs

    target = Target(user, stack, region, profile, local_state)
    client, aws = reach(target)
    task = client.get(task_id)  # the owner check: 404 for somebody else's task
    read = _log_reader(target, task, aws)
    # A local read returns only new lines; a query answers every line again, so those seen are skipped.
    seen: set[tuple[str, str, str]] | None = set() if stack else None
    shown = _print_log_lines(task_logs.in_order(read()), as_json=as_json, seen=seen)
    if not shown and not follow_logs and not as_json:
        console.print(f"no log lines of task {escape(task_id)} yet (status {task['status']})")
    try:
        while follow_logs:
            time.sleep(interval)
            _print_log_lines(task_logs.in_order(read()), as_json=as_json, seen=seen)
    except KeyboardInterrupt:
        return


def _log_reader(target: Target, task: dict[str, Any], aws: AwsClients) -> Callable[[], list[Any]]:
    from taskrail import task_logs
    from taskrail.client import epoch_seconds

    if target.stack is None:
        reader = task_logs.LocalTaskLogs(_local_log_dir(target.local_state), task["taskId"])
        return reader.read
    groups = task_logs.stack_log_groups(aws("cloudformation"), target.stack)
    if not groups:
        raise CliError(f"stack {target.stack} declares no log groups", hint="deploy this project's app", exit_code=2)
    start = int(epoch_seconds(task.get("createdAt")) or time.time()) - 60
    return lambda: task_logs.insights_lines(aws("logs"), groups, task["taskId"], start_s=start)


def _local_log_dir(state_file: Path | None) -> Path:
    from taskrail.local.state import STATE_DIR, STATE_FILE

    recorded = json.loads((state_file or STATE_FILE).read_text()).get("log_dir")
    return Path(recorded) if recorded else STATE_DIR / "logs"


def _print_log_lines(lines: list[Any], *, as_json: bool, seen: set[tuple[str, str, str]] | None) -> int:
    """Prints ``lines`` (skipping those in ``seen``, when given: a re-run query answers old lines again)."""
    from taskrail.task_logs import is_metrics, readable

    shown = 0
    for line in lines:
        if is_metrics(line) and not as_json:
            continue
        if seen is not None:
            key = (line.timestamp, line.request_id, line.text)
            if key in seen:
                continue
            seen.add(key)
        shown += 1
        if as_json:
            print(json.dumps(line.to_json()), flush=True)
        else:
            text = f"{line.function:<12} {line.request_id[:8]:<8} {readable(line, tracebacks=whole_values)}"
            console.print(text, markup=False, highlight=False, soft_wrap=True)
    return shown


@app.command()
def cost(
    runs: Annotated[int, typer.Option(help="executions per path measured in moto (happy, retried, failed)")] = 3,
    as_json_output: JsonOption = False,
) -> None:
    """Billable transitions per task and $ per 1 M tasks on AWS: STANDARD vs EXPRESS vs the naive design."""
    from taskrail.cost import as_json, cost_report, render_cost_report

    report = cost_report(runs=runs)
    if as_json_output:
        emit_json(as_json(report))
    else:
        console.print(render_cost_report(report))


@app.command()
@reports_errors
def capacity(
    region: Annotated[str, typer.Option("--region", help="the AWS Region whose quotas apply")] = "us-east-1",
    burst: Annotated[int, typer.Option("--burst", help="tasks in the simulated burst (0: none)")] = 1_000_000,
    over: Annotated[float, typer.Option("--over", help="seconds the burst is spread over")] = 600.0,
    path: Annotated[str, typer.Option("--path", help="happy, rejected, failed or replayed")] = "happy",
    shards: Annotated[float | None, typer.Option("--shards", help="the stream's shards (AWS publishes none)")] = None,
    duration: Annotated[
        list[str] | None, typer.Option("--duration", help="FUNCTION=MS, e.g. ProcessTaskFunction=250")
    ] = None,
    api_requests: Annotated[float | None, typer.Option("--api-requests", help="API requests per task")] = None,
    template: Annotated[Path | None, typer.Option("--template", help="a synthesized template to read")] = None,
    synth: Annotated[bool, typer.Option("--synth/--no-synth", help="synthesize first when infra/ changed")] = True,
    what_if: Annotated[
        list[str] | None, typer.Option("--what-if", help="SETTING=VALUE, e.g. TaskChangesPipe.ParallelizationFactor=10")
    ] = None,
    as_json_output: JsonOption = False,
) -> None:
    """Sustained tasks/s on AWS from the template and docs/quotas.json, the bottleneck, what to raise to double it,
    and a burst's backlog and drain time."""
    from taskrail.capacity.command import CapacityInputError, run

    try:
        out = run(
            region=region,
            burst=burst,
            over=over,
            path=path,
            shards=shards,
            durations=duration or [],
            api_requests=api_requests,
            template=template,
            synth=synth,
            as_json=as_json_output,
            what_if=what_if or [],
        )
    except CapacityInputError as error:
        raise CliError(str(error), exit_code=2) from error
    if isinstance(out, dict):
        emit_json(out)
    else:
        console.print(out, markup=False, highlight=False, soft_wrap=True)


@app.command("types")
@reports_errors
def types_command(as_json: JsonOption = False) -> None:
    """The task types this checkout's registry has, each with its params (--json: full JSON schemas)."""
    from taskrail.scaffold import parameters_line, type_catalog

    catalog = type_catalog()
    if as_json:
        emit_json([{"type": t.name, "summary": t.summary, "paramsSchema": t.params_schema} for t in catalog])
        return
    table = Table("type", "what it does", "params (* required)", title="task types", expand=False)
    for info in catalog:
        table.add_row(info.name, escape(info.summary), escape(parameters_line(info.params_schema)))
    console.print(table)
    console.print("full JSON schemas: `taskrail types --json`; add a type: `taskrail new-type NAME`")


@app.command("new-type")
@reports_errors
def new_type_command(
    name: Annotated[str, typer.Argument(help="the type's name: lowercase words joined by dots, e.g. report.words")],
    root: Annotated[Path | None, typer.Option("--root", help="the taskrail checkout (default: this one)")] = None,
) -> None:
    """Scaffold a task type: its module, its minimal-params fixture and its test (docs/TASK-TYPES.md)."""
    from taskrail.scaffold import ROOT, ScaffoldError, new_type

    try:
        scaffold = new_type(name, root or ROOT)
    except ScaffoldError as error:
        raise CliError(str(error), hint="`taskrail types` lists the existing types") from None
    for path in scaffold.files:
        console.print(f"wrote {path.relative_to(root or ROOT)}")
    console.print(
        f"next: `pytest {scaffold.test.relative_to(root or ROOT)}`; then `python -m infra.openapi` (the API's type list"
        " changed: docs/openapi.json is regenerated from the template); a running `taskrail local up` needs a restart"
    )


@local_app.command("up")
def local_up(
    api_port: Annotated[int, typer.Option(help="0 picks a free port")] = 4566,
    aws_port: Annotated[int, typer.Option()] = 4567,
    console_port: Annotated[int, typer.Option()] = 4568,
    time_scale: Annotated[float, typer.Option(help="Retry/Wait time factor (1 = real time, as on AWS)")] = 1.0,
    concurrency: Annotated[
        int, typer.Option(help="worker processes per function at start (more start while all are busy)")
    ] = 2,
    faults: Annotated[Path | None, typer.Option(help="a fault plan (JSON, see taskrail/local/faults.py)")] = None,
    mock_config: Annotated[
        Path | None,
        typer.Option(
            help="Step Functions Local's MockConfigFile: StartExecution on <arn>#<TestCase> runs that test case",
            envvar="SFN_MOCK_CONFIG",
        ),
    ] = None,
    reload: Annotated[
        bool,
        typer.Option(
            help="follow infra/, workflows/, lambdas/, asl/: function code reloads in place, keeping the stack's "
            "state; a template change is refused with a message (taskrail/local/reload.py)"
        ),
    ] = True,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            help="keep the stack's data (tables, objects, queue messages) across restarts: restored from DIR at the "
            "start, saved there at a clean stop (docs/LOCAL-EMULATOR.md)",
            metavar="DIR",
        ),
    ] = None,
    local_state: StateOption = None,
) -> None:
    """Start the local stack in the foreground; Ctrl-C stops it cleanly."""
    from taskrail.local.preflight import LocalUpRefused, check_can_start
    from taskrail.local.state import STATE_FILE as DEFAULT_STATE_FILE

    ports = {"api-port": api_port, "aws-port": aws_port, "console-port": console_port}
    try:  # before the emulator is imported: a second `local up` is refused at once
        check_can_start(local_state or DEFAULT_STATE_FILE, ports)
    except LocalUpRefused as refused:
        err_console.print(f"[red]error:[/] {escape(str(refused))}", soft_wrap=True)
        raise typer.Exit(1) from None
    from taskrail.local.faults import FaultPlan
    from taskrail.local.stack import STATE_FILE, LocalStack, StackOptions

    stack = LocalStack(
        StackOptions(
            api_port=api_port,
            aws_port=aws_port,
            console_port=console_port,
            time_scale=time_scale,
            concurrency=concurrency,
            faults=FaultPlan.model_validate_json(faults.read_text()) if faults else None,
            mock_config=mock_config,
            reload=reload,
            state_dir=state_dir,
        )
    )
    try:
        info = stack.start()
    except LocalUpRefused as refused:  # a port taken meanwhile, a snapshot that cannot be loaded
        err_console.print(f"[red]error:[/] {escape(str(refused))}", soft_wrap=True)
        raise typer.Exit(1) from None
    stack.write_state(local_state or STATE_FILE)
    console.print(f"API            {info.api_url}")
    console.print(f"live progress  {info.websocket_url or '-'}  (WebSocket: `taskrail watch` subscribes)")
    console.print(f"AWS endpoint   {info.aws_endpoint_url}")
    console.print(f"console        {info.console_url or '-'}")
    if state_dir is not None:
        kept = f"restored {stack.restored}" if stack.restored is not None else "nothing to restore yet"
        console.print(f"state dir      {state_dir} ({kept}; saved at the stop)", soft_wrap=True)
    if reload:
        console.print("code reload    lambdas/ edits restart the workers; template changes are refused (--no-reload)")
    console.print("users: alice, bob (see taskrail/local/users.py). Ctrl-C to stop.")
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, stop)  # the terminal closed: stop cleanly too (a --state-dir snapshot is written)
    try:
        while not stopping:
            time.sleep(0.2)
    finally:
        stack.stop()
        console.print("local stack stopped")


@local_app.command("status")
def local_status(local_state: StateOption = None) -> None:
    """The running local stack: its endpoints, and what it did about the latest source changes (code reload)."""
    from taskrail.local.preflight import running_stack
    from taskrail.local.reload import latest_outcomes
    from taskrail.local.state import STATE_DIR, STATE_FILE

    path = local_state or STATE_FILE
    info = running_stack(path)
    if info is None:
        err_console.print(f"[red]error:[/] no local stack is running (state file {path}): `taskrail local up`")
        raise typer.Exit(1)
    console.print(f"pid            {info.pid}", soft_wrap=True)
    console.print(f"API            {info.api_url}", soft_wrap=True)
    console.print(f"live progress  {info.websocket_url or '-'}", soft_wrap=True)
    console.print(f"AWS endpoint   {info.aws_endpoint_url}", soft_wrap=True)
    console.print(f"console        {info.console_url or '-'}", soft_wrap=True)
    outcomes = latest_outcomes(STATE_DIR / "logs")
    if not outcomes:
        console.print("code reload    no source change seen (or --no-reload)")
    for outcome in outcomes[:5]:
        console.print(f"code reload    {outcome.at} {outcome.outcome}: {escape(outcome.message)}", soft_wrap=True)


@local_app.command("down")
def local_down(local_state: StateOption = None) -> None:
    """Stop a local stack started in another terminal or in the background."""
    from taskrail.local.state import STATE_FILE, StackInfo

    path = local_state or STATE_FILE
    if not path.exists():
        console.print("no local stack is running")
        return
    pid = StackInfo.load(path).pid
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        path.unlink(missing_ok=True)
        console.print("the local stack had already stopped")
        return
    deadline = time.monotonic() + 30
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    console.print("local stack stopped" if not path.exists() else "[red]the stack did not stop within 30 s[/]")


@local_app.command("iam")
def local_iam(
    pid: Annotated[
        int | None, typer.Option(help="the stack process (default: the running one, else the latest)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    local_state: StateOption = None,
) -> None:
    """IAM of a local run: per principal the actions it used, the denials, and the grants no call used."""
    from taskrail.local.iam import report
    from taskrail.local.state import STATE_DIR, STATE_FILE, StackInfo

    path = local_state or STATE_FILE
    log_dir = STATE_DIR / "logs"
    chosen = pid or (StackInfo.load(path).pid if path.exists() else None) or report.latest_pid(log_dir)
    if chosen is None:
        console.print(f"[red]no IAM log[/] in {log_dir}: `taskrail local up` writes one")
        raise typer.Exit(2)
    summary = report.summarize(log_dir, chosen)
    if as_json:
        emit_json(summary)
    else:
        console.print(report.format_summary(summary), markup=False, highlight=False)


@local_app.command("reset")
def local_reset(local_state: StateOption = None) -> None:
    """Empty the running local stack (every table, queue, bucket, topic and execution) and provision it again.

    Asked over the stack's control socket (a Unix socket only this OS user can open), never over HTTP: the
    local AWS endpoint does not serve moto's /moto-api, so no web page can reset the stack.
    """
    from taskrail.local.preflight import process_alive
    from taskrail.local.state import STATE_FILE, StackInfo, request_reset

    path = local_state or STATE_FILE
    if not path.exists():
        console.print(f"[red]no local stack is running[/] (no state file at {path}): `taskrail local up` starts one")
        raise typer.Exit(1)
    info = StackInfo.load(path)
    if not info.control_socket or not process_alive(info.pid):
        console.print(f"[red]the local stack recorded in {path} is not running[/] (process {info.pid})")
        raise typer.Exit(1)
    answer = request_reset(info.control_socket)
    if answer != "ok":
        console.print(f"[red]the local stack did not reset:[/] {answer}")
        raise typer.Exit(1)
    console.print("local stack reset: every table, queue, bucket and execution is empty")


def main() -> None:
    sys.exit(app())


if __name__ == "__main__":
    main()
