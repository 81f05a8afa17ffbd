"""Amazon S3: object key length and the versioning status, validated as S3 validates them.

moto 5.2.5 stores an object under a key of any length and sets any string as a bucket's versioning status. S3
("Naming Amazon S3 objects", User Guide): "The object key name is a sequence of Unicode characters with UTF-8
encoding of up to 1,024 bytes long"; a longer key is refused with ``KeyTooLongError`` ("Your key is too long",
S3 API Reference, error responses, 400). PutBucketVersioning's ``Status`` is ``Enabled | Suspended`` (API
Reference); any other value does not validate against S3's schema: ``MalformedXML`` (400). Cases: tests/parity/s3.
"""

from __future__ import annotations

from typing import Any, Final

from moto.s3.exceptions import MalformedXML, S3ClientError
from moto.s3.models import S3Backend

from taskrail.local.services.patching import Patch, Signature, is_patched, original, patch, unpatch

__all__ = ["MAX_KEY_BYTES", "PATCHES"]

MAX_KEY_BYTES: Final = 1024
VERSIONING_STATUSES: Final = ("Enabled", "Suspended")


class KeyTooLongError(S3ClientError):
    def __init__(self) -> None:
        super().__init__("KeyTooLongError", "Your key is too long")


def _put_object(self: Any, bucket_name: str, key_name: str, value: bytes, *args: Any, **kwargs: Any) -> Any:
    if len(key_name.encode("utf-8")) > MAX_KEY_BYTES:
        raise KeyTooLongError()
    return original(S3Backend, "put_object")(self, bucket_name, key_name, value, *args, **kwargs)


def _put_bucket_versioning(self: Any, bucket_name: str, status: str) -> Any:
    if status not in VERSIONING_STATUSES:
        raise MalformedXML()
    return original(S3Backend, "put_bucket_versioning")(self, bucket_name, status)


_PATCHED: Final = {"put_object": _put_object, "put_bucket_versioning": _put_bucket_versioning}


def install_s3_validation() -> None:
    for name, function in _PATCHED.items():
        if not is_patched(S3Backend, name):
            patch(S3Backend, name, function)


def uninstall_s3_validation() -> None:
    for name in _PATCHED:
        if is_patched(S3Backend, name):
            unpatch(S3Backend, name)


def _moto(name: str) -> Any:
    return original(S3Backend, name) if is_patched(S3Backend, name) else getattr(S3Backend, name)


VALIDATION: Final = Patch(
    "object key length, versioning status",
    depends=(
        Signature(
            "moto.s3.models.S3Backend.put_object",
            lambda: _moto("put_object"),
            (
                "self",
                "bucket_name",
                "key_name",
                "value",
                "storage",
                "etag",
                "multipart",
                "encryption",
                "kms_key_id",
                "bucket_key_enabled",
                "lock_mode",
                "lock_legal_status",
                "lock_until",
                "checksum_value",
                "request_method",
                "disable_notification",
            ),
        ),
        Signature(
            "moto.s3.models.S3Backend.put_bucket_versioning",
            lambda: _moto("put_bucket_versioning"),
            ("self", "bucket_name", "status"),
        ),
    ),
    install=install_s3_validation,
    uninstall=uninstall_s3_validation,
)

PATCHES: Final = (VALIDATION,)
