"""GET /me: the caller's user record and profile, through the caller's sign-in (users/sign_in.py: the record
created on the first request, never twice, ``lastLogin`` written at most once an hour; docs/DECISIONS.md "Users
and profiles: GET /me"). The record usually exists already: the access log's subscriber (users/seen.py) signs in
every authenticated caller of any route.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from task_common.observability import tracer
from users.models import MeAnswer, MeRequest
from users.ports import UserDirectory
from users.sign_in import sign_in, username_of

__all__ = ["read_me", "username_of"]


@tracer.capture_method
def read_me(request: MeRequest, *, directory: UserDirectory, now: Callable[[], datetime]) -> MeAnswer:
    user, profile = sign_in(request.owner, request.owner_arn, directory=directory, now=now)
    return MeAnswer(status_code=200, body={"user": user.public(), "profile": profile.public()})
