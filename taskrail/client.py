"""The taskrail client: the REST API for users (SigV4-signed) and the operator's view for replay.

The same functions work against the local stack and a deployed stack: only the endpoints and the
credentials differ (see :meth:`TaskrailClient.local`).
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable, Generator, Iterable
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

TERMINAL_STATUSES = frozenset({"SUCCEEDED", "REJECTED", "FAILED", "CANCELLED"})
MAX_EXECUTION_NAME = 80
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
DLQ_MESSAGE_FIELDS = ("messageId", "taskId", "error", "cause", "attempt", "executionArn", "sentAt")
# The workflow's Fail states: an execution that ended in one of them failed through the Catch path (its context
# is in the DLQ, or the task was rejected); any other failed, timed-out or aborted execution failed outside it.
CATCH_PATH_END_STATES = frozenset({"TaskFailed", "TaskRejected"})
REDRIVABLE_EXECUTION_STATUSES = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})


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


@dataclass(frozen=True)
class ReplayOutcome:
    """``started`` means the DLQ message is dealt with (deleted); ``action`` says what happened, for people and
    scripts: started, already-replayed, dropped, would-start, redriven, would-redrive, refused, unsupported,
    nothing-to-replay."""

    task_id: str
    execution_name: str
    started: bool
    detail: str
    action: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "taskId": self.task_id,
            "action": self.action,
            "executionName": self.execution_name or None,
            "detail": self.detail,
        }


def task_view(task: dict[str, Any]) -> dict[str, Any]:
    """A task with every field of TASK_FIELDS present: the stable shape of --json output."""
    return {field: task.get(field) for field in TASK_FIELDS}


def execution_summary(events: list[dict[str, Any]]) -> tuple[str | None, int]:
    """The state the execution is in (or ended in) and how many times a Task state was retried.

    A retry is a ``TaskFailed`` event followed by another ``TaskScheduled`` before the state is left; a failure
    that is caught (or ends the execution) is not a retry.
    """
    state: str | None = None
    retries = 0
    failed_pending = False
    for event in events:
        entered = event.get("stateEnteredEventDetails")
        if entered:
            state = entered["name"]
        if event["type"] == "TaskFailed":
            failed_pending = True
        elif event["type"] == "TaskScheduled" and failed_pending:
            retries += 1
            failed_pending = False
        elif event["type"].endswith("StateExited"):
            failed_pending = False
    return state, retries


def epoch_seconds(value: Any) -> float | None:
    """createdAt/cancelledAt are epoch milliseconds; workflow timestamps are ISO-8601 (docs/DECISIONS.md)."""
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


def timeline(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An execution's history as rows a person can read: when, in which state, what happened."""
    rows: list[dict[str, Any]] = []
    start: datetime | None = None
    state: str | None = None
    for event in events:
        timestamp: datetime = event["timestamp"]
        start = start or timestamp
        entered = event.get("stateEnteredEventDetails")
        if entered:
            state = entered["name"]
        rows.append(
            {
                "id": event["id"],
                "timestamp": timestamp.isoformat(),
                "elapsedSeconds": round((timestamp - start).total_seconds(), 3),
                "type": event["type"],
                "state": state,
                "detail": _event_detail(event),
            }
        )
        if event.get("stateExitedEventDetails"):
            state = None
    return rows


def _event_detail(event: dict[str, Any]) -> str:
    details: dict[str, Any] = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
    if "error" in details or "cause" in details:
        cause = str(details.get("cause") or "")
        return f"{details.get('error', '')}: {cause}" if cause else str(details.get("error", ""))
    if "resourceType" in details:
        return f"{details['resourceType']}:{details.get('resource', '')}"
    return ""  # entering or leaving a state: the row's state column says which


def replay_execution_name(task_id: str, attempt: int) -> str:
    """``{taskId}-r{attempt}``; long ids (idempotency-key ids) are hashed to fit the 80-character limit."""
    name = f"{task_id}-r{attempt}"
    if len(name) <= MAX_EXECUTION_NAME:
        return name
    return f"t{hashlib.sha256(task_id.encode()).hexdigest()[:60]}-r{attempt}"


