"""The local API Gateway's access log: each request's line, rendered from the stage's ``AccessLogSetting.Format``,
written to the stage's log group in the local CloudWatch Logs, off the request path.

What API Gateway documents ("Set up CloudWatch logging for REST APIs in API Gateway",
https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-logging.html, and "Variables for access logging
for API Gateway", https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-variables-for-access-logging.html):
the stage writes one event per request to the log group named by ``DestinationArn``, the ``Format``'s
``$context`` variables replaced by the request's values; a variable without a value is written as ``-`` (an
unauthenticated request's ``$context.identity.user``). The lines are what the template's subscription filters read
(taskrail/local/services/logs_subscriptions.py): users' sign-in from any route (lambdas/users/seen.py).

Intake latency is benchmarked, so a request only renders its line and queues it: :class:`AccessLogWriter`'s thread
sends the queued lines in batches (PutLogEvents, at most :data:`BATCH_EVENTS` a call, every
:data:`FLUSH_SECONDS` at the latest), as API Gateway delivers access logs asynchronously too. Not emulated locally:
``$context.integration.*`` and the other variables the local gateway does not know are ``-``; values are
JSON-string-escaped, so a line stays the JSON the format describes.
"""

from __future__ import annotations

import functools
import json
import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

LOG = logging.getLogger("taskrail.local.apigw.access")
FLUSH_SECONDS = 0.2
BATCH_EVENTS = 500
_VARIABLE = re.compile(r"\$context\.[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*")
NO_VALUE = "-"


@dataclass(frozen=True)
class AccessLogSpec:
    """The stage's ``AccessLogSetting``: the log group (by name) and the line's format."""

    log_group_name: str
    format: str

    @classmethod
    def from_stage(cls, props: Mapping[str, Any], resolve: Callable[[Any], Any]) -> AccessLogSpec | None:
        setting = props.get("AccessLogSetting")
        if not setting:
            return None
        destination = str(resolve(setting["DestinationArn"]))  # arn:aws:logs:R:A:log-group:NAME[:*]
        name = destination.split(":log-group:", 1)[1].removesuffix(":*")
        return cls(name, str(setting.get("Format") or ""))


_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f]')


@functools.lru_cache(maxsize=8)
def _parts(line_format: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The format's literal text and, between each two, a variable's context key (``context.x``): split once."""
    literals = tuple(_VARIABLE.split(line_format))
    return literals, tuple(match.group(0)[1:] for match in _VARIABLE.finditer(line_format))


def _escaped(value: str | None) -> str:
    if not value:
        return NO_VALUE
    return json.dumps(value)[1:-1] if _NEEDS_ESCAPE.search(value) else value


def render_line(line_format: str, context: Mapping[str, str]) -> str:
    """``line_format`` with each ``$context.x`` replaced by ``context["context.x"]`` (JSON-escaped), ``-`` if none."""
    literals, keys = _parts(line_format)
    pieces = [literals[0]]
    for key, literal in zip(keys, literals[1:], strict=True):
        pieces += (_escaped(context.get(key)), literal)
    return "".join(pieces)


def request_time(epoch_seconds: float) -> str:
    """``$context.requestTime``: CLF-formatted, ``dd/MMM/yyyy:HH:mm:ss +0000``."""
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(epoch_seconds))


class AccessLogWriter:
    """Queues lines (``write`` never blocks on the service) and sends them from a thread of its own."""

    def __init__(self, spec: AccessLogSpec, logs_client: Callable[[], Any], *, stream_name: str) -> None:
        self.spec = spec
        self._client = logs_client
        self._stream = stream_name
        self._queue: queue.SimpleQueue[tuple[int, str] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.sent = 0  # lines PutLogEvents accepted (the tests read it)

    def start(self) -> AccessLogWriter:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="local-apigw-access-log", daemon=True)
            self._thread.start()
        return self

    def write(self, line: str, timestamp_ms: int) -> None:
        self._queue.put((timestamp_ms, line))

    def stop(self) -> None:
        """Sends what is queued, then stops."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=10)

    def _create_stream(self, client: Any) -> None:
        try:
            client.create_log_stream(logGroupName=self.spec.log_group_name, logStreamName=self._stream)
        except Exception as error:  # an existing stream (a restarted gateway) is fine; anything else is logged
            if "ResourceAlreadyExists" not in str(error):
                LOG.exception("access log stream %s of %s", self._stream, self.spec.log_group_name)

    def _run(self) -> None:
        client = self._client()
        self._create_stream(client)
        stopping = False
        while not stopping:
            first = self._queue.get()
            batch: list[tuple[int, str]] = []
            if first is None:
                stopping = True
            else:
                batch.append(first)
                deadline = time.monotonic() + FLUSH_SECONDS
                while len(batch) < BATCH_EVENTS:
                    try:
                        item = self._queue.get(timeout=max(deadline - time.monotonic(), 0))
                    except queue.Empty:
                        break
                    if item is None:
                        stopping = True
                        break
                    batch.append(item)
            self._send(client, batch)

    def _send(self, client: Any, batch: list[tuple[int, str]]) -> None:
        if not batch:
            return
        events = [{"timestamp": stamp, "message": line} for stamp, line in sorted(batch, key=lambda item: item[0])]
        for attempt in (1, 2):
            try:
                client.put_log_events(
                    logGroupName=self.spec.log_group_name, logStreamName=self._stream, logEvents=events
                )
                self.sent += len(events)
                return
            except Exception as error:
                if attempt == 1 and "ResourceNotFound" in str(error):  # `taskrail local reset` made a new group
                    self._create_stream(client)
                    continue
                LOG.exception("access log: %d lines to %s not written", len(events), self.spec.log_group_name)
                return
