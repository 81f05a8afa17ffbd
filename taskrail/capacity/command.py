"""``taskrail capacity``: the command's work (taskrail/cli.py only declares its options and prints)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from taskrail.capacity import Burst, capacity_report, render_capacity_report
from taskrail.capacity import as_json as to_json
from taskrail.capacity.design import PATH_NAMES, TemplateMissing


class CapacityInputError(ValueError):
    """Bad input to the command: a clear message, exit status 2."""


def parse_durations(pairs: Sequence[str]) -> dict[str, float]:
    """``FUNCTION=MS`` pairs, e.g. ``ProcessTaskFunction=250``."""
    out: dict[str, float] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            ms = float(value)
        except ValueError:
            ms = -1.0
        if not sep or not name or ms <= 0:
            raise CapacityInputError(
                f"--duration takes FUNCTION=MS with MS > 0, e.g. ProcessTaskFunction=250; got {pair!r}"
            )
        out[name] = ms
    return out


def parse_settings(pairs: Sequence[str]) -> dict[str, float]:
    """``SETTING=VALUE`` pairs for --what-if, e.g. ``TaskChangesPipe.ParallelizationFactor=10``."""
    out: dict[str, float] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = -1.0
        if not sep or not name or number < 1:
            raise CapacityInputError(
                "--what-if takes SETTING=VALUE with VALUE >= 1, e.g. TaskChangesPipe.ParallelizationFactor=10; "
                f"got {pair!r}"
            )
        out[name] = number
    return out


def run(
    *,
    region: str,
    burst: int,
    over: float,
    path: str,
    shards: float | None,
    durations: Sequence[str],
    api_requests: float | None,
    template: Path | None,
    synth: bool,
    as_json: bool,
    what_if: Sequence[str] = (),
) -> str | dict[str, Any]:
    if burst < 0 or over <= 0:
        raise CapacityInputError(
            "--burst takes a task count (0: no simulation) and --over a positive number of seconds"
        )
    if path not in PATH_NAMES:
        raise CapacityInputError(f"--path is one of {', '.join(PATH_NAMES)}; got {path!r}")
    if shards is not None and shards < 1:
        raise CapacityInputError("--shards takes a count of at least 1")
    if api_requests is not None and api_requests < 1:
        raise CapacityInputError("--api-requests takes at least 1 (the POST itself)")
    try:
        report = capacity_report(
            template_path=template,
            synth=synth,
            region=region,
            burst=Burst(burst, over) if burst else None,
            path=path,
            shards=shards,
            durations=parse_durations(durations),
            api_requests=api_requests,
            durations_basis="docs/quotas.json and --duration" if durations else None,
            what_if=parse_settings(what_if),
        )
    except (TemplateMissing, ValueError) as error:
        raise CapacityInputError(f"{error}") from error
    return to_json(report) if as_json else render_capacity_report(report)
