"""Amazon DynamoDB: conditional writes as atomic as DynamoDB's, and throttling answered as DynamoDB answers it.

- **Atomic conditional writes** -- :func:`install_atomic_dynamodb_writes` serialises moto's DynamoDB item writes
  so a condition and its write are atomic, as in DynamoDB (concurrent duplicate claims otherwise both succeed).
  Under the same lock an UpdateItem writes the stream record DynamoDB writes: one INSERT with the new item when it
  creates the item (moto records the bare key first, then the item: two INSERTs), none when it changes nothing.
- **Reads that see no write half-done** -- Scan and Query run under the same lock (moto iterates the table's item
  dict while another request's write changes it: ``RuntimeError: dictionary changed size during iteration``).
- **Speed: a table's items sorted once per item** -- every Scan and Query sorts all the table's items; moto's sort
  builds both keys' values at every comparison, ours once per item (the same order).
- **An UpdateItem's item size** -- an attribute SET again is counted once (moto counts the replaced value too).
- **Speed: an UpdateExpression parsed once** -- moto parses an UpdateItem's expression three times per request and
  checks its structure (clause counts, overlapping paths, key attributes) against a deep copy twice for a new item;
  :data:`UPDATE_EXPRESSION_CACHE` keeps the parsed tree per expression string, copies it for each validation, and
  runs the structural checks once per expression, names and table key; the values and the item are bound per call
  by moto's own processors, so every answer (errors included) is moto's. moto validates a new item's update twice,
  on an item without attributes and then on the bare key it puts: where the expression names no key attribute the
  two cannot differ, so it runs once, on the key, and an update that fails takes the key back (no item, no stream
  record). A condition expression's tokens are kept per string too (:data:`CONDITION_LEX_CACHE`).
- **An undefined ``#name``** in an UpdateExpression is DynamoDB's ValidationException (:data:`UNDEFINED_NAMES`;
  moto looked it up unguarded in its overlapping-paths check: a KeyError, a 500).
- **Throttling** (off unless a block asks for it) -- DynamoDB refuses a request it throttles with HTTP 400 and a
  JSON error body whose ``__type`` names one of (DynamoDB developer guide, "Error handling with DynamoDB":
  throttling errors are 400s):

  - ``ProvisionedThroughputExceededException`` (a table or index over its provisioned or on-demand throughput),
  - ``ThrottlingException`` (control plane or too many requests; its namespace is
    ``com.amazon.coral.availability``),
  - ``RequestLimitExceeded`` (the account's throughput quota).

  moto never throttles. :func:`throttling` switches on :class:`ThrottleRule` s for as long as its block runs: a
  DynamoDB request of the rule's action whose raw body contains the rule's ``marker`` (a task id, an owner: so
  only the requests a test means are refused, never the workflow's or another test's) is answered with that
  error instead of reaching moto's backend, ``times`` times (``None``: every time). It works for the local stack
  because moto runs in the stack's process (``ThreadedMotoServer``): the request travels the real path, client
  → local API Gateway → HTTP → moto, and the API's mapping templates see DynamoDB's real status and body.
"""

from __future__ import annotations

import copy
import inspect
import json
import re
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any, Final

from moto.core.responses import BaseResponse
from moto.dynamodb.comparisons import ConditionExpressionParser
from moto.dynamodb.exceptions import ExpressionAttributeNameNotDefined, ItemSizeTooLarge
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, LimitedSizeDict
from moto.dynamodb.models.table import SecondaryIndex, Table
from moto.dynamodb.models.utilities import bytesize
from moto.dynamodb.parsing import validators as _validators
from moto.dynamodb.parsing.ast_nodes import (  # type: ignore[attr-defined]
    DepthFirstTraverser,
    ExpressionAttribute,
    ExpressionAttributeName,
    Node,
)
from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]
from moto.dynamodb.responses import DynamoHandler

from taskrail.local.services.patching import Check, Patch, Signature, Source, is_patched, original, patch, unpatch

__all__ = [
    "PATCHES",
    "THROTTLING_ERRORS",
    "UPDATE_EXPRESSION_CACHE",
    "UPDATE_EXPRESSION_CACHE_SIZE",
    "ThrottleRule",
    "install_atomic_dynamodb_writes",
    "install_condition_lex_cache",
    "install_consistent_reads",
    "install_fast_item_walk",
    "install_item_size",
    "install_request_validation",
    "install_update_expression_cache",
    "throttling",
    "uninstall_atomic_dynamodb_writes",
    "uninstall_condition_lex_cache",
    "uninstall_consistent_reads",
    "uninstall_fast_item_walk",
    "uninstall_item_size",
    "uninstall_request_validation",
    "uninstall_update_expression_cache",
]

# --------------------------------------------------------------------------------------------------
# Atomic conditional writes
# --------------------------------------------------------------------------------------------------

_DYNAMODB_WRITES: Final = ("put_item", "update_item", "delete_item", "transact_write_items")
_dynamodb_write_lock = threading.RLock()


class _HeldStreamRecords:
    """Stands for a table's stream shard while moto runs one UpdateItem: reads reach the shard, records are held
    back (the write lock keeps every other writer out meanwhile)."""

    def __init__(self, shard: Any) -> None:
        self._shard = shard

    def add(self, old: Any, new: Any) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._shard, name)


def _update_item_with_one_stream_record(
    self: Any, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any
) -> Any:
    """moto's UpdateItem, with the stream record DynamoDB writes: an INSERT of the new item when the update creates
    it, a MODIFY when it changes the item, nothing when it changes nothing (a write that changes no data writes no
    stream record). moto's own: INSERT of the bare key, then INSERT of the item; MODIFY even when nothing changed."""
    update_item = original(DynamoDBBackend, "update_item")
    table = self.get_table(table_name)
    shard = table.stream_shard
    try:
        keys = self.get_keys_value(table, key)
        current = table.get_item(*keys)
    except Exception:  # a key moto refuses: its own update_item says so, with its own error
        return update_item(self, table_name, key, *args, **kwargs)
    before = copy.deepcopy(current) if shard is not None else None
    if shard is not None:
        table.stream_shard = _HeldStreamRecords(shard)
    _creating.active = current is None
    try:
        item = update_item(self, table_name, key, *args, **kwargs)
    except Exception:
        # An update that fails writes nothing. moto validates a new item's update before it puts the bare key,
        # except when that check was left to the validation that follows (_validate_checking_structure_once):
        # the bare key it put is taken back (under the write lock, with its stream records held back).
        if current is None and table.get_item(*keys) is not None:
            table.delete_item(*keys)
        raise
    finally:
        _creating.active = False
        if shard is not None:
            table.stream_shard = shard
    if shard is not None and (before is None or before.to_json() != item.to_json()):
        shard.add(before, item)
    return item


