"""DynamoDB request units: item sizes, write and read units, the tables and indexes of the template."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from taskrail.item_size import item_size_bytes

# --------------------------------------------------------------------------------------------------
# DynamoDB request units
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexInfo:
    name: str
    keys: frozenset[str]
    projection: str  # ALL | KEYS_ONLY | INCLUDE
    included: frozenset[str] = frozenset()

    def projects(self, attributes: set[str]) -> bool:
        if self.projection == "ALL":
            return True
        return bool(attributes & (self.keys | self.included))


@dataclass(frozen=True)
class TableInfo:
    name: str
    key: frozenset[str]
    indexes: tuple[IndexInfo, ...] = ()


def tables_from_template(template: Mapping[str, Any], physical_names: Mapping[str, str]) -> dict[str, TableInfo]:
    """Table name -> keys and global secondary indexes, from the template (``physical_names``: logical id -> name)."""
    tables: dict[str, TableInfo] = {}
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") not in ("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable"):
            continue
        props = resource.get("Properties", {})
        indexes = tuple(
            IndexInfo(
                name=str(index["IndexName"]),
                keys=frozenset(k["AttributeName"] for k in index["KeySchema"]),
                projection=str(index.get("Projection", {}).get("ProjectionType", "ALL")),
                included=frozenset(index.get("Projection", {}).get("NonKeyAttributes", [])),
            )
            for index in props.get("GlobalSecondaryIndexes", [])
        )
        name = physical_names.get(logical_id, logical_id)
        tables[name] = TableInfo(name, frozenset(k["AttributeName"] for k in props.get("KeySchema", [])), indexes)
    return tables


def _update_attributes(params: Mapping[str, Any]) -> set[str]:
    names: Mapping[str, str] = params.get("ExpressionAttributeNames", {}) or {}
    expression = str(params.get("UpdateExpression", ""))
    attributes: set[str] = set()
    for token in expression.replace(",", " ").replace("=", " ").split():
        if token.upper() in ("SET", "ADD", "REMOVE", "DELETE") or token.startswith(":"):
            continue
        if token.startswith("#"):
            attributes.add(names.get(token, token))
        elif token[0].isalpha() and token.isidentifier():
            attributes.add(token)
    return attributes


def write_units(
    operation: str,
    params: Mapping[str, Any],
    table: TableInfo | None,
    item_kb: int = 1,
    before_kb: int | None = None,
    *,
    before_attributes: set[str] | None = None,
    after_attributes: set[str] | None = None,
    before_item: Mapping[str, Any] | None = None,
    after_item: Mapping[str, Any] | None = None,
) -> int:
    """Write request units of one successful write: the table's (the larger of the item before and after, in
    1 KB blocks), plus each global secondary index the write changes: the new entry's size, or the old and the
    new when the index key itself changes (the entry moves: delete + put). An index entry is the item's size under
    projection ALL, one unit under KEYS_ONLY (keys only), under INCLUDE the size of its keys and included attributes
    when the item is known (``before_item``/``after_item``), else the item's; an item without the index's keys has
    no entry there (a sparse index), when the attributes before and after the write are known."""
    before = item_kb if before_kb is None else before_kb
    units = max(before, item_kb)
    if table is None:
        return units

    def old(index: IndexInfo) -> int:
        return _index_entry_kb(index, table, before, before_item)

    def new(index: IndexInfo) -> int:
        return _index_entry_kb(index, table, item_kb, after_item)

    if operation == "PutItem":
        present = set(params.get("Item", {}))
        units += sum(new(index) for index in table.indexes if index.keys <= present)
    elif operation == "UpdateItem":
        touched = _update_attributes(params)
        for index in table.indexes:
            had = before_attributes is None or index.keys <= before_attributes
            has = after_attributes is None or index.keys <= after_attributes
            if touched & index.keys:
                units += (old(index) if had else 0) + (new(index) if has else 0)
            elif index.projects(touched) and has:
                units += new(index)
    elif operation == "DeleteItem":
        units += sum(
            old(index) for index in table.indexes if before_attributes is None or index.keys <= before_attributes
        )
    return units


def _index_entry_kb(index: IndexInfo, table: TableInfo, item_kb: int, item: Mapping[str, Any] | None) -> int:
    """The units of one index entry: the item's under ALL, one under KEYS_ONLY, the projected attributes' under
    INCLUDE (the table's and the index's keys and the included attributes: "Projections", DynamoDB Developer
    Guide) when the item is known."""
    if index.projection == "KEYS_ONLY":
        return 1
    if index.projection == "INCLUDE" and item is not None:
        projected = {k: v for k, v in item.items() if k in index.keys | table.key | index.included}
        return _kb(projected) or 1
    return item_kb


class ItemImages:
    """The items a path writes, image by image, from the write requests themselves (PutItem, simple
    ``SET a = :v`` / ``ADD a :v`` / ``REMOVE a`` updates, DeleteItem): the size of each item before and after
    each write. An expression it cannot follow makes that item's size unknown (None) from then on."""

    def __init__(self) -> None:
        self._items: dict[tuple[str, str], dict[str, Any] | None] = {}

    def apply(self, ident: tuple[str, str], operation: str, params: Mapping[str, Any]) -> tuple[int | None, int | None]:
        before = self._items.get(ident) if (ident in self._items or operation == "PutItem") else None
        after: dict[str, Any] | None
        if operation == "PutItem":
            after = dict(params.get("Item", {}))
        elif operation == "DeleteItem":
            after = {}
        elif operation == "UpdateItem" and before is not None:
            after = _apply_update(dict(before), params)
        else:
            after = None
        self._items[ident] = after
        return _kb(before) if before else None, _kb(after)

    def size_kb(self, ident: tuple[str, str]) -> int | None:
        return _kb(self._items.get(ident))

    def item(self, ident: tuple[str, str] | None) -> dict[str, Any] | None:
        """The item as followed so far (None when unknown)."""
        item = self._items.get(ident) if ident is not None else None
        return None if item is None else dict(item)

    def attributes(self, ident: tuple[str, str] | None) -> set[str] | None:
        """The item's attribute names as followed so far (None when unknown)."""
        item = self._items.get(ident) if ident is not None else None
        return None if item is None else set(item)


