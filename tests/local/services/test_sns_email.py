"""SNS email subscriptions on the local stack (taskrail.local.services.sns_delivery, mailbox), as AWS behaves:

- Subscribe answers "pending confirmation" unless ReturnSubscriptionArn is true ("The ARN of the subscription if it
  is confirmed, or the string "pending confirmation" if the subscription requires confirmation. However, if the API
  request parameter ReturnSubscriptionArn is true, then the value is always the subscription ARN, even if the
  subscription requires confirmation", Subscribe, Amazon SNS API Reference);
- the endpoint gets a confirmation message with a token, and nothing else until ConfirmSubscription ("Verifies an
  endpoint owner's intent to receive messages by validating the token sent to the endpoint by an earlier Subscribe
  action", ConfirmSubscription, Amazon SNS API Reference) gets that token;
- a filter policy with FilterPolicyScope MessageBody is matched against the message body ("MessageBody - Applies
  the filter policy to the message body", "Amazon SNS subscription filter policy scope", SNS Developer Guide): all
  of its properties must match ("Amazon SNS message filtering").
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from taskrail.local.services import sns_delivery
from taskrail.local.services.mailbox import CONFIRMATION, MAILBOX, NOTIFICATION, read_mail
from tests.local.services.harness import REGION

ALICE_POLICY = {"owner": ["AIDAALICE"], "outcome": ["FAILED"]}


@pytest.fixture
def sns(tmp_path: Path) -> Iterator[tuple[Any, str]]:
    with mock_aws():
        sns_delivery.install()
        sns_delivery.install_email()
        MAILBOX.clear()
        MAILBOX.keep_in(tmp_path / "mail.jsonl")
        try:
            client = boto3.client("sns", region_name=REGION)
            yield client, client.create_topic(Name="notifications")["TopicArn"]
        finally:
            MAILBOX.keep_in(None)
            MAILBOX.clear()
            sns_delivery.uninstall_email()
            sns_delivery.uninstall()


def subscribe(client: Any, topic: str, email: str, policy: dict[str, Any], **kwargs: Any) -> str:
    return client.subscribe(
        TopicArn=topic,
        Protocol="email",
        Endpoint=email,
        Attributes={"FilterPolicy": json.dumps(policy), "FilterPolicyScope": "MessageBody"},
        **kwargs,
    )["SubscriptionArn"]


def outcome(owner: str, status: str) -> str:
    return json.dumps({"taskId": f"{owner}-{status}", "owner": owner, "outcome": status, "executionArn": "arn:x"})


def confirm(client: Any, topic: str, email: str) -> str:
    (confirmation,) = [m for m in MAILBOX.messages(email) if m.kind == CONFIRMATION]
    return client.confirm_subscription(TopicArn=topic, Token=confirmation.token)["SubscriptionArn"]


def notifications(email: str) -> list[dict[str, Any]]:
    return [json.loads(m.body) for m in MAILBOX.messages(email) if m.kind == NOTIFICATION]


def test_subscribe_answers_pending_confirmation_unless_the_arn_is_asked_for(sns) -> None:
    client, topic = sns
    assert subscribe(client, topic, "alice@example.com", ALICE_POLICY) == "pending confirmation"
    arn = subscribe(client, topic, "bob@example.com", ALICE_POLICY, ReturnSubscriptionArn=True)
    attributes = client.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
    print(arn, attributes["PendingConfirmation"])
    assert arn.startswith(f"{topic}:")
    assert attributes["PendingConfirmation"] == "true"


def test_a_pending_subscription_gets_its_confirmation_and_no_notification(sns) -> None:
    client, topic = sns
    subscribe(client, topic, "alice@example.com", ALICE_POLICY, ReturnSubscriptionArn=True)
    client.publish(TopicArn=topic, Message=outcome("AIDAALICE", "FAILED"))
    mail = MAILBOX.messages("alice@example.com")
    print([(m.kind, m.subject) for m in mail])
    assert [m.kind for m in mail] == [CONFIRMATION]
    assert mail[0].token and mail[0].token in mail[0].body


def test_a_confirmed_subscription_gets_only_what_its_body_policy_matches(sns) -> None:
    client, topic = sns
    arn = subscribe(client, topic, "alice@example.com", ALICE_POLICY, ReturnSubscriptionArn=True)
    assert confirm(client, topic, "alice@example.com") == arn
    for owner, status in (("AIDAALICE", "FAILED"), ("AIDAALICE", "SUCCEEDED"), ("AIDABOB", "FAILED")):
        client.publish(TopicArn=topic, Message=outcome(owner, status))
    received = notifications("alice@example.com")
    print(received)
    assert [(n["owner"], n["outcome"]) for n in received] == [("AIDAALICE", "FAILED")]
    attributes = client.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
    assert attributes["PendingConfirmation"] == "false"


def test_a_body_policy_does_not_match_message_attributes(sns) -> None:
    client, topic = sns
    subscribe(client, topic, "alice@example.com", ALICE_POLICY, ReturnSubscriptionArn=True)
    confirm(client, topic, "alice@example.com")
    client.publish(
        TopicArn=topic,
        Message=json.dumps({"note": "the owner is in the attributes only"}),
        MessageAttributes={
            "owner": {"DataType": "String", "StringValue": "AIDAALICE"},
            "outcome": {"DataType": "String", "StringValue": "FAILED"},
        },
    )
    assert notifications("alice@example.com") == []


def test_a_wrong_token_confirms_nothing(sns) -> None:
    client, topic = sns
    subscribe(client, topic, "alice@example.com", ALICE_POLICY, ReturnSubscriptionArn=True)
    with pytest.raises(ClientError) as refused:
        client.confirm_subscription(TopicArn=topic, Token="0" * 64)
    print(refused.value.response["Error"])
    assert refused.value.response["Error"]["Code"] == "InvalidParameter"
    client.publish(TopicArn=topic, Message=outcome("AIDAALICE", "FAILED"))
    assert notifications("alice@example.com") == []


def test_an_unsubscribed_address_gets_nothing_more(sns) -> None:
    client, topic = sns
    arn = subscribe(client, topic, "alice@example.com", ALICE_POLICY, ReturnSubscriptionArn=True)
    confirm(client, topic, "alice@example.com")
    client.unsubscribe(SubscriptionArn=arn)
    client.publish(TopicArn=topic, Message=outcome("AIDAALICE", "FAILED"))
    assert notifications("alice@example.com") == []


def test_the_mailbox_file_holds_what_another_process_reads(sns, tmp_path: Path) -> None:
    client, topic = sns
    subscribe(client, topic, "alice@example.com", ALICE_POLICY, ReturnSubscriptionArn=True)
    confirm(client, topic, "alice@example.com")
    client.publish(TopicArn=topic, Message=outcome("AIDAALICE", "FAILED"))
    on_disk = read_mail(tmp_path / "mail.jsonl", "alice@example.com")
    assert [m.kind for m in on_disk] == [CONFIRMATION, NOTIFICATION]
    assert oct((tmp_path / "mail.jsonl").stat().st_mode & 0o777) == "0o600"
