"""DynamoDB UpdateItem ``ReturnValues: UPDATED_NEW``: the attributes the update names, also when a value is unchanged.

UpdateItem's ``UPDATED_NEW`` "returns only the updated attributes, as they appear after the UpdateItem operation"
(the UpdateItem API reference): the attributes the update expression sets, whatever they held before. moto 5.2.5
returns only those whose value changed (``DynamoHandler._build_updated_new_attributes`` diffs the old and new items),
so setting an attribute to the value it has answers no ``Attributes`` at all; AWS answers the attribute (the
behaviour reported against DynamoDB in ministackorg/ministack#1040, "UPDATED_NEW and UPDATED_OLD should always return
Attributes if the values are not None, regardless of whether they were changed", and the same moto gap for
UPDATED_OLD in getmoto/moto#2860). The WebSocket API's subscribe answers from it: a client that subscribes again to
the same task is answered with its task id (infra/constructs/live_templates/subscribe.response.vtl).

The patch adds, to moto's answer, each top-level attribute a ``SET`` or ``ADD`` clause names (``#name`` resolved),
as it is after the update. Nested paths (``a.b``) keep moto's behaviour. Case: tests/local/services/
test_update_item_return_values.py.
"""

from __future__ import annotations

import re
import threading
from typing import Any, Final

from moto.dynamodb.responses import DynamoHandler

from taskrail.local.services.patching import Patch, Signature, Source, is_patched, original, patch, unpatch

__all__ = ["PATCHES", "UPDATED_NEW_NAMES_SET"]

_CLAUSE = re.compile(r"\b(SET|ADD|REMOVE|DELETE)\b", re.IGNORECASE)
_TARGET = re.compile(r"^\s*(#?[A-Za-z0-9_]+)\s*(?:=|\s|$)")
_local = threading.local()


def named_attributes(expression: str, names: dict[str, str]) -> set[str]:
    """The top-level attributes the SET and ADD clauses of ``expression`` write (``#n`` resolved)."""
    found: set[str] = set()
    parts = _CLAUSE.split(expression or "")
    for keyword, clause in zip(parts[1::2], parts[2::2], strict=False):
        if keyword.upper() not in ("SET", "ADD"):
            continue
        depth, start, actions = 0, 0, []
        for index, char in enumerate(clause):  # split on the commas between actions, not inside a function call
            depth += {"(": 1, ")": -1}.get(char, 0)
            if char == "," and depth == 0:
                actions.append(clause[start:index])
                start = index + 1
        actions.append(clause[start:])
        for action in actions:
            match = _TARGET.match(action)
            if match is not None:
                name = match.group(1)
                found.add(names.get(name, name) if name.startswith("#") else name)
    return found


def _build_updated_new_attributes(self: Any, original_value: Any, changed: Any) -> Any:
    build = original(DynamoHandler, "_build_updated_new_attributes")
    if getattr(_local, "nested", False):
        return build(self, original_value, changed)
    _local.nested = True
    try:
        result = build(self, original_value, changed)
    finally:
        _local.nested = False
    if isinstance(changed, dict) and isinstance(result, dict):
        names = named_attributes(
            str(self.body.get("UpdateExpression") or ""), self.body.get("ExpressionAttributeNames") or {}
        )
        result.update({name: changed[name] for name in names if name in changed and name not in result})
    return result


def _install() -> None:
    if not is_patched(DynamoHandler, "_build_updated_new_attributes"):
        patch(DynamoHandler, "_build_updated_new_attributes", _build_updated_new_attributes)


def _uninstall() -> None:
    unpatch(DynamoHandler, "_build_updated_new_attributes")


UPDATED_NEW_NAMES_SET: Final = Patch(
    "UpdateItem UPDATED_NEW answers every attribute the update sets, changed or not",
    depends=(
        Signature(
            "moto.dynamodb.responses.DynamoHandler._build_updated_new_attributes",
            lambda: original(DynamoHandler, "_build_updated_new_attributes"),
            ("self", "original", "changed"),
        ),
        Source(
            "moto.dynamodb.responses.DynamoHandler.update_item",
            lambda: original(DynamoHandler, "update_item"),
            ('elif return_values == "UPDATED_NEW":', "self._build_updated_new_attributes("),
        ),
    ),
    install=_install,
    uninstall=_uninstall,
)

PATCHES: Final = (UPDATED_NEW_NAMES_SET,)
