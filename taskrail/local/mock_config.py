"""Parser for AWS Step Functions Local's ``MockConfigFile.json`` (no moto imports).

Format (https://docs.aws.amazon.com/step-functions/latest/dg/sfn-local-mock-cfg-file.html)::

    {
      "StateMachines": {
        "<StateMachineName>": {
          "TestCases": {"<TestCaseName>": {"<StateName>": "<MockedResponseName>"}}
        }
      },
      "MockedResponses": {
        "<MockedResponseName>": {
          "0":   {"Return": {...}},
          "1-2": {"Throw": {"Error": "X", "Cause": "Y"}}
        }
      }
    }

Keys of a mocked response are attempt numbers (0 = first attempt, 1 = first retry, ...), either one
number or an inclusive range ``"a-b"``. They must start at 0 and be consecutive. Each entry holds
exactly one of ``Return`` (the whole service API response, e.g. ``{"StatusCode": 200, "Payload": ...}``
for ``lambda:invoke``) or ``Throw`` (``Error`` required, ``Cause`` optional).

Everything is validated when the file is loaded, so a typo fails at start-up rather than mid-execution.
:mod:`taskrail.local.services.stepfunctions` turns a test case into moto's runtime objects.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "MockConfigError",
    "MockConfigFile",
    "MockedResponseRange",
    "MockedReturn",
    "MockedThrow",
    "load_mock_config",
    "parse_mock_config",
]


class MockConfigError(ValueError):
    """The mock configuration is malformed or does not define what was asked for."""


@dataclass(frozen=True)
class MockedReturn:
    payload: Any


@dataclass(frozen=True)
class MockedThrow:
    error: str
    cause: str = ""


@dataclass(frozen=True)
class MockedResponseRange:
    """Attempts ``start``..``end`` (inclusive) of a state get ``outcome``."""

    start: int
    end: int
    outcome: MockedReturn | MockedThrow


@dataclass(frozen=True)
class MockConfigFile:
    # state machine name -> test case name -> state name -> mocked response name
    state_machines: Mapping[str, Mapping[str, Mapping[str, str]]]
    # mocked response name -> ranges sorted by attempt, consecutive from 0
    mocked_responses: Mapping[str, tuple[MockedResponseRange, ...]]

    def test_case(self, state_machine_name: str, test_case_name: str) -> dict[str, str]:
        """``{state name: mocked response name}`` for one test case, or :class:`MockConfigError`."""
        test_cases = self.state_machines.get(state_machine_name)
        if test_cases is None:
            raise MockConfigError(
                f"no state machine named {state_machine_name!r} in the mock configuration "
                f"(known: {sorted(self.state_machines)})"
            )
        states = test_cases.get(test_case_name)
        if states is None:
            raise MockConfigError(
                f"no test case {test_case_name!r} for state machine {state_machine_name!r} "
                f"(known: {sorted(test_cases)})"
            )
        return dict(states)


def _parse_range(key: str, where: str) -> tuple[int, int]:
    parts = key.strip().split("-")
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        raise MockConfigError(f"{where}: attempt key {key!r} is not 'N' or 'A-B'") from None
    if len(numbers) == 1:
        return numbers[0], numbers[0]
    if len(numbers) == 2 and 0 <= numbers[0] <= numbers[1]:
        return numbers[0], numbers[1]
    raise MockConfigError(f"{where}: attempt key {key!r} is not 'N' or 'A-B' with 0 <= A <= B")


def _parse_outcome(raw: Any, where: str) -> MockedReturn | MockedThrow:
    if not isinstance(raw, Mapping) or len(raw) != 1 or next(iter(raw)) not in ("Return", "Throw"):
        raise MockConfigError(f"{where}: expected exactly one of {{'Return': ...}} or {{'Throw': ...}}")
    if "Return" in raw:
        return MockedReturn(payload=raw["Return"])
    throw = raw["Throw"]
    if not isinstance(throw, Mapping) or not isinstance(throw.get("Error"), str):
        raise MockConfigError(f"{where}: Throw needs a string 'Error'")
    cause = throw.get("Cause", "")
    if not isinstance(cause, str):
        raise MockConfigError(f"{where}: Throw 'Cause' must be a string")
    return MockedThrow(error=throw["Error"], cause=cause)


def _parse_mocked_response(name: str, raw: Any) -> tuple[MockedResponseRange, ...]:
    where = f"MockedResponses.{name}"
    if not isinstance(raw, Mapping) or not raw:
        raise MockConfigError(f"{where}: expected a non-empty object of attempt ranges")
    ranges = sorted(
        (
            MockedResponseRange(*_parse_range(key, where), _parse_outcome(value, f"{where}.{key}"))
            for key, value in raw.items()
        ),
        key=lambda r: r.start,
    )
    expected = 0
    for r in ranges:
        if r.start != expected:
            raise MockConfigError(
                f"{where}: attempts must be numbered consecutively from 0; expected {expected}, got {r.start}"
            )
        expected = r.end + 1
    return tuple(ranges)


def _parse_state_machines(raw: Any, known_responses: Mapping[str, Any]) -> dict:
    if not isinstance(raw, Mapping):
        raise MockConfigError("StateMachines: expected an object")
    result: dict[str, dict[str, dict[str, str]]] = {}
    for sm_name, sm in raw.items():
        test_cases = sm.get("TestCases") if isinstance(sm, Mapping) else None
        if not isinstance(test_cases, Mapping):
            raise MockConfigError(f"StateMachines.{sm_name}: expected an object with 'TestCases'")
        result[sm_name] = {}
        for tc_name, states in test_cases.items():
            where = f"StateMachines.{sm_name}.TestCases.{tc_name}"
            if not isinstance(states, Mapping):
                raise MockConfigError(f"{where}: expected {{state name: mocked response name}}")
            for state_name, response_name in states.items():
                if response_name not in known_responses:
                    raise MockConfigError(f"{where}.{state_name}: unknown mocked response {response_name!r}")
            result[sm_name][tc_name] = dict(states)
    return result


def parse_mock_config(data: Mapping[str, Any]) -> MockConfigFile:
    """Validate a decoded ``MockConfigFile.json`` document."""
    if not isinstance(data, Mapping):
        raise MockConfigError("mock configuration must be a JSON object")
    raw_responses = data.get("MockedResponses", {})
    if not isinstance(raw_responses, Mapping):
        raise MockConfigError("MockedResponses: expected an object")
    responses = {name: _parse_mocked_response(name, raw) for name, raw in raw_responses.items()}
    machines = _parse_state_machines(data.get("StateMachines", {}), responses)
    return MockConfigFile(state_machines=machines, mocked_responses=responses)


def load_mock_config(source: MockConfigFile | Mapping[str, Any] | str | os.PathLike[str]) -> MockConfigFile:
    """Accept an already parsed config, a decoded JSON object, or a path to ``MockConfigFile.json``."""
    if isinstance(source, MockConfigFile):
        return source
    if isinstance(source, Mapping):
        return parse_mock_config(source)
    return parse_mock_config(json.loads(Path(source).read_text(encoding="utf-8")))
