"""Throttling faults for moto's DynamoDB: requests answered as DynamoDB answers a throttled one (moto 5.2.5).

DynamoDB refuses a request it throttles with HTTP 400 and a JSON error body whose ``__type`` names one of
(DynamoDB developer guide, "Error handling with DynamoDB": throttling errors are 400s):

- ``ProvisionedThroughputExceededException`` (a table or index over its provisioned or on-demand throughput),
- ``ThrottlingException`` (control plane or too many requests; its namespace is ``com.amazon.coral.availability``),
- ``RequestLimitExceeded`` (the account's throughput quota).

moto never throttles. :func:`throttling` switches on :class:`ThrottleRule` s for as long as its block runs: a
DynamoDB request of the rule's action whose raw body contains the rule's ``marker`` (a task id, an owner: so
only the requests a test means are refused, never the workflow's or another test's) is answered with that error
instead of reaching moto's backend, ``times`` times (``None``: every time). It works for the local stack
because moto runs in the stack's process (``ThreadedMotoServer``): the request travels the real path, client →
local API Gateway → HTTP → moto, and the API's mapping templates see DynamoDB's real status and body.

One touch point, declared below and checked by :func:`assert_supported`: ``DynamoHandler.call_action`` (wrapped)
and the raw body moto's ``BaseResponse.setup_class`` keeps in ``raw_body``.
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
from moto.dynamodb.responses import DynamoHandler

from taskrail.local.moto_hooks import _is_patched, _original, _patch, _unpatch

__all__ = ["THROTTLING_ERRORS", "ThrottleRule", "assert_supported", "throttling"]

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


_lock = threading.Lock()
_rules: list[ThrottleRule] = []

# symbol -> (getter, parameter names); symbol -> (getter, source fragments)
_SIGNATURES: Final[dict[str, tuple[Callable[[], Any], list[str]]]] = {
    "moto.dynamodb.responses.DynamoHandler.call_action": (lambda: inspect.unwrap(_moto_call_action()), ["self"]),
}
_SOURCES: Final[dict[str, tuple[Callable[[], Any], list[str]]]] = {
    "moto.core.responses.BaseResponse.setup_class": (
        lambda: BaseResponse.setup_class,
        ["self.raw_body = self.body", "self.headers: Any = request.headers"],
    ),
    "moto.dynamodb.responses.DynamoHandler.get_endpoint_name": (
        lambda: DynamoHandler.get_endpoint_name,
        ['headers.get("x-amz-target") or headers.get("X-Amz-Target")'],
    ),
}


def _moto_call_action() -> Any:
    return (
        _original(DynamoHandler, "call_action")
        if _is_patched(DynamoHandler, "call_action")
        else DynamoHandler.call_action
    )


def assert_supported() -> None:
    """Fails loudly if moto no longer has what the hook relies on (re-check after a moto upgrade)."""
    problems = []
    for symbol, (getter, expected) in _SIGNATURES.items():
        actual = list(inspect.signature(getter()).parameters)
        if actual != expected:
            problems.append(f"{symbol}: parameters {actual}, expected {expected}")
    for symbol, (getter, fragments) in _SOURCES.items():
        source = inspect.getsource(getter())
        problems += [f"{symbol}: no longer contains {fragment!r}" for fragment in fragments if fragment not in source]
    if problems:
        raise RuntimeError("moto changed under taskrail/local/dynamodb_throttle.py: " + "; ".join(problems))


def _matching_rule(handler: Any) -> ThrottleRule | None:
    target = str(handler.headers.get("X-Amz-Target") or "")
    action = target.rpartition(".")[2]
    raw = handler.raw_body
    body = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")
    with _lock:
        for rule in _rules:
            if rule.matches(action, body):
                rule.refused += 1
                return rule
    return None


def _call_action(self: Any) -> Any:
    rule = _matching_rule(self)
    if rule is None:
        return _original(DynamoHandler, "call_action")(self)
    error_type, message = THROTTLING_ERRORS[rule.error]
    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": str(uuid.uuid4())}
    return THROTTLED_STATUS, headers, json.dumps({"__type": error_type, "message": message})


@contextmanager
def throttling(*rules: ThrottleRule) -> Iterator[list[ThrottleRule]]:
    """Refuses the DynamoDB requests the rules match while the block runs (the hook stays installed only then)."""
    assert_supported()
    with _lock:
        if not _is_patched(DynamoHandler, "call_action"):
            _patch(DynamoHandler, "call_action", _call_action)
        _rules.extend(rules)
    try:
        yield list(rules)
    finally:
        with _lock:
            for rule in rules:
                _rules.remove(rule)
            if not _rules:
                _unpatch(DynamoHandler, "call_action")