class _Creating(threading.local):
    """Whether this thread is inside an UpdateItem on an absent key (set by _update_item_with_one_stream_record)."""

    active = False


_creating: Final = _Creating()


# The writes that need more than the lock to act as DynamoDB's; the others are moto's own, serialised.
_AS_DYNAMODB: Final[dict[str, Callable[..., Any]]] = {"update_item": _update_item_with_one_stream_record}


def _atomic(method_name: str) -> Callable[..., Any]:
    def write(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _dynamodb_write_lock:
            writer = _AS_DYNAMODB.get(method_name) or original(DynamoDBBackend, method_name)
            return writer(self, *args, **kwargs)

    write.__name__ = method_name
    return write


def install_atomic_dynamodb_writes() -> None:
    """moto checks a ConditionExpression and then writes, without a lock: two executions claiming one task
    at the same moment can both succeed. DynamoDB evaluates condition and write atomically; so do we, by
    serialising moto's item writes (the exactly-once claim depends on it)."""
    for name in _DYNAMODB_WRITES:
        if not is_patched(DynamoDBBackend, name):
            patch(DynamoDBBackend, name, _atomic(name))


def uninstall_atomic_dynamodb_writes() -> None:
    for name in _DYNAMODB_WRITES:
        if is_patched(DynamoDBBackend, name):
            unpatch(DynamoDBBackend, name)


ATOMIC_WRITES: Final = Patch(
    "atomic conditional writes",
    depends=(
        Signature(
            "moto.dynamodb.models.DynamoDBBackend.update_item",
            lambda: original(DynamoDBBackend, "update_item"),
            (
                "self",
                "table_name",
                "key",
                "update_expression",
                "expression_attribute_names",
                "expression_attribute_values",
                "attribute_updates",
                "expected",
                "condition_expression",
                "return_values_on_condition_check_failure",
            ),
        ),
        Source(  # a new item is first put as its bare key, then updated; the update's record is added last
            "moto.dynamodb.models.DynamoDBBackend.update_item",
            lambda: original(DynamoDBBackend, "update_item"),
            ("table.put_item(data)", "table.stream_shard.add(orig_item, item)", "return item"),
        ),
        Source(  # Table.put_item records through the table's shard attribute (which the UpdateItem holds back)
            "moto.dynamodb.models.table.Table.put_item",
            lambda: original(Table, "put_item"),
            ("self.stream_shard.add(current, item)",),
        ),
        Signature(
            "moto.dynamodb.models.DynamoDBBackend.get_keys_value",
            lambda: original(DynamoDBBackend, "get_keys_value"),
            ("self", "table", "keys"),
        ),
    ),
    install=install_atomic_dynamodb_writes,
    uninstall=uninstall_atomic_dynamodb_writes,
)


# --------------------------------------------------------------------------------------------------
# Reads that see no write half-done
# --------------------------------------------------------------------------------------------------

#: moto's reads that walk a table's items (Table.all_items, has_idx_items) and copy the matches.
_DYNAMODB_WALKS: Final = ("query", "scan")


def _consistent(method_name: str) -> Callable[..., Any]:
    def read(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _dynamodb_write_lock:
            return original(DynamoDBBackend, method_name)(self, *args, **kwargs)

    read.__name__ = method_name
    return read


def install_consistent_reads() -> None:
    """moto's Scan and Query iterate the table's item dict (and each item's attributes) without a lock, while
    another request's write adds an item or changes one in place: the read fails with ``RuntimeError: dictionary
    changed size during iteration`` (a 500; DynamoDB never fails a read for a concurrent write). They run under the
    write lock, so a read sees each write whole or not at all; their results are moto's copies (``deepcopy``),
    made inside the lock."""
    for name in _DYNAMODB_WALKS:
        if not is_patched(DynamoDBBackend, name):
            patch(DynamoDBBackend, name, _consistent(name))


def uninstall_consistent_reads() -> None:
    for name in _DYNAMODB_WALKS:
        if is_patched(DynamoDBBackend, name):
            unpatch(DynamoDBBackend, name)


CONSISTENT_READS: Final = Patch(
    "Scan and Query under the write lock",
    depends=(
        Source(
            "moto.dynamodb.models.table.Table.all_items",
            lambda: original(Table, "all_items"),
            ("for hash_set in self.items.values():",),
        ),
        Source(
            "moto.dynamodb.models.table.Table.has_idx_items",
            lambda: Table.has_idx_items,
            ("for hash_set in self.items.values():",),
        ),
        Source(  # the items a Query returns are copies made before it returns
            "moto.dynamodb.models.table.Table.query",
            lambda: Table.query,
            ("for item in self.all_items()", "results = copy.deepcopy(results)"),
        ),
        Source(
            "moto.dynamodb.models.table.Table.scan",
            lambda: Table.scan,
            ("items = self.all_items()", "items = self.has_idx_items(index_name)", "copy.deepcopy(item)"),
        ),
        Source(
            "moto.dynamodb.models.DynamoDBBackend.query",
            lambda: original(DynamoDBBackend, "query"),
            ("return table.query(",),
        ),
        Source(
            "moto.dynamodb.models.DynamoDBBackend.scan",
            lambda: original(DynamoDBBackend, "scan"),
            ("return table.scan(",),
        ),
    ),
    install=install_consistent_reads,
    uninstall=uninstall_consistent_reads,
)


# --------------------------------------------------------------------------------------------------
# Speed: a table's items sorted by their key values
# --------------------------------------------------------------------------------------------------


def _key_values(item: Any) -> Any:
    """What moto's sort of a table's items compares, computed once per item: DynamoType orders by its
    ``cast_value`` (``__lt__``); a table's key attributes have one declared type, so equal values are equal keys."""
    hash_key, range_key = item.hash_key, item.range_key
    return (hash_key.cast_value, range_key.cast_value) if range_key else hash_key.cast_value


def _all_items_sorted_once_per_item(self: Any) -> list[Any]:
    """moto's Table.all_items (every Scan and every Query walks it), in the same order: moto sorts with
    DynamoType's ``__lt__``, which builds both sides' ``cast_value`` (a Decimal for a number) at each of the
    n log n comparisons; here each item's key values are built once (with 2,000 tasks stored, each of the
    reconciler's pending-index Queries spent ~10 ms in that sort)."""
    items: list[Any] = []
    for hash_set in self.items.values():
        if self.range_key_attr:
            items.extend(hash_set.values())
        else:
            items.append(hash_set)
    return sorted(items, key=_key_values)


def install_fast_item_walk() -> None:
    if not is_patched(Table, "all_items"):
        patch(Table, "all_items", _all_items_sorted_once_per_item)


def uninstall_fast_item_walk() -> None:
    unpatch(Table, "all_items")


FAST_ITEM_WALK: Final = Patch(
    "a table's items sorted by their key values, each computed once",
    depends=(
        Source(
            "moto.dynamodb.models.table.Table.all_items",
            lambda: original(Table, "all_items"),
            (
                "for hash_set in self.items.values():",
                "if self.range_key_attr:",
                "for item in hash_set.values():",
                "items.append(hash_set)",
                "key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key,",
            ),
        ),
        Source(
            "moto.dynamodb.models.dynamo_type.DynamoType.__lt__",
            lambda: DynamoType.__lt__,
            ("return self.cast_value < other.cast_value",),
        ),
        Source(
            "moto.dynamodb.models.dynamo_type.DynamoType.__eq__",
            lambda: DynamoType.__eq__,
            ("return self.type == other.type and self.cast_value == other.cast_value",),
        ),
        Check(  # a falsy key would be sorted as moto sorts a table without a range key
            "moto.dynamodb.models.dynamo_type.DynamoType",
            lambda: not hasattr(DynamoType, "__bool__") and not hasattr(DynamoType, "__len__"),
            "defines neither __bool__ nor __len__ (every DynamoType is true)",
        ),
    ),
    install=install_fast_item_walk,
    uninstall=uninstall_fast_item_walk,
)


# --------------------------------------------------------------------------------------------------
# Throttling
# --------------------------------------------------------------------------------------------------


# error code → (__type as DynamoDB sends it, message as DynamoDB words it)
THROTTLING_ERRORS: Final[dict[str, tuple[str, str]]] = {
    "ProvisionedThroughputExceededException": (
        "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded. Consider increasing your "
        "provisioning level with the UpdateTable API.",
    ),
    "ThrottlingException": ("com.amazon.coral.availability#ThrottlingException", "Rate exceeded"),
    "RequestLimitExceeded": (
        "com.amazonaws.dynamodb.v20120810#RequestLimitExceeded",
        "Throughput exceeds the current throughput limit for your account. Please contact AWS Support at "
        "https://aws.amazon.com/support request a limit increase",
    ),
}
THROTTLED_STATUS = 400


@dataclass
class ThrottleRule:
    action: str  # PutItem, GetItem, Query, UpdateItem, ...
    error: str  # a key of THROTTLING_ERRORS
    marker: str | tuple[str, ...]  # only requests whose raw body contains this (every one of these)
    times: int | None = None  # how many requests to refuse; None: all of them
    refused: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.error not in THROTTLING_ERRORS:
            raise ValueError(f"{self.error} is not a DynamoDB throttling error: {sorted(THROTTLING_ERRORS)}")
        if not self.markers or not all(self.markers):
            raise ValueError("a throttle rule needs a marker, so that it never throttles the whole stack")

    @property
    def markers(self) -> tuple[str, ...]:
        return (self.marker,) if isinstance(self.marker, str) else self.marker

    def matches(self, action: str, body: str) -> bool:
        unused = self.times is None or self.refused < self.times
        return unused and action == self.action and all(marker in body for marker in self.markers)


_rules_lock = threading.Lock()
_rules: list[ThrottleRule] = []


def _matching_rule(handler: Any) -> ThrottleRule | None:
    target = str(handler.headers.get("X-Amz-Target") or "")
    action = target.rpartition(".")[2]
    raw = handler.raw_body
    body = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")
    with _rules_lock:
        for rule in _rules:
            if rule.matches(action, body):
                rule.refused += 1
                return rule
    return None


def _moto_call_action() -> Any:
    return (
        original(DynamoHandler, "call_action")
        if is_patched(DynamoHandler, "call_action")
        else DynamoHandler.call_action
    )


def _handler_method(action: str) -> Callable[[], Any]:
    return lambda: (
        original(DynamoHandler, action) if is_patched(DynamoHandler, action) else getattr(DynamoHandler, action)
    )


def _call_action(self: Any) -> Any:
    rule = _matching_rule(self)
    if rule is None:
        return original(DynamoHandler, "call_action")(self)
    error_type, message = THROTTLING_ERRORS[rule.error]
    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": str(uuid.uuid4())}
    return THROTTLED_STATUS, headers, json.dumps({"__type": error_type, "message": message})


@contextmanager
def throttling(*rules: ThrottleRule) -> Iterator[list[ThrottleRule]]:
    """Refuses the DynamoDB requests the rules match while the block runs (the hook stays installed only then)."""
    THROTTLING.assert_supported()
    with _rules_lock:
        if not is_patched(DynamoHandler, "call_action"):
            patch(DynamoHandler, "call_action", _call_action)
        _rules.extend(rules)
    try:
        yield list(rules)
    finally:
        with _rules_lock:
            for rule in rules:
                if rule in _rules:  # uninstall_all() may have cleared them already
                    _rules.remove(rule)
            if not _rules:
                unpatch(DynamoHandler, "call_action")


def _uninstall_throttling() -> None:
    with _rules_lock:
        _rules.clear()
        unpatch(DynamoHandler, "call_action")


THROTTLING: Final = Patch(
    "throttling (while a throttling() block runs)",
    depends=(
        Signature(
            "moto.dynamodb.responses.DynamoHandler.call_action", lambda: inspect.unwrap(_moto_call_action()), ("self",)
        ),
        Source(
            "moto.core.responses.BaseResponse.setup_class",
            lambda: BaseResponse.setup_class,
            ("self.raw_body = self.body", "self.headers: Any = request.headers"),
        ),
        Source(
            "moto.dynamodb.responses.DynamoHandler.get_endpoint_name",
            lambda: DynamoHandler.get_endpoint_name,
            ('headers.get("x-amz-target") or headers.get("X-Amz-Target")',),
        ),
    ),
    uninstall=_uninstall_throttling,
)

# --------------------------------------------------------------------------------------------------
# Request validation: what DynamoDB refuses and moto 5.2.5 accepts (tests/parity/dynamodb, docs/LOCAL-FIDELITY.md)
# --------------------------------------------------------------------------------------------------

_VALIDATED_ACTIONS: Final = (
    "batch_get_item",
    "put_item",
    "update_item",
    "delete_item",
    "batch_write_item",
    "transact_write_items",
    "query",
)
_EXPRESSIONS: Final = (
    "ConditionExpression",
    "UpdateExpression",
    "KeyConditionExpression",
    "FilterExpression",
    "ProjectionExpression",
)
_VALUE_PLACEHOLDER: Final = re.compile(r":[A-Za-z0-9_]+")
_NAME_PLACEHOLDER: Final = re.compile(r"#[A-Za-z0-9_]+")
_RVOCCF_VALUES: Final = ("ALL_OLD", "NONE")
MAX_BATCH_WRITE_REQUESTS: Final = 25  # BatchWriteItem API reference
MAX_TRANSACT_ITEMS: Final = 100  # TransactWriteItems API reference
MAX_BATCH_GET_KEYS: Final = 100  # BatchGetItem API reference


def _invalid(message: str) -> Exception:
    from moto.dynamodb.exceptions import MockValidationException

    return MockValidationException(message)


def _index_key_types(table: Any) -> list[tuple[str, str, str]]:
    """(index name, key attribute, its declared type) for every GSI and LSI key attribute of ``table``."""
    declared = {a["AttributeName"]: a["AttributeType"] for a in table.attr}
    return [
        (index.name, element["AttributeName"], declared.get(element["AttributeName"], "S"))
        for index in (*table.global_indexes, *table.indexes)
        for element in index.schema
        if element["AttributeName"] not in table.table_key_attrs
    ]


def _check_index_keys(item: dict[str, Any], table: Any) -> None:
    """PutRequest.Item (API reference): "If any attributes are present in the item that are part of an index key
    schema for the table, their types must match the index key schema"."""
    for index_name, attribute, expected in _index_key_types(table):
        value = item.get(attribute)
        if not isinstance(value, dict) or not value:
            continue
        actual = next(iter(value))
        if actual != expected:
            raise _invalid(
                "One or more parameter values were invalid: Type mismatch for Index Key "
                f"{attribute} Expected: {expected} Actual: {actual} IndexName: {index_name}"
            )


def _check_sets(value: Any) -> None:
    """A string, number or binary set may not hold duplicates (AttributeValue: "Input collection ... contains
    duplicates")."""
    if not isinstance(value, dict):
        return
    for kind, member in value.items():
        if kind in ("SS", "NS", "BS") and isinstance(member, list):
            try:
                distinct = {Decimal(m) for m in member} if kind == "NS" else set(member)
            except (InvalidOperation, TypeError):
                return  # not a number: moto refuses it as DynamoDB does
            if len(distinct) != len(member):
                raise _invalid(
                    f"One or more parameter values were invalid: Input collection [{', '.join(map(str, member))}] "
                    "contains duplicates."
                )
        elif kind == "M" and isinstance(member, dict):
            for nested in member.values():
                _check_sets(nested)
        elif kind == "L" and isinstance(member, list):
            for nested in member:
                _check_sets(nested)


def _check_item_sets(item: Any) -> None:
    for value in (item or {}).values():
        _check_sets(value)


def _check_placeholders(request: dict[str, Any]) -> None:
    """Every ExpressionAttributeNames/Values entry must be used, and neither may be given without an expression
    (Developer Guide, expression attribute names and values; DynamoDB answers ValidationException)."""
    expressions = [request[e] for e in _EXPRESSIONS if isinstance(request.get(e), str)]
    names = request.get("ExpressionAttributeNames")
    values = request.get("ExpressionAttributeValues")
    if not expressions:
        names_absent = [e for e in _EXPRESSIONS if e in _expressions_of(request)]
        absent = " and ".join(names_absent) + (" are" if len(names_absent) > 1 else " is")
        if names:
            raise _invalid(f"ExpressionAttributeNames can only be specified when using expressions: {absent} null")
        if values:
            raise _invalid(f"ExpressionAttributeValues can only be specified when using expressions: {absent} null")
        return
    text = " ".join(expressions)
    used_values = set(_VALUE_PLACEHOLDER.findall(text))
    used_names = set(_NAME_PLACEHOLDER.findall(text))
    unused_values = sorted(set(values or {}) - used_values)
    if unused_values:
        raise _invalid(
            f"Value provided in ExpressionAttributeValues unused in expressions: keys: {{{', '.join(unused_values)}}}"
        )
    unused_names = sorted(set(names or {}) - used_names)
    if unused_names:
        raise _invalid(
            f"Value provided in ExpressionAttributeNames unused in expressions: keys: {{{', '.join(unused_names)}}}"
        )
    for value in (values or {}).values():
        _check_sets(value)


def _expressions_of(request: dict[str, Any]) -> tuple[str, ...]:
    """The expression parameters an action takes, in the order DynamoDB names them in its message."""
    if "UpdateExpression" in request or "AttributeUpdates" in request:
        return ("UpdateExpression", "ConditionExpression")
    if "KeyConditions" in request or "KeyConditionExpression" in request or "IndexName" in request:
        return ("KeyConditionExpression", "FilterExpression", "ProjectionExpression")
    return ("ConditionExpression",)


def _check_return_values_on_failure(
    request: dict[str, Any], where: str = "returnValuesOnConditionCheckFailure"
) -> None:
    value = request.get("ReturnValuesOnConditionCheckFailure")
    if value is not None and value not in _RVOCCF_VALUES:
        raise _invalid(
            f"1 validation error detected: Value '{value}' at '{where}' failed to satisfy constraint: "
            "Member must satisfy enum value set: [ALL_OLD, NONE]"
        )


_KEY_OPERANDS: Final = (
    re.compile(r"(#?[A-Za-z0-9_]+)\s*(?:=|<=|>=|<|>)\s*(:[A-Za-z0-9_]+)"),
    re.compile(r"begins_with\s*\(\s*(#?[A-Za-z0-9_]+)\s*,\s*(:[A-Za-z0-9_]+)\s*\)", re.IGNORECASE),
    re.compile(r"(#?[A-Za-z0-9_]+)\s+BETWEEN\s+(:[A-Za-z0-9_]+)\s+AND\s+(:[A-Za-z0-9_]+)", re.IGNORECASE),
)


def _check_key_condition_types(request: dict[str, Any], table: Any) -> None:
    """A key condition value of another type than the (table or index) key it is compared with is refused
    ("One or more parameter values were invalid: Condition parameter type does not match schema type")."""
    expression = request.get("KeyConditionExpression")
    if not isinstance(expression, str):
        return
    names = request.get("ExpressionAttributeNames") or {}
    values = request.get("ExpressionAttributeValues") or {}
    declared = {a["AttributeName"]: a["AttributeType"] for a in table.attr}
    for pattern in _KEY_OPERANDS:
        for match in pattern.finditer(expression):
            attribute = names.get(match.group(1), match.group(1))
            expected = declared.get(attribute)
            for placeholder in match.groups()[1:]:
                value = values.get(placeholder)
                if expected and isinstance(value, dict) and value and next(iter(value)) != expected:
                    raise _invalid(
                        "One or more parameter values were invalid: Condition parameter type does not match schema type"
                    )


def _validate(handler: Any, action: str) -> None:
    body: dict[str, Any] = handler.body if isinstance(handler.body, dict) else {}
    backend = handler.dynamodb_backend
    if action == "batch_get_item":
        keys = sum(len((r or {}).get("Keys") or []) for r in (body.get("RequestItems") or {}).values())
        if keys > MAX_BATCH_GET_KEYS:
            raise _invalid("Too many items requested for the BatchGetItem call")
    elif action == "batch_write_item":
        _validate_batch_write(body, backend)
    elif action == "transact_write_items":
        _validate_transact_write(body, backend)
    else:
        _check_placeholders(body)
        _check_return_values_on_failure(body)
        if action == "put_item":
            _check_item_sets(body.get("Item"))
            _check_index_keys(body.get("Item") or {}, backend.get_table(body["TableName"]))
        elif action == "query":
            _check_key_condition_types(body, backend.get_table(body["TableName"]))


def _validate_batch_write(body: dict[str, Any], backend: Any) -> None:
    requests = body.get("RequestItems") or {}
    if not requests:
        raise _invalid(
            "1 validation error detected: Value null at 'requestItems' failed to satisfy constraint: "
            "Member must not be null"
        )
    if sum(len(r) for r in requests.values() if isinstance(r, list)) > MAX_BATCH_WRITE_REQUESTS:
        raise _invalid("Too many items requested for the BatchWriteItem call")
    for table_name, table_requests in requests.items():
        table = backend.get_table(table_name)
        for request in table_requests:
            item = (request.get("PutRequest") or {}).get("Item")
            if item is not None:
                _check_item_sets(item)
                _check_index_keys(item, table)


def _validate_transact_write(body: dict[str, Any], backend: Any) -> None:
    items = body.get("TransactItems") or []
    if not items or len(items) > MAX_TRANSACT_ITEMS:
        bound = "greater than or equal to 1" if not items else "less than or equal to 100"
        raise _invalid(
            "1 validation error detected at 'transactItems' failed to satisfy constraint: "
            f"Member must have length {bound}"
        )
    for position, transact_item in enumerate(items, start=1):
        for kind, operation in transact_item.items():
            _check_placeholders(operation)
            member = kind[0].lower() + kind[1:]
            where = f"transactItems.{position}.member.{member}.returnValuesOnConditionCheckFailure"
            _check_return_values_on_failure(operation, where)
            if kind == "Put":
                _check_item_sets(operation.get("Item"))
                _check_index_keys(operation.get("Item") or {}, backend.get_table(operation["TableName"]))


def _validated(action: str) -> Callable[..., Any]:
    def handle(self: Any) -> Any:
        _validate(self, action)
        return original(DynamoHandler, action)(self)

    handle.__name__ = action
    return handle


def install_request_validation() -> None:
    """DynamoDB validates a request before it touches an item; moto 5.2.5 skips some of those checks."""
    for action in _VALIDATED_ACTIONS:
        if not is_patched(DynamoHandler, action):
            patch(DynamoHandler, action, _validated(action))


def uninstall_request_validation() -> None:
    for action in _VALIDATED_ACTIONS:
        if is_patched(DynamoHandler, action):
            unpatch(DynamoHandler, action)


REQUEST_VALIDATION: Final = Patch(
    "request validation (index key types, placeholders, batch limits, sets)",
    depends=(
        *(
            Signature(f"moto.dynamodb.responses.DynamoHandler.{action}", _handler_method(action), ("self",))
            for action in _VALIDATED_ACTIONS
        ),
        Source(
            "moto.dynamodb.responses.DynamoHandler.call_action",
            lambda: inspect.unwrap(_moto_call_action()),
            ('self.body = getattr(self, "params", {})',),
        ),
        Source(
            "moto.dynamodb.models.table.Table.__init__",
            lambda: Table.__init__,
            ("self.attr = attr", "self.table_key_attrs = [", "self.indexes = [", "self.global_indexes = ["),
        ),
        Source(
            "moto.dynamodb.models.table.SecondaryIndex.__init__",
            lambda: SecondaryIndex.__init__,
            ("self.name = index_name", "self.schema = schema"),
        ),
    ),
    install=install_request_validation,
    uninstall=uninstall_request_validation,
)

# --------------------------------------------------------------------------------------------------
# An UpdateItem's item size
# --------------------------------------------------------------------------------------------------

# moto's own bound (a little stricter than DynamoDB's 400 KB, which moto's authors measured between 409 and 410 KB).
_MOTO_ITEM_LIMIT: Final = 405_000


def _attribute_size(value: Any) -> int:
    return value.size() if type(value) is DynamoType else bytesize(str(value))


def _set_attribute_measuring_the_item_it_makes(self: Any, key: str, value: Any) -> None:
    """moto's LimitedSizeDict.__setitem__ adds the new value to the item's size with the replaced value still in it,
    so an UpdateItem that SETs an attribute again (``if_not_exists(a, :a)`` on a stored item, the submission's
    same-body retry) counts that attribute twice and is refused near half the limit. DynamoDB measures the item
    the write makes (the 400 KB item limit: "Service, account, and table quotas", Items): the replaced value is
    not part of it."""
    current = sum(bytesize(name) + _attribute_size(held) for name, held in self.items() if name != key)
    if current + bytesize(key) + _attribute_size(value) > _MOTO_ITEM_LIMIT:
        raise ItemSizeTooLarge
    dict.__setitem__(self, key, value)


def install_item_size() -> None:
    if not is_patched(LimitedSizeDict, "__setitem__"):
        patch(LimitedSizeDict, "__setitem__", _set_attribute_measuring_the_item_it_makes)


def uninstall_item_size() -> None:
    if is_patched(LimitedSizeDict, "__setitem__"):
        unpatch(LimitedSizeDict, "__setitem__")


ITEM_SIZE: Final = Patch(
    "an attribute set again is counted once in the item's size",
    depends=(
        Source(
            "moto.dynamodb.models.dynamo_type.LimitedSizeDict.__setitem__",
            lambda: original(LimitedSizeDict, "__setitem__"),
            (
                "for item in (list(self.keys()) + list(self.values()))",
                "if (current_item_size + new_item_size) > 405000:",
                "raise ItemSizeTooLarge",
                "super().__setitem__(key, value)",
            ),
        ),
    ),
    install=install_item_size,
    uninstall=uninstall_item_size,
)

# --------------------------------------------------------------------------------------------------
# Speed: each UpdateExpression parsed once, its structure checked once
# --------------------------------------------------------------------------------------------------

#: Expressions remembered at most (taskrail's templates and functions write a few dozen; beyond, moto's own path).
UPDATE_EXPRESSION_CACHE_SIZE: Final = 4096
#: The processors of moto's UpdateExpressionValidator that read only the tree, the names and the table's key
#: attributes (never the values or the item), and change no node: they come first in its list.
_STRUCTURAL_CHECKS: Final = (
    _validators.ActionCountValidator,
    _validators.OverlappingPathsValidator,
    _validators.UpdateHashRangeKeyValidator,
)
_IMMUTABLE_LEAVES: Final = (str, int, type(None))
#: Every processor moto's UpdateExpressionValidator runs (its get_ast_processors), _STRUCTURAL_CHECKS first.
_UPDATE_PROCESSORS: Final = (
    "ActionCountValidator",
    "OverlappingPathsValidator",
    "UpdateHashRangeKeyValidator",
    "ExpressionAttributeValueProcessor",
    "ExpressionAttributeResolvingProcessor",
    "UpdateExpressionFunctionEvaluator",
    "NoneExistingPathChecker",
    "ExecuteOperations",
    "TypeMismatchValidator",
    "EmptyStringKeyValueValidator",
)
_parsed_updates: dict[str, Node] = {}
_IS_NODE: dict[type, bool] = {}  # isinstance(x, Node) per class of x (moto registers no virtual subclass)
_cloneable: dict[int, str] = {}  # id of a cached tree (kept alive by _parsed_updates) -> its expression
_checked: set[tuple[Any, ...]] = set()  # (expression, names, table key attributes) whose structural checks passed
_names_key: dict[tuple[Any, ...], bool] = {}  # the same key -> whether the expression names a key attribute


def _well_formed(root: Node) -> bool:
    """Whether :func:`_clone` copies ``root`` exactly as ``copy.deepcopy`` does: a tree (no node twice), each
    child's ``parent`` its container, the root's None, and nothing but nodes, strings and ints in it."""
    seen: set[int] = set()

    def check(node: Node, parent: Node | None) -> bool:
        if id(node) in seen or node.parent is not parent or set(vars(node)) != {"type", "children", "parent"}:
            return False
        seen.add(id(node))
        if not isinstance(node.type, str) or not (node.children is None or type(node.children) is list):
            return False
        for child in node.children or ():
            if isinstance(child, Node):
                if not check(child, node):
                    return False
            elif not isinstance(child, _IMMUTABLE_LEAVES):
                return False
        return True

    return check(root, None)


def _clone(node: Node, parent: Node | None = None) -> Node:
    """A copy of a well-formed tree (:func:`_well_formed`), equal to ``copy.deepcopy``'s and ~5x faster."""
    copied = object.__new__(type(node))
    copied.type = node.type
    copied.parent = parent
    children = node.children
    copied.children = None if children is None else [_clone(c, copied) if isinstance(c, Node) else c for c in children]
    return copied


def _parse_update_expression_once(cls: Any, expression_str: str) -> Node:
    """moto's UpdateExpressionParser.make, remembered per expression: the tree is read (``find_clauses``) and
    deep-copied before anything changes it (Validator.__init__), never changed itself. An expression moto
    refuses raises each time, as moto's."""
    try:
        return _parsed_updates[expression_str]
    except (KeyError, TypeError):
        pass
    tree = original(UpdateExpressionParser, "make").__func__(cls, expression_str)
    if isinstance(expression_str, str) and len(_parsed_updates) < UPDATE_EXPRESSION_CACHE_SIZE and _well_formed(tree):
        _parsed_updates[expression_str] = tree
        _cloneable[id(tree)] = expression_str
    return tree


def _structure_key(validator: Any) -> tuple[Any, ...] | None:
    """What the structural checks of ``validator`` read: its expression, names and table key attributes (None:
    not a cached expression, or names that cannot be a key)."""
    expression = getattr(validator, "_taskrail_expression", None)
    if expression is None:
        return None
    names = validator.expression_attribute_names
    try:
        names_key = None if names is None else tuple(sorted(names.items()))
        key = (expression, type(names), names_key, tuple(validator.table.table_key_attrs))
        hash(key)
    except (TypeError, AttributeError):
        return None
    return key


def _validator_init(
    self: Any,
    expression: Node,
    expression_attribute_names: dict[str, str],
    expression_attribute_values: dict[str, dict[str, Any]],
    item: Any,
    table: Any,
) -> None:
    """moto's Validator.__init__, with a cached tree copied by :func:`_clone` instead of ``deepcopy``."""
    self.expression_attribute_names = expression_attribute_names
    self.expression_attribute_values = expression_attribute_values
    self.item = item
    self.table = table
    self.processors = self.get_ast_processors()
    source = _cloneable.get(id(expression))
    if source is not None and _parsed_updates.get(source) is expression:
        self._taskrail_expression = source
        self.node_to_validate = _clone(expression)
    else:
        self.node_to_validate = copy.deepcopy(expression)


def _traverse(processor: Any, node: Any) -> Any:
    """moto's DepthFirstTraverser.traverse, node for node, with less work per node: the node classes it processes
    read once per walk instead of once per node (each ``_processing_map`` is a literal dict: its keys never
    change), ``isinstance`` against moto's abstract node classes answered once per concrete class, and the no-op
    child hook of the processors that keep DepthFirstTraverser's skipped."""
    kinds = processor.nodes_to_be_processed()
    hook = (
        None
        if type(processor).pre_processing_of_child is DepthFirstTraverser.pre_processing_of_child
        else processor.pre_processing_of_child
    )
    process = processor.process
    processed: dict[type, bool] = {}

    def walk(node: Any, child_id: int) -> Any:
        cls = type(node)
        is_node = _IS_NODE.get(cls)
        if is_node is None:
            is_node = _IS_NODE.setdefault(cls, isinstance(node, Node))
        if is_node:
            parent_node = node.parent
            if node.children is not None:
                for i, child_node in enumerate(node.children):
                    if hook is not None:
                        hook(node, i)
                    walk(child_node, i)
            to_process = processed.get(cls)
            if to_process is None:
                to_process = processed.setdefault(cls, isinstance(node, kinds))
            if to_process:
                node = process(node)
                node.parent = parent_node
                if parent_node:
                    parent_node.children[child_id] = node
        return node

    return walk(node, -1)


def _names_a_key(key: tuple[Any, ...], tree: Node) -> bool:
    """Whether the expression of ``key`` (_structure_key: expression, names, table key attributes) names a key
    attribute, plainly or through an ``#name``, anywhere in ``tree`` (its unvalidated tree). Remembered per key."""
    known = _names_key.get(key)
    if known is None:
        _, _, names, key_attributes = key
        aliases = dict(names or ())
        named: set[str] = set()
        pending: list[Any] = [tree]
        while pending:
            node = pending.pop()
            if isinstance(node, ExpressionAttribute):
                named.add(str(node.get_attribute_name()))
            elif isinstance(node, ExpressionAttributeName):
                placeholder = node.get_attribute_name_placeholder()
                named.add(str(aliases.get(placeholder, placeholder)))
            elif isinstance(node, Node):
                pending.extend(node.children or ())
        known = bool(named & set(key_attributes))
        if len(_names_key) < UPDATE_EXPRESSION_CACHE_SIZE:
            _names_key[key] = known
    return known


def _validate_checking_structure_once(self: Any) -> Node:
    """moto's Validator.validate; the structural checks are skipped for an expression, names and table key that
    passed them before (they raise or not on those alone, and leave the tree as it is)."""
    processors = list(self.processors)
    node = self.node_to_validate
    key = _structure_key(self) if type(self) is _validators.UpdateExpressionValidator else None
    if key is not None and _creating.active and not self.item.attrs and not _names_a_key(key, node):
        # moto's check of a new item's update on an item with no attributes at all, before it puts the key: the
        # same processors run on the key's item right after, with the same answer (the expression names no key
        # attribute, so the key cannot change it), and a failure there takes the key back. Run once, not twice.
        return node
    structural = len(_STRUCTURAL_CHECKS)
    if key is not None and all(type(p) is t for p, t in zip(processors, _STRUCTURAL_CHECKS, strict=False)):
        if key not in _checked:
            for processor in processors[:structural]:
                node = _traverse(processor, node)
            if len(_checked) < UPDATE_EXPRESSION_CACHE_SIZE:
                _checked.add(key)
        processors = processors[structural:]
    for processor in processors:
        node = (
            _traverse(processor, node)
            if type(processor).traverse is DepthFirstTraverser.traverse
            else (processor.traverse(node))
        )
    return node


def install_update_expression_cache() -> None:
    if not is_patched(UpdateExpressionParser, "make"):
        patch(UpdateExpressionParser, "make", classmethod(_parse_update_expression_once))
    if not is_patched(_validators.Validator, "__init__"):
        patch(_validators.Validator, "__init__", _validator_init)
    if not is_patched(_validators.Validator, "validate"):
        patch(_validators.Validator, "validate", _validate_checking_structure_once)


def uninstall_update_expression_cache() -> None:
    unpatch(UpdateExpressionParser, "make")
    unpatch(_validators.Validator, "__init__")
    unpatch(_validators.Validator, "validate")
    _parsed_updates.clear()
    _cloneable.clear()
    _checked.clear()
    _names_key.clear()


def _update_processors() -> tuple[str, ...]:
    """The processors moto's UpdateExpressionValidator runs, in order (made on a stand-in table)."""
    table = type("Table", (), {"table_key_attrs": [], "attr": [], "attribute_keys": []})()
    validator: Any = object.__new__(_validators.UpdateExpressionValidator)
    validator.expression_attribute_names, validator.expression_attribute_values = {}, {}
    validator.item, validator.table = None, table
    return tuple(type(p).__name__ for p in validator.get_ast_processors())


UPDATE_EXPRESSION_CACHE: Final = Patch(
    "each UpdateExpression parsed once, its structure checked once",
    depends=(
        Source(
            "moto.dynamodb.parsing.expressions.UpdateExpressionParser.make",
            lambda: original(UpdateExpressionParser, "make"),
            ("token_list = ExpressionTokenizer.make_list(expression_str)", "return cls(token_list).parse()"),
        ),
        Signature(
            "moto.dynamodb.parsing.validators.Validator.__init__",
            lambda: original(_validators.Validator, "__init__"),
            ("self", "expression", "expression_attribute_names", "expression_attribute_values", "item", "table"),
        ),
        Source(  # the only change of the tree: on its deep copy
            "moto.dynamodb.parsing.validators.Validator.__init__",
            lambda: original(_validators.Validator, "__init__"),
            (
                "self.expression_attribute_names = expression_attribute_names",
                "self.expression_attribute_values = expression_attribute_values",
                "self.item = item",
                "self.table = table",
                "self.processors = self.get_ast_processors()",
                "self.node_to_validate = deepcopy(expression)",
            ),
        ),
        Source(  # what _traverse does, node for node
            "moto.dynamodb.parsing.ast_nodes.DepthFirstTraverser.traverse_node_recursively",
            lambda: DepthFirstTraverser.traverse_node_recursively,
            (
                "if isinstance(node, Node):",
                "parent_node = node.parent",
                "for i, child_node in enumerate(node.children):",
                "self.pre_processing_of_child(node, i)",
                "self.traverse_node_recursively(child_node, i)",
                "if isinstance(node, self.nodes_to_be_processed()):",
                "node = self.process(node)",
                "node.parent = parent_node",
                "parent_node.children[child_id] = node",
                "return node",
            ),
        ),
        Source(
            "moto.dynamodb.parsing.ast_nodes.DepthFirstTraverser.traverse",
            lambda: DepthFirstTraverser.traverse,
            ("return self.traverse_node_recursively(node)",),
        ),
        *(
            Source(  # the classes a processor processes are a literal dict's keys: the same on every call
                f"moto.dynamodb.parsing.validators.{name}._processing_map",
                partial(lambda name: vars(_validators)[name]._processing_map, name),
                ("return {",),
            )
            for name in _UPDATE_PROCESSORS
        ),
        Source(
            "moto.dynamodb.parsing.ast_nodes.DepthFirstTraverser.nodes_to_be_processed",
            lambda: DepthFirstTraverser.nodes_to_be_processed,
            ("return tuple(k for k in self._processing_map().keys())",),
        ),
        Source(  # a new item's update: validated on an item without attributes, then on the bare key it puts
            "moto.dynamodb.models.DynamoDBBackend.update_item",
            lambda: original(DynamoDBBackend, "update_item"),
            (
                "if item is None:",
                "item = Item(hash_value, range_value, attrs={})",
                "UpdateExpressionValidator(",
                ").validate()",
                "table.put_item(data)",
                "validated_ast = validator.validate()",
            ),
        ),
        Source(
            "moto.dynamodb.parsing.validators.Validator.validate",
            lambda: original(_validators.Validator, "validate"),
            ("n = self.node_to_validate", "for processor in self.processors:", "n = processor.traverse(n)"),
        ),
        Check(  # the structural checks first, and no processor _traverse does not know
            "moto.dynamodb.parsing.validators.UpdateExpressionValidator.get_ast_processors",
            lambda: _update_processors() == _UPDATE_PROCESSORS,
            f"runs {', '.join(_UPDATE_PROCESSORS)}, in this order",
        ),
        *(
            Source(  # each structural check returns the node it was given: the tree stays as it was
                f"moto.dynamodb.parsing.validators.{check.__name__}",
                partial(lambda check: check, check),
                ("return node",),
            )
            for check in _STRUCTURAL_CHECKS
        ),
        Source(  # the parsed tree is only read before the Validator copies it
            "moto.dynamodb.responses.DynamoHandler.update_item",
            lambda: inspect.unwrap(original(DynamoHandler, "update_item")),
            (
                "update_expression_ast = UpdateExpressionParser.make(update_expression)",
                "attr_name_clauses = update_expression_ast.find_clauses(",
                "attr_value_clauses = update_expression_ast.find_clauses(",
            ),
        ),
        Source(
            "moto.dynamodb.models.DynamoDBBackend.update_item",
            lambda: original(DynamoDBBackend, "update_item"),
            ("update_expression_ast = UpdateExpressionParser.make(update_expression)", "update_expression_ast,"),
        ),
    ),
    install=install_update_expression_cache,
    uninstall=uninstall_update_expression_cache,
)

# --------------------------------------------------------------------------------------------------
# Speed: each condition expression lexed once
# --------------------------------------------------------------------------------------------------

_lexed_conditions: dict[str, tuple[Any, ...]] = {}


def _lex_condition_once(self: Any) -> deque[Any]:
    """moto's ConditionExpressionParser._lex_condition_expression, remembered per expression string: the tokens
    depend on the string alone (names and values are read by the later phases), and they are immutable named
    tuples whose ``children`` (an empty list) no phase changes, so one token serves every parse. moto parses an
    UpdateItem's ConditionExpression twice (the handler, then the backend), a Query's FilterExpression once."""
    expression = self.condition_expression
    tokens = _lexed_conditions.get(expression) if isinstance(expression, str) else None
    if tokens is None:
        tokens = tuple(original(ConditionExpressionParser, "_lex_condition_expression")(self))
        if isinstance(expression, str) and len(_lexed_conditions) < UPDATE_EXPRESSION_CACHE_SIZE:
            _lexed_conditions[expression] = tokens
    return deque(tokens)


def install_condition_lex_cache() -> None:
    if not is_patched(ConditionExpressionParser, "_lex_condition_expression"):
        patch(ConditionExpressionParser, "_lex_condition_expression", _lex_condition_once)


def uninstall_condition_lex_cache() -> None:
    unpatch(ConditionExpressionParser, "_lex_condition_expression")
    _lexed_conditions.clear()


def _no_phase_changes_a_token() -> bool:
    from moto.dynamodb import comparisons

    source = inspect.getsource(comparisons)
    return not re.search(
        r"\.children\s*(\.(append|extend|insert|pop|remove|clear|sort|reverse)\b|\[[^\]]*\]\s*=|\+=)", source
    )


CONDITION_LEX_CACHE: Final = Patch(
    "each condition expression lexed once",
    depends=(
        Source(
            "moto.dynamodb.comparisons.ConditionExpressionParser._lex_condition_expression",
            lambda: original(ConditionExpressionParser, "_lex_condition_expression"),
            (
                "nodes: deque[ConditionExpressionParser.Node] = deque()",
                "remaining_expression = self.condition_expression",
                "node, remaining_expression = self._lex_one_node(remaining_expression)",
                "return nodes",
            ),
        ),
        Check(  # the tokens depend on the expression string alone
            "moto.dynamodb.comparisons.ConditionExpressionParser._lex_one_node",
            lambda: "self.expression_attribute" not in inspect.getsource(ConditionExpressionParser._lex_one_node),
            "reads neither the names nor the values",
        ),
        Check(
            "moto.dynamodb.comparisons",
            _no_phase_changes_a_token,
            "changes no node's children list in place",
        ),
        Source(
            "moto.dynamodb.comparisons.ConditionExpressionParser.parse",
            lambda: ConditionExpressionParser.parse,
            ("nodes = self._lex_condition_expression()", "nodes = self._parse_paths(nodes)"),
        ),
    ),
    install=install_condition_lex_cache,
    uninstall=uninstall_condition_lex_cache,
)

# --------------------------------------------------------------------------------------------------
# Fidelity: an UpdateExpression naming an undefined #name is a ValidationException, not a 500
# --------------------------------------------------------------------------------------------------


def _check_for_overlapping_paths_defined(self: Any, node: Any) -> Any:
    """moto's OverlappingPathsValidator.check_for_overlapping_paths, which runs before the names are resolved
    and looks a root ``#name`` up in ExpressionAttributeNames unguarded: a KeyError, a 500 from the server. AWS
    answers ``ValidationException: Invalid UpdateExpression: An expression attribute name used in the document
    path is not defined; attribute name: #name`` (the name-resolving check's own error, which moto gives for
    ``#name.sub``)."""
    try:
        return original(_validators.OverlappingPathsValidator, "check_for_overlapping_paths")(self, node)
    except KeyError as missing:
        raise ExpressionAttributeNameNotDefined(str(missing.args[0])) from None


def install_undefined_names() -> None:
    if not is_patched(_validators.OverlappingPathsValidator, "check_for_overlapping_paths"):
        patch(
            _validators.OverlappingPathsValidator, "check_for_overlapping_paths", _check_for_overlapping_paths_defined
        )


def uninstall_undefined_names() -> None:
    unpatch(_validators.OverlappingPathsValidator, "check_for_overlapping_paths")


UNDEFINED_NAMES: Final = Patch(
    "an undefined #name in an UpdateExpression is a ValidationException",
    depends=(
        Source(
            "moto.dynamodb.parsing.validators.OverlappingPathsValidator.check_for_overlapping_paths",
            lambda: original(_validators.OverlappingPathsValidator, "check_for_overlapping_paths"),
            ("self.expression_attribute_names[", "path_name.get_attribute_name_placeholder()"),
        ),
    ),
    install=install_undefined_names,
    uninstall=uninstall_undefined_names,
)

PATCHES: Final = (
    ATOMIC_WRITES,
    CONSISTENT_READS,
    FAST_ITEM_WALK,
    THROTTLING,
    REQUEST_VALIDATION,
    ITEM_SIZE,
    UPDATE_EXPRESSION_CACHE,
    CONDITION_LEX_CACHE,
    UNDEFINED_NAMES,
)
