"""Input text given either inline or as the key of one of the owner's own objects (``users/{userId}/…``)."""

from __future__ import annotations

from typing import Annotated, ClassVar, cast

from pydantic import AfterValidator, Field, ValidationInfo, model_validator

from task_common.errors import PermanentTaskError
from task_common.ports import BlobNotFound, BlobStore
from task_types.base import TaskParams

MAX_INLINE_BYTES = 5 * 1024 * 1024


def _owned_by_task_owner(key: str, info: ValidationInfo) -> str:
    user_id = (info.context or {}).get("user_id")
    if not user_id:
        raise ValueError("the task's owner is unknown")
    prefix = f"users/{user_id}/"
    if not key.startswith(prefix) or key == prefix:
        raise ValueError(f"must be the key of one of your objects, under {prefix}")
    if any(segment in {"", ".", ".."} for segment in key[len(prefix) :].split("/")):
        raise ValueError("must not contain empty, '.' or '..' path segments")
    return key


MAX_KEY_BYTES = 1024  # "up to 1,024 bytes long" in UTF-8 (Amazon S3 User Guide, "Naming Amazon S3 objects")


def _at_most_key_bytes(key: str) -> str:
    # Field(max_length=...) counts characters; a key of 600 'é' is 600 characters and 1,200 bytes, which S3 refuses
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise ValueError(f"must be at most {MAX_KEY_BYTES} bytes in UTF-8 (S3's limit for an object key)")
    return key


def _at_most_inline_limit(text: str) -> str:
    if len(text.encode("utf-8")) > MAX_INLINE_BYTES:
        raise ValueError(f"must be at most {MAX_INLINE_BYTES // (1024 * 1024)} MB; upload it and give source")
    return text


UserObjectKey = Annotated[
    str, Field(max_length=MAX_KEY_BYTES), AfterValidator(_at_most_key_bytes), AfterValidator(_owned_by_task_owner)
]
InlineText = Annotated[str, AfterValidator(_at_most_inline_limit)]


class InlineOrSourceParams(TaskParams):
    """Exactly one of the inline field named by ``inline_field`` or ``source``."""

    inline_field: ClassVar[str]

    source: UserObjectKey | None = None

    @model_validator(mode="after")
    def _exactly_one_input(self) -> InlineOrSourceParams:
        if (getattr(self, self.inline_field) is None) == (self.source is None):
            raise ValueError(f"exactly one of {self.inline_field} or source is required")
        return self

    def load_text(self, blobs: BlobStore) -> str:
        inline: str | None = getattr(self, self.inline_field)
        if inline is not None:
            return inline
        source = cast(str, self.source)
        try:
            return blobs.get_text(source)
        except BlobNotFound as error:
            raise PermanentTaskError(f"source {source} does not exist") from error
        except UnicodeDecodeError as error:
            raise PermanentTaskError(f"source {source} is not UTF-8 text") from error
