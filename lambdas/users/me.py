"""GET /me: the caller's user record and profile, the record created on the first request, never twice, and
``lastLogin`` written at most once an hour (docs/DECISIONS.md "Users and profiles: GET /me").

The usual request is two strongly consistent reads and no write; a write happens when a record is missing or the
last login is more than :data:`LOGIN_REFRESH` old, and each write is conditional, so concurrent requests write once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta

from task_common.contract import api_time
from task_common.observability import tracer
from users.models import MeAnswer, MeRequest
from users.ports import UserDirectory

LOGIN_REFRESH = timedelta(hours=1)
# arn:aws:iam::123456789012:user/alice → alice; arn:aws:sts::123456789012:assumed-role/ci/session → ci (the owner
# is the role's, not the session's: owner.vtl)
_USER_ARN = re.compile(r"^arn:aws[a-z-]*:iam::[0-9]{12}:user/(?:.*/)?(?P<name>[^/]+)$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:sts::[0-9]{12}:assumed-role/(?P<name>[^/]+)/[^/]+$")


def username_of(owner: str, owner_arn: str) -> str:
    """The IAM user's or role's name from the caller's ARN; the owner id when the ARN says neither."""
    for pattern in (_USER_ARN, _ROLE_ARN):
        match = pattern.match(owner_arn)
        if match:
            return match.group("name")
    return owner


@tracer.capture_method
def read_me(request: MeRequest, *, directory: UserDirectory, now: Callable[[], datetime]) -> MeAnswer:
    moment = now()
    at, refresh_before = api_time(moment), api_time(moment - LOGIN_REFRESH)
    user = directory.user(request.owner)
    if user is None or user.created_at is None:
        user = directory.create_user(request.owner, username_of(request.owner, request.owner_arn), at=at)
    profile = directory.profile(request.owner)
    if profile is None or profile.last_login is None or profile.last_login < refresh_before:
        profile = directory.record_login(request.owner, at=at, unless_since=refresh_before)
    return MeAnswer(status_code=200, body={"user": user.public(), "profile": profile.public()})
