"""Amazon SNS: a published message's size as SNS measures it (bytes, with its attributes) and PublishBatch's total.

moto 5.2.5 compares ``len(Message)`` (characters, attributes left out) with 262,144 and never sums a batch. SNS
(Publish, API Reference): "at most 256 KB in size (262,144 bytes, not 262,144 characters)", and a message
attribute's name, type and value count toward that size ("Amazon SNS message attributes"); PublishBatch: "The
maximum allowed individual message size and the maximum total payload size (the sum of the individual lengths of
all of the batched messages) are both 256 KB (262,144 bytes)", error ``BatchRequestTooLong``; a Subject "must not
include line breaks or control characters" (Publish, InvalidParameter). Cases:
tests/parity/sns.
"""

from __future__ import annotations

from typing import Any, Final

from moto.sns.exceptions import InvalidParameterValue, SNSException
from moto.sns.models import MAXIMUM_MESSAGE_LENGTH, SNSBackend

from taskrail.local.services.patching import Check, Patch, Signature, is_patched, original, patch, unpatch

__all__ = ["MAX_MESSAGE_BYTES", "PATCHES", "message_size"]

MAX_MESSAGE_BYTES: Final = 262_144


class BatchRequestTooLong(SNSException):
    code = "BatchRequestTooLong"
    message = "The length of all the messages put together is more than the limit."


def _bytes(value: Any) -> int:
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    if isinstance(value, dict):
        return sum(_bytes(v) for v in value.values())
    if isinstance(value, list):
        return sum(_bytes(v) for v in value)
    return 0


def message_size(message: str, attributes: dict[str, Any] | None) -> int:
    """UTF-8 bytes of the message plus each attribute's name, data type and value."""
    return _bytes(message or "") + sum(_bytes(name) + _bytes(value) for name, value in (attributes or {}).items())


def _refuse_if_too_long(size: int) -> None:
    if size > MAX_MESSAGE_BYTES:
        raise InvalidParameterValue("Invalid parameter: Message too long")


def _publish(  # moto's signature exactly
    self: Any,
    message: str,
    arn: str | None,
    phone_number: str | None = None,
    subject: str | None = None,
    message_attributes: dict[str, Any] | None = None,
    group_id: str | None = None,
    deduplication_id: str | None = None,
    message_structure: str | None = None,
) -> Any:
    if subject is not None and (not subject or any(ord(c) < 32 or ord(c) == 127 for c in subject)):
        raise InvalidParameterValue("Invalid parameter: Subject")
    if not phone_number:  # SMS has its own limit (moto checks it)
        _refuse_if_too_long(message_size(message, message_attributes))
    return original(SNSBackend, "publish")(
        self,
        message,
        arn,
        phone_number=phone_number,
        subject=subject,
        message_attributes=message_attributes,
        group_id=group_id,
        deduplication_id=deduplication_id,
        message_structure=message_structure,
    )


def _publish_batch(self: Any, topic_arn: str, publish_batch_request_entries: list[dict[str, Any]]) -> Any:
    sizes = [message_size(e.get("Message", ""), e.get("MessageAttributes")) for e in publish_batch_request_entries]
    if len(publish_batch_request_entries) <= 10:  # more: moto's TooManyEntriesInBatchRequest, as SNS
        for size in sizes:
            _refuse_if_too_long(size)
        if sum(sizes) > MAX_MESSAGE_BYTES:
            raise BatchRequestTooLong()
    return original(SNSBackend, "publish_batch")(self, topic_arn, publish_batch_request_entries)


_PATCHED: Final = {"publish": _publish, "publish_batch": _publish_batch}


def install_message_size() -> None:
    for name, function in _PATCHED.items():
        if not is_patched(SNSBackend, name):
            patch(SNSBackend, name, function)


def uninstall_message_size() -> None:
    for name in _PATCHED:
        if is_patched(SNSBackend, name):
            unpatch(SNSBackend, name)


def _moto(name: str) -> Any:
    return original(SNSBackend, name) if is_patched(SNSBackend, name) else getattr(SNSBackend, name)


MESSAGE_SIZE: Final = Patch(
    "message size in bytes with attributes, PublishBatch total",
    depends=(
        Signature(
            "moto.sns.models.SNSBackend.publish",
            lambda: _moto("publish"),
            (
                "self",
                "message",
                "arn",
                "phone_number",
                "subject",
                "message_attributes",
                "group_id",
                "deduplication_id",
                "message_structure",
            ),
        ),
        Signature(
            "moto.sns.models.SNSBackend.publish_batch",
            lambda: _moto("publish_batch"),
            ("self", "topic_arn", "publish_batch_request_entries"),
        ),
        Check(
            "moto.sns.models.MAXIMUM_MESSAGE_LENGTH",
            lambda: MAXIMUM_MESSAGE_LENGTH == MAX_MESSAGE_BYTES,
            "is 262144",
        ),
    ),
    install=install_message_size,
    uninstall=uninstall_message_size,
)

PATCHES: Final = (MESSAGE_SIZE,)
