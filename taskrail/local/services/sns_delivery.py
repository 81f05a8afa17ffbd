"""Amazon SNS delivering to a subscribed SQS queue as ``sns.amazonaws.com``, allowed or refused by the queue's policy.

moto's ``Subscription.publish`` sends to the queue unconditionally. SNS delivers as its service principal on behalf
of the topic (``aws:SourceArn`` the topic's ARN), so the queue policy must allow ``sqs:SendMessage`` to
``sns.amazonaws.com`` ("Subscribing an Amazon SQS queue to an Amazon SNS topic", SNS Developer Guide). A refused
delivery is a client-side error: SNS does not retry it, and discards the message unless the subscription has a
dead-letter queue (its ``RedrivePolicy``), where it is moved, that queue's policy permitting ("Amazon SNS
dead-letter queues", SNS Developer Guide). Cases: tests/local/services/test_service_deliveries.py.

Email (``email``, ``email-json``): moto 5.2.5 confirms every subscription at once (``PendingConfirmation`` False)
and delivers nothing to an email endpoint. On AWS an email subscription is pending until its owner confirms it:
Subscribe answers ``pending confirmation`` instead of the ARN unless ``ReturnSubscriptionArn`` is true ("The ARN of
the subscription if it is confirmed, or the string "pending confirmation" if the subscription requires
confirmation", Subscribe, SNS API Reference); SNS sends a confirmation message carrying a token, and
ConfirmSubscription ("Verifies an endpoint owner's intent to receive messages by validating the token sent to the
endpoint by an earlier Subscribe action", SNS API Reference) makes it deliver; CDK's EmailSubscription: "Email
subscriptions require confirmation". Locally the confirmation message lands in the local mailbox
(:mod:`taskrail.local.services.mailbox`) with its token, nothing is delivered to the address until ConfirmSubscription
gets that token (``taskrail mail --confirm``, the console), and then each message that passes the subscription's
filter policy (moto's matcher, on the attributes or, with FilterPolicyScope MessageBody, on the body: "Amazon SNS
subscription filter policy scope") lands in the mailbox. Cases: tests/local/services/test_sns_email.py.
"""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any, Final

from moto.core.responses import ActionResult
from moto.sns.exceptions import SNSInvalidParameter, SNSNotFoundError
from moto.sns.models import SNSBackend, Subscription
from moto.sns.responses import SNSResponse
from moto.sqs import models as _sqs_models

from taskrail.local.services import delivery
from taskrail.local.services.mailbox import CONFIRMATION, MAILBOX, NOTIFICATION, Mail
from taskrail.local.services.patching import Check, Patch, Signature, is_patched, lock, original, patch, unpatch

__all__ = ["EMAIL_PROTOCOLS", "PATCHES", "PENDING_CONFIRMATION", "SNS_PRINCIPAL"]

LOG = logging.getLogger(__name__)
SNS_PRINCIPAL: Final = "sns.amazonaws.com"


EMAIL_PROTOCOLS: Final = ("email", "email-json")
PENDING_CONFIRMATION: Final = "pending confirmation"
CONFIRMATION_SUBJECT: Final = "AWS Notification - Subscription Confirmation"
NOTIFICATION_SUBJECT: Final = "AWS Notification Message"
_tokens: dict[str, str] = {}  # a confirmation's token -> its subscription's ARN (under patching.lock)


def _is_pending(subscription: Subscription) -> bool:
    return subscription.attributes.get("PendingConfirmation") in (True, "true")


