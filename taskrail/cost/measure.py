"""Measuring: the paths run on the in-process platform (``taskrail.local.inprocess``), with every AWS request
recorded through a botocore hook and every Lambda invocation timed. A path is everything one task costs: its
lifecycle execution(s), the failure recorder's execution for a failed one (started by the execution's
status-change event), and the outbox (the task-changes pipe's request and function: the DLQ message, the outcome
event and the mark), run here by hand since the in-process platform runs no pipes."""

from __future__ import annotations

import contextlib
import io
import json
import math
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from task_common.contract import OUTCOME_DETAIL_TYPES, UNSUCCESSFUL_EXECUTION_STATUSES
from taskrail.cost.definition import (
    ASL_PATH,
    BASELINE_PATH,
    EXPRESS_ASL_PATH,
    PATHS,
    PathSpec,
    definition_transitions,
    integration,
    load_definition,
    relative,
)
from taskrail.cost.model import (
    Assumptions,
    CostReport,
    FunctionInfo,
    LambdaUse,
    PathProfile,
    compute_report,
    express_duration_ms,
)
from taskrail.cost.prices import PRICES_PATH, load_prices
from taskrail.cost.units import ItemImages, TableInfo, item_size_bytes, read_units, tables_from_template, write_units
from taskrail.history import Visit, billable_transitions, state_visits
from taskrail.local.inprocess import Platform, in_process_platform, quiet
from taskrail.local.pipes import matches
from taskrail.operator.aws import DynamoTaskRecords, SqsDeadLetters, StepFunctionsExecutions
from taskrail.operator.replay import replay_task

WAIT_SECONDS: Final = 120  # a hang guard per execution
# What IncludeExecutionData adds to a log record ("Log levels for Step Functions", CloudWatch Logs logging).
EXECUTION_DATA_FIELDS: Final = frozenset({"input", "output", "inputDetails", "outputDetails", "parameters"})
# The workflows' logging options measured (docs/COST.md, "Logging"): the level and includeExecutionData. ERROR logs
# the error events only, FATAL the execution's own end only, OFF nothing ("Log levels", Step Functions Developer
# Guide, cloudwatch-log-level.html).
LOG_OPTIONS: Final = (
    ("OFF", False),
    ("FATAL", False),
    ("ERROR", False),
    ("ERROR", True),
    ("ALL", False),
    ("ALL", True),
)
FATAL_EVENTS: Final = frozenset({"ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"})
ERROR_EVENT_SUFFIXES: Final = ("Failed", "TimedOut", "Aborted", "ScheduleFailed", "StartFailed", "SubmitFailed")
OUTBOX_PIPE: Final = "TaskChangesPipe"
OUTBOX_FUNCTION: Final = "TaskChangesFunction"
RECORDER: Final = "FailureRecorderStateMachine"
DEAD_LETTER_QUEUE: Final = "TaskDeadLetterQueue"
FIX_MARKER_KEY: Final = "diagnostics/poison-fixed"  # task_types.diagnostic_poison (a Lambda package)
# "Execution redrives are considered as state transitions. For information about how state transitions affect
# billing, see Step Functions Pricing." ("Redriving executions", Step Functions Developer Guide): each redrive
# (an ExecutionRedriven event in the history) bills one transition on STANDARD, beside the states it reruns.
REDRIVEN_EVENT: Final = "ExecutionRedriven"
REDRIVE_TRANSITIONS: Final = 1


def redrives_in(events: Iterable[Mapping[str, Any]]) -> int:
    """How many times the execution was redriven: its history's ExecutionRedriven events."""
    return sum(1 for event in events if event.get("type") == REDRIVEN_EVENT)


def billed_transitions(visits: Sequence[Visit], *, redrives: int = 0, recorder: int = 0) -> int:
    """A path's billable transitions on STANDARD: every state entered and retry, one per redrive, and the failure
    recorder's."""
    return billable_transitions(visits) + redrives * REDRIVE_TRANSITIONS + recorder


@dataclass
class _Call:
    service: str
    operation: str
    params: dict[str, Any]
    error: str | None = None
    at: float = field(default_factory=time.perf_counter)


