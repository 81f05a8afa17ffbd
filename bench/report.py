"""The figures of one run: a table on the terminal, and docs/BENCHMARKS.md."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.coldstart import ColdStartResult
from bench.common import INIT_TARGET, Figure, fmt_ms, fmt_ratio, percentile
from bench.intake import BurstResult
from bench.latency import LatencyResult
from bench.throughput import ThroughputResult

INTAKE = "1. Intake under burst"
E2E = "2. End-to-end throughput"
COLD = "3. Cold start and size"
LATENCY = "4. Latency of one task"
COST = "5. Cost per 1 M tasks"

P99_TARGET_MS = 50.0
ACCEPTED_TARGET = 300.0
BUSY_IDLE_TARGET = 1.2
E2E_TARGET = 1.0  # issue 14: local at least as fast as the bare interpreter
IDLE_ACCEPTED_TARGET = 500.0  # issue 14: idle, the burst's 32 clients, 2 cores
LATENCY_TARGET_MS = 100.0  # issue 14: one task, submit -> terminal, median


@dataclass
class Run:
    """Everything one `python -m bench.run` measured (None where a phase did not run or failed)."""

    info: dict[str, str]
    options: dict[str, Any]
    idle: BurstResult | None = None
    busy: BurstResult | None = None
    busy_started_executions: int = 0
    local: ThroughputResult | None = None
    bare: ThroughputResult | None = None
    cold: ColdStartResult | None = None
    latency: LatencyResult | None = None
    cost: Any = None  # taskrail.cost.CostReport
    cli: Any = None  # bench.cli_latency.CliLatencyResult
    idle_cpu: Any = None  # bench.idle.IdleResult
    stack_start_s: float = math.nan
    load_after: str = ""
    wall_s: float = math.nan
    errors: list[str] = field(default_factory=list)


def _ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(b) else math.nan


def figures(run: Run) -> list[Figure]:  # noqa: C901 - one block per benchmark
    out: list[Figure] = []
    cores = run.info.get("cores", "?")
    if run.idle:
        out.append(
            Figure(
                INTAKE,
                "idle stack: accepted/s",
                f"{run.idle.accepted_per_s:.0f}/s",
                f"≥ {IDLE_ACCEPTED_TARGET:.0f}/s ({cores} cores)",
                run.idle.accepted_per_s >= IDLE_ACCEPTED_TARGET and run.idle.accepted == run.idle.n,
            )
        )
        out.append(Figure(INTAKE, "idle stack: p50 / p95 / p99", _triple(run.idle)))
    if run.busy:
        busy = run.busy
        out.append(
            Figure(
                INTAKE,
                "backlog draining: accepted/s",
                f"{busy.accepted_per_s:.0f}/s ({busy.accepted}/{busy.n} accepted)",
                f"≥ {ACCEPTED_TARGET:.0f}/s ({cores} cores)",
                busy.accepted_per_s >= ACCEPTED_TARGET and busy.accepted == busy.n,
            )
        )
        out.append(
            Figure(
                INTAKE,
                "backlog draining: p50 / p95 / p99",
                _triple(busy),
                f"p99 ≤ {P99_TARGET_MS:.0f} ms",
                busy.p(99) <= P99_TARGET_MS,
            )
        )
    if run.idle and run.busy:
        ratio = _ratio(run.busy.p(99), run.idle.p(99))
        out.append(
            Figure(INTAKE, "p99 busy / idle", fmt_ratio(ratio), f"≤ {BUSY_IDLE_TARGET}", ratio <= BUSY_IDLE_TARGET)
        )
    if run.local:
        out.append(Figure(E2E, "local stack", _throughput(run.local)))
    if run.bare:
        out.append(Figure(E2E, "bare interpreter (no-op handlers)", _throughput(run.bare)))
    if run.local and run.bare:
        ratio = _ratio(run.local.tasks_per_s, run.bare.tasks_per_s)
        out.append(Figure(E2E, "local / bare", fmt_ratio(ratio), f"≥ {E2E_TARGET}x", ratio >= E2E_TARGET))
    if run.cold:
        base = run.cold.baseline_median_ms
        out.append(Figure(COLD, "bare `import boto3`", fmt_ms(base)))
        for function in run.cold.functions:
            ratio = _ratio(function.median_ms, base)
            out.append(
                Figure(
                    COLD,
                    f"init {function.name.removeprefix('taskrail-')}",
                    f"{fmt_ms(function.median_ms)} ({fmt_ratio(ratio)} boto3)",
                    f"≤ {INIT_TARGET}x boto3",
                    ratio <= INIT_TARGET,
                )
            )
        for bundle in run.cold.bundles:
            out.append(
                Figure(
                    COLD,
                    f"bundle ({len(bundle.functions)} functions)",
                    f"{bundle.zipped_bytes / 1024:.0f} KiB zipped, {bundle.files} files",
                    "no CDK/jsii code",
                    not bundle.cdk_code,
                    "; ".join(bundle.cdk_code[:3]),
                )
            )
    if run.latency and run.latency.total_ms:
        lat = run.latency
        out.append(
            Figure(
                LATENCY,
                "submit → terminal (median)",
                f"{fmt_ms(lat.median(lat.total_ms))} (min {fmt_ms(min(lat.total_ms))}, n={len(lat.total_ms)})",
                f"≤ {LATENCY_TARGET_MS:.0f} ms",
                lat.median(lat.total_ms) <= LATENCY_TARGET_MS,
            )
        )
        out.append(Figure(LATENCY, "of which stream + pipe", fmt_ms(lat.median(lat.pipe_ms))))
        out.append(Figure(LATENCY, "of which the execution", fmt_ms(lat.median(lat.execution_ms))))
    if run.cost is not None:
        out += _cost_figures(run.cost)
    if run.idle_cpu is not None:
        out.append(run.idle_cpu.figure())
    return out


def _cost_figures(report: Any) -> list[Figure]:
    from taskrail.cost import EXPRESS, NAIVE, STANDARD, TASKRAIL

    out = []
    for target in report.targets:
        out.append(Figure(COST, target.name, target.value, target.goal, target.met))
    for path in report.paths:
        standard = report.cost(TASKRAIL, STANDARD, path).total
        express = report.cost(TASKRAIL, EXPRESS, path).total
        naive = report.cost(NAIVE, STANDARD, path).total
        transitions = report.profiles[TASKRAIL][path].transitions
        out.append(
            Figure(
                COST,
                f"{path}: {transitions} transitions",
                f"STANDARD ${standard:,.2f} · EXPRESS ${express:,.2f} · naive STANDARD ${naive:,.2f}",
            )
        )
    return out


def _triple(burst: BurstResult) -> str:
    return f"{burst.p(50):.1f} / {burst.p(95):.1f} / {burst.p(99):.1f} ms"


def _throughput(result: ThroughputResult) -> str:
    timed_out = " (timed out)" if result.timed_out else ""
    return f"{result.tasks_per_s:.2f} tasks/s ({result.succeeded}/{result.n} in {result.wall_s:.1f} s){timed_out}"


# -- terminal ------------------------------------------------------------------------------------------


def terminal(run: Run) -> Any:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"taskrail benchmarks — {run.info['machine']}", title_justify="left")
    for column in ("benchmark", "figure", "value", "target", ""):
        table.add_column(column)
    section = ""
    for figure in figures(run):
        style = {True: "green", False: "red", None: None}[figure.met]
        table.add_row(
            figure.section if figure.section != section else "",
            figure.name,
            figure.value,
            figure.target,
            figure.verdict,
            style=style,
        )
        section = figure.section
    parts: list[Any] = [table]
    if run.latency and run.latency.states:
        states = Table(title="Latency of one task by state (median ms, from the execution history)")
        states.add_column("state")
        states.add_column("ms", justify="right")
        for name, values in run.latency.states.items():
            states.add_row(name, f"{percentile(values, 50):.1f}")
        parts.append(states)
    if run.cli is not None:
        parts.append(run.cli.table())
    for error in run.errors:
        parts.append(Text(f"✗ {error}", style="red"))
    parts.append(Text(f"total {run.wall_s:.0f} s; load average {run.info.get('load', '?')} → {run.load_after}"))
    return Group(*parts)


# -- markdown ------------------------------------------------------------------------------------------


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> list[str]:
    align = align or "l" * len(header)
    marks = {"l": "---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks[a] for a in align) + " |"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return [*lines, ""]


def markdown(run: Run) -> str:
    info, options = run.info, run.options
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `make bench` (`.venv/bin/python -m bench.run`) on {info['date']}; run it again rather than "
        "editing this file. Loopback only; every figure is measured in this run and reported, never asserted. "
        "The reasoning behind the cost model is in [COST.md](COST.md).",
        "",
        *_md_table(
            ("", ""),
            [
                ("Machine", info["machine"]),
                ("OS", info["os"]),
                ("Python", info["python"]),
                ("Packages", info["versions"]),
                ("Commit", info["commit"]),
                ("Load average (1/5/15 min)", f"{info.get('load', '?')} at the start, {run.load_after} at the end"),
                ("Options", ", ".join(f"{k}={v}" for k, v in options.items())),
                ("Local stack start", f"{run.stack_start_s:.1f} s"),
                ("Run time", f"{run.wall_s:.0f} s"),
            ],
        ),
        "## Summary",
        "",
        *_md_table(
            ("Benchmark", "Figure", "Value", "Target", ""),
            [(f.section, f.name, f.value, f.target, f.verdict) for f in figures(run)],
        ),
    ]
    lines += _intake_md(run) + _e2e_md(run) + _cold_md(run) + _latency_md(run) + _cost_md(run)
    lines += run.cli.markdown() if run.cli is not None else []
    if run.errors:
        lines += ["## Phases that failed", "", *(f"- {e}" for e in run.errors), ""]
    return "\n".join(lines).rstrip() + "\n"


def _intake_md(run: Run) -> list[str]:
    lines = [
        f"## {INTAKE}",
        "",
        f"{options_text(run, 'burst')} POST /tasks (SigV4-signed, `text.stats`) from a separate client process with "
        f"{run.options.get('concurrency')} threads (one `requests` session each; one uncounted request per thread "
        "first). *Idle*: the pipe poller and the schedules are paused, so nothing but the API and DynamoDB runs. "
        "*Backlog draining*: the poller and the schedules are resumed, the idle burst's tasks start executing, and "
        "the same burst is sent again while they drain. Latency is each request's round trip as the client "
        "measures it; accepted = answered 2xx.",
        "",
    ]
    rows: list[tuple[str, ...]] = []
    for label, result in (("idle", run.idle), ("backlog draining", run.busy)):
        if result is None:
            continue
        other = {k: v for k, v in result.statuses.items() if not k.startswith("2")}
        rows.append(
            (
                label,
                f"{result.accepted}/{result.n}",
                f"{result.wall_s:.1f} s",
                f"{result.accepted_per_s:.0f}",
                *(f"{result.p(q):.1f}" for q in (50, 95, 99)),
                f"{max(result.latencies_ms, default=math.nan):.1f}",
                str(other or "-"),
            )
        )
    if rows:
        header = ("stack", "accepted", "wall", "accepted/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "other answers")
        lines += _md_table(header, rows, "llrrrrrrl")
    if run.busy:
        lines += [f"Executions the pipe started during the busy burst: {run.busy_started_executions}.", ""]
    return lines


def options_text(run: Run, key: str) -> str:
    return f"{run.options.get(key)}"


def _e2e_md(run: Run) -> list[str]:
    lines = [
        f"## {E2E}",
        "",
        f"{run.options.get('e2e')} `text.stats` tasks submitted at once (8 client threads). *Local stack*: over HTTP "
        "through the API, DynamoDB stream, pipe, moto's interpreter and the awslambdaric worker processes "
        f"(time scale {run.options.get('time_scale')}). *Bare interpreter*: moto's interpreter in one process "
        "(`mock_aws`) running the same `asl/` definition on the same provisioned resources, with no-op in-process "
        "handlers (each answers what the real handler answered for one real task), each task stored and its "
        "execution started directly. Both: succeeded tasks / (last `finishedAt` - first request).",
        "",
    ]
    rows = [
        (r.label, f"{r.succeeded}/{r.n}", f"{r.wall_s:.1f} s", f"{r.tasks_per_s:.2f}")
        for r in (run.local, run.bare)
        if r
    ]
    if rows:
        lines += _md_table(("run", "succeeded", "wall", "tasks/s"), rows, "llrr")
    if run.local and run.bare:
        lines += [f"Ratio local / bare: **{fmt_ratio(_ratio(run.local.tasks_per_s, run.bare.tasks_per_s))}**.", ""]
    return lines


def _cold_md(run: Run) -> list[str]:
    cold = run.cold
    lines = [f"## {COLD}", ""]
    if cold is None:
        return lines
    lines += [
        f"Import of each handler module in a fresh interpreter, with the environment the local stack gives that "
        f"function (template variables, asset folder + site-packages on `PYTHONPATH`, no bytecode written into "
        f"the asset), timed inside the process; {len(cold.baseline_ms)} interleaved runs, median. Baseline: "
        f"`import boto3` in the same environment: **{fmt_ms(cold.baseline_median_ms)}** "
        f"(runs: {', '.join(f'{v:.0f}' for v in cold.baseline_ms)} ms).",
        "",
    ]
    rows: list[tuple[str, ...]] = [
        (
            f.name,
            f.handler,
            f"{f.memory_mb} MB",
            fmt_ms(f.median_ms),
            fmt_ratio(_ratio(f.median_ms, cold.baseline_median_ms)),
            ", ".join(f"{v:.0f}" for v in f.import_ms),
        )
        for f in cold.functions
    ]
    lines += _md_table(("function", "handler", "memory", "init (median)", "x boto3", "runs (ms)"), rows, "lllrrl")
    if cold.top_imports:
        top = ", ".join(f"{name} {ms:.0f} ms" for name, ms in cold.top_imports)
        lines += [
            f"Where the slowest init ({cold.slowest}) goes (`python -X importtime`, one run, each module's own "
            f"time summed by top-level package): {top}.",
            "",
        ]
    if any(f.top_imports for f in cold.functions):
        rows = [
            (
                f.name,
                fmt_ms(f.beyond_boto3_ms),
                ", ".join(f"{name} {ms:.0f}" for name, ms in f.top_imports),
                f"{len(f.client_ms)}: {fmt_ms(sum(f.client_ms))}" if f.client_ms else "none",
                fmt_ms(f.first_call_median_ms),
            )
            for f in cold.functions
        ]
        lines += [
            "Beyond `import boto3`: the own time (`-X importtime`, one run) of the modules an init loads that "
            "`import boto3` does not, by top-level package (ms; the AWS clients an init creates are its handler "
            "module's own time, given apart); and what the first traced call adds after init (the tracer: the "
            "X-Ray SDK, botocore patched), median.",
            "",
            *_md_table(
                ("function", "beyond boto3", "top packages (ms)", "AWS clients at init", "first traced call"),
                rows,
                "lrlrr",
            ),
        ]
    rows = [
        (
            ", ".join(b.functions),
            str(b.files),
            f"{b.unzipped_bytes / 1024:.0f} KiB",
            f"{b.zipped_bytes / 1024:.0f} KiB",
            "none" if not b.cdk_code else "; ".join(b.cdk_code[:5]),
        )
        for b in cold.bundles
    ]
    lines += [
        "Bundles: the asset folders in `cdk.out`, zipped as `cdk deploy` uploads them (Powertools and pydantic "
        "come from the Powertools layer and are not in the bundle).",
        "",
        *_md_table(("functions", "files", "unzipped", "zipped", "CDK/jsii code"), rows, "lrrrl"),
    ]
    return lines


def _latency_md(run: Run) -> list[str]:
    lat = run.latency
    lines = [f"## {LATENCY}", ""]
    if lat is None or not lat.total_ms:
        return lines
    lines += [
        f"{len(lat.total_ms)} happy-path `text.stats` tasks, one at a time, on the idle local stack (before the "
        "other stack benchmarks). Submit → terminal: POST sent until a read of the task (every 20 ms) shows a "
        "terminal status.",
        "",
        *_md_table(
            ("part", "median ms", "min ms", "max ms"),
            [
                (label, f"{lat.median(v):.1f}", f"{min(v):.1f}", f"{max(v):.1f}")
                for label, v in (
                    ("submit → terminal", lat.total_ms),
                    ("POST /tasks round trip", lat.accept_ms),
                    ("API answer → ExecutionStarted (stream + pipe)", lat.pipe_ms),
                    ("execution (ExecutionStarted → end)", lat.execution_ms),
                )
                if v
            ],
            "lrrr",
        ),
        "Time per state (StateEntered → StateExited):",
        "",
        *_md_table(
            ("state", "median ms", "min ms", "max ms"),
            [(name, f"{lat.median(v):.1f}", f"{min(v):.1f}", f"{max(v):.1f}") for name, v in lat.states.items()],
            "lrrr",
        ),
    ]
    return lines


def _cost_md(run: Run) -> list[str]:
    from taskrail.cost import DESIGNS, LINE_ITEMS, TASKRAIL, WORKFLOW_TYPES

    report = run.cost
    lines = [f"## {COST}", ""]
    if report is None:
        return lines
    increment = report.prices.rule("lambda.duration_increment_ms")
    lines += [
        f"`taskrail cost`: the three paths run in moto's interpreter with the real handlers ({report.runs} runs "
        f"each, after a warm-up); transitions counted from the execution histories (states entered + retries) and "
        f"read from `{report.definition}`; every AWS request counted; priced with `docs/prices.json` "
        f"({report.prices.region}, {report.prices.as_of}). Assumptions and what is left out: [COST.md](COST.md).",
        "",
    ]
    rows: list[tuple[str, ...]] = []
    for profile in report.profiles[TASKRAIL].values():
        rows.append(
            (
                profile.name,
                profile.outcome,
                f"{profile.transitions} (definition: {profile.definition_transitions})",
                str(profile.lambda_invocations),
                f"{profile.lambda_gb_seconds(increment):.4f}",
                f"{profile.dynamodb_wru:g} / {profile.dynamodb_rru:g}",
                f"{profile.s3_put} / {profile.s3_get}",
                f"{profile.sns_publishes} / {profile.events} / {profile.sqs_requests}",
                f"{profile.log_bytes / 1024:.1f}",
            )
        )
    header: tuple[str, ...] = (
        "path",
        "outcome",
        "transitions",
        "λ invocations",
        "λ GB-s",
        "DDB WRU/RRU",
        "S3 PUT/GET",
        "SNS/EB/SQS",
        "logs KB",
    )
    lines += _md_table(header, rows, "llrrrrrrr")
    columns = [(d, t) for t in WORKFLOW_TYPES for d in DESIGNS]
    header = ("path (transitions)", *(f"{d} {t}" for d, t in columns))
    rows = [
        (
            f"{path} ({'/'.join(str(report.profiles[d][path].transitions) for d in DESIGNS)})",
            *(f"${report.cost(d, t, path).total:,.2f}" for d, t in columns),
        )
        for path in report.paths
    ]
    lines += ["$ per 1 M tasks (transitions: taskrail / naive / naive, λ per state):", ""]
    lines += _md_table(header, rows, "l" + "r" * len(columns))
    if "happy" in report.paths:
        rows = [(item, *(f"${report.cost(d, t, 'happy').items[item]:,.3f}" for d, t in columns)) for item in LINE_ITEMS]
        rows.append(("**total**", *(f"**${report.cost(d, t, 'happy').total:,.2f}**" for d, t in columns)))
        lines += ["Happy path by service, $ per 1 M tasks:", ""]
        lines += _md_table(("service", *header[1:]), rows, "l" + "r" * len(columns))
    return lines
