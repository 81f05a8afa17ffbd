"""The cost model: billable state transitions and dollars per million tasks on AWS.

Nothing here is hand-counted. :func:`cost_report`

1. reads the generated definition (``asl/task_lifecycle.asl.json``) and walks its happy path statically;
2. runs the three paths a task can take -- happy (``text.stats``), retried (``diagnostic.flaky`` failing twice)
   and failed (``diagnostic.poison``) -- through moto's Step Functions interpreter in this process, with the real
   handlers and the resources provisioned from the synthesized template (as ``tests/workflows`` does), and
   records, per path: the execution history (``StateEntered`` events plus retried attempts = billable
   transitions), every AWS request the workflow and its handlers make (a botocore event hook), and the duration
   of every Lambda invocation;
3. prices that profile with ``docs/prices.json`` (every price cites its AWS pricing page) for a STANDARD and an
   EXPRESS workflow, memory sizes and architectures from the template, and compares it with the same lifecycle
   built the naive way: API Gateway -> a Lambda that stores the task and starts the execution -> one Lambda per
   step.

What is measured and what is assumed is listed in :class:`Assumptions` and ``docs/COST.md``.

``taskrail cost`` is ``render_cost_report(cost_report())``; ``as_json(report)`` is its ``--json`` form.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import re
import statistics
import sys
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

# Before aws_cdk (workflows import it): jsii starts its kernel with the pinned node.
from infra import node_runtime  # noqa: F401

# isort: split
from workflows.task_lifecycle import OUTCOME_DETAIL_TYPES

ROOT: Final = Path(__file__).resolve().parents[1]
ASL_PATH: Final = ROOT / "asl" / "task_lifecycle.asl.json"
PRICES_PATH: Final = ROOT / "docs" / "prices.json"
STATE_MACHINE: Final = "TaskLifecycleStateMachine"
PER_TASKS: Final = 1_000_000
HAPPY_PATH_TARGET: Final = 8

STANDARD: Final = "STANDARD"
EXPRESS: Final = "EXPRESS"
WORKFLOW_TYPES: Final = (STANDARD, EXPRESS)

TASKRAIL: Final = "taskrail"
NAIVE: Final = "naive"
NAIVE_PER_STATE: Final = "naive, λ per state"
DESIGNS: Final = (TASKRAIL, NAIVE, NAIVE_PER_STATE)

# Price keys (docs/prices.json) the model uses.
SFN_TRANSITION: Final = "stepfunctions.standard.state_transition"
SFN_EXPRESS_REQUEST: Final = "stepfunctions.express.request"
SFN_EXPRESS_GB_SECOND: Final = "stepfunctions.express.duration_gb_second"
LAMBDA_REQUEST: Final = "lambda.request"
LAMBDA_GB_SECOND: Final = "lambda.duration_gb_second.{architecture}"
DDB_WRITE: Final = "dynamodb.on_demand.write_request_unit"
DDB_READ: Final = "dynamodb.on_demand.read_request_unit"
S3_PUT: Final = "s3.standard.put_copy_post_list_request"
S3_GET: Final = "s3.standard.get_and_other_request"
SNS_PUBLISH: Final = "sns.standard.publish_request"
EVENTS_PUT: Final = "eventbridge.custom_event"
PIPES_REQUEST: Final = "eventbridge.pipes.request"
SQS_REQUEST: Final = "sqs.standard.request"
APIGW_REQUEST: Final = "apigateway.rest.request"
LOGS_GB: Final = "cloudwatch.logs.ingestion_gb"
EXPRESS_DURATION_STEP: Final = "stepfunctions.express.duration_increment_ms"
EXPRESS_MEMORY_STEP: Final = "stepfunctions.express.memory_increment_mb"
LAMBDA_DURATION_STEP: Final = "lambda.duration_increment_ms"
DDB_WRITE_KB: Final = "dynamodb.write_unit_kb"
DDB_READ_KB: Final = "dynamodb.read_unit_kb"
REQUIRED_PRICES: Final = (
    SFN_TRANSITION,
    SFN_EXPRESS_REQUEST,
    SFN_EXPRESS_GB_SECOND,
    LAMBDA_REQUEST,
    LAMBDA_GB_SECOND.format(architecture="arm64"),
    LAMBDA_GB_SECOND.format(architecture="x86_64"),
    DDB_WRITE,
    DDB_READ,
    S3_PUT,
    S3_GET,
    SNS_PUBLISH,
    EVENTS_PUT,
    PIPES_REQUEST,
    SQS_REQUEST,
    APIGW_REQUEST,
    LOGS_GB,
)
REQUIRED_RULES: Final = (EXPRESS_DURATION_STEP, EXPRESS_MEMORY_STEP, LAMBDA_DURATION_STEP, DDB_WRITE_KB, DDB_READ_KB)

LINE_ITEMS: Final = (
    "Step Functions",
    "Lambda requests",
    "Lambda duration",
    "DynamoDB writes",
    "DynamoDB reads",
    "S3 requests",
    "SNS publishes",
    "EventBridge events",
    "EventBridge Pipes",
    "SQS requests",
    "API Gateway",
    "CloudWatch Logs",
)

# --------------------------------------------------------------------------------------------------
# Prices
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Price:
    key: str
    usd: float
    per: int
    unit: str
    source: str
    note: str = ""

    @property
    def each(self) -> float:
        """Dollars for one unit."""
        return self.usd / self.per


@dataclass(frozen=True)
class BillingRule:
    key: str
    value: float
    source: str
    note: str = ""


@dataclass(frozen=True)
class PriceBook:
    region: str
    currency: str
    as_of: str
    prices: Mapping[str, Price]
    billing: Mapping[str, BillingRule]
    path: str = ""

    def each(self, key: str) -> float:
        return self.prices[key].each

    def rule(self, key: str) -> float:
        return self.billing[key].value


def _source(key: str, entry: Mapping[str, Any]) -> str:
    source = entry.get("source")
    if not isinstance(source, str) or not source.startswith("https://"):
        raise ValueError(f"{key}: every price and billing rule needs a source URL (https://…), got {source!r}")
    return source


def parse_prices(data: Mapping[str, Any], path: str = "") -> PriceBook:
    """A :class:`PriceBook` from the decoded price file; raises ValueError for a missing price or source."""
    prices: dict[str, Price] = {}
    for key, entry in data.get("prices", {}).items():
        usd, per = entry.get("usd"), entry.get("per")
        if not isinstance(usd, int | float) or usd < 0 or not isinstance(per, int) or per <= 0:
            raise ValueError(f"{key}: needs a non-negative 'usd' and a positive integer 'per'")
        prices[key] = Price(
            key, float(usd), per, str(entry.get("unit", "")), _source(key, entry), entry.get("note", "")
        )
    billing: dict[str, BillingRule] = {}
    for key, entry in data.get("billing", {}).items():
        value = entry.get("value")
        if not isinstance(value, int | float) or value <= 0:
            raise ValueError(f"{key}: needs a positive 'value'")
        billing[key] = BillingRule(key, float(value), _source(key, entry), entry.get("note", ""))
    missing = [k for k in REQUIRED_PRICES if k not in prices] + [k for k in REQUIRED_RULES if k not in billing]
    if missing:
        raise ValueError(f"the price file lacks {missing}")
    return PriceBook(str(data["region"]), str(data["currency"]), str(data["as_of"]), prices, billing, path)


def load_prices(path: Path = PRICES_PATH) -> PriceBook:
    return parse_prices(json.loads(path.read_text()), str(path))


# --------------------------------------------------------------------------------------------------
# The definition, statically
# --------------------------------------------------------------------------------------------------

TERMINAL_TYPES: Final = frozenset({"Succeed", "Fail"})
NOTIFICATION_INTEGRATIONS: Final = frozenset({"sns:publish", "events:putEvents"})


def load_definition(path: Path = ASL_PATH) -> dict[str, Any]:
    definition: dict[str, Any] = json.loads(path.read_text())
    return definition


def integration(state: Mapping[str, Any]) -> str:
    """``dynamodb:updateItem``, ``lambda:invoke``, ``s3:putObject``… for a Task state; its type otherwise."""
    resource = str(state.get("Resource", ""))
    if state.get("Type") != "Task" or ":::" not in resource:
        return str(state.get("Type", ""))
    service_action = resource.split(":::", 1)[1].split(".", 1)[0]  # drop .sync / .waitForTaskToken
    return service_action.removeprefix("aws-sdk:")


def follow_path(
    definition: Mapping[str, Any], start: str | None = None, *, detours: Mapping[str, str] | None = None
) -> list[str]:
    """The states entered from ``start`` (default ``StartAt``), following ``Next`` (``Default`` of a Choice).

    ``detours`` maps a state to the state its Catch leads to: the path taken when that state fails.
    """
    states: Mapping[str, Any] = definition["States"]
    name = start or str(definition["StartAt"])
    path: list[str] = []
    while True:
        if name in path:
            raise ValueError(f"the path loops at {name}: {path}")
        path.append(name)
        state = states[name]
        if detours and name in detours:
            name = detours[name]
            continue
        following = state.get("Next") or state.get("Default")
        if state.get("Type") in TERMINAL_TYPES or state.get("End") or not following:
            return path
        name = str(following)


def happy_path(definition: Mapping[str, Any]) -> list[str]:
    return follow_path(definition)


def _matches(error_equals: Sequence[str], error: str) -> bool:
    if error in error_equals or "States.ALL" in error_equals:
        return True
    return "States.TaskFailed" in error_equals and not error.startswith("States.")


def catch_target(definition: Mapping[str, Any], state_name: str, error: str) -> str:
    for catcher in definition["States"][state_name].get("Catch", []):
        if _matches(catcher["ErrorEquals"], error):
            return str(catcher["Next"])
    raise ValueError(f"{state_name} does not catch {error}")


def matching_retrier(state: Mapping[str, Any], error: str) -> Mapping[str, Any] | None:
    for retrier in state.get("Retry", []):
        if _matches(retrier["ErrorEquals"], error):
            return dict(retrier)
    return None


def expected_retry_wait_seconds(retrier: Mapping[str, Any], retry_index: int) -> float:
    """Mean wait before retry number ``retry_index`` (0-based): IntervalSeconds x BackoffRate^k, capped by
    MaxDelaySeconds; FULL jitter draws uniformly below that, so its mean is half."""
    interval = float(retrier.get("IntervalSeconds", 1)) * float(retrier.get("BackoffRate", 2.0)) ** retry_index
    if "MaxDelaySeconds" in retrier:
        interval = min(interval, float(retrier["MaxDelaySeconds"]))
    return interval / 2 if retrier.get("JitterStrategy") == "FULL" else interval


# --------------------------------------------------------------------------------------------------
# Execution histories
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StateVisit:
    """One ``StateEntered`` of an execution: the attempts its task made and the errors of the failed ones."""

    name: str
    attempts: int = 1
    errors: tuple[str, ...] = ()
    seconds: float = 0.0


def _timestamp(event: Mapping[str, Any]) -> float:
    value = event.get("timestamp")
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, int | float):
        return float(value)
    return 0.0


def state_visits(events: Sequence[Mapping[str, Any]]) -> list[StateVisit]:
    """The states entered, in order, with their task attempts (``*Scheduled`` events) and failed attempts."""
    visits: list[StateVisit] = []
    current: dict[str, Any] | None = None

    def close(end: float) -> None:
        if current is not None:
            visits.append(
                StateVisit(
                    current["name"],
                    max(1, current["attempts"]),
                    tuple(current["errors"]),
                    max(0.0, end - current["entered"]),
                )
            )

    for event in events:
        kind = str(event.get("type", ""))
        if "stateEnteredEventDetails" in event:
            close(_timestamp(event))
            details = event["stateEnteredEventDetails"]
            current = {"name": details["name"], "attempts": 0, "errors": [], "entered": _timestamp(event)}
        elif current is not None and kind.endswith("Scheduled"):
            current["attempts"] += 1
        elif current is not None and kind.endswith(("Failed", "TimedOut")) and not kind.startswith("Execution"):
            details = next((v for k, v in event.items() if k.endswith("EventDetails") and isinstance(v, dict)), {})
            current["errors"].append(str(details.get("error", kind)))
        elif "stateExitedEventDetails" in event or (kind.startswith("Execution") and kind != "ExecutionStarted"):
            close(_timestamp(event))
            current = None
    close(_timestamp(events[-1]) if events else 0.0)
    return visits


def billable_transitions(visits: Sequence[StateVisit]) -> int:
    """STANDARD bills every state entered and every retry (an attempt beyond a state's first)."""
    return len(visits) + sum(v.attempts - 1 for v in visits)


def retries(visits: Sequence[StateVisit]) -> int:
    return sum(v.attempts - 1 for v in visits)


# --------------------------------------------------------------------------------------------------
# DynamoDB request units
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexInfo:
    name: str
    keys: frozenset[str]
    projection: str  # ALL | KEYS_ONLY | INCLUDE
    included: frozenset[str] = frozenset()

    def projects(self, attributes: set[str]) -> bool:
        if self.projection == "ALL":
            return True
        return bool(attributes & (self.keys | self.included))


@dataclass(frozen=True)
class TableInfo:
    name: str
    key: frozenset[str]
    indexes: tuple[IndexInfo, ...] = ()


def tables_from_template(template: Mapping[str, Any], physical_names: Mapping[str, str]) -> dict[str, TableInfo]:
    """Table name -> keys and global secondary indexes, from the template (``physical_names``: logical id -> name)."""
    tables: dict[str, TableInfo] = {}
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") not in ("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable"):
            continue
        props = resource.get("Properties", {})
        indexes = tuple(
            IndexInfo(
                name=str(index["IndexName"]),
                keys=frozenset(k["AttributeName"] for k in index["KeySchema"]),
                projection=str(index.get("Projection", {}).get("ProjectionType", "ALL")),
                included=frozenset(index.get("Projection", {}).get("NonKeyAttributes", [])),
            )
            for index in props.get("GlobalSecondaryIndexes", [])
        )
        name = physical_names.get(logical_id, logical_id)
        tables[name] = TableInfo(name, frozenset(k["AttributeName"] for k in props.get("KeySchema", [])), indexes)
    return tables


def _update_attributes(params: Mapping[str, Any]) -> set[str]:
    names: Mapping[str, str] = params.get("ExpressionAttributeNames", {}) or {}
    expression = str(params.get("UpdateExpression", ""))
    attributes: set[str] = set()
    for token in expression.replace(",", " ").replace("=", " ").split():
        if token.upper() in ("SET", "ADD", "REMOVE", "DELETE") or token.startswith(":"):
            continue
        if token.startswith("#"):
            attributes.add(names.get(token, token))
        elif token[0].isalpha() and token.isidentifier():
            attributes.add(token)
    return attributes


def write_units(
    operation: str,
    params: Mapping[str, Any],
    table: TableInfo | None,
    item_kb: int = 1,
    before_kb: int | None = None,
) -> int:
    """Write request units of one successful write: the table's (the larger of the item before and after, in
    1 KB blocks), plus each global secondary index the write changes: the new image's size, or the old and the
    new when the index key itself changes (the entry moves: delete + put)."""
    before = item_kb if before_kb is None else before_kb
    units = max(before, item_kb)
    if table is None:
        return units
    if operation == "PutItem":
        present = set(params.get("Item", {}))
        units += sum(item_kb for index in table.indexes if index.keys <= present)
    elif operation == "UpdateItem":
        touched = _update_attributes(params)
        for index in table.indexes:
            if touched & index.keys:
                units += before + item_kb
            elif index.projects(touched):
                units += item_kb
    elif operation == "DeleteItem":
        units += before * len(table.indexes)
    return units


class ItemImages:
    """The items a path writes, image by image, from the write requests themselves (PutItem, simple
    ``SET a = :v`` / ``ADD a :v`` / ``REMOVE a`` updates, DeleteItem): the size of each item before and after
    each write. An expression it cannot follow makes that item's size unknown (None) from then on."""

    def __init__(self) -> None:
        self._items: dict[tuple[str, str], dict[str, Any] | None] = {}

    def apply(self, ident: tuple[str, str], operation: str, params: Mapping[str, Any]) -> tuple[int | None, int | None]:
        before = self._items.get(ident) if (ident in self._items or operation == "PutItem") else None
        after: dict[str, Any] | None
        if operation == "PutItem":
            after = dict(params.get("Item", {}))
        elif operation == "DeleteItem":
            after = {}
        elif operation == "UpdateItem" and before is not None:
            after = _apply_update(dict(before), params)
        else:
            after = None
        self._items[ident] = after
        return _kb(before) if before else None, _kb(after)

    def size_kb(self, ident: tuple[str, str]) -> int | None:
        return _kb(self._items.get(ident))


def _kb(item: Mapping[str, Any] | None) -> int | None:
    return None if item is None else max(1, math.ceil(item_size_bytes(item) / 1024))


def _apply_update(item: dict[str, Any], params: Mapping[str, Any]) -> dict[str, Any] | None:
    names: Mapping[str, str] = params.get("ExpressionAttributeNames", {}) or {}
    values: Mapping[str, Any] = params.get("ExpressionAttributeValues", {}) or {}
    clauses = re.split(r"\b(SET|ADD|REMOVE|DELETE)\b", str(params.get("UpdateExpression", "")), flags=re.IGNORECASE)
    for keyword, body in zip(clauses[1::2], clauses[2::2], strict=True):
        if "(" in body:
            return None  # functions (if_not_exists, list_append…): not followed
        for action in (a.strip() for a in body.split(",") if a.strip()):
            parts = action.replace("=", " ").split()
            name = names.get(parts[0], parts[0])
            if keyword.upper() == "REMOVE" and len(parts) == 1:
                item.pop(name, None)
            elif len(parts) == 2 and parts[1] in values:  # SET a = :v, ADD a :v (a number's size barely moves)
                item[name] = values[parts[1]]
            else:
                return None
    return item


def read_units(params: Mapping[str, Any], item_kb: int = 1, unit_kb: int = 4) -> float:
    blocks = max(1, math.ceil(item_kb / unit_kb))
    return float(blocks) if params.get("ConsistentRead") else blocks / 2


def item_size_bytes(item: Mapping[str, Any]) -> int:
    """DynamoDB's item size (attribute names plus values), for a low-level item ``{"name": {"S": …}}``."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: Mapping[str, Any]) -> int:  # noqa: PLR0911 - one branch per type
    (kind, inner), *_ = value.items()
    if kind == "S":
        return len(str(inner).encode())
    if kind == "N":
        return (len(str(inner).lstrip("-").replace(".", "")) + 1) // 2 + 1
    if kind == "B":
        return len(inner) if isinstance(inner, bytes) else len(str(inner)) * 3 // 4
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(_value_size({kind[0]: v}) for v in inner)
    if kind == "L":
        return 3 + sum(1 + _value_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _value_size(v) for k, v in inner.items())
    return 0


# --------------------------------------------------------------------------------------------------
# Profiles: what one task uses on one path
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Assumptions:
    """What the model cannot measure locally (AWS-side latencies), stated once. Milliseconds.

    They only move the EXPRESS duration charge and the naive design's Lambda duration, both cents per million
    tasks; transitions, requests and request units are counted from real executions.
    """

    integration_ms: Mapping[str, float] = field(
        default_factory=lambda: {
            "dynamodb": 10.0,
            "s3": 30.0,
            "sns": 25.0,
            "events": 25.0,
            "eventbridge": 25.0,
            "sqs": 20.0,
        }
    )
    lambda_invoke_overhead_ms: float = 25.0  # Step Functions -> Lambda -> back, beyond the handler's own time
    # A handler's duration on AWS = its time measured in-process + this latency for each SDK call it made.
    state_overhead_ms: float = 5.0  # per state entered (EXPRESS duration)
    thin_handler_ms: float = 5.0  # a naive one-call Lambda's own work around its SDK call
    start_execution_ms: float = 30.0  # the naive front Lambda's StartExecution call
    express_memory_mb: int = 64  # payloads of a few KB: the least Express bills
    lambda_platform_log_bytes: int = 500  # START and REPORT lines per invocation (JSON log format)

    def service_ms(self, integration_name: str) -> float:
        return float(self.integration_ms.get(integration_name.split(":", 1)[0], 20.0))


@dataclass(frozen=True)
class LambdaUse:
    """The invocations of one function on one path, with each one's duration (before billing rounds it up)."""

    function: str
    memory_mb: int
    architecture: str
    durations_ms: tuple[float, ...]
    local_ms: tuple[float, ...] = ()  # measured in-process, before the SDK calls' AWS latency was added

    @property
    def invocations(self) -> int:
        return len(self.durations_ms)

    def gb_seconds(self, increment_ms: float = 1.0) -> float:
        return sum(round_up(ms, increment_ms) for ms in self.durations_ms) / 1000 * self.memory_mb / 1024


@dataclass(frozen=True)
class PathProfile:
    """What one task uses on one path, per task."""

    name: str
    description: str
    states: tuple[str, ...]  # entered, in order
    transitions: int  # billable on STANDARD: states entered + retries
    attempts: tuple[int, ...] = ()  # task attempts per entry of ``states`` (1 unless retried)
    lambdas: tuple[LambdaUse, ...] = ()
    dynamodb_requests: Mapping[str, int] = field(default_factory=dict)
    dynamodb_wru: float = 0.0
    dynamodb_rru: float = 0.0
    s3_put: int = 0
    s3_get: int = 0
    sns_publishes: int = 0
    events: int = 0
    sqs_requests: int = 0
    pipe_requests: int = 0
    api_requests: int = 1
    express_ms: float = 0.0
    express_memory_mb: int = 64
    log_bytes: float = 0.0  # CloudWatch Logs ingested: the workflow's (level ALL) and the functions'
    outcome: str = ""
    definition_transitions: int | None = None

    @property
    def retries(self) -> int:
        return sum(a - 1 for a in self.attempts)

    @property
    def lambda_invocations(self) -> int:
        return sum(u.invocations for u in self.lambdas)

    def lambda_gb_seconds(self, increment_ms: float = 1.0) -> float:
        return sum(u.gb_seconds(increment_ms) for u in self.lambdas)


def round_up(value: float, step: float) -> float:
    return math.ceil(value / step - 1e-9) * step if value > 0 else 0.0


def price_path(profile: PathProfile, workflow_type: str, prices: PriceBook) -> dict[str, float]:
    """Dollars per task, by line item (:data:`LINE_ITEMS`), for a STANDARD or EXPRESS workflow."""
    if workflow_type == STANDARD:
        workflow = profile.transitions * prices.each(SFN_TRANSITION)
    elif workflow_type == EXPRESS:
        billed_seconds = round_up(profile.express_ms, prices.rule(EXPRESS_DURATION_STEP)) / 1000
        memory_gb = round_up(profile.express_memory_mb, prices.rule(EXPRESS_MEMORY_STEP)) / 1024
        workflow = prices.each(SFN_EXPRESS_REQUEST) + billed_seconds * memory_gb * prices.each(SFN_EXPRESS_GB_SECOND)
    else:
        raise ValueError(f"unknown workflow type {workflow_type!r}")
    increment = prices.rule(LAMBDA_DURATION_STEP)
    lambda_duration = sum(
        u.gb_seconds(increment) * prices.each(LAMBDA_GB_SECOND.format(architecture=u.architecture))
        for u in profile.lambdas
    )
    items = {
        "Step Functions": workflow,
        "Lambda requests": profile.lambda_invocations * prices.each(LAMBDA_REQUEST),
        "Lambda duration": lambda_duration,
        "DynamoDB writes": profile.dynamodb_wru * prices.each(DDB_WRITE),
        "DynamoDB reads": profile.dynamodb_rru * prices.each(DDB_READ),
        "S3 requests": profile.s3_put * prices.each(S3_PUT) + profile.s3_get * prices.each(S3_GET),
        "SNS publishes": profile.sns_publishes * prices.each(SNS_PUBLISH),
        "EventBridge events": profile.events * prices.each(EVENTS_PUT),
        "EventBridge Pipes": profile.pipe_requests * prices.each(PIPES_REQUEST),
        "SQS requests": profile.sqs_requests * prices.each(SQS_REQUEST),
        "API Gateway": profile.api_requests * prices.each(APIGW_REQUEST),
        "CloudWatch Logs": profile.log_bytes / 2**30 * prices.each(LOGS_GB),
    }
    assert tuple(items) == LINE_ITEMS
    return items


def per_million(items: Mapping[str, float]) -> dict[str, float]:
    return {k: v * PER_TASKS for k, v in items.items()}


def express_duration_ms(
    visits: Sequence[StateVisit],
    definition: Mapping[str, Any],
    lambda_ms: Mapping[str, Sequence[float]],
    assumptions: Assumptions,
) -> float:
    """The modeled EXPRESS duration of one execution: per state entered an overhead, per task attempt the
    integration's latency (a Lambda state: invoke overhead + the handler's measured time), and the mean Retry
    wait before each retried attempt."""
    total = 0.0
    for visit in visits:
        state = definition["States"][visit.name]
        total += assumptions.state_overhead_ms
        if state.get("Type") != "Task":
            continue
        kind = integration(state)
        durations = list(lambda_ms.get(visit.name, []))
        for attempt in range(visit.attempts):
            if kind == "lambda:invoke":
                handler = durations[attempt] if attempt < len(durations) else (durations[-1] if durations else 0.0)
                total += assumptions.lambda_invoke_overhead_ms + handler
            else:
                total += assumptions.service_ms(kind)
            if attempt < visit.attempts - 1:
                error = visit.errors[attempt] if attempt < len(visit.errors) else "States.ALL"
                retrier = matching_retrier(state, error)
                if retrier is not None:
                    total += 1000 * expected_retry_wait_seconds(retrier, attempt)
    return total


def naive_profile(
    profile: PathProfile,
    definition: Mapping[str, Any],
    assumptions: Assumptions,
    *,
    memory_mb: int,
    architecture: str,
    merge_notifications: bool = True,
) -> PathProfile:
    """The same lifecycle built the naive way: API Gateway -> a front Lambda (PutItem + StartExecution) ->
    a workflow whose every step is a Lambda making the one call the direct integration makes.

    With ``merge_notifications`` adjacent notification states (SNS publish, EventBridge putEvents) are one
    "notify" Lambda, as a hand-written Lambda-per-step design has it (claim, validate, process, store, mark,
    notify); without, one Lambda per state. The AWS requests behind the steps are this design's; there is no
    Pipe (the front Lambda starts the execution); the existing Lambdas (validate, process) are unchanged.
    """
    states = definition["States"]
    attempts = profile.attempts or (1,) * len(profile.states)
    steps: list[tuple[list[str], int]] = []
    for name, tries in zip(profile.states, attempts, strict=True):
        notify = integration(states[name]) in NOTIFICATION_INTEGRATIONS
        if (
            merge_notifications
            and notify
            and steps
            and all(integration(states[s]) in NOTIFICATION_INTEGRATIONS for s in steps[-1][0])
        ):
            steps[-1] = ([*steps[-1][0], name], max(steps[-1][1], tries))
        else:
            steps.append(([name], tries))
    step_ms: list[float] = []  # one entry per invocation of a new step Lambda
    for names, tries in steps:
        kinds = [integration(states[s]) for s in names]
        if states[names[0]].get("Type") != "Task" or "lambda:invoke" in kinds:
            continue
        step_ms += [assumptions.thin_handler_ms + sum(assumptions.service_ms(k) for k in kinds)] * tries
    front_ms = assumptions.thin_handler_ms + assumptions.service_ms("dynamodb") + assumptions.start_execution_ms
    new_lambdas = [LambdaUse("NaiveFrontFunction", memory_mb, architecture, (front_ms,))]
    if step_ms:
        new_lambdas.append(LambdaUse("NaiveStepFunctions", memory_mb, architecture, tuple(step_ms)))
    merged = len(profile.states) - len(steps)
    per_state_log = profile.log_bytes / max(1, len(profile.states)) if merged else 0.0
    log_bytes = (
        profile.log_bytes
        - merged * per_state_log
        + (len(step_ms) + 1) * assumptions.lambda_platform_log_bytes  # the new Lambdas' platform lines
    )
    express_ms = (
        profile.express_ms
        - merged * assumptions.state_overhead_ms
        + len(step_ms) * (assumptions.lambda_invoke_overhead_ms + assumptions.thin_handler_ms)
    )
    return replace(
        profile,
        states=tuple("+".join(names) for names, _ in steps),
        attempts=tuple(tries for _, tries in steps),
        transitions=len(steps) + sum(tries - 1 for _, tries in steps),
        lambdas=(*profile.lambdas, *new_lambdas),
        pipe_requests=0,
        express_ms=express_ms,
        log_bytes=log_bytes,
        definition_transitions=None,
    )


# --------------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FunctionInfo:
    construct: str
    name: str
    memory_mb: int
    architecture: str


@dataclass(frozen=True)
class DesignCost:
    design: str
    workflow_type: str
    path: str
    items: Mapping[str, float]  # dollars per million tasks, by LINE_ITEMS

    @property
    def total(self) -> float:
        return sum(self.items.values())


@dataclass(frozen=True)
class Target:
    name: str
    value: str
    goal: str
    met: bool


@dataclass(frozen=True)
class CostReport:
    generated_at: str
    definition: str
    happy_path: tuple[str, ...]  # from the definition alone
    prices: PriceBook
    assumptions: Assumptions
    functions: tuple[FunctionInfo, ...]
    profiles: Mapping[str, Mapping[str, PathProfile]]  # design -> path -> profile
    costs: tuple[DesignCost, ...]
    runs: int = 0
    other_requests: Mapping[str, int] = field(default_factory=dict)
    targets: tuple[Target, ...] = ()

    @property
    def paths(self) -> list[str]:
        return list(self.profiles[TASKRAIL])

    def cost(self, design: str, workflow_type: str, path: str) -> DesignCost:
        for cost in self.costs:
            if (cost.design, cost.workflow_type, cost.path) == (design, workflow_type, path):
                return cost
        raise KeyError((design, workflow_type, path))


def compute_report(
    profiles: Sequence[PathProfile],
    definition: Mapping[str, Any],
    prices: PriceBook,
    *,
    functions: Sequence[FunctionInfo] = (),
    assumptions: Assumptions | None = None,
    definition_name: str = "",
    runs: int = 0,
    other_requests: Mapping[str, int] | None = None,
) -> CostReport:
    """Naive designs, prices and targets for measured (or given) taskrail profiles. Pure arithmetic."""
    assumptions = assumptions or Assumptions()
    memory = min((f.memory_mb for f in functions), default=128)
    architecture = functions[0].architecture if functions else "arm64"
    designs: dict[str, dict[str, PathProfile]] = {
        TASKRAIL: {p.name: p for p in profiles},
        NAIVE: {},
        NAIVE_PER_STATE: {},
    }
    for profile in profiles:
        for design, merge in ((NAIVE, True), (NAIVE_PER_STATE, False)):
            designs[design][profile.name] = naive_profile(
                profile, definition, assumptions, memory_mb=memory, architecture=architecture, merge_notifications=merge
            )
    costs = tuple(
        DesignCost(design, workflow_type, path, per_million(price_path(profile, workflow_type, prices)))
        for design, by_path in designs.items()
        for path, profile in by_path.items()
        for workflow_type in WORKFLOW_TYPES
    )
    report = CostReport(
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        definition=definition_name,
        happy_path=tuple(happy_path(definition)),
        prices=prices,
        assumptions=assumptions,
        functions=tuple(functions),
        profiles=designs,
        costs=costs,
        runs=runs,
        other_requests=dict(other_requests or {}),
    )
    return replace(report, targets=tuple(_targets(report)))


def _targets(report: CostReport) -> list[Target]:
    targets: list[Target] = []
    happy = report.profiles[TASKRAIL].get("happy")
    measured = happy.transitions if happy else len(report.happy_path)
    static = len(report.happy_path)
    targets.append(
        Target(
            "happy path: billable transitions",
            f"{measured} (definition: {static})",
            f"≤ {HAPPY_PATH_TARGET}",
            measured <= HAPPY_PATH_TARGET and static <= HAPPY_PATH_TARGET,
        )
    )
    if happy is not None:
        for design in (NAIVE, NAIVE_PER_STATE):
            ours = report.cost(TASKRAIL, STANDARD, "happy").total
            theirs = report.cost(design, STANDARD, "happy").total
            targets.append(
                Target(
                    f"happy path on STANDARD: $ per 1 M tasks vs {design}",
                    f"${ours:,.2f} vs ${theirs:,.2f}",
                    "lower",
                    ours < theirs,
                )
            )
    return targets


# --------------------------------------------------------------------------------------------------
# Measuring: the paths in moto's interpreter, in this process
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PathSpec:
    name: str
    task_type: str
    params: Mapping[str, Any]
    expected_status: str  # the task's final status
    description: str
    retried_state: str | None = None  # for the path as read from the definition alone
    retries: int = 0
    failing_state: str | None = None
    error: str | None = None


PATHS: Final = (
    PathSpec("happy", "text.stats", {"text": "the cat sat on the mat"}, "SUCCEEDED", "text.stats: every step once"),
    PathSpec(
        "retried",
        "diagnostic.flaky",
        {"failures": 2},
        "SUCCEEDED",
        "diagnostic.flaky: ProcessTask fails transiently twice, then succeeds",
        retried_state="ProcessTask",
        retries=2,
    ),
    PathSpec(
        "failed",
        "diagnostic.poison",
        {},
        "FAILED",
        "diagnostic.poison: ProcessTask fails permanently → RecordFailure, DLQ, notify",
        failing_state="ProcessTask",
        error="PermanentTaskError",
    ),
)


def definition_transitions(definition: Mapping[str, Any], spec: PathSpec) -> int | None:
    """The path's billable transitions read from the definition alone (None if the definition has no such state)."""
    try:
        detours = {}
        if spec.failing_state and spec.error:
            detours[spec.failing_state] = catch_target(definition, spec.failing_state, spec.error)
        path = follow_path(definition, detours=detours)
    except (KeyError, ValueError):
        return None
    if spec.retried_state and spec.retried_state not in path:
        return None
    return len(path) + spec.retries


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
    """Wraps a Lambda invoker (``moto_hooks.lambda_invoker``): the duration of every invocation, in order."""

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


@dataclass
class Platform:
    """The template's resources in moto (in this process) with the real handlers, as ``tests/workflows`` runs them."""

    resources: Any
    template: Mapping[str, Any]
    invoker: TimedInvoker

    def client(self, service: str) -> Any:
        import boto3

        from taskrail.local.provision import REGION

        return boto3.client(service, region_name=REGION)

    @property
    def state_machine_arn(self) -> str:
        return str(self.resources.state_machines[STATE_MACHINE])

    @property
    def tasks_table(self) -> str:
        return str(self.resources.ref("TasksTable"))

    def task_item(self, task_id: str, task_type: str, params: Mapping[str, Any], user: str = "alice") -> dict[str, Any]:
        """The item exactly as the POST /tasks mapping template writes it."""
        from taskrail.local.inprocess import api_task_item

        return api_task_item(task_id, task_type, params, user)

    def store_task(self, task_id: str, task_type: str, params: Mapping[str, Any]) -> None:
        self.client("dynamodb").put_item(
            TableName=self.tasks_table,
            Item=self.task_item(task_id, task_type, params),
            ConditionExpression="attribute_not_exists(taskId)",
        )

    def start(self, task_id: str) -> str:
        """As the Pipe does: the task id in a batch of one (an execution name of our own; moto needs one)."""
        response = self.client("stepfunctions").start_execution(
            stateMachineArn=self.state_machine_arn, name=task_id, input=json.dumps([task_id])
        )
        return str(response["executionArn"])

    def wait(self, execution_arn: str, timeout: float = 120) -> dict[str, Any]:
        sfn, deadline = self.client("stepfunctions"), time.monotonic() + timeout
        while True:
            execution: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
            if execution["status"] != "RUNNING":
                return execution
            if time.monotonic() > deadline:
                raise TimeoutError(f"execution still running after {timeout} s: {execution_arn}")
            time.sleep(0.01)

    def running(self) -> list[str]:
        listing = self.client("stepfunctions").list_executions(
            stateMachineArn=self.state_machine_arn, statusFilter="RUNNING", maxResults=1000
        )
        return [str(e["executionArn"]) for e in listing["executions"]]

    def drain(self, timeout: float = 60) -> None:
        """Wait until no execution runs (stopping the stragglers after ``timeout``): an execution left running
        when moto's mock ends would send its next calls out of the mock."""
        deadline = time.monotonic() + timeout
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.05)
        stragglers = self.running()
        for arn in stragglers:
            self.client("stepfunctions").stop_execution(executionArn=arn, error="Drained", cause="mock ending")
        deadline = time.monotonic() + 30
        while stragglers and self.running() and time.monotonic() < deadline:
            time.sleep(0.05)

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = self.client("stepfunctions").get_execution_history(
            executionArn=execution_arn, maxResults=1000
        )["events"]
        return events