class _RequestRecorder:
    """Every AWS request made through botocore in this process while recording (a ``before-parameter-build`` and
    ``after-call`` hook on every session): the workflow's service integrations and the handlers' SDK calls."""

    KEY: Final = "taskrail.cost.call"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[_Call] | None = None
        self._installed = False

    def install(self) -> None:
        import boto3
        from botocore.handlers import BUILTIN_HANDLERS

        with self._lock:
            if self._installed:
                return
            existing = boto3.DEFAULT_SESSION
            BUILTIN_HANDLERS.append(("before-parameter-build", self.before))
            BUILTIN_HANDLERS.append(("after-call", self.after))
            if existing is not None:
                existing.events.register("before-parameter-build", self.before)
                existing.events.register("after-call", self.after)
            self._installed = True
        # Clients the handlers cached before the hook was installed would not report: make them anew.
        aws = sys.modules.get("task_common.aws")
        cached = getattr(aws, "client", None)
        if cached is not None and hasattr(cached, "cache_clear"):
            cached.cache_clear()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        with self._lock:
            calls, self._calls = self._calls, None
        try:
            yield
        finally:
            with self._lock:
                self._calls = calls

    @contextlib.contextmanager
    def recording(self) -> Iterator[list[_Call]]:
        calls: list[_Call] = []
        with self._lock:
            self._calls = calls
        try:
            yield calls
        finally:
            with self._lock:
                self._calls = None

    def before(self, params: Any, event_name: str, context: Any = None, **kwargs: Any) -> None:
        calls = self._calls
        if calls is None:
            return
        _, service, operation = event_name.split(".", 2)
        call = _Call(service, operation, dict(params) if isinstance(params, Mapping) else {})
        with self._lock:
            calls.append(call)
        if isinstance(context, dict):
            context[self.KEY] = call

    def after(self, http_response: Any = None, parsed: Any = None, context: Any = None, **kwargs: Any) -> None:
        call = context.get(self.KEY) if isinstance(context, dict) else None
        status = getattr(http_response, "status_code", 200)
        if isinstance(call, _Call) and status >= 300:
            error = parsed.get("Error", {}).get("Code") if isinstance(parsed, dict) else None
            call.error = str(error or status)


_RECORDER: Final = _RequestRecorder()


@dataclass(frozen=True)
class Invocation:
    function: str
    started: float  # perf_counter
    ended: float
    failed: bool
    error_bytes: int = 0  # a failed invocation's error document, which the runtime logs

    @property
    def ms(self) -> float:
        return (self.ended - self.started) * 1000


class TimedInvoker:
    """Wraps a Lambda invoker (``services.lambda_.lambda_invoker``): the duration of every invocation, in order."""

    def __init__(self, inner: Callable[[str, bytes, str | None], Any]) -> None:
        self.inner = inner
        self._lock = threading.Lock()
        self.records: list[Invocation] = []

    def __call__(self, function_name: str, payload: bytes, qualifier: str | None) -> Any:
        started = time.perf_counter()
        outcome = self.inner(function_name, payload, qualifier)
        ended = time.perf_counter()
        failed = bool(getattr(outcome, "function_error", None))
        error_bytes = len(getattr(outcome, "payload", b"")) if failed else 0
        with self._lock:
            self.records.append(Invocation(function_name, started, ended, failed, error_bytes))
        return outcome


def function_infos(template: Mapping[str, Any], resources: Any) -> list[FunctionInfo]:
    """Memory and architecture of each function, from the synthesized template."""
    infos = []
    for construct, spec in resources.functions.items():
        props = template["Resources"].get(spec.logical_id, {}).get("Properties", {})
        architecture = (props.get("Architectures") or ["x86_64"])[0]
        infos.append(FunctionInfo(construct, spec.name, int(props.get("MemorySize", spec.memory_mb)), architecture))
    return infos


@dataclass
class _Run:
    visits: list[Visit]
    calls: list[_Call]
    invocations: list[Invocation]
    status: str
    item_kb: dict[tuple[str, str], int]
    workflow_log_bytes: int = 0
    printed_bytes: int = 0  # what the handlers printed (Powertools logs and metrics)
    recorder_transitions: int = 0  # the failure recorder's executions for this task
    outbox_deliveries: int = 0  # records the task-changes pipe passed to its function (a pipe request each)
    replay_action: str = ""  # the replayed path: redriven, or started (a new execution)
    executions: int = 1  # lifecycle executions (a redrive resumes the same one)
    redrives: int = 0  # ExecutionRedriven events: each bills as a state transition (REDRIVE_TRANSITIONS)
    log_options: dict[str, int] = field(default_factory=dict)  # workflow log bytes per LOG_OPTIONS entry


