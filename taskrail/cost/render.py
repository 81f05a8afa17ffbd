"""Rendering: the report as rich tables (``taskrail cost``) and as plain data (``taskrail cost --json``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from taskrail.cost.definition import relative
from taskrail.cost.live import WS_MESSAGE, live_summary
from taskrail.cost.model import (
    DESIGNS,
    EXPRESS,
    LINE_ITEMS,
    PER_TASKS,
    STANDARD,
    TASKRAIL,
    WORKFLOW_TYPES,
    CostReport,
    DesignCost,
    PathProfile,
)
from taskrail.cost.prices import LAMBDA_DURATION_STEP, LOGS_GB


def _money(value: float) -> str:
    return f"${value:,.2f}" if value >= 0.995 or value == 0 else f"${value:,.3f}"


def _usage_table(report: CostReport, workflow_type: str = STANDARD) -> Any:
    from rich.table import Table

    increment = report.prices.rule(LAMBDA_DURATION_STEP)
    express = workflow_type == EXPRESS
    profiles = report.express_profiles[TASKRAIL] if express else report.profiles[TASKRAIL]
    table = Table(
        title=f"What one task uses (moto's interpreter, real handlers, median of {report.runs} run(s) per path)"
        + (f": the EXPRESS lifecycle, {report.express_definition}" if express else ""),
        title_justify="left",
    )
    for column in ("path", "outcome"):
        table.add_column(column)
    columns = ("transitions", "λ calls", "λ GB-s", "DDB WRU", "DDB RRU", "S3 PUT/GET", "SNS/EB/SQS", "pipe", "logs KB")
    for column in columns:
        table.add_column("states (executions, ms)" if express and column == "transitions" else column, justify="right")
    for profile in profiles.values():
        static = "" if profile.definition_transitions is None else f" (def. {profile.definition_transitions})"
        recorder = f" incl. recorder {profile.recorder_transitions}" if profile.recorder_transitions else ""
        if express:
            static, recorder = f" ({profile.executions}, {profile.express_ms:.0f} ms)", ""
        table.add_row(
            profile.name,
            f"{profile.outcome} ({profile.replay_action})" if profile.replay_action else profile.outcome,
            f"{profile.transitions}{static}{recorder}",
            str(profile.lambda_invocations),
            f"{profile.lambda_gb_seconds(increment):.4f}",
            f"{profile.dynamodb_wru:g}",
            f"{profile.dynamodb_rru:g}",
            f"{profile.s3_put}/{profile.s3_get}",
            f"{profile.sns_publishes}/{profile.events}/{profile.sqs_requests}",
            f"{profile.pipe_requests} (outbox {profile.outbox_deliveries})",
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


def _baseline_table(report: CostReport) -> Any:
    """The failure paths before issue 19 (recorded once, docs/cost-baseline-issue19.json) and now."""
    from rich.table import Table

    baseline = report.baseline
    table = Table(
        title=f"Failed and replayed paths: before issue 19 ({baseline['commit'][:7]}, recorded {baseline['measuredAt']}"
        ", same instrument) → now; $ per 1 M tasks",
        title_justify="left",
    )
    for column in ("path", "how replayed", "transitions", "STANDARD", "EXPRESS"):
        table.add_column(column, justify="left" if column in ("path", "how replayed") else "right")
    for name, before in baseline["paths"].items():
        if name not in report.profiles[TASKRAIL]:
            continue
        now = report.profiles[TASKRAIL][name]
        standard, express = (report.cost(TASKRAIL, t, name).total for t in WORKFLOW_TYPES)
        table.add_row(
            name,
            f"{before.get('replayAction') or '-'} → {now.replay_action or '-'}" if now.replay_action else "-",
            f"{before['transitions']} → {now.transitions}",
            f"{_money(before['standardTotal'])} → {_money(standard)}",
            f"{_money(before['expressTotal'])} → {_money(express)}",
        )
    return table


def _logging_table(report: CostReport) -> Any:
    """The workflows' log ingestion under each logging option (level, includeExecutionData), per path and type."""
    from rich.table import Table

    price = report.prices.each(LOGS_GB)
    by_type = {STANDARD: report.profiles[TASKRAIL], EXPRESS: report.express_profiles.get(TASKRAIL, {})}
    columns = [(t, p) for t, profiles in by_type.items() for p in profiles]
    table = Table(
        title="Workflow logging options: CloudWatch Logs ingestion of the workflows' events, $ per 1 M tasks "
        "(the functions' own lines not included)",
        title_justify="left",
    )
    table.add_column("level")
    for workflow_type, path in columns:
        table.add_column(f"{path}\n{workflow_type}", justify="right")
    options = next((list(p.workflow_log_options) for p in by_type[STANDARD].values()), [])
    for option in options:
        table.add_row(
            option,
            *(
                _money(by_type[t][p].workflow_log_options.get(option, 0.0) / 2**30 * price * PER_TASKS)
                for t, p in columns
            ),
        )
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
    if report.express_profiles:
        parts.append(_usage_table(report, EXPRESS))
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
    if report.baseline:
        parts.append(_baseline_table(report))
    parts.append(_lambda_table(report))
    if any(p.workflow_log_options for p in report.profiles[TASKRAIL].values()):
        parts.append(_logging_table(report))
    parts.append(
        Text(
            f"Prices: {report.prices.region} list prices as of {report.prices.as_of}, each with its source in "
            f"{relative(Path(report.prices.path))}. Happy path read from {report.definition}: "
            f"{' → '.join(report.happy_path)} ({len(report.happy_path)} transitions).\n"
            "naive = API Gateway → a Lambda that stores the task and starts the execution → one Lambda per step "
            "(claim, validate, process, store, mark, notify); λ per state = one Lambda per state of this workflow."
        )
    )
    for target in report.targets:
        parts.append(Text(f"{'✓' if target.met else '✗'} {target.name}: {target.value} (target {target.goal})"))
    if report.other_requests:
        parts.append(Text(f"requests seen but not priced: {dict(report.other_requests)}"))
    if WS_MESSAGE in report.prices.prices:
        parts.append(Text(live_summary(report.prices)))
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
        "expressDefinition": report.express_definition or None,
        "expressProfiles": {
            d: {p: profile_data(v) for p, v in by_path.items()} for d, by_path in report.express_profiles.items()
        },
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
        "baseline": report.baseline or None,
    }
