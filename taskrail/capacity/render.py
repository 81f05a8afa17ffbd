"""``taskrail capacity``'s text, its ``--json`` form, and the lines `make bench` prints."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from taskrail.capacity import quotas as q
from taskrail.capacity.live import websocket_lines

if TYPE_CHECKING:
    from taskrail.capacity import CapacityReport
    from taskrail.capacity.model import PathCapacity
    from taskrail.capacity.simulate import SimResult


def _n(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    if digits == 0 and abs(value) >= 10:
        return f"{value:,.0f}"
    return f"{value:,.{max(digits, 1)}f}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "not within the simulated time"
    if seconds < 120:
        return f"{seconds:,.0f} s"
    if seconds < 7200:
        return f"{seconds:,.0f} s ({seconds / 60:.0f} min)"
    return f"{seconds:,.0f} s ({seconds / 3600:.1f} h)"


def _assumptions(report: CapacityReport) -> list[str]:
    s = report.settings
    used = sorted({fn for p in report.paths.values() for fn in p.load.lambda_invocations})
    durations = ", ".join(f"{fn} {s.duration_ms(fn):.0f} ms" for fn in used)
    return [
        f"Assumptions: {s.shards:g} stream shards (AWS publishes none: {q.SHARDS} in docs/quotas.json), "
        f"StartExecution {s.start_execution_ms:.0f} ms and Lambda invoke overhead {s.invoke_overhead_ms:.0f} ms "
        f"(the cost model's), {s.api_requests:g} API request(s) per task, items of {s.item_kb:g} KB;",
        f"  function durations ({s.durations_basis}): {durations}.",
    ]


def _path_table(report: CapacityReport) -> list[str]:
    lines = [
        f"  {'path':<10} {'transitions':>11} {'starts':>6} {'λ calls':>7} {'outcomes':>8} {'sustained':>10}  bottleneck"
    ]
    for name, cap in report.paths.items():
        load = cap.load
        calls = sum(load.lambda_invocations.values())
        lines.append(
            f"  {name:<10} {load.transitions:>11} {load.start_executions:>6} {calls:>7} "
            f"{load.outbox_deliveries:>8} {_n(cap.sustained, 1) + '/s':>10}  {cap.bottleneck.what}"
        )
    return lines


def _limits_table(cap: PathCapacity) -> list[str]:
    lines = [f"  {'tasks/s':>10}  {'limit':<60} {'figure':<44} {'per task':<22} from"]
    for limit in cap.limits:
        kind = limit.lever.kind + ("" if limit.sustained else ", not sustained")
        lines.append(
            f"  {_n(limit.capacity, 1):>10}  {limit.what[:60]:<60} {limit.limit[:44]:<44} {limit.per_task[:22]:<22} "
            f"{kind}"
        )
    return lines


def _simulation(report: CapacityReport, sim: SimResult) -> list[str]:
    burst = sim.burst
    offered = burst.tasks / burst.over_s if burst.over_s else 0.0
    held = ", ".join(f"{name} ({_n(seconds)} s)" for name, seconds in list(sim.limited_s.items())[:4]) or "nothing"
    lines = [
        f"Burst: {burst.tasks:,} tasks over {burst.over_s:,.0f} s ({_n(offered)}/s offered), {sim.path} path, "
        f"steps of {sim.dt:.2f} s:",
        f"  the API accepted the last task at {_duration(sim.accepted_at_s)}; at most {_n(sim.peak_client_backlog)} "
        "tasks waited at their clients (throttled, sent again)",
        f"  backlog (stored, not finished): peak {_n(sim.peak_backlog)} at {_duration(sim.peak_backlog_at_s)}; "
        f"the last task finished at {_duration(sim.finished_at_s)}"
        + (f", {_duration(sim.drain_after_burst_s())} after the burst ended" if sim.finished_at_s is not None else ""),
        f"  outcomes (the outbox): peak {_n(sim.peak_outbox_backlog)} undelivered; the last delivered at "
        f"{_duration(sim.delivered_at_s)}",
        f"  peaks: {_n(sim.peak_open_executions)} executions open, {_n(sim.peak_lambda_concurrency)} Lambda "
        f"environments busy; held back longest by: {held}",
    ]
    if sim.delivered_at_s is not None and sim.finished_at_s is not None:
        waited = sim.delivered_at_s - sim.finished_at_s  # the last outcome: written last, delivered last
        retention_s = report.quotas[q.STREAM_RETENTION].at(report.region) * 3600
        lines.append(
            f"  the last outcome waited about {_duration(waited)} in the stream"
            + (
                f", longer than its {retention_s / 3600:.0f} h retention: older records are trimmed (the reconciler "
                "re-triggers undelivered outcomes)"
                if waited > retention_s
                else f" (records are kept {retention_s / 3600:.0f} h)"
            )
        )
    if report.design.lifecycle_type != "EXPRESS":
        open_quota = report.quotas[q.SFN_OPEN_EXECUTIONS].at(report.region)
        share = sim.peak_open_executions / open_quota
        lines.append(
            f"  open executions peaked at {share:.0%} of the account's {_n(open_quota)}"
            + (": StartExecution would fail with ExecutionLimitExceeded" if share > 1 else "")
        )
    return lines


def render_capacity_report(report: CapacityReport) -> str:
    design = report.design
    happy = report.paths.get(report.simulated_path, report.happy)
    bottleneck = happy.bottleneck
    lines = [
        f"taskrail capacity: {report.region}, {design.lifecycle_type} lifecycle, template {report.template}",
        f"Quotas: {report.quotas.path or 'docs/quotas.json'} (checked {report.quotas.checked.isoformat()})",
        *_assumptions(report),
        *(
            [f"What if: {', '.join(f'{k}={v:g}' for k, v in report.what_if.items())} (not the template's values)."]
            if report.what_if
            else []
        ),
        "",
        f"Sustained ({happy.path} path): {_n(happy.sustained, 1)} tasks/s",
        f"Bottleneck: {bottleneck.what}: {bottleneck.limit} [{bottleneck.lever.kind}: {bottleneck.lever.name}"
        + (f" of {bottleneck.lever.where}]" if bottleneck.lever.kind == "template" else "]"),
        f"To double it ({_n(2 * happy.sustained, 1)} tasks/s):",
        *[f"  - {a.text}" for a in happy.to_double()],
        "",
        "Paths:",
        *_path_table(report),
        "",
        f"Limits on the {happy.path} path, lowest first:",
        *_limits_table(happy),
    ]
    if report.simulation is not None:
        lines += ["", *_simulation(report, report.simulation)]
    unknown = sorted({u for p in report.paths.values() for u in p.unknown})
    if unknown:
        lines += ["", "Unknown (AWS figure not found; counted, not limited): " + "; ".join(unknown) + "."]
    live = websocket_lines(report.quotas, report.region) if report.design.websocket_apis else []
    if live:
        lines += ["", *live]
    lines += ["", "Not modelled:", *[f"  - {note}" for note in report.notes]]
    return "\n".join(lines)


def summary_lines(report: CapacityReport) -> list[tuple[str, str]]:
    """(figure, value) rows for `make bench`."""
    happy = report.happy
    rows = [
        ("sustained, happy path", f"{_n(happy.sustained, 1)} tasks/s"),
        ("bottleneck", f"{happy.bottleneck.what} ({happy.bottleneck.limit})"),
        ("to double it", "; ".join(a.text for a in happy.to_double())),
    ]
    for name, cap in report.paths.items():
        if name != "happy":
            rows.append((f"sustained, {name} path", f"{_n(cap.sustained, 1)} tasks/s ({cap.bottleneck.what})"))
    sim = report.simulation
    if sim is not None:
        rows += [
            (
                f"burst {sim.burst.tasks:,} in {sim.burst.over_s:,.0f} s: backlog peak",
                f"{_n(sim.peak_backlog)} stored, {_n(sim.peak_client_backlog)} at clients, "
                f"{_n(sim.peak_outbox_backlog)} outcomes undelivered",
            ),
            (
                f"burst {sim.burst.tasks:,} in {sim.burst.over_s:,.0f} s: drained",
                f"finished at {_duration(sim.finished_at_s)}, outcomes at {_duration(sim.delivered_at_s)}",
            ),
        ]
    return rows


def as_json(report: CapacityReport) -> dict[str, Any]:
    def limit(item: Any) -> dict[str, Any]:
        out = asdict(item)
        return out

    paths = {}
    for name, cap in report.paths.items():
        load = asdict(cap.load)
        paths[name] = {
            "sustained_tasks_per_s": cap.sustained,
            "bottleneck": cap.bottleneck.key,
            "to_double": [asdict(a) for a in cap.to_double()],
            "load": load,
            "limits": [limit(item) for item in cap.limits],
            "unknown": list(cap.unknown),
        }
    sim = report.simulation
    return {
        "generated_at": report.generated_at,
        "region": report.region,
        "template": report.template,
        "lifecycle_type": report.design.lifecycle_type,
        "quotas": {"path": report.quotas.path, "checked": report.quotas.checked.isoformat()},
        "settings": asdict(report.settings),
        "design": {
            "pipes": [asdict(p) for p in report.design.pipes],
            "stage_throttle": {"rate": report.design.stage_rate, "burst": report.design.stage_burst},
            "stream_readers": report.design.stream_readers,
            "indexes": [
                {"name": i.name, "hash_key": i.hash_key, "projection": i.projection} for i in report.design.indexes
            ],
        },
        "paths": paths,
        "simulation": None
        if sim is None
        else {**asdict(sim), "drain_after_burst_s": sim.drain_after_burst_s(), "path": report.simulated_path},
        "notes": list(report.notes),
        "what_if": dict(report.what_if),
    }
