"""Claim check: payloads past the workflow's size budget travel as an ``s3://`` location instead."""

from __future__ import annotations

import json
from typing import Any

from task_common.contract import task_prefix, user_prefix
from task_common.errors import ValidationFailed
from task_common.ports import BlobNotFound, BlobStore


def to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def byte_size(text: str) -> int:
    return len(text.encode("utf-8"))


def as_string_bytes(text: str) -> int:
    """The size of ``text`` once it is itself a JSON string value, as the workflow's StoreResult carries the
    result (``States.JsonToString``): every quote and backslash is escaped again, so a result of N bytes can
    take up to 2N in the state. The inline criterion measures this, not the result's own size."""
    return byte_size(json.dumps(text, ensure_ascii=False))


def parse_params_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValidationFailed(f"params are not valid JSON: {error}") from error


def load_params(blobs: BlobStore, location: str, *, task_id: str, user_id: str) -> Any:
    """Read the parameters at ``location``: the task's own input, or one of its owner's objects."""
    try:
        key = blobs.key_of(location)
    except ValueError as error:
        raise ValidationFailed(f"paramsLocation is invalid: {error}") from error
    if not key.startswith((task_prefix(task_id), user_prefix(user_id))):
        raise ValidationFailed(f"paramsLocation {location} belongs to another task or user")
    try:
        return parse_params_json(blobs.get_text(key))
    except BlobNotFound as error:
        raise ValidationFailed(f"paramsLocation {location} does not exist") from error
    except UnicodeDecodeError as error:
        raise ValidationFailed(f"paramsLocation {location} is not UTF-8 text") from error
