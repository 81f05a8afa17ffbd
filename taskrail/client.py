"""The taskrail client: the REST API for users, every request SigV4-signed with the caller's credentials.

The same client works against the local stack and a deployed stack: only the endpoints and the credentials differ
(``taskrail.local.accounts`` makes one for a local user). What an operator does with the account's own AWS
credentials (replay, redrive, the dead-letter queue, results, execution histories) is :mod:`taskrail.operator`.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.httpsession import get_cert_path

from task_common.contract import TERMINAL_STATUSES

# The API's largest page of GET /tasks (?limit=1..100); ``next`` fetches the following page.
LIST_CAP = 100
# 503: the task store was unavailable or throttled and nothing changed (the API's throttled answer); retried with
# exponential backoff and full jitter. A submission is retried only with an Idempotency-Key: without one a retry
# after an unknown outcome could store a second task.
RETRYABLE_STATUSES = frozenset({503})
RETRY_ATTEMPTS = 6
RETRY_BASE_SECONDS = 0.1
RETRY_MAX_SECONDS = 5.0
# Every task in --json output carries these keys (null when the task has no such field yet).
TASK_FIELDS = (
    "taskId",
    "type",
    "status",
    "progress",
    "attempt",
    "createdAt",
    "startedAt",
    "updatedAt",
    "finishedAt",
    "cancelledAt",
    "resultLocation",
    "error",
    "cause",
    "executionArn",
    "idempotencyKey",
    "params",
)
# A listed task (GET /tasks) carries every one of them but params: GET /tasks/{taskId} returns those.
LISTED_FIELDS = tuple(field for field in TASK_FIELDS if field != "params")


class StackUnreachable(ConnectionError):
    """The API did not answer (connection refused or reset, timed out, TLS failed): nothing came back."""


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message

    @property
    def retryable(self) -> bool:
        return self.status in RETRYABLE_STATUSES


@dataclass(frozen=True)
class TaskPage:
    """One page of GET /tasks: ``next`` (opaque) fetches the following one; None when this was the last."""

    tasks: list[dict[str, Any]]
    next: str | None


@dataclass(frozen=True)
class Endpoints:
    api_url: str
    region: str
    tasks_table: str
    results_bucket: str
    state_machine_arn: str
    dead_letter_queue_url: str
    websocket_url: str = ""  # the live-progress channel (Output WebSocketUrl); "" when the stack has none
    # What a replay starts (Output StateMachineAliasArn): the lifecycle's live alias; "" = the state machine itself
    state_machine_alias_arn: str = ""


def task_view(task: dict[str, Any]) -> dict[str, Any]:
    """A task with every field of TASK_FIELDS present (LISTED_FIELDS for a listed task, which has no params): the
    stable shape of --json output."""
    fields = TASK_FIELDS if "params" in task else LISTED_FIELDS
    return {field: task.get(field) for field in fields}


def epoch_seconds(value: Any) -> float | None:
    """A timestamp of the API (RFC 3339 UTC, ``TIMESTAMP_PATTERN``) as epoch seconds; epoch milliseconds, what
    the table stores for createdAt and cancelledAt, are read too."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return float(value) / 1000
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return None


def elapsed_seconds(task: dict[str, Any], now: float | None = None) -> float | None:
    """From submission to the end (or to now while the task is not terminal)."""
    created = epoch_seconds(task.get("createdAt"))
    if created is None:
        return None
    end = None
    if task.get("status") in TERMINAL_STATUSES:
        end = epoch_seconds(task.get("finishedAt")) or epoch_seconds(task.get("cancelledAt"))
        end = end or epoch_seconds(task.get("updatedAt"))
    return round(max(0.0, (end or (now if now is not None else time.time())) - created), 3)


