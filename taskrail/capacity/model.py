"""Sustained tasks per second, per path: every limit a task meets on its way, each as tasks/s, the lowest is the
bottleneck; to double the rate, every limit below twice it must rise, and each says by how much and where.

Each :class:`Limit` is linear in one :class:`Lever` (a template setting, a quota to request, or a design change):
``capacity = lever.current * tasks_per_lever_unit``, so the value needed for a target rate is proportional.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final, Literal

from taskrail.capacity import quotas as q
from taskrail.capacity.design import EXPRESS, Design, PathLoad, function_name
from taskrail.capacity.quotas import QuotaBook, UnknownQuota
from taskrail.cost.model import Assumptions as CostAssumptions

Origin = Literal["template", "quota", "design"]
DEFAULT_REGION: Final = "us-east-1"


@dataclass(frozen=True)
class Settings:
    """The assumptions in force (docs/quotas.json's, overridden by options or by what a run measured)."""

    region: str = DEFAULT_REGION
    shards: float = 4.0
    function_ms: Mapping[str, float] = field(default_factory=dict)
    default_function_ms: float = 100.0
    invoke_overhead_ms: float = CostAssumptions().lambda_invoke_overhead_ms
    start_execution_ms: float = CostAssumptions().start_execution_ms
    api_requests: float = 1.0
    item_kb: float = 1.0
    durations_basis: str = "docs/quotas.json"

    def duration_ms(self, function: str) -> float:
        return float(self.function_ms.get(function, self.default_function_ms))


def settings_from(book: QuotaBook, region: str = DEFAULT_REGION, **overrides: object) -> Settings:
    a = book.assumptions
    durations = a[q.FUNCTION_MS].value
    assert isinstance(durations, dict)
    base = Settings(
        region=region,
        shards=a[q.SHARDS].number(),
        function_ms={k: float(v) for k, v in durations.items() if k != q.DEFAULT},
        default_function_ms=float(durations.get(q.DEFAULT, 100.0)),
        api_requests=a[q.API_REQUESTS].number(),
        item_kb=a[q.ITEM_KB].number(),
    )
    given = {k: v for k, v in overrides.items() if v is not None}
    if "function_ms" in given:
        merged = dict(base.function_ms)
        merged.update(given.pop("function_ms"))  # type: ignore[call-overload]
        given["function_ms"] = merged
    return replace(base, **given)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Lever:
    """What to raise: ``kind`` template (a property of a resource), quota (a Service Quotas request) or design."""

    kind: Origin
    name: str  # the setting or quota, by name
    current: float
    maximum: float | None = None  # the most it may be (a setting's documented range)
    where: str = ""  # the resource, or the quota's page
    unit: str = ""


@dataclass(frozen=True)
class Limit:
    key: str
    what: str
    capacity: float  # tasks per second
    limit: str  # the figure, as stated
    per_task: str  # what one task uses of it
    lever: Lever
    source: str  # a citation, or the template resource
    sustained: bool = True  # False: a limit that rises by itself with use (a new table's warm throughput)
    note: str = ""

    def needed(self, target: float) -> float:
        """The lever's value for ``target`` tasks/s."""
        if self.capacity <= 0:
            return math.inf
        return self.lever.current * target / self.capacity


@dataclass(frozen=True)
class Advice:
    limit: str
    text: str


class Limits(list[Limit]):
    """The limits a part of the design sets; ``add_known`` skips one whose quota has no figure (None)."""

    def add_known(self, limit: Limit | None) -> None:
        if limit is not None:
            self.append(limit)


@dataclass(frozen=True)
class PathCapacity:
    path: str
    load: PathLoad
    limits: tuple[Limit, ...]  # lowest first
    unknown: tuple[str, ...]  # quotas the path uses that have no figure

    @property
    def sustained_limits(self) -> list[Limit]:
        return [limit for limit in self.limits if limit.sustained]

    @property
    def bottleneck(self) -> Limit:
        return self.sustained_limits[0]

    @property
    def sustained(self) -> float:
        return self.bottleneck.capacity

    def to_double(self) -> list[Advice]:
        return advice(self.sustained_limits, 2 * self.sustained)


def _fmt(value: float) -> str:
    if value >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def advice(limits: Sequence[Limit], target: float) -> list[Advice]:
    """What to raise so that every limit reaches ``target`` tasks/s."""
    out = []
    for limit in limits:
        if limit.capacity >= target:
            continue
        lever = limit.lever
        needed = limit.needed(target)
        if lever.kind == "template":
            value = math.ceil(needed - 1e-9)
            if lever.maximum is not None and value > lever.maximum:
                text = (
                    f"{lever.name} of {lever.where} is {_fmt(lever.current)}; {_fmt(target)} tasks/s needs "
                    f"{_fmt(needed)}, above its maximum {_fmt(lever.maximum)} ({limit.note or 'change the design'})"
                )
            else:
                text = f"set {lever.name} of {lever.where} from {_fmt(lever.current)} to {value}"
        elif lever.kind == "quota":
            text = (
                f"request a quota increase: {lever.name} from {_fmt(lever.current)} to {_fmt(math.ceil(needed))} "
                f"{lever.unit.strip()} ({lever.where})"
            )
        else:
            text = f"{lever.name}: {_fmt(lever.current)} → {_fmt(needed)} ({limit.note})"
        out.append(Advice(limit.key, text))
    return out


# --------------------------------------------------------------------------------------------------
# The limits of one path
# --------------------------------------------------------------------------------------------------


def _quota_lever(book: QuotaBook, key: str, current: float, unit: str) -> Lever:
    quota = book[key]
    return Lever("quota", quota.name, current, where=quota.source.url if quota.source else "", unit=unit)


def _rate_limit(
    book: QuotaBook,
    key: str,
    region: str,
    per_task: float,
    what: str,
    per_task_text: str,
    *,
    figure: str = "value",
    unit: str = "/s",
    sustained: bool = True,
    note: str = "",
) -> Limit | None:
    if per_task <= 0:
        return None
    quota = book[key]
    value = quota.at(region, figure)
    extra = ""
    if quota.kind == "token_bucket":
        extra = f" (bucket {_fmt(quota.at(region, 'bucket'))})"
    return Limit(
        key,
        what,
        value / per_task,
        f"{_fmt(value)}{unit}{extra}",
        per_task_text,
        _quota_lever(book, key, value, unit.strip("/") or "per second"),
        quota.cited(),
        sustained=sustained,
        note=note or quota.note,
    )


def _api_limits(design: Design, load: PathLoad, book: QuotaBook, settings: Settings, unknown: list[str]) -> list[Limit]:
    region = settings.region
    limits = Limits()
    add = limits.add_known

    # API Gateway: the stage's throttle (template), then the account's (quota).
    api = settings.api_requests
    if design.stage_rate is not None:
        limits.append(
            Limit(
                "api.stage",
                "API stage throttle (POST /tasks)",
                design.stage_rate / api,
                f"{_fmt(design.stage_rate)} requests/s (burst {_fmt(design.stage_burst or 0)})",
                f"{_fmt(api)} request(s)",
                Lever("template", "MethodSettings ThrottlingRateLimit", design.stage_rate, where=design.stage),
                f"template: {design.stage}",
            )
        )
    add(
        _rate_limit(
            book,
            q.APIGW_ACCOUNT,
            region,
            api,
            "API Gateway account throttle",
            f"{_fmt(api)} request(s)",
            figure="refill_per_second",
            unit=" requests/s",
        )
    )

    return limits


def _dynamodb_limits(
    design: Design, load: PathLoad, book: QuotaBook, settings: Settings, unknown: list[str]
) -> list[Limit]:
    region = settings.region
    limits = Limits()
    add = limits.add_known

    # DynamoDB: the table's throughput, a new table's warm throughput, and each index key every task writes.
    units = load.write_units(design, settings.item_kb)
    add(
        _rate_limit(
            book,
            q.DDB_TABLE_WRITES,
            region,
            units,
            "DynamoDB table writes (table + indexes)",
            f"{_fmt(units)} write units",
            unit=" WRU/s",
        )
    )
    warm = design.warm_writes or book[q.DDB_WARM_WRITES].at(region)
    if units:
        limits.append(
            Limit(
                q.DDB_WARM_WRITES,
                "DynamoDB warm writes of a new table",
                warm / units,
                f"{_fmt(warm)} WU/s" + (" (template WarmThroughput)" if design.warm_writes else ""),
                f"{_fmt(units)} write units",
                Lever("template", "WarmThroughput WriteUnitsPerSecond", warm, where=design.tasks_table),
                book[q.DDB_WARM_WRITES].cited(),
                sustained=False,
                note="rises by itself with use; pre-warm ahead of a known burst",
            )
        )
    if design.max_writes:
        limits.append(
            Limit(
                "dynamodb.max_writes",
                "DynamoDB table's maximum on-demand writes",
                design.max_writes / max(units, 1e-9),
                f"{_fmt(design.max_writes)} WRU/s",
                f"{_fmt(units)} write units",
                Lever(
                    "template", "OnDemandThroughput MaxWriteRequestUnits", design.max_writes, where=design.tasks_table
                ),
                f"template: {design.tasks_table}",
            )
        )
    partition = book[q.DDB_PARTITION_WRITES].at(region)
    for index, keys in sorted(load.index_writes.items()):
        for key, writes in sorted(keys.items()):
            if key.startswith("("):  # computed per task: spread over as many keys as it takes values
                continue
            limits.append(
                Limit(
                    f"dynamodb.hot_key:{index}={key}",
                    f"hot key {key!r} of index {index}",
                    partition / writes,
                    f"{_fmt(partition)} WU/s per partition",
                    f"{writes} index write(s)",
                    Lever("design", f"write-shard {index}'s key {key!r}", 1, unit="key values"),
                    book[q.DDB_PARTITION_WRITES].cited(),
                    note="not adjustable: spread the key over N values (N times the rate)",
                )
            )

    return limits


def _pipe_limits(
    design: Design, load: PathLoad, book: QuotaBook, settings: Settings, unknown: list[str]
) -> list[Limit]:
    region = settings.region
    limits = Limits()
    add = limits.add_known

    # The stream and its pipes.
    shards = settings.shards
    start = design.start_pipe
    start_s = settings.start_execution_ms / 1000
    pf_max = book[q.PIPE_PARALLELIZATION].maximum
    limits.append(
        Limit(
            f"pipe.{start.name}",
            f"{start.name} batches in flight (StartExecution)",
            shards * start.parallelization_factor * start.batch_size / start_s,
            f"{_fmt(shards)} shards x ParallelizationFactor {start.parallelization_factor} x BatchSize "
            f"{start.batch_size} / {settings.start_execution_ms:.0f} ms",
            "1 record",
            Lever("template", "ParallelizationFactor", start.parallelization_factor, pf_max, start.logical_id),
            f"template: {start.logical_id}; shards: assumption; {book[q.PIPE_PARALLELIZATION].cited()}",
            note="BatchSize must stay 1 for a Step Functions target (one execution per task); more shards come "
            "only with the table's own partition splits",
        )
    )
    pipe_seconds = start_s
    outbox = design.outbox_pipe
    if outbox is not None and load.outbox_deliveries:
        fn = function_name(outbox.target, design)
        # One invocation per batch: the invoke overhead once, the handler's time per record (it loops over them).
        batch_s = (outbox.batch_size * settings.duration_ms(fn) + settings.invoke_overhead_ms) / 1000
        pipe_seconds += load.outbox_deliveries * batch_s / outbox.batch_size
        limits.append(
            Limit(
                f"pipe.{outbox.name}",
                f"{outbox.name} batches in flight (outbox, {fn})",
                shards * outbox.parallelization_factor * outbox.batch_size / batch_s / load.outbox_deliveries,
                f"{_fmt(shards)} shards x ParallelizationFactor {outbox.parallelization_factor} x BatchSize "
                f"{outbox.batch_size} / {batch_s * 1000:.0f} ms",
                f"{load.outbox_deliveries} record(s)",
                Lever("template", "ParallelizationFactor", outbox.parallelization_factor, pf_max, outbox.logical_id),
                f"template: {outbox.logical_id}; shards and duration: assumptions; "
                f"{book[q.PIPE_PARALLELIZATION].cited()}",
                note=f"beyond it, BatchSize: {fn} then gets the records as one array",
            )
        )
    add(
        _rate_limit(
            book,
            q.PIPE_CONCURRENCY,
            region,
            pipe_seconds,
            "Pipes executions in flight (account)",
            f"{pipe_seconds:.3f} pipe-execution-seconds",
            unit=" in flight",
        )
    )
    readers = book[q.STREAM_READERS].at(region)
    if design.stream_readers > readers:
        limits.append(
            Limit(
                q.STREAM_READERS,
                "readers of the Tasks stream",
                0.0,
                f"{_fmt(readers)} readers per shard",
                f"{design.stream_readers} readers",
                Lever("design", "readers of the stream", design.stream_readers, unit="readers"),
                book[q.STREAM_READERS].cited(),
                # AWS: "may result in request throttling", retried by the pollers: a risk to every reader's latency,
                # not a rate (docs/DECISIONS.md "Live progress on AWS: a third reader of the Tasks stream").
                sustained=False,
                note="more readers than AWS advises per shard: every reader may be throttled (retried, slower)",
            )
        )

    return limits


def _stepfunctions_limits(
    design: Design, load: PathLoad, book: QuotaBook, settings: Settings, unknown: list[str]
) -> list[Limit]:
    region = settings.region
    limits = Limits()
    add = limits.add_known

    # Step Functions.
    express = design.lifecycle_type == EXPRESS
    start_key = q.SFN_EXPRESS_START if express else q.SFN_STANDARD_START
    add(
        _rate_limit(
            book,
            start_key,
            region,
            load.start_executions,
            "StartExecution token bucket",
            f"{load.start_executions} start(s)",
            figure="refill_per_second",
            unit=" starts/s",
        )
    )
    if not express:
        add(
            _rate_limit(
                book,
                q.SFN_STANDARD_TRANSITIONS,
                region,
                load.transitions,
                "state-transition token bucket",
                f"{load.transitions} transitions",
                figure="refill_per_second",
                unit=" transitions/s",
            )
        )
        # Little's law: executions open at once = rate x duration.
        duration_s = _execution_seconds(load, settings)
        add(
            _rate_limit(
                book,
                q.SFN_OPEN_EXECUTIONS,
                region,
                duration_s,
                "open executions (Standard)",
                f"{duration_s:.2f} s open",
                unit=" open",
            )
        )
    if load.redrives:
        unknown.append(book["stepfunctions.redrive_execution"].name)

    return limits


def _lambda_limits(
    design: Design, load: PathLoad, book: QuotaBook, settings: Settings, unknown: list[str]
) -> list[Limit]:
    region = settings.region
    limits = Limits()

    # Lambda: the account's concurrency, shared; a function's reserved concurrency, its own.
    pool = book[q.LAMBDA_CONCURRENCY].at(region)
    reserved_total = 0.0
    shared_seconds = 0.0
    for fn, count in sorted(load.lambda_invocations.items()):
        seconds = count * settings.duration_ms(fn) / 1000
        function = design.functions.get(fn)
        if function is not None and function.reserved is not None:
            reserved_total += function.reserved
            limits.append(
                Limit(
                    f"lambda.reserved:{fn}",
                    f"{fn} reserved concurrency",
                    function.reserved / seconds,
                    f"{function.reserved} environments",
                    f"{count} x {settings.duration_ms(fn):.0f} ms",
                    Lever("template", "ReservedConcurrentExecutions", function.reserved, where=function.logical_id),
                    f"template: {function.logical_id}",
                )
            )
        else:
            shared_seconds += seconds
    if shared_seconds:
        unreserved = pool - reserved_total
        uses = ", ".join(
            f"{fn} {n}x{settings.duration_ms(fn):.0f} ms" for fn, n in sorted(load.lambda_invocations.items())
        )
        limits.append(
            Limit(
                q.LAMBDA_CONCURRENCY,
                "Lambda concurrency (account)",
                unreserved / shared_seconds,
                f"{_fmt(unreserved)} environments" + (f" ({_fmt(reserved_total)} reserved)" if reserved_total else ""),
                uses,
                _quota_lever(book, q.LAMBDA_CONCURRENCY, pool, "environments"),
                book[q.LAMBDA_CONCURRENCY].cited(),
            )
        )

    return limits


def _events_limits(
    design: Design, load: PathLoad, book: QuotaBook, settings: Settings, unknown: list[str]
) -> list[Limit]:
    region = settings.region
    limits = Limits()
    add = limits.add_known

    # EventBridge and the rest.
    add(
        _rate_limit(
            book,
            q.EVENTS_PUT,
            region,
            load.events_put,
            "EventBridge PutEvents",
            f"{load.events_put} outcome event(s)",
            unit=" requests/s",
        )
    )
    add(
        _rate_limit(
            book,
            q.EVENTS_INVOCATIONS,
            region,
            load.rule_invocations,
            "EventBridge rule invocations",
            f"{load.rule_invocations} (the failure rule)",
            unit=" invocations/s",
        )
    )
    if load.events_put:
        unknown.append(book[q.SNS_PUBLISH].name)
    for key in (q.STREAM_SHARDS, "dynamodb.streams.get_records_per_shard"):
        unknown.append(book[key].name)
    return limits


def path_limits(design: Design, load: PathLoad, book: QuotaBook, settings: Settings) -> PathCapacity:
    unknown: list[str] = []
    limits: list[Limit] = []
    for group in (_api_limits, _dynamodb_limits, _pipe_limits, _stepfunctions_limits, _lambda_limits, _events_limits):
        limits += group(design, load, book, settings, unknown)
    limits.sort(key=lambda limit: (limit.capacity, limit.key))
    return PathCapacity(load.name, load, tuple(limits), tuple(unknown))


def _execution_seconds(load: PathLoad, settings: Settings) -> float:
    """How long one execution is open: its Lambda states' time and the cost model's per-service latency."""
    costs = CostAssumptions()
    total = 0.0
    for fn, invocations in load.lambda_invocations.items():
        # The outbox's invocations come after the execution.
        count = invocations - (load.outbox_deliveries if fn == load.outbox_function else 0)
        total += count * (settings.duration_ms(fn) + settings.invoke_overhead_ms)
    total += load.transitions * costs.state_overhead_ms
    return total / 1000


def capacities(
    design: Design, loads: Mapping[str, PathLoad], book: QuotaBook, settings: Settings
) -> dict[str, PathCapacity]:
    try:
        return {name: path_limits(design, load, book, settings) for name, load in loads.items()}
    except UnknownQuota as error:  # a quota the model needs was marked unknown: say which
        raise ValueError(f"the capacity model needs a figure docs/quotas.json does not have: {error}") from error