def log_option_name(level: str, include_execution_data: bool) -> str:
    return f"{level}{' + execution data' if include_execution_data else ''}"


def logged(event: Mapping[str, Any], level: str) -> bool:
    """Whether the workflow's logging at ``level`` sends ``event`` to CloudWatch Logs."""
    kind = str(event.get("type", ""))
    if level == "ALL":
        return True
    if level == "FATAL":
        return kind in FATAL_EVENTS
    if level == "ERROR":
        return kind in FATAL_EVENTS or kind == "FailStateEntered" or kind.endswith(ERROR_EVENT_SUFFIXES)
    return False


def _outbox(platform: Platform) -> tuple[list[Any], str] | None:
    """The task-changes pipe's filters and its function's name, from the template (None without an outbox)."""
    pipes = [
        resource
        for logical_id, resource in platform.template["Resources"].items()
        if resource["Type"] == "AWS::Pipes::Pipe" and OUTBOX_PIPE in logical_id
    ]
    names = [spec.name for spec in platform.resources.functions.values() if spec.name.endswith(OUTBOX_FUNCTION)]
    if len(pipes) != 1 or len(names) != 1:
        return None
    filters = pipes[0]["Properties"]["SourceParameters"]["FilterCriteria"]["Filters"]
    return [json.loads(f["Pattern"]) for f in filters], names[0]


def _deliver_outbox(platform: Platform, invoke: Callable[[str, bytes, str | None], Any], task_id: str) -> int:
    """The task-changes pipe for one task: its item's latest change, as the stream's MODIFY record, goes to the
    function while it matches the pipe's filters (the function's mark makes it stop matching). Returns the
    deliveries (one pipe request each)."""
    outbox = _outbox(platform)
    if outbox is None:
        return 0
    filters, function = outbox
    for deliveries in range(10):
        item = platform.client("dynamodb").get_item(
            TableName=platform.tasks_table, Key={"taskId": {"S": task_id}}, ConsistentRead=True
        )["Item"]
        record = {"eventName": "MODIFY", "dynamodb": {"Keys": {"taskId": item["taskId"]}, "NewImage": item}}
        if not any(matches(pattern, record) for pattern in filters):
            return deliveries
        outcome = invoke(function, json.dumps([record]).encode(), None)
        if getattr(outcome, "function_error", None):
            raise RuntimeError(f"the task-changes function failed: {getattr(outcome, 'payload', b'')!r}")
    raise RuntimeError(f"the outbox of {task_id} never settled")


def _recorded(platform: Platform, executions: Sequence[str]) -> list[str]:
    """Waits until every unsuccessful end of ``executions`` has its failure recorder run, ended; returns those
    runs (none when the template has no recorder)."""
    machine = platform.resources.state_machines.get(RECORDER)
    if machine is None:
        return []
    sfn, deadline = platform.client("stepfunctions"), time.monotonic() + WAIT_SECONDS
    while True:
        ended = [sfn.describe_execution(executionArn=arn) for arn in executions]
        wanted = {
            (e["executionArn"], e["status"], e.get("redriveCount", 0))
            for e in ended
            if e["status"] in UNSUCCESSFUL_EXECUTION_STATUSES
        }
        runs: dict[tuple[str, str, int], str] = {}
        for listed in sfn.list_executions(stateMachineArn=machine)["executions"]:
            run = sfn.describe_execution(executionArn=listed["executionArn"])
            detail = json.loads(run["input"])["detail"]
            if run["status"] != "RUNNING":
                runs[(detail["executionArn"], detail["status"], detail.get("redriveCount", 0))] = run["executionArn"]
        if wanted <= set(runs):
            return [runs[key] for key in sorted(wanted)]
        if time.monotonic() > deadline:
            raise TimeoutError(f"the failure recorder did not record {sorted(wanted - set(runs))}")
        time.sleep(0.02)


