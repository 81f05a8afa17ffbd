"""The retry schedule docs/RELIABILITY.md promises ("Retry per error class, and how long a run may take") is the
deployed one: every Retry of every generated definition (``asl/*.asl.json``) is a row of the documented table, with
the same interval, retries, backoff, cap and FULL jitter; every row is used; each state machine's execution timeout
is the documented one. A changed number in ``workflows/`` (a cap of 61 s, six throttling retries, a 14-minute
reconciler) fails here until the document says so too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "RELIABILITY.md"
ASL = ROOT / "asl"
SECTION = "## Retry per error class, and how long a run may take"


def _tables() -> list[list[list[str]]]:
    """The markdown tables of the section, each a list of rows of cells (header and rule lines dropped)."""
    text = DOC.read_text(encoding="utf-8")
    body = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    tables: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in [*body.splitlines(), ""]:
        if line.startswith("|"):
            current.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif current:
            tables.append([row for row in current[2:]])  # header, then the |---| rule
            current = []
    return tables


def documented_policies() -> dict[tuple[str, str], dict[str, Any]]:
    """(first error, second error) -> the row's numbers."""
    policies = {}
    for name, errors, interval, retries, backoff, cap, _states in _tables()[0]:
        first, second = (e.strip() for e in errors.split(","))
        policies[(first, second)] = {
            "policy": name,
            "IntervalSeconds": int(interval),
            "MaxAttempts": int(retries),
            "BackoffRate": float(backoff),
            "MaxDelaySeconds": int(cap),
            "JitterStrategy": "FULL",
        }
    return policies


def documented_timeouts() -> dict[str, int]:
    return {re.sub(r"`", "", file): int(seconds) for _name, file, seconds in _tables()[1]}


def retries_of(definition: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []

    def walk(states: dict[str, Any]) -> None:
        for name, state in states.items():
            found.extend((name, retry) for retry in state.get("Retry", []))
            for branch in state.get("Branches", []):
                walk(branch["States"])
            for key in ("Iterator", "ItemProcessor"):
                if key in state:
                    walk(state[key]["States"])

    walk(definition["States"])
    return found


def definitions() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text(encoding="utf-8")) for path in sorted(ASL.glob("*.asl.json"))}


def test_every_retry_of_every_definition_is_a_documented_row_with_its_numbers() -> None:
    policies = documented_policies()
    used: set[tuple[str, str]] = set()
    for file, definition in definitions().items():
        for state, retry in retries_of(definition):
            key = tuple(retry["ErrorEquals"][:2])
            assert key in policies, f"{file} {state}: Retry on {retry['ErrorEquals']} is not in docs/RELIABILITY.md"
            expected = policies[key]
            actual = {name: retry.get(name) for name in expected if name != "policy"}
            assert actual == {k: v for k, v in expected.items() if k != "policy"}, (file, state, expected["policy"])
            used.add(key)  # type: ignore[arg-type]
    print("documented policies used:", sorted(policies[k]["policy"] for k in used))
    assert used == set(policies), f"documented but used by no state: {set(policies) - used}"


def test_each_state_machine_runs_at_most_its_documented_execution_timeout() -> None:
    timeouts = {file: definition.get("TimeoutSeconds") for file, definition in definitions().items()}
    print(timeouts)
    assert timeouts == documented_timeouts()
