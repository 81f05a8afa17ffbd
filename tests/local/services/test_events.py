"""taskrail.local.services.events: a rule whose target is an SNS topic publishes to it, as EventBridge does."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from taskrail.local.services import events
from tests.local.services.harness import REGION

EVENT = {"Source": "taskrail", "DetailType": "Task succeeded", "Detail": json.dumps({"taskId": "t-1"})}


@pytest.fixture
def topic_into_queue() -> Iterator[tuple[Any, Any, str, str]]:
    """A topic delivering raw messages into a queue, so that what the topic was sent can be read back; the SNS
    rule-target patch is installed for the test."""
    with mock_aws():
        session = boto3.Session(region_name=REGION)
        sns, sqs, eventbridge = session.client("sns"), session.client("sqs"), session.client("events")
        topic = sns.create_topic(Name="outcomes")["TopicArn"]
        url = sqs.create_queue(QueueName="archive")["QueueUrl"]
        queue = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue, Attributes={"RawMessageDelivery": "true"})
        eventbridge.put_rule(Name="outcomes", EventPattern=json.dumps({"source": ["taskrail"]}))
        events.install_eventbridge_sns_targets()
        try:
            yield eventbridge, sqs, url, topic
        finally:
            events.uninstall_eventbridge_sns_targets()


def received(sqs: Any, url: str) -> list[Any]:
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_a_rule_publishes_the_event_to_its_sns_target(topic_into_queue: tuple[Any, Any, str, str]) -> None:
    eventbridge, sqs, url, topic = topic_into_queue
    eventbridge.put_targets(Rule="outcomes", Targets=[{"Id": "topic", "Arn": topic}])
    eventbridge.put_events(Entries=[EVENT])
    (message,) = received(sqs, url)
    assert (message["source"], message["detail-type"], message["detail"]) == (
        "taskrail",
        "Task succeeded",
        {"taskId": "t-1"},
    )


def test_the_targets_input_path_selects_what_is_published(topic_into_queue: tuple[Any, Any, str, str]) -> None:
    eventbridge, sqs, url, topic = topic_into_queue
    eventbridge.put_targets(Rule="outcomes", Targets=[{"Id": "topic", "Arn": topic, "InputPath": "$.detail"}])
    eventbridge.put_events(Entries=[EVENT, {**EVENT, "Source": "someone-else"}])
    assert received(sqs, url) == [{"taskId": "t-1"}]


def test_the_published_events_time_is_iso_8601_utc_as_eventbridge_sends_it(
    topic_into_queue: tuple[Any, Any, str, str],
) -> None:
    # "Amazon EventBridge events" (event structure reference): "time": "2017-12-22T18:43:48Z"; moto left the epoch
    # float it stamped in what reached SNS and Step Functions targets
    eventbridge, sqs, url, topic = topic_into_queue
    eventbridge.put_targets(Rule="outcomes", Targets=[{"Id": "topic", "Arn": topic}])
    eventbridge.put_events(Entries=[EVENT])
    (message,) = received(sqs, url)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", message["time"]), message["time"]
