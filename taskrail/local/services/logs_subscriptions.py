"""Amazon CloudWatch Logs subscription filters delivering to a Lambda function, as CloudWatch Logs does.

``AWS::Logs::SubscriptionFilter`` resources of the template are provisioned in moto (:func:`provision`:
PutSubscriptionFilter, so ``aws logs describe-subscription-filters`` lists them), their filter pattern parsed first
(:func:`parse_filter_pattern`: a pattern the local stack cannot evaluate stops the start, naming it).

moto 5.2.5 delivers every event of every PutLogEvents to every subscribed function (``LogStream.put_log_events`` →
``_send_log_events`` → ``LambdaBackend.send_log_event``): it ignores the filter pattern, invokes the function's
unqualified model synchronously inside the PutLogEvents request, and asks no permission. What CloudWatch Logs
documents ("Using CloudWatch Logs subscription filters",
https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/SubscriptionFilters.html, and its Lambda example
"Example 2: Subscription filters with AWS Lambda",
https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/SubscriptionFilters.html#LambdaFunctionExample):

- only the events matching the filter's pattern are delivered ("Filter pattern syntax for metric filters,
  subscription filters, filter log events, and Live Tail",
  https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html);
- the function is invoked asynchronously, as ``logs.amazonaws.com``, which the function's resource policy must
  allow (the ``AWS::Lambda::Permission`` with ``SourceArn`` the log group's ARN): checked here by the local IAM
  (:mod:`taskrail.local.services.delivery`, ``LocalIam.service_delivery``); a refused delivery is dropped, logged;
- the event is ``{"awslogs": {"data": base64(gzip(JSON))}}``, the JSON ``{"messageType": "DATA_MESSAGE", "owner",
  "logGroup", "logStream", "subscriptionFilters": [name], "logEvents": [{"id", "timestamp", "message"}]}``.

So :func:`_send_log_events` replaces moto's: for a Lambda destination it keeps the matching events, checks the
permission, and invokes the destination ARN as given (the function's alias, whose version really runs:
taskrail/local/aliases.py) with ``X-Amz-Invocation-Type: Event`` (:mod:`taskrail.local.services.lambda_` runs
it on a thread of its own), never blocking the PutLogEvents that wrote the events. Lambda's two retries of a failed
asynchronous invocation are not emulated (the failure is logged). Other destinations stay moto's. Cases:
tests/local/services/test_logs_subscriptions.py.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

import moto.logs.models as logs_models

from taskrail.local.services import delivery
from taskrail.local.services.patching import Patch, Signature, Source, original, patch, unpatch

__all__ = ["LOGS_PRINCIPAL", "PATCHES", "FilterPattern", "parse_filter_pattern", "provision", "subscription_event"]

LOG = logging.getLogger(__name__)
LOGS_PRINCIPAL: Final = "logs.amazonaws.com"


class UnsupportedFilterPattern(ValueError):
    """A pattern the local stack does not evaluate: refused, never treated as "match everything"."""


# -- filter patterns: the JSON subset -----------------------------------------------------------------------------
# A JSON pattern is "{ SELECTOR OPERATOR VALUE }", selectors "$.a.b", joined by && and || with parentheses; string
# values in double quotes (a * is a wildcard), numbers bare. A selector whose property the event lacks, or whose
# value is of the other kind (a string compared with a number), does not match. An empty pattern matches every event.

_TOKEN = re.compile(
    r"""\s*(?:(?P<paren>[()])|(?P<logic>&&|\|\|)|(?P<selector>\$(?:\.[A-Za-z_][\w-]*)+)|(?P<op>!=|<=|>=|=|<|>)
    |(?P<string>"(?:[^"\\]|\\.)*")|(?P<number>-?\d+(?:\.\d+)?))""",
    re.VERBOSE,
)
Matcher = Callable[[Any], bool]


@dataclass(frozen=True)
class FilterPattern:
    """A parsed filter pattern: ``matches(message)`` for one log event's message."""

    text: str
    _match: Matcher

    def matches(self, message: str) -> bool:
        if not self.text.strip():
            return True
        try:
            document = json.loads(message)
        except ValueError:
            return False  # a JSON pattern matches JSON events only
        return self._match(document)


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(text.rstrip()):
        found = _TOKEN.match(text, position)
        if found is None or found.end() == position:
            raise UnsupportedFilterPattern(f"filter pattern {text!r}: unsupported syntax at {text[position:]!r}")
        kind = next(name for name, value in found.groupdict().items() if value is not None)
        tokens.append((kind, found.group(kind)))
        position = found.end()
    return tokens