def _replay(platform: Platform, task_id: str, failed_arn: str) -> tuple[str, str]:
    """`taskrail replay ID` on the platform (the operator's own functions and adapters): (action, execution)."""
    tasks = DynamoTaskRecords(platform.client, platform.tasks_table)
    item = tasks.get(task_id)
    assert item is not None
    outcome = replay_task(
        item,
        queue=SqsDeadLetters(platform.client, platform.resources.ref(DEAD_LETTER_QUEUE), wait_seconds=0),
        tasks=tasks,
        executions=StepFunctionsExecutions(platform.client, platform.state_machine_arn),
    )
    if outcome.action == "redriven":
        return outcome.action, failed_arn
    if outcome.action != "started":
        raise RuntimeError(f"replaying {task_id}: {outcome.action}: {outcome.detail}")
    return outcome.action, platform.execution_named(outcome.execution_name)  # an Express ARN ends in a UUID


def _purge(platform: Platform, queue_construct: str) -> None:
    sqs, url = platform.client("sqs"), platform.resources.ref(queue_construct)
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def _key_of(call: _Call, table: TableInfo | None) -> tuple[str, str] | None:
    key = call.params.get("Key")
    if key is None and table is not None:
        key = {k: v for k, v in call.params.get("Item", {}).items() if k in table.key}
    if not key:
        return None
    return str(call.params.get("TableName", "")), json.dumps(key, sort_keys=True)


def _item_sizes(
    platform: Platform, calls: Sequence[_Call], tables: Mapping[str, TableInfo]
) -> dict[tuple[str, str], int]:
    """KB blocks of every item the path touched, at the end of the path (its largest size), or as written."""
    dynamodb, sizes = platform.client("dynamodb"), {}
    for call in calls:
        if call.service != "dynamodb":
            continue
        table = tables.get(str(call.params.get("TableName", "")))
        ident = _key_of(call, table)
        if ident is None or ident in sizes:
            continue
        item = dynamodb.get_item(TableName=ident[0], Key=json.loads(ident[1])).get("Item") or call.params.get(
            "Item", {}
        )
        sizes[ident] = max(1, math.ceil(item_size_bytes(item) / 1024))
    return sizes


def _run_path(
    platform: Platform, timed: TimedInvoker, spec: PathSpec, index: int, tables: Mapping[str, TableInfo]
) -> _Run:
    task_id = f"cost-{spec.name}-{index}-{time.monotonic_ns()}"
    s3 = platform.client("s3")
    if spec.replayed:  # the queue holds only this task's message; the poison task fails until fixed
        _purge(platform, DEAD_LETTER_QUEUE)
        s3.delete_object(Bucket=platform.results_bucket, Key=FIX_MARKER_KEY)
    timed.records.clear()
    printed = _printed()
    action = ""
    with _RECORDER.recording() as calls:
        platform.store_task(task_id, spec.task_type, spec.params, only_new=True)  # the API's PutItem
        execution = platform.wait(platform.start(task_id), timeout=WAIT_SECONDS)
        executions = [execution["executionArn"]]
        recorder = _recorded(platform, executions)
        deliveries = _deliver_outbox(platform, timed, task_id)
        if spec.replayed:
            with _RECORDER.paused():  # the operator's fix is not the task's cost
                s3.put_object(Bucket=platform.results_bucket, Key=FIX_MARKER_KEY, Body=b"fixed")
            action, replay_arn = _replay(platform, task_id, execution["executionArn"])
            execution = platform.wait(replay_arn, timeout=WAIT_SECONDS)
            executions = list(dict.fromkeys([*executions, replay_arn]))
            # (the first run's recorder ran above: the redriven execution no longer reads FAILED)
            recorder = list(dict.fromkeys([*recorder, *_recorded(platform, executions)]))
            deliveries += _deliver_outbox(platform, timed, task_id)
    if spec.replayed:
        s3.delete_object(Bucket=platform.results_bucket, Key=FIX_MARKER_KEY)
    printed = _printed() - printed
    invocations = list(timed.records)
    item = platform.client("dynamodb").get_item(TableName=platform.tasks_table, Key={"taskId": {"S": task_id}})
    status = item.get("Item", {}).get("status", {}).get("S", execution["status"])
    events = [event for arn in executions for event in platform.history(arn)]
    sizes = _item_sizes(platform, calls, tables)
    log = sum(
        workflow_log_bytes(platform.history(arn), arn, **_logging(platform, arn)) for arn in [*executions, *recorder]
    )
    recorder_transitions = sum(billable_transitions(state_visits(platform.history(arn))) for arn in recorder)
    histories = [(arn, platform.history(arn)) for arn in [*executions, *recorder]]
    options = {
        log_option_name(level, data): sum(
            workflow_log_bytes(events, arn, include_execution_data=data, level=level) for arn, events in histories
        )
        for level, data in LOG_OPTIONS
    }
    return _Run(
        state_visits(events),
        list(calls),
        invocations,
        status,
        sizes,
        log,
        max(0, printed),
        recorder_transitions=recorder_transitions,
        outbox_deliveries=deliveries,
        replay_action=action,
        executions=len(executions),
        redrives=redrives_in(events),
        log_options=options,
    )


