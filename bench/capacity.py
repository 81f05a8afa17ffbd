"""`make bench`'s capacity section: ``taskrail capacity`` on this run's template, fed what this run measured.

The cost phase runs every path through moto's interpreter with the real handlers; its Lambda durations (medians per
function) and billable transitions per path replace the quota file's assumed durations and the transitions read
from the definition. The rest (quotas, shards, pipe and stage settings) is what `taskrail capacity` uses.

``python -m bench.capacity`` prints the section alone (no cost phase: the quota file's durations).
"""

from __future__ import annotations

from typing import Any

from taskrail.capacity import CapacityReport, capacity_report, measured_overrides, render_capacity_report, summary_lines

TITLE = "## 9. Capacity at AWS scale (`taskrail capacity`)"


def capacity_phase(cost_report: Any = None) -> CapacityReport:
    if cost_report is None:
        return capacity_report()
    durations, transitions = measured_overrides(cost_report)
    return capacity_report(
        durations=durations,
        transitions=transitions,
        durations_basis="medians measured by this run's cost phase",
    )


def capacity_lines(report: CapacityReport | None) -> str:
    """The section as markdown (printed by `make bench` and appended to docs/BENCHMARKS.md)."""
    if report is None:
        return f"{TITLE}\n\nnot computed (the phase failed)\n"
    happy = report.happy
    lines = [
        TITLE,
        "",
        f"{report.region}, {report.design.lifecycle_type} lifecycle; AWS quotas from docs/quotas.json (checked "
        f"{report.quotas.checked.isoformat()}), each cited there; settings from the synthesized template. "
        "A model, not a measurement: its assumptions are listed below the table (docs/CAPACITY.md).",
        "",
        "| figure | value |",
        "| --- | --- |",
        *[f"| {label} | {value} |" for label, value in summary_lines(report)],
        "",
        "Limits on the happy path (tasks/s, lowest first): "
        + "; ".join(f"{limit.what} {limit.capacity:,.1f}" for limit in happy.sustained_limits[:6])
        + ".",
        "",
        "```",
        render_capacity_report(report),
        "```",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(capacity_lines(capacity_phase()))