def _email(subscription: Subscription, message: str, message_id: str, subject: str | None, kwargs: Any) -> None:
    """SNS's email delivery: nothing while pending, then what passes the filter policy, into the mailbox."""
    matcher = subscription._filter_policy_matcher
    if matcher is not None and not matcher.matches(kwargs.get("message_attributes"), message):
        return
    if _is_pending(subscription):
        LOG.info("SNS %s: not delivered to %s, pending confirmation", subscription.arn, subscription.endpoint)
        return
    if kwargs.get("message_structure") == "json":
        message = subscription._parse_message_structure(message, subscription.protocol)
    body = message
    if subscription.protocol == "email-json":
        body = json.dumps(subscription.get_post_data(message, message_id, subject))
    MAILBOX.deliver(
        Mail(
            to=subscription.endpoint,
            subject=subject or NOTIFICATION_SUBJECT,
            body=body,
            kind=NOTIFICATION,
            topic_arn=subscription.topic.arn,
            subscription_arn=subscription.arn,
        )
    )


def _publish(self: Subscription, message: str, message_id: str, *args: Any, **kwargs: Any) -> None:
    if self.protocol in EMAIL_PROTOCOLS:
        subject = args[0] if args else kwargs.get("subject")
        names = ("message_attributes", "group_id", "deduplication_id", "message_structure")
        _email(self, message, message_id, subject, {**dict(zip(names, args[1:], strict=False)), **kwargs})
        return
    if self.protocol == "sqs":
        denied = delivery.check(SNS_PRINCIPAL, "sqs:SendMessage", self.endpoint, self.topic.arn)
        if denied is not None:
            _dead_letter(self, message, denied)
            return
    original(Subscription, "publish")(self, message, message_id, *args, **kwargs)


def _dead_letter(subscription: Subscription, message: str, reason: str) -> None:
    redrive = subscription.attributes.get("RedrivePolicy")
    target = json.loads(redrive).get("deadLetterTargetArn") if isinstance(redrive, str) and redrive else None
    if not target:
        LOG.error("SNS %s: delivery to %s refused, message discarded (no DLQ): %s", subscription.arn,
                  subscription.endpoint, reason)  # fmt: skip
        return
    refused = delivery.check(SNS_PRINCIPAL, "sqs:SendMessage", target, subscription.topic.arn)
    if refused is not None:
        LOG.error("SNS %s: delivery to %s refused (%s), and the DLQ refused it: %s", subscription.arn,
                  subscription.endpoint, reason, refused)  # fmt: skip
        return
    LOG.warning("SNS %s: delivery to %s refused, message moved to %s: %s", subscription.arn, subscription.endpoint,
                target, reason)  # fmt: skip
    _, _, _, region, account, name = target.split(":", 5)
    _sqs_models.sqs_backends[account][region].send_message(name, message)


def install() -> None:
    if not is_patched(Subscription, "publish"):
        patch(Subscription, "publish", _publish)


def uninstall() -> None:
    if is_patched(Subscription, "publish"):
        unpatch(Subscription, "publish")


def _subscribe(self: SNSBackend, topic_arn: str, endpoint: str, protocol: str) -> Subscription:
    """A new email subscription is pending, and its confirmation message (with its token) goes to the mailbox."""
    known = self._find_subscription(topic_arn, endpoint, protocol) if protocol in EMAIL_PROTOCOLS else None
    subscription = original(SNSBackend, "subscribe")(self, topic_arn, endpoint, protocol)
    if protocol not in EMAIL_PROTOCOLS or known is not None:
        return subscription
    subscription.attributes["PendingConfirmation"] = True
    subscription.attributes["ConfirmationWasAuthenticated"] = False
    token = secrets.token_hex(32)
    with lock:
        _tokens[token] = subscription.arn
    MAILBOX.deliver(
        Mail(
            to=endpoint,
            subject=CONFIRMATION_SUBJECT,
            body=(
                f"You have chosen to subscribe to the topic: {topic_arn}\n"
                f"To confirm this subscription: taskrail mail --confirm {token[:12]} (the token: {token})"
            ),
            kind=CONFIRMATION,
            topic_arn=topic_arn,
            subscription_arn=subscription.arn,
            token=token,
        )
    )
    return subscription


