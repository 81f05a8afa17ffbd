"""A burst through the deployed design, stepped in time: how far the backlog grows and how long it takes to drain.

Tasks flow as counts (fluid, so a million tasks cost no more than a thousand) through a chain of stages: the API
(the stage's and the account's token buckets), the start pipe (its batches in flight as servers, each for one
StartExecution, which spends a StartExecution token), the lifecycle's states in order (each entry spends a
state-transition token on STANDARD; a Lambda state holds a Lambda environment for the function's duration, from the
account's shared pool and within the function's scaling rate), the failure recorder's start (a StartExecution token)
where the path has one, and the outbox pipe (its batches as servers, each holding an environment of its function).

Each step, token buckets refill (what is kept between steps is at most their size) and servers give ``servers x dt``
busy-seconds. Stages are served from the last to the first (work in flight finishes before new work enters), each as
much as its queue and what is left of every resource it needs allow; what a stage serves reaches the next one after
its service time (at least one step). What the API refuses stays with the client, which sends it again (the client
backlog). Deterministic.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from taskrail.capacity import quotas as q
from taskrail.capacity.design import (
    EXPRESS,
    EXPRESS_ASL_PATH,
    RECORDER_ASL_PATH,
    Design,
    PathLoad,
    function_name,
    iter_states,
)
from taskrail.capacity.model import Settings
from taskrail.capacity.quotas import QuotaBook
from taskrail.cost.definition import ASL_PATH, integration, load_definition
from taskrail.cost.model import Assumptions as CostAssumptions

MAX_STEPS: Final = 120_000
DRAINED: Final = 0.5  # tasks: below this the backlog counts as empty
LAMBDA_POOL: Final = "lambda.pool"
START_TOKENS: Final = "stepfunctions.start"
TRANSITION_TOKENS: Final = "stepfunctions.transitions"


@dataclass
class Bucket:
    size: float
    refill: float
    tokens: float = -1.0

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = self.size  # full at the start: the burst allowance is there

    def step(self, dt: float) -> float:
        """The tokens this step may spend: what was kept (at most the bucket's size) and what refills during the
        step (spent as it arrives, so a step longer than ``size / refill`` does not lose the refill)."""
        self.tokens = min(self.size, self.tokens) + self.refill * dt
        return self.tokens


@dataclass
class Stage:
    name: str
    needs: dict[str, float]  # resource -> amount per task
    delay_s: float
    queue: float = 0.0
    served: float = 0.0


@dataclass(frozen=True)
class Burst:
    tasks: int
    over_s: float


@dataclass(frozen=True)
class SimResult:
    burst: Burst
    path: str
    dt: float
    accepted_at_s: float | None  # when the last task was accepted by the API
    finished_at_s: float | None  # when the last task reached its terminal status
    delivered_at_s: float | None  # when the last outcome was delivered (the outbox)
    peak_backlog: float  # accepted, not yet terminal
    peak_backlog_at_s: float
    peak_client_backlog: float  # sent, not yet accepted (throttled, sent again by the client)
    peak_outbox_backlog: float  # terminal, outcome not yet delivered
    peak_open_executions: float
    peak_lambda_concurrency: float
    limited_s: Mapping[str, float]  # seconds during which each resource held a stage back
    horizon_s: float

    @property
    def drained(self) -> bool:
        return self.finished_at_s is not None

    def drain_after_burst_s(self) -> float | None:
        return None if self.finished_at_s is None else max(0.0, self.finished_at_s - self.burst.over_s)


@dataclass
class Chain:
    """The stages one path's task passes, and the resources they share."""

    stages: list[Stage] = field(default_factory=list)
    servers: dict[str, float] = field(default_factory=dict)  # busy-seconds per second
    buckets: dict[str, Bucket] = field(default_factory=dict)
    scaling: dict[str, float] = field(default_factory=dict)  # lambda:<fn> -> environments added per second
    terminal_index: int = 0  # the stage whose input counts as terminal (the outbox's, or past the last)
    execution_from: int = 2  # the first stage inside an execution (after the API and the start pipe)


def _bucket(book: QuotaBook, key: str, region: str) -> Bucket:
    quota = book[key]
    return Bucket(quota.at(region, "bucket"), quota.at(region, "refill_per_second"))


def _intake_stages(chain: Chain, design: Design, book: QuotaBook, settings: Settings) -> None:
    region, api = settings.region, settings.api_requests
    chain.buckets["api.account"] = _bucket(book, q.APIGW_ACCOUNT, region)
    needs = {"api.account": api}
    if design.stage_rate is not None:
        chain.buckets["api.stage"] = Bucket(design.stage_burst or design.stage_rate, design.stage_rate)
        needs["api.stage"] = api
    chain.stages.append(Stage("API (POST /tasks)", needs, 0.0))
    start = design.start_pipe
    start_s = settings.start_execution_ms / 1000
    chain.servers[f"pipe:{start.name}"] = settings.shards * start.parallelization_factor * start.batch_size
    chain.servers["pipes.account"] = book[q.PIPE_CONCURRENCY].at(region)
    express = design.lifecycle_type == EXPRESS
    chain.buckets[START_TOKENS] = _bucket(book, q.SFN_EXPRESS_START if express else q.SFN_STANDARD_START, region)
    needs = {f"pipe:{start.name}": start_s, "pipes.account": start_s / start.batch_size, START_TOKENS: 1.0}
    chain.stages.append(Stage(f"{start.name} → StartExecution", needs, start_s))


def _lambda_needs(chain: Chain, fn: str, count: float, book: QuotaBook, settings: Settings) -> dict[str, float]:
    duration = settings.duration_ms(fn) / 1000
    scaling = book[q.LAMBDA_SCALING]
    chain.servers.setdefault(f"lambda:{fn}", min(chain.servers[LAMBDA_POOL], scaling.at(settings.region)))
    chain.scaling[f"lambda:{fn}"] = scaling.at(settings.region) / float(scaling.period_seconds or 1)
    return {LAMBDA_POOL: count * duration, f"lambda:{fn}": count * duration}


def _state_stages(
    chain: Chain, design: Design, load: PathLoad, book: QuotaBook, settings: Settings, definitions: Mapping[str, Any]
) -> None:
    costs = CostAssumptions()
    express = design.lifecycle_type == EXPRESS
    if not express:
        chain.buckets[TRANSITION_TOKENS] = _bucket(book, q.SFN_STANDARD_TRANSITIONS, settings.region)
    chain.servers[LAMBDA_POOL] = book[q.LAMBDA_CONCURRENCY].at(settings.region)
    label_before = ""
    for label, state_name in iter_states(load):
        state = definitions["recorder" if label == "recorder" else "lifecycle"]["States"].get(state_name, {})
        needs = {} if express else {TRANSITION_TOKENS: 1.0}
        if label != label_before and label in ("recorder", "replay"):
            needs[START_TOKENS] = 1.0  # a new execution: the failure rule's target, or a replay
        label_before = label
        delay_ms = costs.state_overhead_ms
        if state.get("Type") == "Task":
            delay_ms += costs.service_ms(integration(state))
        if integration(state) == "lambda:invoke":
            target = str(state.get("Parameters", {}).get("FunctionName", ""))
            fn = function_name(target.removeprefix("${").removesuffix("}").removesuffix("Arn"), design)
            needs.update(_lambda_needs(chain, fn, 1.0, book, settings))
            delay_ms = settings.duration_ms(fn) + settings.invoke_overhead_ms
        chain.stages.append(Stage(f"{label + ':' if label else ''}{state_name}", needs, delay_ms / 1000))


def _outbox_stage(chain: Chain, design: Design, load: PathLoad, book: QuotaBook, settings: Settings) -> None:
    outbox = design.outbox_pipe
    if outbox is None or not load.outbox_deliveries:
        return
    fn = function_name(outbox.target, design)
    batch_s = (outbox.batch_size * settings.duration_ms(fn) + settings.invoke_overhead_ms) / 1000  # per batch
    n = load.outbox_deliveries
    chain.servers[f"pipe:{outbox.name}"] = settings.shards * outbox.parallelization_factor * outbox.batch_size
    needs = {f"pipe:{outbox.name}": n * batch_s, "pipes.account": n * batch_s / outbox.batch_size}
    needs.update(_lambda_needs(chain, fn, n, book, settings))
    chain.stages.append(Stage(f"{outbox.name} → {fn}", needs, batch_s))


def build_chain(
    design: Design,
    load: PathLoad,
    book: QuotaBook,
    settings: Settings,
    definitions: Mapping[str, Any] | None = None,
) -> Chain:
    defs = dict(definitions or {})
    if "lifecycle" not in defs:
        express = design.lifecycle_type == EXPRESS and EXPRESS_ASL_PATH.exists()
        defs["lifecycle"] = load_definition(EXPRESS_ASL_PATH if express else ASL_PATH)
    if "recorder" not in defs:
        defs["recorder"] = load_definition(RECORDER_ASL_PATH) if RECORDER_ASL_PATH.exists() else {"States": {}}
    chain = Chain()
    _intake_stages(chain, design, book, settings)
    _state_stages(chain, design, load, book, settings, defs)
    chain.terminal_index = len(chain.stages)
    _outbox_stage(chain, design, load, book, settings)
    return chain


@dataclass
class _Run:
    chain: Chain
    burst: Burst
    dt: float
    step: int = 0
    arrived: float = 0.0
    accepted: float = 0.0
    terminal: float = 0.0
    delivered: float = 0.0
    incoming: dict[int, list[tuple[int, float]]] = field(default_factory=lambda: defaultdict(list))
    limits_now: dict[str, float] = field(default_factory=dict)
    limited: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    peaks: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    peak_backlog_at: float = 0.0
    times: dict[str, float] = field(default_factory=dict)

    def arrive(self) -> None:
        stages, burst = self.chain.stages, self.burst
        if self.arrived < burst.tasks:
            rate = burst.tasks / burst.over_s if burst.over_s > 0 else math.inf
            add = burst.tasks - self.arrived if math.isinf(rate) else min(burst.tasks - self.arrived, rate * self.dt)
            stages[0].queue += add
            self.arrived += add
        n = len(stages)
        for index, amount in self.incoming.pop(self.step, ()):
            if index < n:
                stages[index].queue += amount
            else:
                self.delivered += amount
            if index == self.chain.terminal_index:
                self.terminal += amount

    def capacity(self) -> dict[str, float]:
        chain = self.chain
        for bucket in chain.buckets.values():
            bucket.step(self.dt)
        for name, rate in chain.scaling.items():  # a function's environments grow by its scaling rate
            self.limits_now[name] = min(chain.servers[LAMBDA_POOL], self.limits_now[name] + rate * self.dt)
        available = {name: self.limits_now[name] * self.dt for name in chain.servers}
        available.update({name: b.tokens for name, b in chain.buckets.items()})
        return available

    def serve(self, available: dict[str, float]) -> float:
        """Serves every stage, last first; returns the Lambda environments busy this step."""
        chain, busy = self.chain, 0.0
        binding_now: set[str] = set()
        for index in range(len(chain.stages) - 1, -1, -1):
            stage = chain.stages[index]
            if stage.queue <= 1e-9:
                continue
            served, binding = stage.queue, ""
            for resource, amount in stage.needs.items():
                if amount > 0 and available[resource] < served * amount:
                    served, binding = available[resource] / amount, resource
            if binding:
                binding_now.add(binding)
            for resource, amount in stage.needs.items():
                available[resource] -= served * amount
                if resource in chain.buckets:
                    chain.buckets[resource].tokens = max(0.0, chain.buckets[resource].tokens - served * amount)
            busy += served * stage.needs.get(LAMBDA_POOL, 0.0)
            stage.queue -= served
            stage.served += served
            if index == 0:
                self.accepted += served
            self.incoming[self.step + max(1, round(stage.delay_s / self.dt))].append((index + 1, served))
        for resource in binding_now:
            self.limited[resource] += self.dt
        return busy / self.dt

    def record(self, t: float, lambda_busy: float) -> bool:
        """Peaks and completion times; True once every outcome is delivered."""
        backlog = self.accepted - self.terminal
        if backlog > self.peaks["backlog"]:
            self.peaks["backlog"], self.peak_backlog_at = backlog, t
        self.peaks["client"] = max(self.peaks["client"], self.arrived - self.accepted)
        self.peaks["outbox"] = max(self.peaks["outbox"], self.terminal - self.delivered)
        self.peaks["open"] = max(self.peaks["open"], self.chain.stages[1].served - self.terminal)
        self.peaks["lambda"] = max(self.peaks["lambda"], lambda_busy)
        for name, count in (("accepted", self.accepted), ("finished", self.terminal), ("delivered", self.delivered)):
            if name not in self.times and count >= self.burst.tasks - DRAINED:
                self.times[name] = t
        return "delivered" in self.times


def simulate(
    design: Design,
    load: PathLoad,
    book: QuotaBook,
    settings: Settings,
    burst: Burst,
    *,
    sustained: float,
    definitions: Mapping[str, Any] | None = None,
) -> SimResult:
    """``sustained`` (the model's tasks/s) only sizes the simulated time: three times the expected drain."""
    chain = build_chain(design, load, book, settings, definitions)
    horizon = 3 * (burst.over_s + burst.tasks / max(sustained, 1e-6)) + 120
    run = _Run(chain, burst, max(0.1, horizon / MAX_STEPS))
    run.limits_now = dict(chain.servers)
    while run.step * run.dt < horizon:
        run.step += 1
        run.arrive()
        busy = run.serve(run.capacity())
        if run.record(run.step * run.dt, busy):
            break
    return SimResult(
        burst=burst,
        path=load.name,
        dt=run.dt,
        accepted_at_s=run.times.get("accepted"),
        finished_at_s=run.times.get("finished"),
        delivered_at_s=run.times.get("delivered"),
        peak_backlog=run.peaks["backlog"],
        peak_backlog_at_s=run.peak_backlog_at,
        peak_client_backlog=run.peaks["client"],
        peak_outbox_backlog=run.peaks["outbox"],
        peak_open_executions=run.peaks["open"],
        peak_lambda_concurrency=run.peaks["lambda"],
        limited_s=dict(sorted(run.limited.items(), key=lambda kv: -kv[1])),
        horizon_s=horizon,
    )