class TaskrailClient:
    def __init__(self, endpoints: Endpoints, credentials: Credentials, *, is_local: bool = False) -> None:
        self.endpoints = endpoints
        self.is_local = is_local
        self.credentials = credentials  # also what signs the live channel's connect (taskrail/live.py)
        self._signer = SigV4Auth(credentials, "execute-api", endpoints.region)
        # urllib3, which botocore's signing loads anyway (requests on top of it cost ~35 ms CPU at each start);
        # botocore's CA bundle; no retries here (``_call`` retries what may be retried), redirects not followed.
        self._http = urllib3.PoolManager(retries=False, ca_certs=get_cert_path(True))
        self._sleep: Callable[[float], None] = time.sleep
        self._random = random.Random()

    # -- the REST API (what users do) ------------------------------------------------------------------

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        url = self.endpoints.api_url.rstrip("/") + path
        data = json.dumps(body) if body is not None else None
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        aws_request = AWSRequest(method=method, url=url, data=data, headers=all_headers)
        self._signer.add_auth(aws_request)
        response = self._send(method, url, data, dict(aws_request.headers.items()), timeout=30)
        try:
            payload = json.loads(response.data)
        except ValueError:
            payload = {"message": response.data.decode("utf-8", "replace")}
        return response.status, payload

    def _send(
        self, method: str, url: str, data: str | None, headers: dict[str, str], *, timeout: float
    ) -> urllib3.BaseHTTPResponse:
        try:
            return self._http.request(method, url, body=data, headers=headers, timeout=timeout)
        except urllib3.exceptions.HTTPError as error:
            raise StackUnreachable(f"{method} {url.split('?', maxsplit=1)[0]}: {error}") from error

    def _ok(self, status: int, payload: Any) -> Any:
        if status >= 400:
            raise ApiError(status, payload.get("message", str(payload)) if isinstance(payload, dict) else str(payload))
        return payload

    def _call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        """One API call, retried while the API answers a retryable 503 (see RETRYABLE_STATUSES)."""
        retry = method != "POST" or "Idempotency-Key" in (headers or {})
        for attempt in range(RETRY_ATTEMPTS):
            status, payload = self.request(method, path, body, headers)
            if status not in RETRYABLE_STATUSES or not retry or attempt == RETRY_ATTEMPTS - 1:
                return self._ok(status, payload)
            self._sleep(self._random.uniform(0, min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2**attempt)))
        raise AssertionError("unreachable")

    def submit(self, task_type: str, params: dict[str, Any], idempotency_key: str | None = None) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return self._call("POST", "/tasks", {"type": task_type, "params": params}, headers)

    def get(self, task_id: str) -> dict[str, Any]:
        return self._call("GET", f"/tasks/{task_id}")

    def me(self) -> dict[str, Any]:
        """GET /me: the caller's user record (created on the first call) and profile."""
        return self._call("GET", "/me")

    def update_profile(self, changes: dict[str, Any]) -> dict[str, Any]:
        """PUT /me/profile: the fields given (fullName, avatar, preferences) are set; the stored profile."""
        return self._call("PUT", "/me/profile", changes)

    def list_page(self, status: str | None = None, limit: int | None = None, next_token: str | None = None) -> TaskPage:
        """One page of your tasks, newest first. With a status the API filters after reading ``limit`` of your
        tasks, so a page may hold fewer (even none) and still have a ``next``."""
        query = {k: v for k, v in (("status", status), ("limit", limit), ("next", next_token)) if v is not None}
        suffix = f"?{urlencode(query)}" if query else ""
        payload = self._call("GET", f"/tasks{suffix}")
        return TaskPage(payload["tasks"], payload.get("next"))

    def list_tasks(
        self,
        status: str | None = None,
        limit: int | None = None,
        *,
        all_pages: bool = False,
        next_token: str | None = None,
    ) -> list[dict[str, Any]]:
        """A page of your tasks; with ``all_pages`` every one from ``next_token`` (or the newest) to the oldest."""
        if not all_pages:
            return self.list_page(status, limit, next_token).tasks
        tasks: list[dict[str, Any]] = []
        token = next_token
        while True:
            page = self.list_page(status, limit or LIST_CAP, token)
            tasks.extend(page.tasks)
            if page.next is None:
                return tasks
            token = page.next

    def find_page(
        self,
        status: str | None = None,
        *,
        since_ms: int | None = None,
        limit: int | None = 25,
        next_token: str | None = None,
    ) -> TaskPage:
        """Your newest ``limit`` tasks (``None``: all) with one status, created at or after ``since_ms``, from
        ``next_token`` on; the page's ``next`` continues exactly after the last task returned.

        Pages are asked for at most the number still wanted, so a filtered page never holds more matches than
        wanted and its ``next`` skips nothing.
        """
        tasks: list[dict[str, Any]] = []
        token = next_token
        while limit is None or len(tasks) < limit:
            wanted = LIST_CAP if limit is None else min(LIST_CAP, limit - len(tasks))
            page = self.list_page(status, wanted, token)
            fresh = [
                t
                for t in page.tasks
                if since_ms is None or round((epoch_seconds(t.get("createdAt")) or 0) * 1000) >= since_ms
            ]
            tasks.extend(fresh)
            token = page.next
            older = since_ms is not None and len(fresh) < len(page.tasks)  # newest first: the rest is older
            if token is None or older:
                return TaskPage(tasks, None)
        return TaskPage(tasks, token)

    def find_tasks(
        self,
        status: str | None = None,
        *,
        since_ms: int | None = None,
        limit: int | None = 25,
        next_token: str | None = None,
    ) -> list[dict[str, Any]]:
        """:meth:`find_page`'s tasks."""
        return self.find_page(status, since_ms=since_ms, limit=limit, next_token=next_token).tasks

    def cancel(self, task_id: str) -> dict[str, Any]:
        return self._call("DELETE", f"/tasks/{task_id}")

    def result(self, task_id: str, *, follow_link: bool = True) -> dict[str, Any]:
        """GET /tasks/{taskId}/result: ``{"taskId", "type", "result"}``. A large result comes as a time-limited
        ``resultUrl`` (with ``expiresAt``, ``resultBytes``), which is downloaded into ``result`` unless
        ``follow_link`` is False. 409 (ApiError) while the task has no result; 404 for another user's task."""
        answer: dict[str, Any] = self._call("GET", f"/tasks/{task_id}/result")
        url = answer.get("resultUrl")
        if not follow_link or not url:
            return answer
        response = self._send("GET", url, None, {}, timeout=60)  # the link carries its own authorization (presigned)
        if response.status != 200:
            text = response.data.decode("utf-8", "replace")
            raise ApiError(response.status, f"the result link answered {response.status}: {text[:300]}")
        return {**answer, "result": json.loads(response.data)}

    def wait(
        self,
        task_ids: list[str],
        *,
        timeout: float = 120,
        interval: float = 0.2,
        on_update: Callable[[dict[str, dict[str, Any]]], None] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Polls until every task is terminal (or the deadline passes; then raises TimeoutError)."""
        deadline = time.monotonic() + timeout
        tasks: dict[str, dict[str, Any]] = {}
        while True:
            for task_id in task_ids:
                if tasks.get(task_id, {}).get("status") not in TERMINAL_STATUSES:
                    tasks[task_id] = self.get(task_id)
            if on_update:
                on_update(tasks)
            if all(t["status"] in TERMINAL_STATUSES for t in tasks.values()):
                return tasks
            if time.monotonic() > deadline:
                pending = [i for i, t in tasks.items() if t["status"] not in TERMINAL_STATUSES]
                raise TimeoutError(f"{len(pending)} task(s) not terminal after {timeout} s: {pending[:5]}")
            time.sleep(interval)
