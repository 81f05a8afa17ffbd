"""Reading the task dead-letter queue without disturbing it."""

from __future__ import annotations

import json
from collections.abc import Generator
from contextlib import closing
from typing import Any

from task_common.contract import api_timestamp
from taskrail.operator.ports import DeadLetters

DLQ_MESSAGE_FIELDS = ("messageId", "taskId", "error", "cause", "attempt", "executionArn", "sentAt")


def scan(queue: DeadLetters, hide_seconds: int) -> Generator[dict[str, Any], None, None]:
    """Every DLQ message once, each hidden while the scan runs (so receiving again moves on to the others).

    The caller deletes what it handled (``message["handled"] = True`` after a delete); the rest is made visible
    again when the scan ends, so a peek or a filtered replay leaves other messages where they were.
    """
    held: list[dict[str, Any]] = []
    try:
        while batch := queue.receive(hide_seconds):
            for message in batch:
                held.append(message)
                yield message
    finally:
        queue.release([m for m in held if not m.get("handled")])


def entry(message: dict[str, Any]) -> dict[str, Any]:
    """A message as the operator reads it: its id, when it was sent (epoch ms) and the failure context."""
    body = json.loads(message["Body"])
    sent = message.get("Attributes", {}).get("SentTimestamp")
    return {"messageId": message["MessageId"], "sentAt": int(sent) if sent else None, **body}


def peek(queue: DeadLetters, max_messages: int = 10) -> list[dict[str, Any]]:
    """Up to ``max_messages``: they are visible again when this returns."""
    found: list[dict[str, Any]] = []
    with closing(scan(queue, hide_seconds=30)) as messages:
        for message in messages:
            found.append(entry(message))
            if len(found) >= max_messages:
                break
    return found


def summary(queue: DeadLetters, *, peek_count: int = 5, max_messages: int = 1000) -> dict[str, Any]:
    """The queue's size, its messages grouped by error (most frequent first) and the first ``peek_count``."""
    visible, in_flight = queue.counts()
    messages = peek(queue, max_messages=max_messages)
    groups: dict[str, list[str]] = {}
    for message in messages:
        groups.setdefault(str(message.get("error")), []).append(message["taskId"])
    return {
        "count": visible,
        "inFlight": in_flight,
        "groups": [
            {"error": error, "count": len(ids), "taskIds": ids}
            for error, ids in sorted(groups.items(), key=lambda g: -len(g[1]))
        ],
        "messages": [_shown(m) for m in messages[:peek_count]],
    }


def _shown(message: dict[str, Any]) -> dict[str, Any]:
    """A message as `taskrail dlq` shows it: ``sentAt`` in the API's one timestamp format (README, "Timestamps")."""
    shown = {field: message.get(field) for field in DLQ_MESSAGE_FIELDS}
    if shown["sentAt"] is not None:
        shown["sentAt"] = api_timestamp(shown["sentAt"])
    return shown
