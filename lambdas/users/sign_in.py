"""A caller's sign-in: the user record created on the first authenticated request, never twice, and ``lastLogin``
refreshed at most once an hour. GET /me (users/me.py) and the access log's subscriber (users/seen.py) both call
:func:`sign_in` (docs/DECISIONS.md "Users and profiles: the record on any first request").

The usual call is two strongly consistent reads and no write; a write happens when a record is missing or the last
login is more than :data:`LOGIN_REFRESH` old, and each write is conditional, so concurrent sign-ins write once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta

from task_common.contract import api_time
from users.models import ProfileRecord, UserRecord
from users.ports import UserDirectory

LOGIN_REFRESH = timedelta(hours=1)
# arn:aws:iam::123456789012:user/alice → alice; arn:aws:sts::123456789012:assumed-role/ci/session → ci (the owner
# is the role's, not the session's: owner.vtl)
_USER_ARN = re.compile(r"^arn:aws[a-z-]*:iam::[0-9]{12}:user/(?:.*/)?(?P<name>[^/]+)$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:sts::[0-9]{12}:assumed-role/(?P<name>[^/]+)/[^/]+$")
# owner.vtl's two tests: an assumed-role session's ARN, and its user "ROLEID:session-name"
_SESSION_ARN = re.compile(r"^arn:aws[a-z-]*:sts::[0-9]{12}:assumed-role/[^/]+/[^/]+$")
_SESSION_USER = re.compile(r"^AROA[A-Z0-9]+:.+$")


def owner_of(user: str, user_arn: str) -> str:
    """The task owner of a caller, exactly as the API's owner.vtl computes it from ``$context.identity.user`` and
    ``userArn``: an IAM user's unique id (AIDA...), an assumed role's unique id (AROA..., the part of
    ``ROLEID:session-name`` before the colon), since a role's session name changes with every session."""
    if _SESSION_ARN.match(user_arn) and _SESSION_USER.match(user):
        return user[: user.index(":")]
    return user


def username_of(owner: str, owner_arn: str) -> str:
    """The IAM user's or role's name from the caller's ARN; the owner id when the ARN says neither."""
    for pattern in (_USER_ARN, _ROLE_ARN):
        match = pattern.match(owner_arn)
        if match:
            return match.group("name")
    return owner


def sign_in(
    owner: str, owner_arn: str, *, directory: UserDirectory, now: Callable[[], datetime]
) -> tuple[UserRecord, ProfileRecord]:
    """The caller's record (created if missing) and profile (``lastLogin`` written if missing or an hour old)."""
    moment = now()
    at, refresh_before = api_time(moment), api_time(moment - LOGIN_REFRESH)
    user = directory.user(owner)
    if user is None or user.created_at is None:
        user = directory.create_user(owner, username_of(owner, owner_arn), at=at)
    profile = directory.profile(owner)
    if profile is None or profile.last_login is None or profile.last_login < refresh_before:
        profile = directory.record_login(owner, at=at, unless_since=refresh_before)
    return user, profile
