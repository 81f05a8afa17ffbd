"""AWS Step Functions API answers where moto 5.2.5 differs: StartExecution names, GetExecutionHistory options.

- **StartExecution** (API Reference, StartExecution): ``name`` is optional ("If you don't provide a name for the
  execution, Step Functions automatically generates a universally unique identifier (UUID) as the execution
  name"; moto names it ``None``, and a second start then fails). A name is 1-80 characters and "must not
  contain: white space, brackets < > { } [ ], wildcard characters ? *, special characters " # % \\ ^ | ~ ` $ & , ; : /,
  control characters (U+0000-001F, U+007F-009F)" -> ``InvalidName`` (moto's parser backend checks neither).
  Input that is not JSON is ``InvalidExecutionInput`` (moto already); same name with other input, or a closed
  execution, ``ExecutionAlreadyExists`` (moto already; same name and input while RUNNING returns the execution).
- **GetExecutionHistory** (API Reference): ``reverseOrder``, ``maxResults`` (default 100, up to 1000) with
  ``nextToken``, and ``includeExecutionData`` (false: no input/output in the events' details); moto ignores all.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from typing import Any, Final

from moto.core.responses import ActionResult
from moto.stepfunctions.exceptions import InvalidExecutionInput, InvalidName, InvalidToken
from moto.stepfunctions.responses import StepFunctionResponse

from taskrail.local.services import stepfunctions_aliases
from taskrail.local.services.patching import Patch, Source, is_patched, original, patch, unpatch

__all__ = ["PATCHES", "install_api_answers", "name_problem", "uninstall_api_answers"]

MAX_NAME: Final = 80
_FORBIDDEN: Final = re.compile(r"[\s<>{}\[\]?*\"#%\\^|~`$&,;:/\u0000-\u001f\u007f-\u009f]")
DEFAULT_PAGE: Final = 100
MAX_PAGE: Final = 1000
_DATA_KEYS: Final = frozenset({"input", "output", "inputDetails", "outputDetails", "parameters"})


def name_problem(name: str) -> str | None:
    if not 1 <= len(name) <= MAX_NAME:
        return f"Invalid Name: '{name}' (length must be between 1 and {MAX_NAME})"
    if _FORBIDDEN.search(name):
        return f"Invalid Name: '{name}'"
    return None


def _start_execution(self: StepFunctionResponse) -> ActionResult:
    name = self._get_param("name")
    if name is None:
        name = str(uuid.uuid4())
    problem = name_problem(str(name))
    if problem is not None:
        raise InvalidName(problem)
    execution_input = self._get_param("input", if_none="{}")
    try:
        json.loads(execution_input)
    except ValueError as exc:  # moto's parser raises its own class here, which its server sends without a code
        raise InvalidExecutionInput(f"Invalid State Machine Execution Input: '{exc}'") from None
    backend = self.stepfunction_backend
    # A version or alias ARN runs that version, and the execution remembers it (stepfunctions_aliases).
    with stepfunctions_aliases.starting(backend, self._get_param("stateMachineArn")) as target:
        execution = backend.start_execution(target.state_machine_arn, name, execution_input)
        stepfunctions_aliases.record(execution, target)
    return ActionResult({"executionArn": execution.execution_arn, "startDate": execution.start_date})


def _without_data(event: dict[str, Any]) -> dict[str, Any]:
    event = copy.deepcopy(event)
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict):
            event[key] = {k: v for k, v in value.items() if k not in _DATA_KEYS}
    return event


def _get_execution_history(self: StepFunctionResponse) -> ActionResult:
    result = original(StepFunctionResponse, "get_execution_history")(self)
    events = list(result.result["events"])  # type: ignore[attr-defined]
    if self._get_bool_param("reverseOrder", False):
        events.reverse()
    if self._get_bool_param("includeExecutionData", True) is False:
        events = [_without_data(e) for e in events]
    page = self._get_int_param("maxResults") or DEFAULT_PAGE
    page = min(page, MAX_PAGE)
    token = self._get_param("nextToken")
    start = 0
    if token:
        try:
            start = int(token)
        except ValueError:
            raise InvalidToken("Invalid token") from None
    response: dict[str, Any] = {"events": events[start : start + page]}
    if start + page < len(events):
        response["nextToken"] = str(start + page)
    return ActionResult(response)


_PATCHED: Final = (
    ("start_execution", _start_execution),
    ("get_execution_history", _get_execution_history),
)


def install_api_answers() -> None:
    for name, replacement in _PATCHED:
        if not is_patched(StepFunctionResponse, name):
            patch(StepFunctionResponse, name, replacement)


def uninstall_api_answers() -> None:
    for name, _ in _PATCHED:
        if is_patched(StepFunctionResponse, name):
            unpatch(StepFunctionResponse, name)


API_ANSWERS: Final = Patch(
    "StartExecution names, GetExecutionHistory options",
    depends=(
        Source(
            "moto.stepfunctions.responses.StepFunctionResponse.start_execution",
            lambda: original(StepFunctionResponse, "start_execution"),
            (
                'arn = self._get_param("stateMachineArn")',
                'name = self._get_param("name")',
                'execution_input = self._get_param("input", if_none="{}")',
                '"executionArn": execution.execution_arn',
                '"startDate": execution.start_date',
            ),
        ),
        Source(
            "moto.stepfunctions.responses.StepFunctionResponse.get_execution_history",
            lambda: original(StepFunctionResponse, "get_execution_history"),
            ("return ActionResult(execution_history)",),
        ),
    ),
    install=install_api_answers,
    uninstall=uninstall_api_answers,
)

# Versions and aliases live in their own module; StartExecution (above) is where they take effect.
PATCHES: Final = (API_ANSWERS, *stepfunctions_aliases.PATCHES)
