"""The Users and Profiles items, GET /me's request and answer, and a profile's notification choice.

A Users item: ``userId`` (the owner identity of the API's owner.vtl, the same key as a task's ``userId``),
``username``, ``status``, ``createdAt``, ``updatedAt``, and once the user asks for notifications ``email`` and the
SNS subscription's ARN. A Profiles item: ``userId``, ``fullName``, ``avatar`` (a key under ``users/{userId}/``),
``preferences`` (JSON text, written by PUT /me/profile's template), ``lastLogin``, ``updatedAt``. Timestamps are the
API's RFC 3339 form (``task_common.contract.api_time``), so they compare as text.
"""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from task_common.contract import Status
from task_common.models import CamelModel

USER_ACTIVE = "ACTIVE"
# What a preference asks for, as the outcome values the notification body carries (task_changes.outbox): a task
# that failed, or was rejected (its parameters were refused), is a task that failed to its owner.
FAILURE_OUTCOMES: tuple[str, ...] = (Status.FAILED.value, Status.REJECTED.value)
SUCCESS_OUTCOMES: tuple[str, ...] = (Status.SUCCEEDED.value,)


class MeRequest(CamelModel):
    """``owner`` and ``owner_arn`` as the API's owner.vtl computed them from the caller's signature."""

    owner: str = Field(min_length=1, max_length=256)
    owner_arn: str = Field(default="", max_length=2048)


class UserRecord(CamelModel):
    user_id: str
    username: str | None = None
    email: str | None = None
    status: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    notification_subscription_arn: str | None = None

    def public(self) -> dict[str, Any]:
        """What GET /me shows: the subscription's ARN is the platform's, not the user's."""
        return self.model_dump(mode="json", exclude_none=True, exclude={"notification_subscription_arn"})


class ProfileRecord(CamelModel):
    user_id: str
    full_name: str | None = None
    avatar: str | None = None
    preferences: str | None = None  # JSON text
    last_login: str | None = None
    updated_at: str | None = None

    def public(self) -> dict[str, Any]:
        shown = self.model_dump(mode="json", exclude_none=True, exclude={"preferences"})
        shown["preferences"] = preferences_of(self.preferences)
        return shown


class MeAnswer(CamelModel):
    status_code: int
    body: dict[str, Any]


def preferences_of(text: str | None) -> dict[str, Any]:
    """The stored preferences; ``{}`` when there are none (or, never written by the API, not a JSON object)."""
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class NotificationChoice(CamelModel):
    """Where a user's outcome emails go and which outcomes they are told of."""

    email: str
    outcomes: tuple[str, ...]

    def filter_policy(self, owner: str) -> dict[str, list[str]]:
        """Matched against the notification's body (FilterPolicyScope MessageBody): this owner's tasks only, these
        outcomes only. Both keys must match ("Amazon SNS message filtering": all properties of the policy)."""
        return {"owner": [owner], "outcome": list(self.outcomes)}


def notification_choice(preferences: str | None) -> NotificationChoice | None:
    """``preferences.notifications`` (``email``, ``onFailed``, ``onSucceeded``) as a choice; None asks for nothing."""
    notifications = preferences_of(preferences).get("notifications")
    if not isinstance(notifications, dict):
        return None
    email = notifications.get("email")
    outcomes = (FAILURE_OUTCOMES if notifications.get("onFailed") is True else ()) + (
        SUCCESS_OUTCOMES if notifications.get("onSucceeded") is True else ()
    )
    if not isinstance(email, str) or not email or not outcomes:
        return None
    return NotificationChoice(email=email, outcomes=outcomes)


class AccessLogLine(CamelModel):
    """The fields of one line of the REST API's access log (infra/constructs/api.py ``ACCESS_LOG_FIELDS``) that say
    who called: API Gateway writes ``-`` for a variable without a value (an unauthenticated request's user)."""

    user: str = ""
    user_arn: str = ""
    status: str = ""

    def caller(self) -> tuple[str, str] | None:
        """(``$context.identity.user``, ``userArn``) of an authenticated request; None for any other line."""
        if self.user in ("", "-"):
            return None
        return self.user, "" if self.user_arn == "-" else self.user_arn


class LogEvent(CamelModel):
    id: str
    timestamp: int
    message: str


class LogsData(CamelModel):
    """The decoded ``awslogs.data`` of a CloudWatch Logs subscription's delivery."""

    message_type: str
    owner: str = ""
    log_group: str = ""
    log_stream: str = ""
    subscription_filters: list[str] = Field(default_factory=list)
    log_events: list[LogEvent] = Field(default_factory=list)


class LogsSubscriptionEvent(BaseModel):
    """A CloudWatch Logs subscription's event: ``{"awslogs": {"data": base64(gzip(JSON))}}``."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    awslogs: dict[str, str]

    def data(self) -> LogsData:
        raw = gzip.decompress(base64.b64decode(self.awslogs["data"], validate=True))
        return LogsData.model_validate_json(raw)
