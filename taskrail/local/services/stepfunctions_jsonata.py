"""AWS Step Functions: ``"QueryLanguage": "JSONata"`` states evaluate their expressions (moto ships a stub).

moto 5.2.5 parses JSONata states (Arguments, Output, Assign, ``{% ... %}`` expressions, ``$states``, variables)
and composes one JSONata program per expression (the variable declarations, then the expression), but its
evaluator is a stub: ``eval_jsonata_expression`` calls ``_eval_jsonata``, which it leaves ``None`` (moto's
upstream, LocalStack, runs the Java JSONata in a JVM). This module plugs in ``jsonata-python`` (pinned, pure
Python) as that evaluator; a failed evaluation raises moto's ``JSONataException`` as moto's JVM bridge does, and
a failed ``{% ... %}`` expression fails the state with ``States.QueryEvaluationError`` (an EvaluationFailed
event), as Step Functions reports it; moto let the exception become ``States.Runtime``.
"""

from __future__ import annotations

import importlib
import json
import sys
from importlib.metadata import version
from types import ModuleType
from typing import Any, Final

from moto.stepfunctions.parser.api import EvaluationFailedEventDetails, HistoryEventType
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
from moto.stepfunctions.parser.asl.component.common.string.string_expression import StringJSONata
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.jsonata import jsonata as _moto_jsonata

from taskrail.local.services.patching import (
    Check,
    Patch,
    Signature,
    Source,
    is_patched,
    lock,
    original,
    patch,
    unpatch,
)

__all__ = ["JSONATA_PYTHON_VERSION", "PATCHES", "evaluate", "install_jsonata", "uninstall_jsonata"]

JSONATA_PYTHON_VERSION: Final = "0.7.1"


def _import_jsonata() -> ModuleType:
    """jsonata-python sets the whole process's recursion limit to 10,000 when it is imported
    (``Jsonata._static_initializer``). Left so, it changes what every other module of the process may do: the API
    emulator's JSON parser, for one, then parses a 5,000-deep body that the default limit refuses. Keep the
    process's limit."""
    limit = sys.getrecursionlimit()
    try:
        return importlib.import_module("jsonata")
    finally:
        sys.setrecursionlimit(limit)


jsonata = _import_jsonata()


def evaluate(expression: str) -> Any:
    """One composed JSONata program (moto prepends ``$x := ...;`` declarations), evaluated without input."""
    try:
        result = jsonata.Jsonata(expression).evaluate(None)
    except Exception as error:
        raise _moto_jsonata.JSONataException("UNKNOWN", str(error)) from error
    # JSON values only (as moto's bridge returns them): the evaluator may hand back its own sequence types
    return None if result is None else json.loads(json.dumps(result))


def _eval_string_jsonata(self: StringJSONata, env: Any) -> None:
    """A ``{% ... %}`` expression that fails is ``States.QueryEvaluationError`` (moto made it States.Runtime)."""
    try:
        original(StringJSONata, "_eval_body")(self, env)
    except _moto_jsonata.JSONataException as error:
        name = StatesErrorName(typ=StatesErrorNameType.StatesQueryEvaluationError)
        details = EvaluationFailedEventDetails(
            error=name.error_name, cause=f"The JSONata expression '{self.expression}' failed: {error.details}"
        )
        failure = FailureEvent(
            env=env,
            error_name=name,
            event_type=HistoryEventType.EvaluationFailed,
            event_details=EventDetails(evaluationFailedEventDetails=details),  # type: ignore[typeddict-item]
        )
        raise FailureEventException(failure_event=failure) from error


def install_jsonata() -> None:
    with lock:
        if not is_patched(_moto_jsonata, "_eval_jsonata"):
            patch(_moto_jsonata, "_eval_jsonata", evaluate)
        if not is_patched(StringJSONata, "_eval_body"):
            patch(StringJSONata, "_eval_body", _eval_string_jsonata)


def uninstall_jsonata() -> None:
    with lock:
        unpatch(_moto_jsonata, "_eval_jsonata")
        unpatch(StringJSONata, "_eval_body")


def _installed_version() -> str:
    return version("jsonata-python")


JSONATA: Final = Patch(
    "stepfunctions.jsonata",
    depends=(
        Source(
            "moto.stepfunctions.parser.asl.jsonata.jsonata.eval_jsonata_expression",
            lambda: _moto_jsonata.eval_jsonata_expression,
            ("global _eval_jsonata", "if _eval_jsonata is None:", "return _eval_jsonata(jsonata_expression)"),
        ),
        Signature(
            "moto...string_expression.StringJSONata._eval_body",
            lambda: original(StringJSONata, "_eval_body"),
            ("self", "env"),
        ),
        Signature(
            "moto...failure_event.FailureEvent.__init__",
            lambda: FailureEvent.__init__,
            ("self", "env", "error_name", "event_type", "event_details"),
        ),
        Check(
            "jsonata-python",
            lambda: _installed_version() == JSONATA_PYTHON_VERSION,
            f"jsonata-python=={JSONATA_PYTHON_VERSION} installed",
        ),
    ),
    install=install_jsonata,
    uninstall=uninstall_jsonata,
)

PATCHES: Final = (JSONATA,)
