"""AWS Step Functions: ``"QueryLanguage": "JSONata"`` states evaluate their expressions (moto ships a stub).

moto 5.2.5 parses JSONata states (Arguments, Output, Assign, ``{% ... %}`` expressions, ``$states``, variables)
and composes one JSONata program per expression (the variable declarations, then the expression), but its
evaluator is a stub: ``eval_jsonata_expression`` calls ``_eval_jsonata``, which it leaves ``None`` (moto's
upstream, LocalStack, runs the Java JSONata in a JVM). This module plugs in ``jsonata-python`` (pinned, pure
Python) as that evaluator; a failed evaluation raises moto's ``JSONataException`` as moto's JVM bridge does, and
a failed ``{% ... %}`` expression fails the state with ``States.QueryEvaluationError`` (an EvaluationFailed
event), as Step Functions reports it; moto let the exception become ``States.Runtime``.

Of the functions Step Functions adds to JSONata ("JSONata functions provided by Step Functions", Transforming data
with JSONata), moto declares ``$hash`` and ``$uuid`` as functions that return the text "Function $hash is currently
not supported", and ``$random`` keeps JSONata's own, which refuses a seed. They are provided here: ``$hash(value,
algorithm)`` (MD5, SHA-1, SHA-256, SHA-384, SHA-512; lower-case hex, as ``States.Hash``), ``$uuid()`` (a version 4
UUID) and ``$random([seed])`` (a seed gives the same number every time).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import random
import sys
import uuid
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
from moto.stepfunctions.parser.asl.component.intrinsic import jsonata as _moto_sfn_functions
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


#: moto's declarations of these return "Function $hash is currently not supported": they are dropped, and
#: :data:`_SFN_FUNCTIONS` answers instead
_STUBBED_BY_MOTO: Final = ("$hash", "$uuid")
_HASH_ALGORITHMS: Final = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}


def _hash(value: Any, algorithm: Any) -> str:
    name = _HASH_ALGORITHMS.get(algorithm) if isinstance(algorithm, str) else None
    if name is None:
        raise ValueError(f"$hash: the algorithm must be one of {', '.join(_HASH_ALGORITHMS)}, got {algorithm!r}")
    if not isinstance(value, str):
        raise ValueError(f"$hash: the value must be a string, got {type(value).__name__}")
    return hashlib.new(name, value.encode("utf-8")).hexdigest()


def _random(seed: Any = None) -> float:
    return random.Random(seed).random() if seed is not None else random.random()


_SFN_FUNCTIONS: Final = {"hash": _hash, "uuid": lambda: str(uuid.uuid4()), "random": _random}


def evaluate(expression: str) -> Any:
    """One composed JSONata program (moto prepends ``$x := ...;`` declarations), evaluated without input."""
    try:
        program = jsonata.Jsonata(expression)
        for name, implementation in _SFN_FUNCTIONS.items():
            program.register_lambda(name, implementation)
        result = program.evaluate(None)
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


def _declarations_without_stubs() -> dict[str, str]:
    declared = original(_moto_sfn_functions, "_DECLARATION_BY_VARIABLE_REFERENCE")
    return {name: text for name, text in declared.items() if name not in _STUBBED_BY_MOTO}


def install_jsonata() -> None:
    with lock:
        if not is_patched(_moto_jsonata, "_eval_jsonata"):
            patch(_moto_jsonata, "_eval_jsonata", evaluate)
        if not is_patched(StringJSONata, "_eval_body"):
            patch(StringJSONata, "_eval_body", _eval_string_jsonata)
        if not is_patched(_moto_sfn_functions, "_DECLARATION_BY_VARIABLE_REFERENCE"):
            patch(_moto_sfn_functions, "_DECLARATION_BY_VARIABLE_REFERENCE", _declarations_without_stubs())


def uninstall_jsonata() -> None:
    with lock:
        unpatch(_moto_jsonata, "_eval_jsonata")
        unpatch(StringJSONata, "_eval_body")
        unpatch(_moto_sfn_functions, "_DECLARATION_BY_VARIABLE_REFERENCE")


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
        Source(
            "moto.stepfunctions.parser.asl.component.intrinsic.jsonata.get_intrinsic_functions_declarations",
            lambda: _moto_sfn_functions.get_intrinsic_functions_declarations,
            ("_DECLARATION_BY_VARIABLE_REFERENCE.get(variable_reference)",),
        ),
        Check(
            "moto...intrinsic.jsonata $hash / $uuid",
            lambda: all(
                "currently not supported" in original(_moto_sfn_functions, "_DECLARATION_BY_VARIABLE_REFERENCE")[name]
                for name in _STUBBED_BY_MOTO
            ),
            "declared as stubs that return 'Function $... is currently not supported'",
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