def _logging(platform: Platform, execution_arn: str) -> dict[str, Any]:
    """The execution's state machine's LoggingConfiguration (Level, IncludeExecutionData), from the template."""
    parts = execution_arn.split(":")  # ...:execution:M:NAME, or ...:express:M:NAME:UUID
    machine = ":".join([*parts[:5], "stateMachine", parts[6]])
    logical = next((k for k, arn in platform.resources.state_machines.items() if arn == machine), None)
    for logical_id, resource in platform.template["Resources"].items():
        if resource["Type"] == "AWS::StepFunctions::StateMachine" and logical and logical in logical_id:
            config = resource["Properties"].get("LoggingConfiguration", {})
            return {
                "include_execution_data": bool(config.get("IncludeExecutionData", False)),
                "level": str(config.get("Level", "OFF")),
            }
    return {"include_execution_data": True, "level": "ALL"}


def _printed() -> int:
    """Characters written so far to stdout when :func:`quiet` captures it (0 otherwise)."""
    stream = sys.stdout
    return stream.tell() if isinstance(stream, io.StringIO) else 0


def workflow_log_bytes(
    events: Sequence[Mapping[str, Any]], execution_arn: str, *, include_execution_data: bool = True, level: str = "ALL"
) -> int:
    """What logging at ``level`` sends to CloudWatch Logs: one JSON record per history event it logs (its type, ids,
    timestamp, the execution ARN and the event's details; their input and output only with execution data)."""
    total = 0
    for event in events:
        if not logged(event, level):
            continue
        details: dict[str, Any] = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
        if not include_execution_data:
            details = {k: v for k, v in details.items() if k not in EXECUTION_DATA_FIELDS}
        record: dict[str, Any] = {
            "id": event.get("id"),
            "type": event.get("type"),
            "details": details,
            "previous_event_id": event.get("previousEventId"),
            "event_timestamp": str(event.get("timestamp")),
            "execution_arn": execution_arn,
        }
        total += len(json.dumps(record, default=str).encode())
    return total


