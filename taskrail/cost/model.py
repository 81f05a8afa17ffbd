"""The model: what one task uses on one path (a profile), and its price per million tasks for each design."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final

from taskrail.cost.definition import (
    NOTIFICATION_INTEGRATIONS,
    expected_retry_wait_seconds,
    happy_path,
    integration,
    matching_retrier,
)
from taskrail.cost.prices import (
    APIGW_REQUEST,
    DDB_READ,
    DDB_WRITE,
    EVENTS_PUT,
    EXPRESS_DURATION_STEP,
    EXPRESS_MEMORY_STEP,
    LAMBDA_DURATION_STEP,
    LAMBDA_GB_SECOND,
    LAMBDA_REQUEST,
    LOGS_GB,
    PIPES_REQUEST,
    S3_GET,
    S3_PUT,
    SFN_EXPRESS_GB_SECOND,
    SFN_EXPRESS_REQUEST,
    SFN_TRANSITION,
    SNS_PUBLISH,
    SQS_REQUEST,
    PriceBook,
)
from taskrail.history import Visit

PER_TASKS: Final = 1_000_000
HAPPY_PATH_TARGET: Final = 8

STANDARD: Final = "STANDARD"
EXPRESS: Final = "EXPRESS"
WORKFLOW_TYPES: Final = (STANDARD, EXPRESS)

TASKRAIL: Final = "taskrail"
NAIVE: Final = "naive"
NAIVE_PER_STATE: Final = "naive, λ per state"
DESIGNS: Final = (TASKRAIL, NAIVE, NAIVE_PER_STATE)

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
    recorder_transitions: int = 0  # included in ``transitions``: the failure recorder's (issue 19)
    outbox_deliveries: int = 0  # included in ``pipe_requests``: the task-changes pipe's (the outbox)
    replay_action: str = ""  # the replayed path: "redriven" or "started" (a new execution)
    executions: int = 1  # lifecycle executions (each an EXPRESS request; a redrive is the same execution)
    # The workflows' log bytes under each logging option (measure.LOG_OPTIONS): what ``log_bytes`` would hold instead
    # of the template's own choice, for the logging comparison.
    workflow_log_options: Mapping[str, float] = field(default_factory=dict)

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
        # Each execution is a request, its duration rounded up on its own (the path's time split evenly).
        runs = max(1, profile.executions)
        billed_seconds = runs * round_up(profile.express_ms / runs, prices.rule(EXPRESS_DURATION_STEP)) / 1000
        memory_gb = round_up(profile.express_memory_mb, prices.rule(EXPRESS_MEMORY_STEP)) / 1024
        workflow = runs * prices.each(SFN_EXPRESS_REQUEST) + billed_seconds * memory_gb * prices.each(
            SFN_EXPRESS_GB_SECOND
        )
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
    visits: Sequence[Visit],
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
    # The EXPRESS columns' own design, measured on the EXPRESS lifecycle (design -> path -> profile); empty when
    # the EXPRESS columns price the STANDARD profiles as an Express workflow.
    express_profiles: Mapping[str, Mapping[str, PathProfile]] = field(default_factory=dict)
    express_definition: str = ""
    baseline: Mapping[str, Any] = field(default_factory=dict)  # an earlier design's paths, recorded (render.py)

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
    express_profiles: Sequence[PathProfile] = (),
    express_definition: Mapping[str, Any] | None = None,
    express_definition_name: str = "",
) -> CostReport:
    """Naive designs, prices and targets for measured (or given) taskrail profiles. Pure arithmetic.

    With ``express_profiles`` (measured on the EXPRESS lifecycle, ``express_definition``) the EXPRESS columns price
    that design: its own failure states, no failure recorder, a replay that is a new execution."""
    assumptions = assumptions or Assumptions()
    memory = min((f.memory_mb for f in functions), default=128)
    architecture = functions[0].architecture if functions else "arm64"

    def with_naive(measured: Sequence[PathProfile], on: Mapping[str, Any]) -> dict[str, dict[str, PathProfile]]:
        designs: dict[str, dict[str, PathProfile]] = {TASKRAIL: {p.name: p for p in measured}, NAIVE: {}}
        designs[NAIVE_PER_STATE] = {}
        for profile in measured:
            for design, merge in ((NAIVE, True), (NAIVE_PER_STATE, False)):
                designs[design][profile.name] = naive_profile(
                    profile, on, assumptions, memory_mb=memory, architecture=architecture, merge_notifications=merge
                )
        return designs

    designs = with_naive(profiles, definition)
    express = with_naive(express_profiles, express_definition or definition) if express_profiles else {}

    def priced(design: str, workflow_type: str, path: str, profile: PathProfile) -> DesignCost:
        chosen = express[design][path] if workflow_type == EXPRESS and express else profile
        return DesignCost(design, workflow_type, path, per_million(price_path(chosen, workflow_type, prices)))

    costs = tuple(
        priced(design, workflow_type, path, profile)
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
        express_profiles=express,
        express_definition=express_definition_name,
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
