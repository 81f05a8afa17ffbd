"""The local stack's mailbox: where SNS deliveries that would be emails land (``email`` and ``email-json``
subscriptions), read by ``taskrail mail`` and the console.

Each message is one JSON line of ``mail.jsonl`` in the stack's log folder (0600 in a 0700 folder, like the IAM
decisions file), so another process (the CLI) reads it without talking to the stack, and it is kept in memory too,
for the stack's own readers. Standard library only: the CLI reads the file through :func:`read_mail`.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Final

if TYPE_CHECKING:
    from taskrail.local.emulator import EmulatorContext

__all__ = ["CONFIRMATION", "MAILBOX", "MAIL_FILE", "NOTIFICATION", "Mail", "Mailbox", "MailboxEmulator", "read_mail"]

MAIL_FILE: Final = "mail.jsonl"
CONFIRMATION: Final = "SubscriptionConfirmation"
NOTIFICATION: Final = "Notification"
_FILE_MODE: Final = 0o600


@dataclass(frozen=True)
class Mail:
    """One email as SNS would send it: to an address, about a topic's subscription."""

    to: str
    subject: str
    body: str
    kind: str  # CONFIRMATION or NOTIFICATION
    topic_arn: str
    subscription_arn: str
    token: str = ""  # a confirmation's token (what the link in AWS's email carries to ConfirmSubscription)
    message_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    sent_at: float = field(default_factory=time.time)

    @classmethod
    def from_json(cls, line: str) -> Mail:
        return cls(**json.loads(line))


class Mailbox:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._mail: list[Mail] = []
        self._path: Path | None = None

    def keep_in(self, path: Path | None) -> None:
        """Also append every message to ``path`` (None: memory only)."""
        with self._lock:
            self._path = path

    def deliver(self, mail: Mail) -> None:
        with self._lock:
            self._mail.append(mail)
            if self._path is not None:
                fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, _FILE_MODE)
                with os.fdopen(fd, "a") as file:
                    file.write(json.dumps(asdict(mail)) + "\n")

    def messages(self, to: str | None = None) -> list[Mail]:
        with self._lock:
            return [m for m in self._mail if to is None or m.to == to]

    def clear(self) -> None:
        with self._lock:
            self._mail.clear()


MAILBOX: Final = Mailbox()


class MailboxEmulator:
    """The stack's mailbox, kept in its log folder while it runs; emptied by a reset, as every other service."""

    name: ClassVar[str] = "mailbox"
    restart_on_reset: ClassVar[bool] = True

    def start(self, context: EmulatorContext) -> None:
        MAILBOX.clear()
        if context.log_dir is not None:
            context.log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            path = context.log_dir / MAIL_FILE
            path.unlink(missing_ok=True)
            MAILBOX.keep_in(path)

    def stop(self) -> None:
        MAILBOX.keep_in(None)


def read_mail(path: Path, to: str | None = None) -> list[Mail]:
    """The messages a stack wrote to ``path`` (oldest first); none when it has not written any."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    found = [Mail.from_json(line) for line in lines if line.strip()]
    return [m for m in found if to is None or m.to == to]