class TaskrailClient:
    def __init__(
        self,
        endpoints: Endpoints,
        credentials: Credentials,
        aws: Callable[[str], Any],
        *,
        is_local: bool = False,
    ) -> None:
        self.endpoints = endpoints
        self.is_local = is_local
        self._signer = SigV4Auth(credentials, "execute-api", endpoints.region)
        self._aws = aws
        self._http = requests.Session()
        # SQS short polls sample a subset of servers and may answer empty while messages exist; on AWS a scan
        # long-polls for a second so that "empty" means empty. Moto has one server.
        self._receive_wait_seconds = 0 if is_local else 1
        self._sleep: Callable[[float], None] = time.sleep
        self._random = random.Random()

    @classmethod
    def local(cls, user_name: str = "alice", state_file: Any = None) -> TaskrailClient:
        from taskrail.local.stack import STATE_FILE, StackInfo, local_client

        info = StackInfo.load(state_file or STATE_FILE)
        return cls.for_stack(info, user_name, lambda s: local_client(s, info.aws_endpoint_url))

    @classmethod
    def for_stack(cls, info: Any, user_name: str, aws: Callable[[str], Any]) -> TaskrailClient:
        """A client of a local stack (``info`` is its StackInfo) signing as one of the local users, or as a new
        session of one of the local roles (``ci``, ``batch``: every client is a session of its own)."""
        from taskrail.local.users import ROLES, USERS

        if user_name in ROLES:
            session = ROLES[user_name].session()
            credentials = Credentials(session.access_key_id, session.secret_access_key, session.session_token)
        else:
            user = USERS[user_name]
            credentials = Credentials(user.access_key_id, user.secret_access_key)
        endpoints = Endpoints(
            api_url=info.api_url,
            region=info.region,
            tasks_table=info.tasks_table,
            results_bucket=info.results_bucket,
            state_machine_arn=info.state_machine_arn,
            dead_letter_queue_url=info.dead_letter_queue_url,
        )
        return cls(endpoints, credentials, aws, is_local=True)

    # -- the REST API (what users do) ------------------------------------------------------------------

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        url = self.endpoints.api_url.rstrip("/") + path
        data = json.dumps(body) if body is not None else None
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        aws_request = AWSRequest(method=method, url=url, data=data, headers=all_headers)
        self._signer.add_auth(aws_request)
        response = self._http.request(method, url, data=data, headers=dict(aws_request.headers.items()), timeout=30)
        try:
            payload = response.json()
        except ValueError:
            payload = {"message": response.text}
        return response.status_code, payload

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
            fresh = [t for t in page.tasks if since_ms is None or (t.get("createdAt") or 0) >= since_ms]
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

    def progress(self, task_id: str) -> dict[str, Any]:
        """The task (API, owner only) with where its execution is: ``state``, ``retries``, ``elapsedSeconds``."""
        task = self.get(task_id)
        state: str | None = None
        retries: int | None = 0
        if task.get("executionArn"):
            try:
                state, retries = execution_summary(self.execution_events(task["executionArn"]))
            except ClientError as error:
                # A user may read their tasks without being allowed to read executions: progress without them.
                if error.response["Error"]["Code"] not in ("AccessDeniedException", "AccessDenied"):
                    raise
                retries = None
        return {**task_view(task), "state": state, "retries": retries, "elapsedSeconds": elapsed_seconds(task)}

    def watch(
        self,
        task_ids: list[str],
        *,
        timeout: float = 3600,
        interval: float = 0.5,
        on_update: Callable[[list[dict[str, Any]]], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Like :meth:`wait`, with :meth:`progress` views; returns them in the order of ``task_ids``."""
        deadline = time.monotonic() + timeout
        views: dict[str, dict[str, Any]] = {}
        while True:
            for task_id in task_ids:
                if views.get(task_id, {}).get("status") not in TERMINAL_STATUSES:
                    views[task_id] = self.progress(task_id)
            ordered = [views[i] for i in task_ids]
            if on_update:
                on_update(ordered)
            if all(v["status"] in TERMINAL_STATUSES for v in ordered):
                return ordered
            if time.monotonic() > deadline:
                pending = [v["taskId"] for v in ordered if v["status"] not in TERMINAL_STATUSES]
                raise TimeoutError(f"{len(pending)} task(s) not terminal after {timeout} s: {pending[:5]}")
            time.sleep(interval)

    # -- operator functions (the account's own AWS credentials) ---------------------------------------

    def result(self, task_id: str) -> Any:
        s3 = self._aws("s3")
        body = s3.get_object(Bucket=self.endpoints.results_bucket, Key=f"tasks/{task_id}/result.json")["Body"]
        return json.loads(body.read())

    def result_value(self, task_id: str) -> Any:
        """The task's result itself: inline in ``result.json``, or behind its claim-check reference."""
        stored = self.result(task_id)
        reference = stored.get("resultRef") or stored.get("result_ref")
        if not reference:
            return stored.get("result")
        bucket, _, key = reference.removeprefix("s3://").partition("/")
        return json.loads(self._aws("s3").get_object(Bucket=bucket, Key=key)["Body"].read())

    def execution_events(self, execution_arn: str) -> list[dict[str, Any]]:
        sfn = self._aws("stepfunctions")
        events: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = sfn.get_execution_history(
                executionArn=execution_arn, maxResults=1000, **({"nextToken": token} if token else {})
            )
            events.extend(page["events"])
            token = page.get("nextToken")
            if not token:
                return events

    def _scan_dlq(self, hide_seconds: int) -> Generator[dict[str, Any], None, None]:
        """Every DLQ message once, each hidden while the scan runs (so receiving again moves on to the others).

        The caller deletes what it handled (``message["handled"] = True`` after a delete); the rest is made visible
        again when the scan ends, so a peek or a filtered replay leaves other messages where they were.
        """
        sqs, url = self._aws("sqs"), self.endpoints.dead_letter_queue_url
        held: list[dict[str, Any]] = []
        try:
            while True:
                batch = sqs.receive_message(
                    QueueUrl=url,
                    MaxNumberOfMessages=10,
                    VisibilityTimeout=hide_seconds,
                    WaitTimeSeconds=self._receive_wait_seconds,
                    MessageSystemAttributeNames=["SentTimestamp"],
                ).get("Messages", [])
                if not batch:
                    return
                for message in batch:
                    held.append(message)
                    yield message
        finally:
            self._release([m for m in held if not m.get("handled")])

    def _release(self, messages: list[dict[str, Any]]) -> None:
        sqs = self._aws("sqs")
        for start in range(0, len(messages), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, m in enumerate(messages[start : start + 10])
            ]
            sqs.change_message_visibility_batch(QueueUrl=self.endpoints.dead_letter_queue_url, Entries=entries)

    @staticmethod
    def _dlq_entry(message: dict[str, Any]) -> dict[str, Any]:
        body = json.loads(message["Body"])
        sent = message.get("Attributes", {}).get("SentTimestamp")
        return {"messageId": message["MessageId"], "sentAt": int(sent) if sent else None, **body}

    def dlq_messages(self, max_messages: int = 10) -> list[dict[str, Any]]:
        """Peek at up to ``max_messages``: they are visible again when this returns."""
        found: list[dict[str, Any]] = []
        with closing(self._scan_dlq(hide_seconds=30)) as scan:
            for message in scan:
                found.append(self._dlq_entry(message))
                if len(found) >= max_messages:
                    break
        return found

    def dlq_summary(self, *, peek: int = 5, max_messages: int = 1000) -> dict[str, Any]:
        """The queue's size, its messages grouped by error (most frequent first) and the first ``peek`` of them."""
        attributes = self._aws("sqs").get_queue_attributes(
            QueueUrl=self.endpoints.dead_letter_queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        messages = self.dlq_messages(max_messages=max_messages)
        groups: dict[str, list[str]] = {}
        for message in messages:
            groups.setdefault(str(message.get("error")), []).append(message["taskId"])
        return {
            "count": int(attributes.get("ApproximateNumberOfMessages", 0)),
            "inFlight": int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
            "groups": [
                {"error": error, "count": len(ids), "taskIds": ids}
                for error, ids in sorted(groups.items(), key=lambda g: -len(g[1]))
            ],
            "messages": [{field: m.get(field) for field in DLQ_MESSAGE_FIELDS} for m in messages[:peek]],
        }

    def replay_dlq(
        self,
        task_ids: set[str] | None = None,
        *,
        dry_run: bool = False,
        errors: set[str] | None = None,
        since_ms: int | None = None,
    ) -> list[ReplayOutcome]:
        """ARCHITECTURE §6: QUEUED again, a new execution ``{taskId}-r{attempt}`` with the stored input, and the
        DLQ message deleted only after the start succeeded. Running it twice never starts twice.

        Filters: the tasks, the error name, messages that reached the DLQ at or after ``since_ms``."""
        sqs = self._aws("sqs")
        outcomes: list[ReplayOutcome] = []
        with closing(self._scan_dlq(hide_seconds=60)) as scan:
            for message in scan:
                entry = self._dlq_entry(message)
                if not self._matches(entry, task_ids, errors, since_ms):
                    continue
                outcome = self._replay_one(entry, dry_run=dry_run)
                outcomes.append(outcome)
                if outcome.started and not dry_run:
                    sqs.delete_message(
                        QueueUrl=self.endpoints.dead_letter_queue_url, ReceiptHandle=message["ReceiptHandle"]
                    )
                    message["handled"] = True
        return outcomes

    @staticmethod
    def _matches(
        entry: dict[str, Any], task_ids: set[str] | None, errors: set[str] | None, since_ms: int | None
    ) -> bool:
        if task_ids is not None and entry["taskId"] not in task_ids:
            return False
        if errors is not None and entry.get("error") not in errors:
            return False
        return since_ms is None or (entry.get("sentAt") or 0) >= since_ms

    def _replay_one(self, message: dict[str, Any], *, dry_run: bool) -> ReplayOutcome:
        dynamodb, task_id = self._aws("dynamodb"), message["taskId"]
        key = {"taskId": {"S": task_id}}
        item = dynamodb.get_item(TableName=self.endpoints.tasks_table, Key=key, ConsistentRead=True).get("Item")
        if item is None:
            return ReplayOutcome(task_id, "", True, "task no longer exists; message dropped", "dropped")
        status, attempt = item["status"]["S"], int(item.get("attempt", {}).get("N", "0"))
        name = replay_execution_name(task_id, attempt)
        if status not in ("FAILED", "QUEUED"):
            return ReplayOutcome(task_id, name, True, f"already {status}; message dropped", "dropped")
        if dry_run:
            return ReplayOutcome(task_id, name, False, f"would replay attempt {attempt + 1}", "would-start")
        if status == "FAILED":
            try:
                dynamodb.update_item(
                    TableName=self.endpoints.tasks_table,
                    Key=key,
                    UpdateExpression="SET #s = :queued REMOVE #e, #c",
                    ConditionExpression="#s = :failed",
                    ExpressionAttributeNames={"#s": "status", "#e": "error", "#c": "cause"},
                    ExpressionAttributeValues={":queued": {"S": "QUEUED"}, ":failed": {"S": "FAILED"}},
                )
            except ClientError as error:
                if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
        try:
            self._aws("stepfunctions").start_execution(
                stateMachineArn=self.endpoints.state_machine_arn, name=name, input=json.dumps(message["input"])
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ExecutionAlreadyExists":
                raise
            return ReplayOutcome(task_id, name, True, "already replayed", "already-replayed")
        return ReplayOutcome(task_id, name, True, f"started attempt {attempt + 1}", "started")

    def replay_tasks(self, task_ids: Iterable[str], *, dry_run: bool = False) -> list[ReplayOutcome]:
        """Replay the caller's own tasks: from the DLQ when their failure was caught (a new execution), otherwise,
        on AWS, RedriveExecution of an execution that failed, timed out or was aborted outside the Catch path.

        Ownership is checked through the API first: somebody else's task is refused exactly like a missing one.
        """
        outcomes: dict[str, ReplayOutcome] = {}
        owned: dict[str, dict[str, Any]] = {}
        for task_id in dict.fromkeys(task_ids):
            try:
                owned[task_id] = self.get(task_id)
            except ApiError as error:
                if error.status != 404:
                    raise
                outcomes[task_id] = ReplayOutcome(task_id, "", False, "task not found (or not yours)", "refused")
        if owned:
            for outcome in self.replay_dlq(set(owned), dry_run=dry_run):
                outcomes.setdefault(outcome.task_id, outcome)
        for task_id, task in owned.items():
            if task_id not in outcomes:
                outcomes[task_id] = self.redrive(task, dry_run=dry_run)
        return [outcomes[i] for i in dict.fromkeys(task_ids)]

    def redrive(self, task: dict[str, Any], *, dry_run: bool = False) -> ReplayOutcome:
        """RedriveExecution for a task whose execution failed outside the Catch path (no DLQ message): it resumes
        from the state that failed. Redriving twice never runs twice: a redriven execution is RUNNING (or done)."""
        task_id, arn = task["taskId"], task.get("executionArn")
        if not arn:
            detail = f"task is {task.get('status')} and has no execution; nothing to replay"
            return ReplayOutcome(task_id, "", False, detail, "nothing-to-replay")
        name = arn.rsplit(":", 1)[-1]
        execution = self._aws("stepfunctions").describe_execution(executionArn=arn)
        reason = self._not_redrivable(task, execution)
        if reason:
            return ReplayOutcome(task_id, name, False, reason, "nothing-to-replay")
        described = f"execution {name} ended {execution['status']} outside the Catch path"
        if self.is_local:
            return ReplayOutcome(
                task_id,
                name,
                False,
                f"{described}; it needs RedriveExecution, which the local stack does not have (moto does not "
                "implement it). On AWS, `taskrail replay ID --stack NAME` resumes it from the state that failed.",
                "unsupported",
            )
        if execution.get("redriveStatus") == "NOT_REDRIVABLE":
            why = execution.get("redriveStatusReason") or "Step Functions says it is not redrivable"
            return ReplayOutcome(task_id, name, False, f"{described}, but cannot be redriven: {why}", "not-redrivable")
        if dry_run:
            return ReplayOutcome(task_id, name, False, f"{described}; would redrive it", "would-redrive")
        redrives = int(execution.get("redriveCount", 0))
        token = hashlib.sha256(f"{arn}#{redrives}".encode()).hexdigest()[:64]
        self._aws("stepfunctions").redrive_execution(executionArn=arn, clientToken=token)
        return ReplayOutcome(task_id, name, True, f"{described}; redriven (redrive {redrives + 1})", "redriven")

    def _not_redrivable(self, task: dict[str, Any], execution: dict[str, Any]) -> str:
        status = execution["status"]
        if status not in REDRIVABLE_EXECUTION_STATUSES:
            return f"task is {task.get('status')}, its execution {status}; nothing to replay"
        if task.get("status") == "CANCELLED":
            return "task was cancelled; nothing to replay"
        state, _ = execution_summary(self.execution_events(execution["executionArn"]))
        if state in CATCH_PATH_END_STATES:
            return (
                f"task is {task.get('status')}: its failure was caught ({state}) and has no message in the DLQ "
                "(already replayed, or being replayed)"
            )
        return ""

    def history(self, task_id: str) -> list[dict[str, Any]]:
        item = self._aws("dynamodb").get_item(TableName=self.endpoints.tasks_table, Key={"taskId": {"S": task_id}})
        arn = item.get("Item", {}).get("executionArn", {}).get("S")
        if not arn:
            return []
        return self.execution_events(arn)