def _value(document: Any, selector: str) -> Any:
    for part in selector[2:].split("."):
        if not isinstance(document, dict) or part not in document:
            return _MISSING
        document = document[part]
    return document


_MISSING = object()
_NUMERIC: dict[str, Callable[[float, float], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _comparison(selector: str, operator: str, kind: str, literal: str, text: str) -> Matcher:
    if kind == "string":
        if operator not in ("=", "!="):
            raise UnsupportedFilterPattern(f"filter pattern {text!r}: {operator} compares numbers, not strings")
        wanted = json.loads(literal)
        pattern = re.compile(".*".join(re.escape(part) for part in wanted.split("*")), re.DOTALL)

        def string_matches(document: Any) -> bool:
            value = _value(document, selector)
            if not isinstance(value, str):
                return False
            return (pattern.fullmatch(value) is not None) == (operator == "=")

        return string_matches
    bound = float(literal)

    def number_matches(document: Any) -> bool:
        value = _value(document, selector)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return _NUMERIC[operator](float(value), bound)

    return number_matches


class _Parser:
    def __init__(self, text: str, tokens: list[tuple[str, str]]) -> None:
        self.text, self.tokens, self.at = text, tokens, 0

    def _take(self, kind: str, value: str | None = None) -> str:
        if (
            self.at >= len(self.tokens)
            or self.tokens[self.at][0] != kind
            or value not in (None, self.tokens[self.at][1])
        ):
            found = self.tokens[self.at][1] if self.at < len(self.tokens) else "the end"
            raise UnsupportedFilterPattern(f"filter pattern {self.text!r}: expected {value or kind}, found {found!r}")
        self.at += 1
        return self.tokens[self.at - 1][1]

    def _peek(self, kind: str, value: str) -> bool:
        return self.at < len(self.tokens) and self.tokens[self.at] == (kind, value)

    def expression(self) -> Matcher:
        """``||`` of ``&&`` groups (``&&`` binds first)."""
        alternatives = [self._conjunction()]
        while self._peek("logic", "||"):
            self.at += 1
            alternatives.append(self._conjunction())
        return alternatives[0] if len(alternatives) == 1 else (lambda d: any(m(d) for m in alternatives))

    def _conjunction(self) -> Matcher:
        terms = [self._term()]
        while self._peek("logic", "&&"):
            self.at += 1
            terms.append(self._term())
        return terms[0] if len(terms) == 1 else (lambda d: all(m(d) for m in terms))

    def _term(self) -> Matcher:
        if self._peek("paren", "("):
            self.at += 1
            inner = self.expression()
            self._take("paren", ")")
            return inner
        selector = self._take("selector")
        operator = self._take("op")
        if self.at < len(self.tokens) and self.tokens[self.at][0] in ("string", "number"):
            kind, literal = self.tokens[self.at]
            self.at += 1
            return _comparison(selector, operator, kind, literal, self.text)
        raise UnsupportedFilterPattern(f"filter pattern {self.text!r}: {selector} {operator} needs a value")


def parse_filter_pattern(text: str) -> FilterPattern:
    """The JSON filter pattern ``text`` (or the empty pattern); :class:`UnsupportedFilterPattern` for anything else
    (term patterns, space-delimited patterns, ``IS NULL``, ``EXISTS``, regular expressions: not needed locally)."""
    stripped = text.strip()
    if not stripped:
        return FilterPattern(text, lambda _document: True)
    if not (stripped.startswith("{") and stripped.endswith("}")):
        raise UnsupportedFilterPattern(
            f"filter pattern {text!r}: only JSON patterns ({{ $.field = value }}) run locally"
        )
    parser = _Parser(text, _tokens(stripped[1:-1]))
    matcher = parser.expression()
    if parser.at != len(parser.tokens):
        raise UnsupportedFilterPattern(f"filter pattern {text!r}: unexpected {parser.tokens[parser.at][1]!r}")
    return FilterPattern(text, matcher)


# -- the delivery -------------------------------------------------------------------------------------------------


def subscription_event(
    *, owner: str, log_group: str, log_stream: str, filter_name: str, log_events: list[dict[str, Any]]
) -> dict[str, Any]:
    """The event CloudWatch Logs invokes a subscribed function with (the documented payload, gzip and base64)."""
    data = {
        "messageType": "DATA_MESSAGE",
        "owner": owner,
        "logGroup": log_group,
        "logStream": log_stream,
        "subscriptionFilters": [filter_name],
        "logEvents": log_events,
    }
    compressed = gzip.compress(json.dumps(data, separators=(",", ":")).encode("utf-8"))
    return {"awslogs": {"data": base64.b64encode(compressed).decode("ascii")}}


def log_group_arn(account: str, region: str, name: str) -> str:
    """The log group's ARN as CloudFormation's ``Arn`` attribute and the Lambda permission's SourceArn name it."""
    return f"arn:aws:logs:{region}:{account}:log-group:{name}:*"


def _send_log_events(
    self: logs_models.LogStream, service: str, destination_arn: str, filter_name: str, log_events: list[dict[str, Any]]
) -> None:
    if service != "lambda":
        original(logs_models.LogStream, "_send_log_events")(self, service, destination_arn, filter_name, log_events)
        return
    group = self.log_group
    subscription = group.subscription_filters.get(filter_name)
    pattern = parse_filter_pattern(subscription.filter_pattern if subscription is not None else "")
    matching = [event for event in log_events if pattern.matches(str(event["message"]))]
    if not matching:
        return
    source_arn = log_group_arn(self.account_id, self.region, group.name)
    denied = delivery.check(LOGS_PRINCIPAL, "lambda:InvokeFunction", destination_arn, source_arn)
    if denied is not None:
        LOG.error("logs subscription %s of %s: delivery to %s refused: %s", filter_name, group.name,
                  destination_arn, denied)  # fmt: skip
        return
    from moto.awslambda.utils import get_backend

    event = subscription_event(
        owner=self.account_id,
        log_group=group.name,
        log_stream=self.log_stream_name,
        filter_name=filter_name,
        log_events=[{"id": str(e["id"]), "timestamp": e["timestamp"], "message": e["message"]} for e in matching],
    )
    _, _, _, region, account, _ = destination_arn.split(":", 5)
    try:
        get_backend(account, region).invoke(
            destination_arn, None, json.dumps(event), {"X-Amz-Invocation-Type": "Event"}, {}
        )
    except Exception:
        LOG.exception("logs subscription %s of %s: invoking %s failed", filter_name, group.name, destination_arn)


def install() -> None:
    patch(logs_models.LogStream, "_send_log_events", _send_log_events)


def uninstall() -> None:
    unpatch(logs_models.LogStream, "_send_log_events")


class Provisioner(Protocol):
    """What of ``provision.Provisioner`` :func:`provision` uses (provision imports this module, not the reverse)."""

    resources: Any
    resolve: Any
    clients: Any

    def name(self, logical_id: str, *, lower: bool = False) -> str: ...


def provision(provisioner: Provisioner, logical_id: str, resource: dict[str, Any]) -> None:
    """``AWS::Logs::SubscriptionFilter``: its pattern checked, then PutSubscriptionFilter in moto."""
    props = provisioner.resolve(resource["Properties"])
    name = props.get("FilterName") or provisioner.name(logical_id)
    pattern = parse_filter_pattern(str(props["FilterPattern"]))
    provisioner.clients("logs").put_subscription_filter(
        logGroupName=props["LogGroupName"],
        filterName=name,
        filterPattern=pattern.text,
        destinationArn=props["DestinationArn"],
        **({"roleArn": props["RoleArn"]} if props.get("RoleArn") else {}),
    )
    provisioner.resources.attributes[logical_id] = {"Ref": name}


SUBSCRIPTIONS: Final = Patch(
    "CloudWatch Logs subscription filters: the pattern applied, the Lambda permission checked, invoked asynchronously",
    depends=(
        Signature(
            "moto.logs.models.LogStream._send_log_events",
            lambda: original(logs_models.LogStream, "_send_log_events"),
            ("self", "service", "destination_arn", "filter_name", "log_events"),
        ),
        Source(
            "moto.logs.models.LogStream.put_log_events",
            lambda: logs_models.LogStream.put_log_events,
            ("self.log_group.subscription_filters.values()", "self._send_log_events(", '"id": event.event_id'),
        ),
        Source(
            "moto.logs.models.SubscriptionFilter.__init__",
            lambda: logs_models.SubscriptionFilter.__init__,
            ("self.filter_pattern = filter_pattern",),
        ),
        Source("moto.logs.models.LogStream.__init__", lambda: logs_models.LogStream.__init__, ("self.log_group",)),
    ),
    install=install,
    uninstall=uninstall,
)

PATCHES: Final = (SUBSCRIPTIONS,)