@contextlib.contextmanager
def in_process_platform(template: Mapping[str, Any] | None = None) -> Iterator[Platform]:
    """moto (``mock_aws``, Step Functions executing), the template provisioned, the real handlers in-process,
    Retry waits not slept (their lengths are priced from the definition instead)."""
    import boto3
    from moto import mock_aws

    from infra.synth import CDK_OUT, STACK_NAME, load_template
    from taskrail.local.inprocess import InProcessFunctions
    from taskrail.local.moto_hooks import LOCAL_MOTO_CONFIG, install_aws_semantics, lambda_invoker, time_scale
    from taskrail.local.provision import REGION, provision

    template = dict(template or load_template())
    install_aws_semantics()
    with mock_aws(config=LOCAL_MOTO_CONFIG), time_scale(0):
        resources, _ = provision(
            template, lambda s: boto3.client(s, region_name=REGION), stack_name=STACK_NAME, cdk_out=str(CDK_OUT)
        )
        invoker = TimedInvoker(InProcessFunctions(resources.functions))
        with lambda_invoker(invoker):
            platform = Platform(resources, template, invoker)
            try:
                yield platform
            finally:
                platform.drain()


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Handlers' JSON logs and metrics, moto's error logs and library warnings stay out of the report."""
    moto_logger = logging.getLogger("moto")
    level = moto_logger.level
    moto_logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        moto_logger.setLevel(level)


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
    visits: list[StateVisit]
    calls: list[_Call]
    invocations: list[Invocation]
    status: str
    item_kb: dict[tuple[str, str], int]
    workflow_log_bytes: int = 0
    printed_bytes: int = 0  # what the handlers printed (Powertools logs and metrics)


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


def _run_path(platform: Platform, spec: PathSpec, index: int, tables: Mapping[str, TableInfo]) -> _Run:
    task_id = f"cost-{spec.name}-{index}-{time.monotonic_ns()}"
    platform.invoker.records.clear()
    printed = _printed()
    with _RECORDER.recording() as calls:
        platform.store_task(task_id, spec.task_type, spec.params)  # the API's PutItem
        execution = platform.wait(platform.start(task_id))
    printed = _printed() - printed
    invocations = list(platform.invoker.records)
    item = platform.client("dynamodb").get_item(TableName=platform.tasks_table, Key={"taskId": {"S": task_id}})
    status = item.get("Item", {}).get("status", {}).get("S", execution["status"])
    events = platform.history(execution["executionArn"])
    sizes = _item_sizes(platform, calls, tables)
    log = workflow_log_bytes(events, execution["executionArn"])
    return _Run(state_visits(events), list(calls), invocations, status, sizes, log, max(0, printed))


def _printed() -> int:
    """Characters written so far to stdout when :func:`quiet` captures it (0 otherwise)."""
    stream = sys.stdout
    return stream.tell() if isinstance(stream, io.StringIO) else 0


def workflow_log_bytes(events: Sequence[Mapping[str, Any]], execution_arn: str) -> int:
    """What logging level ALL with execution data sends to CloudWatch Logs: one JSON record per history event
    (its type, ids, timestamp, the execution ARN and the event's details with their input and output)."""
    total = 0
    for event in events:
        record: dict[str, Any] = {
            "id": event.get("id"),
            "type": event.get("type"),
            "details": next((v for k, v in event.items() if k.endswith("EventDetails")), {}),
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
    queue = list(durations)
    for visit in last.visits:
        if integration(definition["States"][visit.name]) == "lambda:invoke":
            lambda_ms[visit.name] = [queue.pop(0) for _ in range(min(visit.attempts, len(queue)))]
    usage = _Usage(last, tables, other).count()
    lambda_logs = sum(assumptions.lambda_platform_log_bytes + i.error_bytes for i in last.invocations)
    return PathProfile(
        name=spec.name,
        description=spec.description,
        states=tuple(v.name for v in last.visits),
        transitions=billable_transitions(last.visits),
        attempts=tuple(v.attempts for v in last.visits),
        lambdas=lambdas,
        express_ms=express_duration_ms(last.visits, definition, lambda_ms, assumptions),
        express_memory_mb=assumptions.express_memory_mb,
        outcome=last.status,
        definition_transitions=definition_transitions(definition, spec),
        pipe_requests=1,
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
            before, after = self.images.apply(ident, operation, call.params)
            self.wru += write_units(operation, call.params, table, after or final, before or after or final)
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
            entries = call.params.get("Entries", [])
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
) -> tuple[list[PathProfile], list[FunctionInfo], dict[str, int]]:
    """Run every path ``runs`` times (after one unmeasured warm-up, so handler imports are not timed) in moto's
    interpreter in this process; return what one task uses on each path."""
    assumptions = assumptions or Assumptions()
    definition = definition or load_definition()
    _RECORDER.install()
    other: Counter[str] = Counter()
    with quiet(), in_process_platform(template) as platform:
        physical = {logical: attrs.get("Ref", logical) for logical, attrs in platform.resources.attributes.items()}
        tables = tables_from_template(platform.template, physical)
        infos = function_infos(platform.template, platform.resources)
        by_name = {info.name: info for info in infos}
        _run_path(platform, paths[0], -1, tables)  # warm-up: cold imports of the handlers
        profiles = []
        for spec in paths:
            measured = [_run_path(platform, spec, i, tables) for i in range(max(1, runs))]
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
) -> CostReport:
    """Measure the three paths in moto's interpreter (about 20-40 s) and price them. ``taskrail cost``."""
    definition = load_definition(asl_path)
    prices = load_prices(prices_path)
    assumptions = assumptions or Assumptions()
    profiles, functions, other = measure_paths(template, runs=runs, definition=definition, assumptions=assumptions)
    return compute_report(
        profiles,
        definition,
        prices,
        functions=functions,
        assumptions=assumptions,
        definition_name=_relative(asl_path),
        runs=runs,
        other_requests=other,
    )


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------------


def _money(value: float) -> str:
    return f"${value:,.2f}" if value >= 0.995 or value == 0 else f"${value:,.3f}"


def _usage_table(report: CostReport) -> Any:
    from rich.table import Table

    increment = report.prices.rule(LAMBDA_DURATION_STEP)
    table = Table(
        title=f"What one task uses (moto's interpreter, real handlers, median of {report.runs} run(s) per path)",
        title_justify="left",
    )
    for column in ("path", "outcome"):
        table.add_column(column)
    for column in ("transitions", "λ calls", "λ GB-s", "DDB WRU", "DDB RRU", "S3 PUT/GET", "SNS/EB/SQS", "logs KB"):
        table.add_column(column, justify="right")
    for profile in report.profiles[TASKRAIL].values():
        static = "" if profile.definition_transitions is None else f" (def. {profile.definition_transitions})"
        table.add_row(
            profile.name,
            profile.outcome,
            f"{profile.transitions}{static}",
            str(profile.lambda_invocations),
            f"{profile.lambda_gb_seconds(increment):.4f}",
            f"{profile.dynamodb_wru:g}",
            f"{profile.dynamodb_rru:g}",
            f"{profile.s3_put}/{profile.s3_get}",
            f"{profile.sns_publishes}/{profile.events}/{profile.sqs_requests}",
            f"{profile.log_bytes / 1024:.1f}",
        )
    return table


def _cost_table(
    report: CostReport,
    title: str,
    first: str,
    rows: Sequence[tuple[str, Callable[[DesignCost], float]]],
    path: str | None,
) -> Any:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column(first)
    columns = [(d, t) for t in WORKFLOW_TYPES for d in DESIGNS]
    for design, workflow_type in columns:
        table.add_column(f"{design}\n{workflow_type}", justify="right")
    for label, value in rows:
        for_path = path or label
        table.add_row(
            label if path else f"{label} ({'/'.join(str(report.profiles[d][label].transitions) for d in DESIGNS)} tr.)",
            *(_money(value(report.cost(d, t, for_path))) for d, t in columns),
            style="bold" if label == "total" else None,
        )
    return table


def _lambda_table(report: CostReport) -> Any:
    from rich.table import Table

    table = Table(
        title="Lambda: memory from the template; ms per invocation on AWS (measured in-process + SDK call latency)",
        title_justify="left",
    )
    table.add_column("function")
    table.add_column("memory", justify="right")
    for path in report.paths:
        table.add_column(path, justify="right")
    for info in report.functions:
        uses = [
            next((u for u in report.profiles[TASKRAIL][p].lambdas if u.function == info.name), None)
            for p in report.paths
        ]
        if any(uses):
            cells = [
                " ".join(f"{aws:.0f} ({ms:.0f})" for aws, ms in zip(u.durations_ms, u.local_ms, strict=False))
                if u
                else "-"
                for u in uses
            ]
            table.add_row(info.construct, f"{info.memory_mb} MB {info.architecture}", *cells)
    return table


def _total(cost: DesignCost) -> float:
    return cost.total


def _line_item(item: str) -> Callable[[DesignCost], float]:
    return lambda cost: cost.items[item]


def render_cost_report(report: CostReport) -> Any:
    """A rich renderable: what a task uses per path, $ per 1 M tasks by design and workflow type, the happy path
    by service, Lambda durations, targets."""
    from rich.console import Group
    from rich.text import Text

    parts: list[Any] = [_usage_table(report)]
    parts.append(
        _cost_table(
            report,
            "$ per 1 M tasks (transitions: taskrail/naive/λ per state)",
            "path",
            [(p, _total) for p in report.paths],
            None,
        )
    )
    if "happy" in report.profiles[TASKRAIL]:
        rows = [(item, _line_item(item)) for item in LINE_ITEMS]
        rows.append(("total", _total))
        parts.append(_cost_table(report, "Happy path by service, $ per 1 M tasks", "service", rows, "happy"))
    parts.append(_lambda_table(report))
    parts.append(
        Text(
            f"Prices: {report.prices.region} list prices as of {report.prices.as_of}, each with its source in "
            f"{_relative(Path(report.prices.path))}. Happy path read from {report.definition}: "
            f"{' → '.join(report.happy_path)} ({len(report.happy_path)} transitions).\n"
            "naive = API Gateway → a Lambda that stores the task and starts the execution → one Lambda per step "
            "(claim, validate, process, store, mark, notify); λ per state = one Lambda per state of this workflow."
        )
    )
    for target in report.targets:
        parts.append(Text(f"{'✓' if target.met else '✗'} {target.name}: {target.value} (target {target.goal})"))
    if report.other_requests:
        parts.append(Text(f"requests seen but not priced: {dict(report.other_requests)}"))
    return Group(*parts)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _plain(value: Any) -> Any:
    """Dataclasses as dicts with camelCase field names (mapping keys, which are data, unchanged)."""
    if hasattr(value, "__dataclass_fields__"):
        return {_camel(f): _plain(getattr(value, f)) for f in value.__dataclass_fields__}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def as_json(report: CostReport) -> dict[str, Any]:
    """The report as plain data with stable keys, for ``taskrail cost --json``."""
    increment = report.prices.rule(LAMBDA_DURATION_STEP)

    def profile_data(profile: PathProfile) -> dict[str, Any]:
        data: dict[str, Any] = _plain(profile)
        data |= {
            "retries": profile.retries,
            "lambdaInvocations": profile.lambda_invocations,
            "lambdaGbSeconds": profile.lambda_gb_seconds(increment),
        }
        return data

    return {
        "generatedAt": report.generated_at,
        "definition": report.definition,
        "happyPathFromDefinition": list(report.happy_path),
        "region": report.prices.region,
        "pricesAsOf": report.prices.as_of,
        "runsPerPath": report.runs,
        "functions": _plain(report.functions),
        "profiles": {d: {p: profile_data(v) for p, v in by_path.items()} for d, by_path in report.profiles.items()},
        "costsPerMillionTasks": [
            {
                "design": c.design,
                "workflowType": c.workflow_type,
                "path": c.path,
                "total": c.total,
                "items": dict(c.items),
            }
            for c in report.costs
        ],
        "targets": _plain(report.targets),
        "assumptions": _plain(report.assumptions),
        "prices": {k: _plain(v) for k, v in report.prices.prices.items()},
        "requestsNotPriced": dict(report.other_requests),
    }
