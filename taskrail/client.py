"""The taskrail client: the REST API for users (SigV4-signed) and the operator's view for replay.

The same functions work against the local stack and a deployed stack: only the endpoints and the
credentials differ (see :meth:`TaskrailClient.local`).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

TERMINAL_STATUSES = frozenset({"SUCCEEDED", "REJECTED", "FAILED", "CANCELLED"})
MAX_EXECUTION_NAME = 80


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


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
    task_id: str
    execution_name: str
    started: bool
    detail: str


def replay_execution_name(task_id: str, attempt: int) -> str:
    """``{taskId}-r{attempt}``; long ids (idempotency-key ids) are hashed to fit the 80-character limit."""
    name = f"{task_id}-r{attempt}"
    if len(name) <= MAX_EXECUTION_NAME:
        return name
    return f"t{hashlib.sha256(task_id.encode()).hexdigest()[:60]}-r{attempt}"


class TaskrailClient:
    def __init__(self, endpoints: Endpoints, credentials: Credentials, aws: Callable[[str], Any]) -> None:
        self.endpoints = endpoints
        self._signer = SigV4Auth(credentials, "execute-api", endpoints.region)
        self._aws = aws
        self._http = requests.Session()

    @classmethod
    def local(cls, user_name: str = "alice") -> TaskrailClient:
        from taskrail.local.stack import StackInfo, local_client

        info = StackInfo.load()
        return cls.for_stack(info, user_name, lambda s: local_client(s, info.aws_endpoint_url))

    @classmethod
    def for_stack(cls, info: Any, user_name: str, aws: Callable[[str], Any]) -> TaskrailClient:
        from taskrail.local.users import USERS

        user = USERS[user_name]
        endpoints = Endpoints(
            api_url=info.api_url,
            region=info.region,
            tasks_table=info.tasks_table,
            results_bucket=info.results_bucket,
            state_machine_arn=info.state_machine_arn,
            dead_letter_queue_url=info.dead_letter_queue_url,
        )
        return cls(endpoints, Credentials(user.access_key_id, user.secret_access_key), aws)

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

    def submit(self, task_type: str, params: dict[str, Any], idempotency_key: str | None = None) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return self._ok(*self.request("POST", "/tasks", {"type": task_type, "params": params}, headers))

    def get(self, task_id: str) -> dict[str, Any]:
        return self._ok(*self.request("GET", f"/tasks/{task_id}"))

    def list_tasks(self, status: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        query = {k: v for k, v in (("status", status), ("limit", limit)) if v is not None}
        suffix = f"?{urlencode(query)}" if query else ""
        return self._ok(*self.request("GET", f"/tasks{suffix}"))["tasks"]

    def cancel(self, task_id: str) -> dict[str, Any]:
        return self._ok(*self.request("DELETE", f"/tasks/{task_id}"))

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

    # -- operator functions (the account's own AWS credentials) ---------------------------------------

    def result(self, task_id: str) -> Any:
        s3 = self._aws("s3")
        body = s3.get_object(Bucket=self.endpoints.results_bucket, Key=f"tasks/{task_id}/result.json")["Body"]
        return json.loads(body.read())

    def dlq_messages(self, max_messages: int = 10) -> list[dict[str, Any]]:
        """Peek: messages become visible again at once (visibility timeout 0)."""
        sqs = self._aws("sqs")
        found: dict[str, dict[str, Any]] = {}
        for _ in range(max(1, max_messages // 10 + 1)):
            batch = sqs.receive_message(
                QueueUrl=self.endpoints.dead_letter_queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0
            ).get("Messages", [])
            for message in batch:
                found.setdefault(
                    message["MessageId"], {"messageId": message["MessageId"], **json.loads(message["Body"])}
                )
            if not batch or len(found) >= max_messages:
                break
        return list(found.values())[:max_messages]

    def replay_dlq(self, task_ids: set[str] | None = None, *, dry_run: bool = False) -> list[ReplayOutcome]:
        """ARCHITECTURE §6: QUEUED again, a new execution ``{taskId}-r{attempt}`` with the stored input, and the
        DLQ message deleted only after the start succeeded. Running it twice never starts twice."""
        sqs = self._aws("sqs")
        outcomes: list[ReplayOutcome] = []
        while True:
            batch = sqs.receive_message(
                QueueUrl=self.endpoints.dead_letter_queue_url, MaxNumberOfMessages=10, VisibilityTimeout=60
            ).get("Messages", [])
            if not batch:
                return outcomes
            for message in batch:
                body = json.loads(message["Body"])
                if task_ids is not None and body["taskId"] not in task_ids:
                    continue
                outcome = self._replay_one(body, dry_run=dry_run)
                outcomes.append(outcome)
                if outcome.started and not dry_run:
                    sqs.delete_message(
                        QueueUrl=self.endpoints.dead_letter_queue_url, ReceiptHandle=message["ReceiptHandle"]
                    )
            if dry_run:
                return outcomes

    def _replay_one(self, message: dict[str, Any], *, dry_run: bool) -> ReplayOutcome:
        dynamodb, task_id = self._aws("dynamodb"), message["taskId"]
        key = {"taskId": {"S": task_id}}
        item = dynamodb.get_item(TableName=self.endpoints.tasks_table, Key=key, ConsistentRead=True).get("Item")
        if item is None:
            return ReplayOutcome(task_id, "", True, "task no longer exists; message dropped")
        status, attempt = item["status"]["S"], int(item.get("attempt", {}).get("N", "0"))
        name = replay_execution_name(task_id, attempt)
        if status not in ("FAILED", "QUEUED"):
            return ReplayOutcome(task_id, name, True, f"already {status}; message dropped")
        if dry_run:
            return ReplayOutcome(task_id, name, False, f"would replay attempt {attempt + 1}")
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
            return ReplayOutcome(task_id, name, True, "already replayed")
        return ReplayOutcome(task_id, name, True, f"started attempt {attempt + 1}")

    def history(self, task_id: str) -> list[dict[str, Any]]:
        item = self._aws("dynamodb").get_item(TableName=self.endpoints.tasks_table, Key={"taskId": {"S": task_id}})
        arn = item.get("Item", {}).get("executionArn", {}).get("S")
        if not arn:
            return []
        return self._aws("stepfunctions").get_execution_history(executionArn=arn, maxResults=1000)["events"]