def _subscribe_response(self: SNSResponse) -> ActionResult:
    """Subscribe's answer: ``pending confirmation`` for a pending subscription, unless ReturnSubscriptionArn."""
    result = original(SNSResponse, "subscribe")(self)
    arn = result.result["SubscriptionArn"]
    subscription = self.backend.subscriptions.get(arn)
    wants_arn = str(self._get_param("ReturnSubscriptionArn", "false")).lower() == "true"
    if subscription is not None and _is_pending(subscription) and not wants_arn:
        return ActionResult({"SubscriptionArn": PENDING_CONFIRMATION})
    return result


def _confirm_subscription(self: SNSResponse) -> ActionResult:
    """ConfirmSubscription checks the token of an earlier Subscribe and makes that subscription deliver."""
    topic_arn, token = self._get_param("TopicArn"), self._get_param("Token")
    if topic_arn not in self.backend.topics:
        raise SNSNotFoundError("Topic does not exist")
    with lock:
        arn = _tokens.get(token or "")
    subscription = self.backend.subscriptions.get(arn) if arn else None
    if subscription is None or subscription.topic.arn != topic_arn:
        raise SNSInvalidParameter("Invalid parameter: Token")
    subscription.attributes["PendingConfirmation"] = False
    subscription.attributes["ConfirmationWasAuthenticated"] = (
        str(self._get_param("AuthenticateOnUnsubscribe", "false")).lower() == "true"
    )
    subscription.confirmed = True
    return ActionResult({"SubscriptionArn": subscription.arn})


_EMAIL_PATCHES: Final = (
    (SNSBackend, "subscribe", _subscribe),
    (SNSResponse, "subscribe", _subscribe_response),
    (SNSResponse, "confirm_subscription", _confirm_subscription),
)


def install_email() -> None:
    for owner, name, function in _EMAIL_PATCHES:
        if not is_patched(owner, name):
            patch(owner, name, function)


def uninstall_email() -> None:
    for owner, name, _ in _EMAIL_PATCHES:
        if is_patched(owner, name):
            unpatch(owner, name)


SQS_SUBSCRIPTIONS: Final = Patch(
    "SNS delivers to subscribed queues as sns.amazonaws.com, checked against the queue policy",
    depends=(
        Signature(
            "moto.sns.models.Subscription.publish",
            lambda: original(Subscription, "publish"),
            (
                "self",
                "message",
                "message_id",
                "subject",
                "message_attributes",
                "group_id",
                "deduplication_id",
                "message_structure",
            ),
        ),
        # a refused delivery's dead letter calls SQSBackend.send_message: declared by services/sqs.py
    ),
    install=install,
    uninstall=uninstall,
)

EMAIL_SUBSCRIPTIONS: Final = Patch(
    "email subscriptions are pending until ConfirmSubscription gets their token; deliveries land in the mailbox",
    depends=(
        Signature(
            "moto.sns.models.SNSBackend.subscribe",
            lambda: original(SNSBackend, "subscribe"),
            ("self", "topic_arn", "endpoint", "protocol"),
        ),
        Signature(
            "moto.sns.models.SNSBackend._find_subscription",
            lambda: SNSBackend._find_subscription,
            ("self", "topic_arn", "endpoint", "protocol"),
        ),
        Signature("moto.sns.responses.SNSResponse.subscribe", lambda: original(SNSResponse, "subscribe"), ("self",)),
        Signature(
            "moto.sns.responses.SNSResponse.confirm_subscription",
            lambda: original(SNSResponse, "confirm_subscription"),
            ("self",),
        ),
        Check(
            "moto.sns.models.Subscription._filter_policy_matcher",
            lambda: "_filter_policy_matcher" in Subscription.__init__.__code__.co_names,
            "is the subscription's filter policy matcher (set by SetSubscriptionAttributes FilterPolicy)",
        ),
    ),
    install=install_email,
    uninstall=uninstall_email,
)

PATCHES: Final = (SQS_SUBSCRIPTIONS, EMAIL_SUBSCRIPTIONS)
