"""Amazon SNS delivering to a subscribed SQS queue as ``sns.amazonaws.com``, allowed or refused by the queue's policy.

moto's ``Subscription.publish`` sends to the queue unconditionally. SNS delivers as its service principal on behalf
of the topic (``aws:SourceArn`` the topic's ARN), so the queue policy must allow ``sqs:SendMessage`` to
``sns.amazonaws.com`` ("Subscribing an Amazon SQS queue to an Amazon SNS topic", SNS Developer Guide). A refused
delivery is a client-side error: SNS does not retry it, and discards the message unless the subscription has a
dead-letter queue (its ``RedrivePolicy``), where it is moved, that queue's policy permitting ("Amazon SNS
dead-letter queues", SNS Developer Guide). Cases: tests/local/services/test_service_deliveries.py.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Final

from moto.sns.models import Subscription
from moto.sqs import models as _sqs_models

from taskrail.local.services import delivery
from taskrail.local.services.patching import Patch, Signature, is_patched, original, patch, unpatch

__all__ = ["PATCHES", "SNS_PRINCIPAL"]

LOG = logging.getLogger(__name__)
SNS_PRINCIPAL: Final = "sns.amazonaws.com"


def _publish(self: Subscription, message: str, message_id: str, *args: Any, **kwargs: Any) -> None:
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

PATCHES: Final = (SQS_SUBSCRIPTIONS,)
