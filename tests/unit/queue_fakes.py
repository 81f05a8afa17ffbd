"""An in-memory SQS queue for the operator's tests: a received message is hidden until released or deleted."""

from __future__ import annotations

import json
from typing import Any


class InMemoryQueue:
    """The DeadLetters port of taskrail/operator over a dict, with SQS's visibility: a received message is hidden
    until released or deleted."""

    def __init__(self) -> None:
        self.messages: dict[str, dict[str, Any]] = {}
        self.hidden: set[str] = set()

    def send(self, body: dict[str, Any], *, sent_ms: int = 1_000) -> None:
        message_id = f"m-{len(self.messages)}"
        self.messages[message_id] = {
            "MessageId": message_id,
            "ReceiptHandle": f"rh-{message_id}",
            "Body": json.dumps(body),
            "Attributes": {"SentTimestamp": str(sent_ms)},
        }

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(m["Body"]) for m in self.messages.values()]

    def visible_task_ids(self) -> list[str]:
        return [json.loads(m["Body"])["taskId"] for i, m in self.messages.items() if i not in self.hidden]

    def receive(self, hide_seconds: int) -> list[dict[str, Any]]:
        batch = [dict(m) for i, m in self.messages.items() if i not in self.hidden][:10]
        self.hidden.update(m["MessageId"] for m in batch)
        return batch

    def release(self, messages: list[dict[str, Any]]) -> None:
        self.hidden.difference_update(m["MessageId"] for m in messages)

    def delete(self, message: dict[str, Any]) -> None:
        del self.messages[message["MessageId"]]
        self.hidden.discard(message["MessageId"])

    def counts(self) -> tuple[int, int]:
        return len(self.messages) - len(self.hidden), len(self.hidden)