def _kb(item: Mapping[str, Any] | None) -> int | None:
    return None if item is None else max(1, math.ceil(item_size_bytes(item) / 1024))


def _apply_update(item: dict[str, Any], params: Mapping[str, Any]) -> dict[str, Any] | None:
    names: Mapping[str, str] = params.get("ExpressionAttributeNames", {}) or {}
    values: Mapping[str, Any] = params.get("ExpressionAttributeValues", {}) or {}
    clauses = re.split(r"\b(SET|ADD|REMOVE|DELETE)\b", str(params.get("UpdateExpression", "")), flags=re.IGNORECASE)
    for keyword, body in zip(clauses[1::2], clauses[2::2], strict=True):
        if "(" in body:
            return None  # functions (if_not_exists, list_append…): not followed
        for action in (a.strip() for a in body.split(",") if a.strip()):
            parts = action.replace("=", " ").split()
            name = names.get(parts[0], parts[0])
            if keyword.upper() == "REMOVE" and len(parts) == 1:
                item.pop(name, None)
            elif len(parts) == 2 and parts[1] in values:  # SET a = :v, ADD a :v (a number's size barely moves)
                item[name] = values[parts[1]]
            else:
                return None
    return item


def read_units(params: Mapping[str, Any], item_kb: int = 1, unit_kb: int = 4) -> float:
    blocks = max(1, math.ceil(item_kb / unit_kb))
    return float(blocks) if params.get("ConsistentRead") else blocks / 2
