"""A profile's notification preference becomes an email subscription on the notifications topic, with a filter
policy on the message body (owner and outcome), so each user is told of their own tasks' outcomes only.

Run for each record of the Profiles table's stream (a pipe delivers them, at least once, in order per user): a
change of the choice subscribes, updates the policy, or unsubscribes. Every step is idempotent (SNS returns the
existing subscription for the same endpoint and attributes; an unsubscribe of a gone subscription is a no-op), so a
redelivered record changes nothing more.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from task_common.observability import logger, tracer
from users.models import notification_choice
from users.ports import EmailSubscriptions, SubscriptionRecords


class Action(StrEnum):
    UNCHANGED = "unchanged"
    SUBSCRIBED = "subscribed"
    POLICY_UPDATED = "policyUpdated"
    UNSUBSCRIBED = "unsubscribed"


@dataclass(frozen=True)
class ProfileChange:
    """One stream record: the user and the preferences text before and after (None: no image, or none set)."""

    user_id: str
    old_preferences: str | None
    new_preferences: str | None

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> ProfileChange | None:
        change = record.get("dynamodb") or {}
        user_id = (change.get("Keys") or {}).get("userId", {}).get("S")
        if not isinstance(user_id, str) or not user_id:
            return None

        def preferences(image_name: str) -> str | None:
            value = (change.get(image_name) or {}).get("preferences", {}).get("S")
            return value if isinstance(value, str) else None

        return cls(user_id, preferences("OldImage"), preferences("NewImage"))


@tracer.capture_method
def apply_change(
    change: ProfileChange, *, subscriptions: EmailSubscriptions, records: SubscriptionRecords, now: Callable[[], str]
) -> Action:
    wanted = notification_choice(change.new_preferences)
    if wanted == notification_choice(change.old_preferences):
        return Action.UNCHANGED
    stored = records.subscription_of(change.user_id)
    if wanted is None:
        if stored is not None:
            subscriptions.unsubscribe(stored[1])
            records.forget(change.user_id, at=now())
        return Action.UNSUBSCRIBED
    policy = wanted.filter_policy(change.user_id)
    if stored is not None and stored[0] == wanted.email:
        subscriptions.set_filter_policy(stored[1], policy)
        return Action.POLICY_UPDATED
    if stored is not None:
        subscriptions.unsubscribe(stored[1])
    subscription_arn = subscriptions.subscribe(wanted.email, policy)
    records.remember(change.user_id, wanted.email, subscription_arn, at=now())
    return Action.SUBSCRIBED


def apply_changes(
    records: Iterable[dict[str, Any]],
    *,
    subscriptions: EmailSubscriptions,
    stored: SubscriptionRecords,
    now: Callable[[], str],
) -> dict[str, list[str]]:
    """Every record in order; an error raises (the pipe retries the batch, every step being idempotent)."""
    done: dict[str, list[str]] = {}
    for record in records:
        change = ProfileChange.from_record(record)
        if change is None:
            continue
        action = apply_change(change, subscriptions=subscriptions, records=stored, now=now)
        if action != Action.UNCHANGED:
            logger.info("notification preference applied", extra={"userId": change.user_id, "action": action})
        done.setdefault(action.value, []).append(change.user_id)
    return done
