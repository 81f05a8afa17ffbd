"""The capacity model: how many tasks per second the deployed design sustains on AWS, what gives out first, what to
raise to double it, and how a burst drains (``taskrail capacity``).

* :mod:`~taskrail.capacity.quotas` -- ``docs/quotas.json``: AWS quotas, each cited with the date it was checked, and
  the model's assumptions, each with its basis (pydantic);
* :mod:`~taskrail.capacity.design` -- the synthesized template and ``asl/``, read: pipes, stage throttle, functions,
  indexes, and per path the states, transitions, starts, invocations and index writes of one task;
* :mod:`~taskrail.capacity.model` -- each limit in tasks/s, the bottleneck, the advice to double;
* :mod:`~taskrail.capacity.simulate` -- a burst stepped in time (token buckets as buckets, Lambda and pipe
  concurrency as servers);
* :mod:`~taskrail.capacity.render` -- the text and ``--json`` forms.

Pure Python: nothing here imports CDK or moto (the template is synthesized, when stale, in a child process).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from statistics import median
from typing import Any

from taskrail.capacity.design import (
    PATH_NAMES,
    Design,
    PathLoad,
    path_loads,
    read_design,
    synthesized_template,
    with_settings,
)
from taskrail.capacity.model import DEFAULT_REGION, PathCapacity, Settings, capacities, settings_from
from taskrail.capacity.quotas import QUOTAS_PATH, QuotaBook, load_quotas
from taskrail.capacity.simulate import Burst, SimResult, simulate
from taskrail.cost.model import TASKRAIL

__all__ = [
    "PATH_NAMES",
    "Burst",
    "CapacityReport",
    "capacity_report",
    "load_quotas",
    "measured_overrides",
]

DEFAULT_BURST = Burst(1_000_000, 600.0)


@dataclass(frozen=True)
class CapacityReport:
    generated_at: str
    region: str
    template: str
    quotas: QuotaBook
    settings: Settings
    design: Design
    paths: Mapping[str, PathCapacity]
    simulation: SimResult | None
    simulated_path: str
    notes: tuple[str, ...] = field(default_factory=tuple)
    what_if: Mapping[str, float] = field(default_factory=dict)  # template settings changed for this report

    @property
    def happy(self) -> PathCapacity:
        return self.paths["happy"]


NOTES = (
    "Writes made inside Lambda handlers (ProcessTask's progress updates, the outbox's mark that removes "
    "outcomePending) are in neither the template nor asl/ and are not counted: the outcomePending index's key takes "
    "one more write per task than shown.",
    "An index key computed per task (a task id, a write shard) spreads its writes over its values; how many values "
    "is not read from the template, so such a key is not counted as a hot key.",
    "The pipes' own overhead per batch is not published and not added: their figures are upper bounds.",
    "DynamoDB's warm throughput is reported but not simulated: a new table that meets a burst above it throttles "
    "until it has split (pre-warm it with the table's WarmThroughput).",
)


def measured_overrides(cost_report: Any) -> tuple[dict[str, float], dict[str, int]]:
    """From a ``taskrail cost`` report: the median duration (ms) of each function on the happy path (a function the
    happy path does not call: over every path), and the billable transitions of each path it ran. What `make bench`
    feeds the model from the same run."""
    durations: dict[str, list[float]] = {}
    fallback: dict[str, list[float]] = {}
    transitions: dict[str, int] = {}
    for name, profile in cost_report.profiles[TASKRAIL].items():
        transitions[name] = int(profile.transitions)
        for use in profile.lambdas:
            fn = use.function.rsplit("-", 1)[-1]
            (durations if name == "happy" else fallback).setdefault(fn, []).extend(use.durations_ms)
    for fn, ms in fallback.items():
        durations.setdefault(fn, ms)
    return {fn: float(median(ms)) for fn, ms in durations.items() if ms}, transitions


def capacity_report(
    *,
    template_path: Path | None = None,
    synth: bool = True,
    quotas_path: Path = QUOTAS_PATH,
    region: str = DEFAULT_REGION,
    burst: Burst | None = DEFAULT_BURST,
    path: str = "happy",
    shards: float | None = None,
    durations: Mapping[str, float] | None = None,
    api_requests: float | None = None,
    transitions: Mapping[str, int] | None = None,
    durations_basis: str | None = None,
    template: Mapping[str, Any] | None = None,
    what_if: Mapping[str, float] | None = None,
) -> CapacityReport:
    """The model for the synthesized template (``template`` given: that one), ``docs/quotas.json`` and ``asl/``.

    ``what_if`` changes template settings before the model reads them (:func:`~taskrail.capacity.design.with_settings`);
    ``transitions`` replaces the per-path transition counts read from the definitions with measured ones (the cost
    model's), ``durations`` the functions' assumed durations.
    """
    book = load_quotas(quotas_path)
    if template is None:
        found = synthesized_template(template_path, synth=synth)
        template = json.loads(found.read_text())
        where = str(found)
    else:
        where = "(given)"
    design = read_design(template, where)
    if what_if:
        design = with_settings(design, what_if)
    settings = settings_from(
        book,
        region,
        shards=shards,
        function_ms=dict(durations) if durations else None,
        api_requests=api_requests,
        durations_basis=durations_basis,
    )
    loads: dict[str, PathLoad] = path_loads(design)
    if transitions:
        for name, count in transitions.items():
            if name in loads and count != loads[name].transitions:
                loads[name] = replace(loads[name], transitions=count, transitions_source="measured")
            elif name in loads:
                loads[name] = replace(loads[name], transitions_source="definition = measured")
    paths = capacities(design, loads, book, settings)
    if path not in paths:
        raise ValueError(f"no path {path!r}: one of {', '.join(paths)}")
    result = None
    if burst is not None:
        result = simulate(design, loads[path], book, settings, burst, sustained=paths[path].sustained)
    return CapacityReport(
        generated_at=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        region=region,
        template=where,
        quotas=book,
        settings=settings,
        design=design,
        paths=paths,
        simulation=result,
        simulated_path=path,
        notes=NOTES,
        what_if=dict(what_if or {}),
    )


from taskrail.capacity.render import as_json, render_capacity_report, summary_lines  # noqa: E402

__all__ += ["as_json", "render_capacity_report", "summary_lines"]
