"""Amazon DynamoDB: conditional writes as atomic as DynamoDB's, and throttling answered as DynamoDB answers it.

- **Atomic conditional writes** -- :func:`install_atomic_dynamodb_writes` serialises moto's DynamoDB item writes
  so a condition and its write are atomic, as in DynamoDB (concurrent duplicate claims otherwise both succeed).
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

import inspect
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

from moto.core.responses import BaseResponse
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.responses import DynamoHandler

from taskrail.local.services.patching import Patch, Signature, Source, is_patched, original, patch, unpatch

__all__ = [
    "PATCHES",
    "THROTTLING_ERRORS",
    "ThrottleRule",
    "install_atomic_dynamodb_writes",
    "throttling",
    "uninstall_atomic_dynamodb_writes",
]

# --------------------------------------------------------------------------------------------------
# Atomic conditional writes
# --------------------------------------------------------------------------------------------------

_DYNAMODB_WRITES: Final = ("put_item", "update_item", "delete_item", "transact_write_items")
_dynamodb_write_lock = threading.RLock()


def _atomic(method_name: str) -> Callable[..., Any]:
    def write(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _dynamodb_write_lock:
            return original(DynamoDBBackend, method_name)(self, *args, **kwargs)

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
    ),
    install=install_atomic_dynamodb_writes,
    uninstall=uninstall_atomic_dynamodb_writes,
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

PATCHES: Final = (ATOMIC_WRITES, THROTTLING)
