"""The local stack's mailbox for people: the emails SNS would have sent (``taskrail mail`` and the console).

On AWS these are real emails; locally they are the lines of the stack's ``mail.jsonl``
(:mod:`taskrail.local.services.mailbox`). Confirming a subscription is what the link of AWS's confirmation email
does: ConfirmSubscription with the message's token.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from taskrail.local.services.mailbox import CONFIRMATION, MAIL_FILE, Mail, read_mail

MIN_TOKEN_PREFIX = 8


class MailError(Exception):
    pass


def mailbox_path(log_dir: Path) -> Path:
    return log_dir / MAIL_FILE


def messages(log_dir: Path, to: str | None = None) -> list[Mail]:
    return read_mail(mailbox_path(log_dir), to)


def confirmation_for(log_dir: Path, token_prefix: str) -> Mail:
    """The one confirmation message whose token starts with ``token_prefix``."""
    if len(token_prefix) < MIN_TOKEN_PREFIX:
        raise MailError(f"give at least {MIN_TOKEN_PREFIX} characters of the token")
    found = [m for m in messages(log_dir) if m.kind == CONFIRMATION and m.token.startswith(token_prefix)]
    if len(found) != 1:
        raise MailError(f"{len(found)} confirmation messages have a token starting with {token_prefix!r}")
    return found[0]


def confirm(log_dir: Path, token_prefix: str, sns: Callable[[], Any]) -> str:
    """ConfirmSubscription with the token of that message (what clicking its link does); the subscription's ARN."""
    mail = confirmation_for(log_dir, token_prefix)
    return str(sns().confirm_subscription(TopicArn=mail.topic_arn, Token=mail.token)["SubscriptionArn"])


def as_json(mail: Mail) -> dict[str, Any]:
    shown = asdict(mail)
    if mail.kind != CONFIRMATION:
        shown.pop("token")
    with contextlib.suppress(ValueError):
        shown["message"] = json.loads(mail.body)
    return shown
