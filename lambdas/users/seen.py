"""Every authenticated caller of any route is signed in (users/sign_in.py), from the REST API's access log.

The routes are direct API Gateway integrations (one service call, no function), so none of them can create a user
record. The stage writes one JSON line per request to its access log group; a CloudWatch Logs subscription filter
selects the authenticated requests' lines and hands them, in batches, to this function (the event is the
documented subscription payload: ``awslogs.data``, base64 of gzip of ``{messageType, owner, logGroup, logStream,
subscriptionFilters, logEvents: [{id, timestamp, message}]}``, "Using CloudWatch Logs subscription filters",
https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/SubscriptionFilters.html). Each line's owner is derived as
owner.vtl derives a task's owner, the batch is de-duplicated by owner, and each owner is signed in once.

A container remembers who it signed in within the last :data:`~users.sign_in.LOGIN_REFRESH` (:class:`SeenMemo`),
so a busy caller costs no read either until the hour has passed; another container (or GET /me) may still read and
finds the record fresh. docs/DECISIONS.md "Users and profiles: the record on any first request".
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from task_common.observability import logger, tracer
from users.models import AccessLogLine
from users.ports import UserDirectory
from users.sign_in import LOGIN_REFRESH, owner_of, sign_in

DATA_MESSAGE = "DATA_MESSAGE"
MEMO_SIZE = 10_000  # owners per container; the oldest is forgotten first


@dataclass(frozen=True)
class Caller:
    owner: str
    owner_arn: str


def _at(moment: datetime) -> Callable[[], datetime]:
    return lambda: moment


def _moment_of(text: str | None) -> datetime | None:
    """An API timestamp (``task_common.contract.api_time``: RFC 3339, UTC) as a moment."""
    try:
        return datetime.fromisoformat(text or "")
    except ValueError:
        return None


class SeenMemo:
    """The owners this container signed in, and when their ``lastLogin`` was written: one whose login is less than
    an hour old is not even read again (so ``lastLogin`` stays within the hour, written at most once in it)."""

    def __init__(self, size: int = MEMO_SIZE) -> None:
        self._size = size
        self._seen: OrderedDict[str, datetime] = OrderedDict()

    def fresh(self, owner: str, moment: datetime) -> bool:
        seen = self._seen.get(owner)
        return seen is not None and moment - seen < LOGIN_REFRESH

    def remember(self, owner: str, moment: datetime) -> None:
        self._seen[owner] = moment
        self._seen.move_to_end(owner)
        while len(self._seen) > self._size:
            self._seen.popitem(last=False)


def callers_of(message_type: str, messages: Iterable[str]) -> list[Caller]:
    """The distinct callers of a batch's access log lines, in order of first appearance; a CONTROL_MESSAGE (CloudWatch
    Logs' reachability check) and lines of no authenticated caller give none."""
    if message_type != DATA_MESSAGE:
        return []
    callers: dict[str, Caller] = {}
    for message in messages:
        try:
            line = AccessLogLine.model_validate(json.loads(message))
        except (ValueError, ValidationError):
            logger.warning("not an access log line", extra={"line": message[:200]})
            continue
        found = line.caller()
        if found is not None:
            owner = owner_of(*found)
            callers.setdefault(owner, Caller(owner, found[1]))
    return list(callers.values())


@dataclass(frozen=True)
class SeenAnswer:
    signed_in: list[str]
    skipped: list[str]  # seen by this container within the hour

    def as_dict(self) -> dict[str, list[str]]:
        return {"signedIn": self.signed_in, "skipped": self.skipped}


@tracer.capture_method
def record_callers(
    callers: Iterable[Caller], *, directory: UserDirectory, memo: SeenMemo, now: Callable[[], datetime]
) -> SeenAnswer:
    """Each caller signed in unless this container did within the hour; an error raises (Lambda retries the
    asynchronous invocation; every write is conditional, so a retry writes nothing twice)."""
    signed_in, skipped = [], []
    for caller in callers:
        moment = now()
        if memo.fresh(caller.owner, moment):
            skipped.append(caller.owner)
            continue
        _, profile = sign_in(caller.owner, caller.owner_arn, directory=directory, now=_at(moment))
        memo.remember(caller.owner, _moment_of(profile.last_login) or moment)
        signed_in.append(caller.owner)
    return SeenAnswer(signed_in, skipped)
