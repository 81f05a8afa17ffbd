"""Amazon SQS: a message's size as SQS measures it, and the number of its attributes.

moto 5.2.5 compares ``len(MessageBody)`` (characters, attributes left out) with the queue's
``MaximumMessageSize``. SQS counts bytes, and a message attribute's name, type and value count toward the size
("Amazon SQS message attributes", SQS Developer Guide); a message carries at most 10 attributes ("Amazon SQS
message quotas"). SendMessage and each SendMessageBatch entry are refused with SQS's ``InvalidParameterValue``
(``Message must be shorter than <limit> bytes``); a batch whose messages together exceed 1 MiB with
``AWS.SimpleQueueService.BatchRequestTooLong``. Cases: tests/parity/sqs.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Final

from moto.sqs.exceptions import BatchRequestTooLong, InvalidParameterValue
from moto.sqs.models import SQSBackend
from moto.sqs.responses import SQSResponse

from taskrail.local.services.patching import Patch, Signature, Source, is_patched, original, patch, unpatch

__all__ = ["MAX_BATCH_BYTES", "MAX_MESSAGE_ATTRIBUTES", "PATCHES", "message_size"]

MAX_MESSAGE_ATTRIBUTES: Final = 10
MAX_BATCH_BYTES: Final = 1_048_576  # SendMessageBatch: the sum of the batched messages' lengths, 1 MiB


def _value_bytes(value: dict[str, Any]) -> int:
    if value.get("StringValue") is not None:
        return len(str(value["StringValue"]).encode("utf-8"))
    binary = value.get("BinaryValue")
    if isinstance(binary, bytes):
        return len(binary)
    if isinstance(binary, str):
        try:
            return len(base64.b64decode(binary, validate=True))
        except (binascii.Error, ValueError):
            return len(binary.encode("utf-8"))
    return 0


def message_size(body: str, attributes: dict[str, Any] | None) -> int:
    """Bytes SQS counts: the UTF-8 body plus each attribute's name, data type and value."""
    size = len((body or "").encode("utf-8"))
    for name, value in (attributes or {}).items():
        size += len(name.encode("utf-8")) + len(str(value.get("DataType", "")).encode("utf-8")) + _value_bytes(value)
    return size


def _check(queue: Any, body: str, attributes: dict[str, Any] | None) -> int:
    if len(attributes or {}) > MAX_MESSAGE_ATTRIBUTES:
        raise InvalidParameterValue(
            f"Number of message attributes [{len(attributes or {})}] exceeds the allowed maximum "
            f"[{MAX_MESSAGE_ATTRIBUTES}]."
        )
    size = message_size(body, attributes)
    limit = int(queue.maximum_message_size)
    if size > limit:
        raise InvalidParameterValue(
            f"One or more parameters are invalid. Reason: Message must be shorter than {limit} bytes."
        )
    return size


def _send_message(  # moto's signature exactly (services/events.py checks it too)
    self: Any,
    queue_name: str,
    message_body: str,
    message_attributes: dict[str, Any] | None = None,
    delay_seconds: int | None = None,
    deduplication_id: str | None = None,
    group_id: str | None = None,
    system_attributes: dict[str, Any] | None = None,
    validate_group_id: bool = True,
) -> Any:
    _check(self.get_queue(queue_name), message_body, message_attributes)
    return original(SQSBackend, "send_message")(
        self,
        queue_name,
        message_body,
        message_attributes=message_attributes,
        delay_seconds=delay_seconds,
        deduplication_id=deduplication_id,
        group_id=group_id,
        system_attributes=system_attributes,
        validate_group_id=validate_group_id,
    )


def _send_message_batch(self: Any, queue_name: str, entries: dict[str, dict[str, Any]]) -> Any:
    queue = self.get_queue(queue_name)
    total = sum(_check(queue, e.get("MessageBody", ""), e.get("MessageAttributes")) for e in entries.values())
    if total > MAX_BATCH_BYTES:
        raise BatchRequestTooLong(total)
    return original(SQSBackend, "send_message_batch")(self, queue_name, entries)


_PATCHED: Final = {"send_message": _send_message, "send_message_batch": _send_message_batch}


def install_message_size() -> None:
    for name, function in _PATCHED.items():
        if not is_patched(SQSBackend, name):
            patch(SQSBackend, name, function)


def uninstall_message_size() -> None:
    for name in _PATCHED:
        if is_patched(SQSBackend, name):
            unpatch(SQSBackend, name)


def _moto(name: str) -> Any:
    return original(SQSBackend, name) if is_patched(SQSBackend, name) else getattr(SQSBackend, name)


MESSAGE_SIZE: Final = Patch(
    "message size in bytes with attributes, at most 10 attributes",
    depends=(
        Signature(
            "moto.sqs.models.SQSBackend.send_message",
            lambda: _moto("send_message"),
            (
                "self",
                "queue_name",
                "message_body",
                "message_attributes",
                "delay_seconds",
                "deduplication_id",
                "group_id",
                "system_attributes",
                "validate_group_id",
            ),
        ),
        Signature(
            "moto.sqs.models.SQSBackend.send_message_batch",
            lambda: _moto("send_message_batch"),
            ("self", "queue_name", "entries"),
        ),
        Source(
            "moto.sqs.responses.SQSResponse.send_message_batch",
            lambda: SQSResponse.send_message_batch,
            ('entry["MessageAttributes"] = {}', "self.sqs_backend.send_message_batch(queue_name, entries)"),
        ),
        Source(
            "moto.sqs.models.SQSBackend._validate_message",
            lambda: SQSBackend._validate_message,
            ("queue.maximum_message_size",),
        ),
    ),
    install=install_message_size,
    uninstall=uninstall_message_size,
)

PATCHES: Final = (MESSAGE_SIZE,)
