"""DynamoDB's size of an item, for a low-level item ``{"name": {"S": …}}``: what a write is billed on and what a
stream record's ``SizeBytes`` reports ("Item sizes and formats", Amazon DynamoDB Developer Guide). Stdlib only: the
cost model's arithmetic and the local pipes both use it.

- a string is its UTF-8 length, a binary its raw length (base64 in JSON: three bytes per four characters);
- a number is about one byte per two significant digits, plus one (leading and trailing zeroes are trimmed);
- a boolean or a null is one byte; a set is the sum of its members;
- a list or a map is 3 bytes plus, for each element, 1 byte and its size (and a map's key's UTF-8 length).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["item_size_bytes"]


def item_size_bytes(item: Mapping[str, Any]) -> int:
    """Attribute names plus values."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: Mapping[str, Any]) -> int:  # noqa: PLR0911 - one branch per type
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(str(inner).encode())
    if kind == "N":
        return (len(str(inner).lstrip("-").replace(".", "").strip("0") or "0") + 1) // 2 + 1
    if kind == "B":
        return len(inner) if isinstance(inner, bytes) else len(str(inner)) * 3 // 4
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(_value_size({kind[0]: v}) for v in inner)
    if kind == "L":
        return 3 + sum(1 + _value_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _value_size(v) for k, v in inner.items())
    return 0
