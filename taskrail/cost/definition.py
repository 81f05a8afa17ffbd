"""The workflow definition (``asl/task_lifecycle.asl.json``), read statically: its paths, catchers and retriers,
and the three paths the cost model runs."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parents[2]
ASL_PATH: Final = ROOT / "asl" / "task_lifecycle.asl.json"
# The lifecycle deployed with `-c lifecycleType=EXPRESS` (workflows/task_lifecycle.py): the EXPRESS columns' design.
EXPRESS_ASL_PATH: Final = ROOT / "asl" / "task_lifecycle.express.asl.json"
# The failure paths as measured before issue 19 (caught into TaskFailed, replayed as a new execution): recorded once
# by `python -m taskrail.cost.baseline` (taskrail/cost/baseline.py) on that commit, shown beside today's figures.
BASELINE_PATH: Final = ROOT / "docs" / "cost-baseline-issue19.json"


def relative(path: Path) -> str:
    """``path`` relative to the repository (as the report names its inputs), or as given outside it."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


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
    # Fixed after it failed, then replayed as `taskrail replay ID` does it: redriven when the execution can be (a
    # failure that ends the execution at its state), else a new execution from the DLQ message (a caught failure).
    replayed: bool = False


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
        "diagnostic.poison: ProcessTask fails permanently; the failure recorded, its DLQ message and event sent",
        failing_state="ProcessTask",
        error="PermanentTaskError",
    ),
    PathSpec(
        "replayed",
        "diagnostic.poison",
        {},
        "SUCCEEDED",
        "the failed path, then fixed and `taskrail replay`: a redrive from ProcessTask (or a new execution)",
        failing_state="ProcessTask",
        error="PermanentTaskError",
        replayed=True,
    ),
)


def definition_transitions(definition: Mapping[str, Any], spec: PathSpec) -> int | None:
    """The path's billable transitions read from the definition alone (None if the definition has no such state)."""
    if spec.replayed:
        return None  # two executions' worth (or one redriven): measured only
    try:
        detours = {}
        if spec.failing_state and spec.error:
            try:
                detours[spec.failing_state] = catch_target(definition, spec.failing_state, spec.error)
            except ValueError:  # not caught: the execution fails at that state
                full = follow_path(definition)
                return full.index(spec.failing_state) + 1 + spec.retries
        path = follow_path(definition, detours=detours)
    except (KeyError, ValueError):
        return None
    if spec.retried_state and spec.retried_state not in path:
        return None
    return len(path) + spec.retries
