"""DynamoDB Streams: tell the local pipes that a stream record was written, so that they block instead of polling.

On AWS a pipe's poller reads the stream all the time; locally that costs a CPU (an HTTP GetRecords every few
tens of milliseconds per pipe, each one signed and evaluated by the local IAM). moto appends every stream record
in ``StreamShard.add``: after moto's own code, the patch calls the listeners (:func:`add_stream_listener`), and
the pipe runner wakes up and reads the records as before, over the API.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from moto.dynamodb.models import table as _table

from taskrail.local.services.patching import Patch, Signature, Source, is_patched, lock, original, patch, unpatch

__all__ = ["PATCHES", "add_stream_listener", "remove_stream_listener"]

_listeners: list[Callable[[], None]] = []


def _add(self: Any, old: Any, new: Any) -> None:
    original(_table.StreamShard, "add")(self, old, new)
    for listener in list(_listeners):
        listener()


def add_stream_listener(listener: Callable[[], None]) -> None:
    """Call ``listener`` (no arguments, from the writing request's thread) after each stream record is written."""
    with lock:
        _listeners.append(listener)
        if not is_patched(_table.StreamShard, "add"):
            patch(_table.StreamShard, "add", _add)


def remove_stream_listener(listener: Callable[[], None]) -> None:
    with lock:
        if listener in _listeners:
            _listeners.remove(listener)
        if not _listeners:
            _uninstall()


def _uninstall() -> None:
    with lock:
        _listeners.clear()
        if is_patched(_table.StreamShard, "add"):
            unpatch(_table.StreamShard, "add")


STREAM_WRITES: Final = Patch(
    "stream writes wake the local pipes",
    depends=(
        Signature(
            "moto.dynamodb.models.table.StreamShard.add",
            lambda: original(_table.StreamShard, "add"),
            ("self", "old", "new"),
        ),
        Source(  # every record is appended here (and nowhere else)
            "moto.dynamodb.models.table.StreamShard.add",
            lambda: original(_table.StreamShard, "add"),
            ("self.items.append(StreamRecord(",),
        ),
    ),
    uninstall=_uninstall,
)

PATCHES: Final = (STREAM_WRITES,)