def _profile(
    spec: PathSpec,
    runs: Sequence[_Run],
    definition: Mapping[str, Any],
    tables: Mapping[str, TableInfo],
    functions: Mapping[str, FunctionInfo],
    assumptions: Assumptions,
    other: Counter[str],
) -> PathProfile:
    last = runs[-1]
    # Durations: the median of the runs, invocation by invocation (the runs take the same path), plus the AWS
    # latency of each SDK call the invocation made (in-process, moto answers those in a millisecond or two).
    same = [r for r in runs if len(r.invocations) == len(last.invocations)]
    local = [statistics.median(r.invocations[i].ms for r in same) for i in range(len(last.invocations))]
    durations = []
    by_function: dict[str, list[tuple[float, float]]] = {}
    for invocation, ms in zip(last.invocations, local, strict=True):
        sdk = [c for c in last.calls if invocation.started <= c.at <= invocation.ended and c.service != "sfn"]
        aws_ms = ms + sum(assumptions.service_ms(c.service) for c in sdk)
        durations.append(aws_ms)
        by_function.setdefault(invocation.function, []).append((aws_ms, ms))
    lambdas = tuple(
        LambdaUse(
            name,
            functions[name].memory_mb,
            functions[name].architecture,
            tuple(aws for aws, _ in pairs),
            tuple(ms for _, ms in pairs),
        )
        for name, pairs in by_function.items()
        if name in functions
    )
    # Lambda states take the invocations in order (one execution at a time).
    lambda_ms: dict[str, list[float]] = {}
    queue = [ms for i, ms in zip(last.invocations, durations, strict=True) if not i.function.endswith(OUTBOX_FUNCTION)]
    for visit in last.visits:
        if integration(definition["States"][visit.name]) == "lambda:invoke":
            lambda_ms[visit.name] = [queue.pop(0) for _ in range(min(visit.attempts, len(queue)))]
    usage = _Usage(last, tables, other).count()
    lambda_logs = sum(assumptions.lambda_platform_log_bytes + i.error_bytes for i in last.invocations)
    return PathProfile(
        name=spec.name,
        description=spec.description,
        states=tuple(v.name for v in last.visits),
        transitions=billed_transitions(last.visits, redrives=last.redrives, recorder=last.recorder_transitions),
        recorder_transitions=last.recorder_transitions,
        outbox_deliveries=last.outbox_deliveries,
        replay_action=last.replay_action,
        executions=last.executions,
        workflow_log_options={k: float(v) for k, v in last.log_options.items()},
        attempts=tuple(v.attempts for v in last.visits),
        lambdas=lambdas,
        express_ms=express_duration_ms(last.visits, definition, lambda_ms, assumptions),
        express_memory_mb=assumptions.express_memory_mb,
        outcome=last.status,
        definition_transitions=definition_transitions(definition, spec),
        pipe_requests=1 + last.outbox_deliveries,
        api_requests=1,
        log_bytes=float(last.workflow_log_bytes + last.printed_bytes + lambda_logs),
        **usage,
    )


class _Usage:
    """Counts what one run's requests cost in units, service by service."""

    def __init__(self, run: _Run, tables: Mapping[str, TableInfo], other: Counter[str]) -> None:
        self.run, self.tables, self.other = run, tables, other
        self.images = ItemImages()
        self.dynamodb_requests: Counter[str] = Counter()
        self.wru = self.rru = 0.0
        self.counts: Counter[str] = Counter()

    def count(self) -> dict[str, Any]:
        for call in self.run.calls:
            handler = getattr(self, f"_{call.service}", None)
            if call.service in ("sfn", "lambda"):  # starting/polling executions; invocations are timed apart
                continue
            if handler is None:
                self.other[f"{call.service}.{call.operation}"] += 1
            else:
                handler(call)
        return {
            "dynamodb_requests": dict(self.dynamodb_requests),
            "dynamodb_wru": self.wru,
            "dynamodb_rru": self.rru,
            "s3_put": self.counts["s3_put"],
            "s3_get": self.counts["s3_get"],
            "sns_publishes": self.counts["sns"],
            "events": self.counts["events"],
            "sqs_requests": self.counts["sqs"],
        }

    def _dynamodb(self, call: _Call) -> None:
        operation = call.operation
        table = self.tables.get(str(call.params.get("TableName", "")))
        ident = _key_of(call, table)
        final = self.run.item_kb.get(ident, 1) if ident else 1
        self.dynamodb_requests[operation] += 1
        if operation in ("PutItem", "UpdateItem", "DeleteItem"):
            if ident is None or call.error:
                current = (self.images.size_kb(ident) if ident else None) or final
                self.wru += current  # a refused (conditional) write still consumes the item's units
                return
            had, old = self.images.attributes(ident), self.images.item(ident)
            before, after = self.images.apply(ident, operation, call.params)
            self.wru += write_units(
                operation,
                call.params,
                table,
                after or final,
                before or after or final,
                before_attributes=had if before else None,
                after_attributes=self.images.attributes(ident),
                before_item=old if before else None,
                after_item=self.images.item(ident),
            )
        elif operation == "GetItem":
            self.rru += read_units(call.params, (self.images.size_kb(ident) if ident else None) or final)
        else:
            self.rru += 1.0
            self.other[f"dynamodb.{operation}"] += 1

    def _s3(self, call: _Call) -> None:
        if call.operation.startswith("Delete"):
            return  # DELETE requests are free
        put = call.operation.startswith(("Put", "Copy", "Post", "List", "Create", "Upload", "Complete"))
        self.counts["s3_put" if put else "s3_get"] += 1

    def _sns(self, call: _Call) -> None:
        if call.operation.startswith("Publish"):
            self.counts["sns"] += len(call.params.get("PublishBatchRequestEntries", [None]))

    def _eventbridge(self, call: _Call) -> None:
        if call.operation == "PutEvents":
            # AWS services' own events (aws.*) on the default bus are free; taskrail's are billed
            entries = [e for e in call.params.get("Entries", []) if not str(e.get("Source", "")).startswith("aws.")]
            self.counts["events"] += len(entries)
            # The outcome rule delivers each outcome event to the SNS topic: a publish moto makes internally.
            self.counts["sns"] += sum(1 for e in entries if e.get("DetailType") in OUTCOME_DETAIL_TYPES)

    def _sqs(self, call: _Call) -> None:
        self.counts["sqs"] += 1


