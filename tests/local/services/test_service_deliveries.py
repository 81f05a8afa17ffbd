"""SNS delivering to a subscribed queue, and a CloudWatch alarm running its SNS action, each as its service
principal and only when the destination's policy allows it (taskrail.local.services.sns_delivery / cloudwatch)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from taskrail.local.services import cloudwatch, delivery, sns_delivery
from tests.local.services.harness import REGION


class Deliveries:
    """A delivery check that records every request and refuses the (action, resource) pairs in ``refuse``."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str, str, str]] = []
        self.refuse: set[tuple[str, str]] = set()

    def __call__(self, principal: str, action: str, resource: str, source: str) -> str | None:
        self.asked.append((principal, action, resource, source))
        return f"{principal} may not {action} on {resource}" if (action, resource) in self.refuse else None


@pytest.fixture
def aws() -> Iterator[tuple[Any, Deliveries]]:
    check = Deliveries()
    with mock_aws():
        sns_delivery.install()
        cloudwatch.install()
        delivery.set_delivery_check(check)
        try:
            yield boto3.Session(region_name=REGION), check
        finally:
            delivery.set_delivery_check(None)
            cloudwatch.uninstall()
            sns_delivery.uninstall()


def queue(session: Any, name: str) -> tuple[str, str]:
    sqs = session.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def bodies(session: Any, url: str) -> list[str]:
    messages = session.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [m["Body"] for m in messages]


@pytest.fixture
def subscribed(aws: tuple[Any, Deliveries]) -> tuple[Any, Deliveries, str, str, str, str, str]:
    session, check = aws
    topic = session.client("sns").create_topic(Name="outcomes")["TopicArn"]
    url, arn = queue(session, "archive")
    dlq_url, dlq_arn = queue(session, "archive-dlq")
    session.client("sns").subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"RawMessageDelivery": "true", "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn})},
    )
    return session, check, topic, url, arn, dlq_url, dlq_arn


def test_sns_delivers_to_the_queue_as_sns_on_behalf_of_the_topic(subscribed: Any) -> None:
    session, check, topic, url, arn, dlq_url, _ = subscribed
    session.client("sns").publish(TopicArn=topic, Message="hello")
    assert bodies(session, url) == ["hello"]
    assert check.asked == [("sns.amazonaws.com", "sqs:SendMessage", arn, topic)]
    assert bodies(session, dlq_url) == []


def test_a_delivery_the_queue_policy_refuses_is_not_retried_and_moves_to_the_subscriptions_dlq(
    subscribed: Any,
) -> None:
    # "Amazon SNS dead-letter queues": a client-side error (a policy that prevents delivery) is not retried; the
    # message is discarded unless the subscription has a dead-letter queue
    session, check, topic, url, arn, dlq_url, dlq_arn = subscribed
    check.refuse.add(("sqs:SendMessage", arn))
    session.client("sns").publish(TopicArn=topic, Message="hello")
    assert bodies(session, url) == []
    assert bodies(session, dlq_url) == ["hello"]
    assert check.asked == [
        ("sns.amazonaws.com", "sqs:SendMessage", arn, topic),
        ("sns.amazonaws.com", "sqs:SendMessage", dlq_arn, topic),  # writing the DLQ needs its policy too
    ]


def test_with_the_dlq_refusing_too_the_message_is_discarded(subscribed: Any) -> None:
    session, check, topic, url, arn, dlq_url, dlq_arn = subscribed
    check.refuse |= {("sqs:SendMessage", arn), ("sqs:SendMessage", dlq_arn)}
    session.client("sns").publish(TopicArn=topic, Message="hello")
    assert bodies(session, url) == bodies(session, dlq_url) == []


def alarm_into_queue(session: Any) -> tuple[str, str, str]:
    topic = session.client("sns").create_topic(Name="alarms")["TopicArn"]
    url, arn = queue(session, "pager")
    session.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    session.client("cloudwatch").put_metric_alarm(
        AlarmName="dlq-not-empty",
        AlarmDescription="the DLQ holds messages",
        Namespace="AWS/SQS",
        MetricName="ApproximateNumberOfMessagesVisible",
        Dimensions=[{"Name": "QueueName", "Value": "dlq"}],
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
        AlarmActions=[topic],
    )
    return topic, url, arn


def test_an_alarm_entering_alarm_publishes_aws_alarm_message_to_its_topic_as_cloudwatch(aws: Any) -> None:
    session, check = aws
    topic, url, _ = alarm_into_queue(session)
    cw = session.client("cloudwatch")
    cw.set_alarm_state(AlarmName="dlq-not-empty", StateValue="ALARM", StateReason="test")
    (envelope,) = [json.loads(b) for b in bodies(session, url)]
    assert envelope["Subject"] == 'ALARM: "dlq-not-empty" in US East (N. Virginia)'
    message = json.loads(envelope["Message"])
    alarm_arn = cw.describe_alarms(AlarmNames=["dlq-not-empty"])["MetricAlarms"][0]["AlarmArn"]
    assert {k: message[k] for k in ("AlarmName", "NewStateValue", "OldStateValue", "NewStateReason", "AlarmArn")} == {
        "AlarmName": "dlq-not-empty",
        "NewStateValue": "ALARM",
        "OldStateValue": "OK",
        "NewStateReason": "test",
        "AlarmArn": alarm_arn,
    }
    assert message["Trigger"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert message["Trigger"]["Dimensions"] == [{"value": "dlq", "name": "QueueName"}]
    assert message["StateChangeTime"].endswith("+0000")
    assert ("cloudwatch.amazonaws.com", "sns:Publish", topic, alarm_arn) in check.asked

    # the same state again is no change: no action runs (SetAlarmState: "when the updated state differs")
    cw.set_alarm_state(AlarmName="dlq-not-empty", StateValue="ALARM", StateReason="again")
    assert bodies(session, url) == []
    # OK has no action configured
    cw.set_alarm_state(AlarmName="dlq-not-empty", StateValue="OK", StateReason="drained")
    assert bodies(session, url) == []


def test_an_alarm_action_the_topic_policy_refuses_publishes_nothing_and_is_recorded_as_failed(aws: Any) -> None:
    session, check = aws
    topic, url, _ = alarm_into_queue(session)
    check.refuse.add(("sns:Publish", topic))
    session.client("cloudwatch").set_alarm_state(AlarmName="dlq-not-empty", StateValue="ALARM", StateReason="t")
    assert bodies(session, url) == []
    from moto.cloudwatch.models import cloudwatch_backends

    history = cloudwatch_backends["123456789012"][REGION].alarms["dlq-not-empty"].history
    assert history[-1][0] == "Action"
    assert history[-1][1].startswith(f"Failed to execute action {topic}. Received error: cloudwatch.amazonaws.com")


def test_disabled_actions_do_not_run(aws: Any) -> None:
    session, _ = aws
    _, url, _ = alarm_into_queue(session)
    session.client("cloudwatch").disable_alarm_actions(AlarmNames=["dlq-not-empty"])
    session.client("cloudwatch").set_alarm_state(AlarmName="dlq-not-empty", StateValue="ALARM", StateReason="t")
    assert bodies(session, url) == []
