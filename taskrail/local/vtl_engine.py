"""The one place taskrail touches airspeed-ext (pinned ``airspeed-ext==0.6.9`` in pyproject.toml).

:func:`load_engine` loads a *private copy* of ``airspeed.operators`` (from the installed file, under another module
name), so the process-wide ``airspeed`` module stays untouched, and patches that copy with the semantics
:mod:`taskrail.local.vtl` gives it (:class:`Semantics`: what is true in ``#if``, how a member is looked up, how a
value renders, what ``+`` does). Each patch first checks that the code it replaces is what it was written against
and raises ``ImportError`` naming it otherwise, so an upgrade of airspeed-ext fails loudly at import, not silently
in a template (tests/local/test_vtl.py checks the pin and the refusal). What each patch fixes is described in
:mod:`taskrail.local.vtl` ("What airspeed-ext 0.6.9 lacks").
"""

from __future__ import annotations

import importlib.util
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import airspeed.operators

__all__ = ["AIRSPEED_EXT_VERSION", "Semantics", "load_engine", "patch_engine"]

AIRSPEED_EXT_VERSION = "0.6.9"

# airspeed's plain-text rule swallows "#" with a following run of punctuation *including* "$"; the run stops
# before "$" and "\" instead (a reference right after "#" renders: TASK#$context.requestId).
_AIRSPEED_TEXT_PATTERN = r"((?:[^\\\$#]+|\\[\$#])+|\$[^!\{a-z0-9_]|\$$|#$|#[^\{\}a-zA-Z0-9#\*]+|\\.)(.*)$"
_FIXED_TEXT_PATTERN = _AIRSPEED_TEXT_PATTERN.replace(r"|#[^\{\}a-zA-Z0-9#\*]+|", r"|#[^\{\}a-zA-Z0-9#\*\$\\]+|")


@dataclass(frozen=True)
class Semantics:
    """What the patched engine asks the caller."""

    truthy: Callable[[Any], bool]  # a #if condition / "!" operand
    member: Callable[[Any, str, bool], Any]  # $target.name (False) or $target.name(...) (True): value or callable
    to_string: Callable[[Any], str]  # how a value renders
    add: Callable[[Any, Any], Any]  # the "+" operator


class _MapValues:
    """Wraps a ``#foreach`` source so that iterating a map yields its values, as in Velocity."""

    def __init__(self, value: Any) -> None:
        self._value = value

    def calculate(self, namespace: Any, loader: Any) -> Any:
        result = self._value.calculate(namespace, loader)
        return list(result.values()) if isinstance(result, Mapping) else result


def _require(condition: bool, what: str) -> None:
    if not condition:
        raise ImportError(
            f"airspeed-ext {what} is not what taskrail.local.vtl_engine patches; re-check the patches after an upgrade"
        )


def patch_engine(engine: Any, semantics: Semantics) -> None:
    """Patch a private copy of ``airspeed.operators``; ``ImportError`` if it is not the code the patches expect."""
    _require(engine.Text.PLAIN.pattern == _AIRSPEED_TEXT_PATTERN, "Text.PLAIN")
    _require(hasattr(engine.Condition, "calculate"), "Condition.calculate")
    _require(set(engine.UnaryOperatorValue.OPERATORS) == {"!", "not"}, "UnaryOperatorValue")
    _require(callable(getattr(engine, "value_to_string", None)), "value_to_string")
    _require(engine.BinaryOperator.OPERATORS.get("+") is operator.add, "BinaryOperator '+'")
    engine.Text.PLAIN = re.compile(_FIXED_TEXT_PATTERN, re.S | re.I)

    def condition(self: Any, namespace: Any, loader: Any) -> bool:
        return semantics.truthy(self.expression.calculate(namespace, loader))

    def negation(self: Any, namespace: Any, loader: Any) -> bool:
        return not semantics.truthy(self.value.calculate(namespace, loader))

    engine.Condition.calculate = condition
    engine.UnaryOperatorValue.calculate = negation

    original_name_or_call = engine.NameOrCall.calculate

    def name_or_call(self: Any, current: Any, loader: Any, top_namespace: Any) -> Any:
        if isinstance(current, engine.LocalNamespace):
            return original_name_or_call(self, current, loader, top_namespace)
        result = semantics.member(current, self.name, self.parameters is not None)
        if result is None:
            return None
        if self.parameters is not None:
            return result(*self.parameters.calculate(top_namespace, loader))
        if self.index is not None:
            try:
                return result[self.index.calculate(top_namespace, loader)]
            except (LookupError, TypeError):
                return None
        return result

    engine.NameOrCall.calculate = name_or_call
    engine.value_to_string = semantics.to_string
    engine.BinaryOperator.OPERATORS = {**engine.BinaryOperator.OPERATORS, "+": semantics.add}

    original_foreach_parse = engine.ForeachDirective.parse

    def foreach_parse(self: Any) -> None:
        original_foreach_parse(self)
        self.value = _MapValues(self.value)

    engine.ForeachDirective.parse = foreach_parse


def load_engine(semantics: Semantics) -> ModuleType:
    """A fresh private copy of ``airspeed.operators``, patched with ``semantics``."""
    source = airspeed.operators.__file__
    spec = importlib.util.spec_from_file_location(f"{__name__}._airspeed_operators", source)
    _require(spec is not None and spec.loader is not None, "operators module")
    assert spec is not None and spec.loader is not None
    engine = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(engine)
    patch_engine(engine, semantics)
    return engine
