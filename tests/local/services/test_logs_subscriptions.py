"""CloudWatch Logs subscription filters with a Lambda destination (taskrail.local.services.logs_subscriptions):
only the events the filter pattern selects are delivered, asynchronously, to the destination ARN as given (an
alias), as logs.amazonaws.com on behalf of the log group, in the documented payload; an unknown pattern syntax is
refused. AWS's evidence: "Using CloudWatch Logs subscription filters"
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/SubscriptionFilters.html: base64 of gzip of
{messageType DATA_MESSAGE, owner, logGroup, logStream, subscriptionFilters, logEvents[{id, timestamp, message}]}),
"Filter pattern syntax" (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html);
moto 5.2.5 delivered every event, unfiltered, synchronously and unchecked."""

from __future__ import annotations

import base64
import gzip
import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from taskrail.local.services import delivery, lambda_, logs_subscriptions
from taskrail.local.services.logs_subscriptions import UnsupportedFilterPattern, parse_filter_pattern
from tests.e2e.polling import wait_for
from tests.local.services.harness import DEADLINE_SECONDS, RecordingInvoker

NOW_MS = int(time.time() * 1000)  # moto, like AWS, drops events older than 14 days
PATTERN = '{ ($.user != "-") && ($.status != "403") }'  # infra/constructs/users.py SEEN_FILTER_PATTERN


def line(user: str, status: str) -> str:
    return json.dumps({"user": user, "userArn": "-", "status": status, "resourcePath": "/tasks"})


@pytest.mark.parametrize(
    ("message", "matched"),
    [
        (line("AIDAALICE", "202"), True),
        (line("AIDAALICE", "404"), True),  # authenticated: a sign-in even if the task is not there
        (line("AIDAALICE", "403"), False),
        (line("-", "403"), False),  # no signature: no user
        (line("-", "200"), False),
        (json.dumps({"status": "200"}), False),  # no such property: no match
        (json.dumps({"user": 7, "status": "200"}), False),  # a number is not the string
        ("not json", False),
    ],
)
def test_the_user_seen_pattern_selects_authenticated_unrefused_lines(message: str, matched: bool) -> None:
    assert parse_filter_pattern(PATTERN).matches(message) is matched


@pytest.mark.parametrize(
    ("pattern", "message", "matched"),
    [
        ("", "anything", True),
        ('{ $.a = "x*" }', '{"a": "xyz"}', True),
        ('{ $.a = "x*" }', '{"a": "yx"}', False),
        ("{ $.n >= 5 }", '{"n": 5}', True),
        ("{ $.n > 5 }", '{"n": "6"}', False),
        ('{ $.a.b = "c" || $.n = 1 }', '{"n": 1}', True),
        ('{ ($.a = "1" || $.a = "2") && $.b != "x" }', '{"a": "2", "b": "y"}', True),
        ('{ ($.a = "1" || $.a = "2") && $.b != "x" }', '{"a": "2", "b": "x"}', False),
    ],
)
def test_json_patterns_compare_strings_numbers_and_combine(pattern: str, message: str, matched: bool) -> None:
    assert parse_filter_pattern(pattern).matches(message) is matched


@pytest.mark.parametrize(
    "pattern",
    ["ERROR", "[ip, user, status]", "{ $.user IS NULL }", "{ $.user NOT EXISTS }", '{ $.a = "x" ', '{ $.a < "b" }'],
)
def test_a_pattern_the_local_stack_cannot_evaluate_is_refused(pattern: str) -> None:
    with pytest.raises(UnsupportedFilterPattern):
        parse_filter_pattern(pattern)


class Checks:
    def __init__(self, refuse: bool = False) -> None:
        self.asked: list[tuple[str, str, str, str]] = []
        self.refuse = refuse

    def __call__(self, principal: str, action: str, resource: str, source: str) -> str | None:
        self.asked.append((principal, action, resource, source))
        return "not allowed" if self.refuse else None


@pytest.fixture
def subscribed(aws: dict[str, Any]) -> Iterator[tuple[Any, str, Checks]]:
    """A log group subscribed to the function's alias through the pattern, the patch installed."""
    lam = aws["lambda"]
    version = lam.publish_version(FunctionName="worker")["Version"]
    alias_arn = lam.create_alias(FunctionName="worker", Name="live", FunctionVersion=version)["AliasArn"]
    logs = boto3.client("logs", region_name="us-east-1")
    logs.create_log_group(logGroupName="access")
    logs.create_log_stream(logGroupName="access", logStreamName="s")
    logs.put_subscription_filter(
        logGroupName="access", filterName="seen", filterPattern=PATTERN, destinationArn=alias_arn
    )
    checks = Checks()
    logs_subscriptions.install()
    delivery.set_delivery_check(checks)
    try:
        yield logs, alias_arn, checks
    finally:
        delivery.set_delivery_check(None)
        logs_subscriptions.uninstall()


def test_matching_events_reach_the_alias_asynchronously_in_the_documented_payload(subscribed) -> None:
    logs, alias_arn, checks = subscribed
    invoker = RecordingInvoker(lambda_.InvokeOutcome.success(None))
    messages = [line("AIDAALICE", "202"), line("-", "403"), line("AIDABOB", "404")]
    with lambda_.lambda_invoker(invoker):
        logs.put_log_events(
            logGroupName="access",
            logStreamName="s",
            logEvents=[{"timestamp": NOW_MS + i, "message": m} for i, m in enumerate(messages)],
        )
        wait_for(lambda: invoker.calls, DEADLINE_SECONDS, "the asynchronous delivery")
    [(name, event, qualifier)] = invoker.calls
    data = json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))
    print(name, qualifier, data)
    assert (name, qualifier) == ("worker", "live")
    assert {k: v for k, v in data.items() if k != "logEvents"} == {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": "access",
        "logStream": "s",
        "subscriptionFilters": ["seen"],
    }
    assert [(e["timestamp"], e["message"]) for e in data["logEvents"]] == [
        (NOW_MS, messages[0]),
        (NOW_MS + 2, messages[2]),
    ]
    assert all(isinstance(e["id"], str) for e in data["logEvents"])
    assert checks.asked == [
        (
            "logs.amazonaws.com",
            "lambda:InvokeFunction",
            alias_arn,
            "arn:aws:logs:us-east-1:123456789012:log-group:access:*",
        )
    ]


def test_a_delivery_the_functions_policy_refuses_invokes_nothing(subscribed) -> None:
    logs, _, checks = subscribed
    checks.refuse = True
    invoker = RecordingInvoker(lambda_.InvokeOutcome.success(None))
    with lambda_.lambda_invoker(invoker):
        logs.put_log_events(
            logGroupName="access",
            logStreamName="s",
            logEvents=[{"timestamp": NOW_MS, "message": line("AIDAALICE", "200")}],
        )
    assert invoker.calls == [] and len(checks.asked) == 1


def test_no_matching_event_asks_nothing_and_invokes_nothing(subscribed) -> None:
    logs, _, checks = subscribed
    invoker = RecordingInvoker(lambda_.InvokeOutcome.success(None))
    with lambda_.lambda_invoker(invoker):
        logs.put_log_events(
            logGroupName="access", logStreamName="s", logEvents=[{"timestamp": NOW_MS, "message": line("-", "403")}]
        )
    assert invoker.calls == [] and checks.asked == []