def measure_paths(
    template: Mapping[str, Any] | None = None,
    *,
    runs: int = 3,
    paths: Sequence[PathSpec] = PATHS,
    definition: Mapping[str, Any] | None = None,
    assumptions: Assumptions | None = None,
    cdk_out: Path | None = None,
) -> tuple[list[PathProfile], list[FunctionInfo], dict[str, int]]:
    """Run every path ``runs`` times (after one unmeasured warm-up, so handler imports are not timed) in moto's
    interpreter in this process; return what one task uses on each path."""
    assumptions = assumptions or Assumptions()
    definition = definition or load_definition()
    _RECORDER.install()
    other: Counter[str] = Counter()
    timed: TimedInvoker | None = None
    with quiet(), in_process_platform(template, cdk_out=cdk_out) as platform:
        timed = TimedInvoker(platform.functions)
        platform.invoker = timed
        physical = {logical: attrs.get("Ref", logical) for logical, attrs in platform.resources.attributes.items()}
        tables = tables_from_template(platform.template, physical)
        infos = function_infos(platform.template, platform.resources)
        by_name = {info.name: info for info in infos}
        _run_path(platform, timed, paths[0], -1, tables)  # warm-up: cold imports of the handlers
        profiles = []
        for spec in paths:
            measured = [_run_path(platform, timed, spec, i, tables) for i in range(max(1, runs))]
            profile = _profile(spec, measured, definition, tables, by_name, assumptions, other)
            if profile.outcome != spec.expected_status:
                raise RuntimeError(
                    f"path {spec.name}: the task ended {profile.outcome}, expected {spec.expected_status}"
                )
            profiles.append(profile)
    return profiles, infos, dict(other)


def cost_report(
    *,
    runs: int = 3,
    template: Mapping[str, Any] | None = None,
    asl_path: Path = ASL_PATH,
    prices_path: Path = PRICES_PATH,
    assumptions: Assumptions | None = None,
    express: bool = True,
) -> CostReport:
    """Measure the paths in moto's interpreter (about 30-60 s per lifecycle type) and price them. ``taskrail cost``.

    With ``express`` the EXPRESS columns are measured on the EXPRESS lifecycle (``-c lifecycleType=EXPRESS``,
    ``asl/task_lifecycle.express.asl.json``), synthesized beside the default one: its own failure states, no
    failure recorder, a replay that starts a new execution."""
    definition = load_definition(asl_path)
    prices = load_prices(prices_path)
    assumptions = assumptions or Assumptions()
    profiles, functions, other = measure_paths(template, runs=runs, definition=definition, assumptions=assumptions)
    express_profiles: list[PathProfile] = []
    express_definition: dict[str, Any] | None = None
    if express:
        from infra.synth import synth  # synthesizing needs CDK: only when asked
        from workflows.lifecycle_type import EXPRESS

        express_path = synth(lifecycle_type=EXPRESS)
        express_definition = load_definition(EXPRESS_ASL_PATH)
        express_profiles, _, _ = measure_paths(
            json.loads(express_path.read_text()),
            runs=runs,
            definition=express_definition,
            assumptions=assumptions,
            cdk_out=express_path.parent,
        )
    report = compute_report(
        profiles,
        definition,
        prices,
        functions=functions,
        assumptions=assumptions,
        definition_name=relative(asl_path),
        runs=runs,
        other_requests=other,
        express_profiles=express_profiles,
        express_definition=express_definition,
        express_definition_name=relative(EXPRESS_ASL_PATH) if express_profiles else "",
    )
    return replace(report, baseline=json.loads(BASELINE_PATH.read_text()) if BASELINE_PATH.exists() else {})
