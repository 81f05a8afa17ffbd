"""The live progress channel, client side: a WebSocket to the stack's WebSocketUrl, subscribed to the caller's tasks.

The connect request is signed with SigV4 for ``execute-api`` in the query-string form (botocore's
``SigV4QueryAuth``: what a client that cannot set headers on an upgrade request sends), by the caller's own
credentials, as the REST API's requests are. After ``{"action": "subscribe", "taskId": ...}`` (or no taskId: all my
tasks) the server answers ``{"type": "subscribed", ...}`` once the subscription is stored; from then on each change of
a task's progress or status arrives as ``{"type": "progress", "taskId", "status", "progress", ...}``.

:class:`LiveChannel` keeps one connection open in a thread of its own: it reconnects and subscribes again when the
connection drops or reaches API Gateway's 2-hour limit, and subscribes again every few minutes, which is also what
keeps it inside the 10-minute idle timeout ("Quotas for configuring and running a WebSocket in API Gateway").
:meth:`LiveChannel.wait` blocks until something arrived (a message, or a reconnection after which a reader must
read again, since messages sent while it was away are lost) or the time is up.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

__all__ = ["LiveChannel", "LiveFeed", "LiveUnavailable", "signed_connect_url"]

LOG = logging.getLogger("taskrail.live")
#: less than API Gateway's idle timeout (10 minutes): each re-subscription is a message, so activity
RESUBSCRIBE_SECONDS = 300.0
CONNECT_TIMEOUT_SECONDS = 10.0
LINK_SECONDS = 300  # the signed connect URL's lifetime (X-Amz-Expires)
RECONNECT_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)


class LiveUnavailable(Exception):
    """The channel could not be opened (no WebSocket URL, refused, unreachable): poll instead."""


def signed_connect_url(url: str, credentials: Credentials, region: str, *, expires: int = LINK_SECONDS) -> str:
    """``url`` (``wss://.../stage`` or ``ws://``) with SigV4 query-string authentication for ``execute-api``."""
    scheme, _, rest = url.partition("://")
    request = AWSRequest(method="GET", url=f"https://{rest}")
    SigV4QueryAuth(credentials, "execute-api", region, expires=expires).add_auth(request)
    return f"{scheme}://{request.url.partition('://')[2]}"


class LiveChannel:
    """One subscription (a task id, or ``None``: all of the caller's tasks) kept open; see the module's text."""

    def __init__(
        self,
        url: str,
        credentials: Credentials,
        region: str,
        *,
        task_id: str | None = None,
        on_message: Callable[[dict[str, Any]], None] | None = None,
        resubscribe_seconds: float = RESUBSCRIBE_SECONDS,
    ) -> None:
        self.url = url
        self._credentials = credentials
        self._region = region
        self._task_id = task_id
        self._on_message = on_message
        self._resubscribe_seconds = resubscribe_seconds
        self._changed = threading.Condition()
        self._events = 0
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self._socket: Any = None
        self.connections = 0  # how many times it connected (1 + the reconnections)
        self.messages: list[dict[str, Any]] = []

    def open(self) -> LiveChannel:
        """Connect and subscribe (raises :class:`LiveUnavailable` when that fails), then keep it in a thread."""
        try:
            self._connect()
        except Exception as error:
            raise LiveUnavailable(f"{type(error).__name__}: {error}") from error
        self._thread = threading.Thread(target=self._run, name="taskrail-live", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._closed.set()
        socket = self._socket
        if socket is not None:
            socket.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._changed:
            self._changed.notify_all()

    def __enter__(self) -> LiveChannel:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait(self, timeout: float) -> None:
        """Until a message or a reconnection arrives after the previous call, or ``timeout`` seconds."""
        with self._changed:
            seen = self._events
            self._changed.wait_for(lambda: self._events != seen or self._closed.is_set(), timeout=timeout)

    # -- the connection ----------------------------------------------------------------------------------

    def _connect(self) -> None:
        socket = connect(
            signed_connect_url(self.url, self._credentials, self._region),
            open_timeout=CONNECT_TIMEOUT_SECONDS,
            compression=None,
            ping_interval=None,
            legacy=True,  # held by this object (closed by close()), not a with-block
        )
        try:
            self._subscribe(socket)
        except BaseException:
            socket.close()
            raise
        self._socket = socket
        self.connections += 1
        self._notify()

    def _subscribe(self, socket: Any) -> None:
        request: dict[str, Any] = {"action": "subscribe"}
        if self._task_id is not None:
            request["taskId"] = self._task_id
        socket.send(json.dumps(request))
        deadline = time.monotonic() + CONNECT_TIMEOUT_SECONDS
        while True:  # progress messages may come first on a re-subscription: they are kept
            message = json.loads(socket.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("type") == "subscribed":
                return
            if message.get("type") == "progress":
                self._deliver(message)
                continue
            raise LiveUnavailable(f"the subscription was not stored: {message}")

    def _run(self) -> None:
        next_subscribe = time.monotonic() + self._resubscribe_seconds
        while not self._closed.is_set():
            socket = self._socket
            try:
                text = socket.recv(timeout=max(0.05, next_subscribe - time.monotonic()))
            except TimeoutError:
                try:
                    socket.send(json.dumps({"action": "subscribe", **self._subscription()}))
                except ConnectionClosed:
                    self._reconnect()
                next_subscribe = time.monotonic() + self._resubscribe_seconds
                continue
            except ConnectionClosed:
                self._reconnect()
                next_subscribe = time.monotonic() + self._resubscribe_seconds
                continue
            try:
                message = json.loads(text)
            except ValueError:
                continue
            if message.get("type") == "progress":
                self._deliver(message)

    def _subscription(self) -> dict[str, str]:
        return {"taskId": self._task_id} if self._task_id is not None else {}

    def _reconnect(self) -> None:
        """After a drop or API Gateway's 2-hour limit: connect and subscribe again, backing off while it fails."""
        for delay in (*RECONNECT_DELAYS, *([RECONNECT_DELAYS[-1]] * 1000)):
            if self._closed.is_set():
                return
            try:
                self._connect()
                LOG.info("live channel reconnected (%d connections so far)", self.connections)
                return
            except Exception as error:
                LOG.info("live channel: reconnect failed (%s); again in %.1f s", error, delay)
                self._closed.wait(delay)

    def _deliver(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        if self._on_message is not None:
            self._on_message(message)
        self._notify()

    def _notify(self) -> None:
        with self._changed:
            self._events += 1
            self._changed.notify_all()


class LiveFeed:
    """Several subscribers' channels (``name -> credentials``, each subscribed to all of its tasks) as one numbered
    list of the changes pushed to them: what the local console relays to its page, which asks what came after the
    last number it saw (taskrail/console.py ``GET /api/live``)."""

    def __init__(self, url: str, credentials: dict[str, Credentials], region: str, *, keep: int = 1000) -> None:
        self.url = url
        self._credentials = credentials
        self._region = region
        self._keep = keep
        self._changes: list[tuple[int, dict[str, Any]]] = []
        self._sequence = 0
        self._condition = threading.Condition()
        self._channels: list[LiveChannel] = []

    def open(self) -> LiveFeed:
        """Subscribe each one (a failure is logged: the others still feed); :class:`LiveUnavailable` if none could."""
        for name, credentials in self._credentials.items():
            channel = LiveChannel(self.url, credentials, self._region, on_message=self._add)
            try:
                self._channels.append(channel.open())
            except LiveUnavailable as error:
                LOG.warning("live feed: %s could not subscribe: %s", name, error)
        if not self._channels:
            raise LiveUnavailable(f"no subscriber could connect to {self.url}")
        return self

    def close(self) -> None:
        for channel in self._channels:
            channel.close()
        self._channels.clear()
        with self._condition:
            self._condition.notify_all()

    def _add(self, message: dict[str, Any]) -> None:
        with self._condition:
            self._sequence += 1
            self._changes.append((self._sequence, message))
            del self._changes[: -self._keep]
            self._condition.notify_all()

    def changes_after(self, after: int, timeout: float) -> tuple[int, list[dict[str, Any]]]:
        """The changes numbered above ``after`` (waiting up to ``timeout`` for one), and the last number."""
        with self._condition:
            self._condition.wait_for(lambda: self._sequence > after or not self._channels, timeout=timeout)
            return self._sequence, [message for number, message in self._changes if number > after]
