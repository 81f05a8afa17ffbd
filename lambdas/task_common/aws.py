"""boto3 adapters of the ports. Clients are created on first use, once per process; boto3 itself honours
AWS_ENDPOINT_URL, which is how the local stack points them at its services."""

from __future__ import annotations

import functools
import mimetypes
from datetime import UTC, datetime
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer
from botocore.config import Config
from botocore.exceptions import ClientError

from task_common.contract import PENDING_INDEX, PENDING_SHARD_ATTRIBUTE, PENDING_SHARDS, TERMINAL_STATUSES
from task_common.errors import TaskCancelled
from task_common.models import DeadLetterMessage, TaskRecord, TaskStatus
from task_common.ports import (
    BlobNotFound,
    BlobStore,
    DeadLetterQueue,
    ExecutionEnd,
    LifecycleExecutions,
    ReconcilerTasks,
    StopOutcome,
    TaskNotFound,
    TaskStore,
    WorkflowExecutions,
)

_DESERIALIZER = TypeDeserializer()
_MISSING_OBJECT_CODES = {"404", "NoSuchKey", "NotFound"}
_MISSING_EXECUTION_CODES = {"ExecutionDoesNotExist", "InvalidArn"}


@functools.cache
def client(service_name: str) -> Any:
    return boto3.client(service_name, config=Config(retries={"mode": "standard"}))


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _record(item: dict[str, Any]) -> TaskRecord:
    return TaskRecord.model_validate({name: _DESERIALIZER.deserialize(value) for name, value in item.items()})


class DynamoDBTaskStore(TaskStore, ReconcilerTasks):
    """``pending_index``: the Tasks table's sparse index of QUEUED and RUNNING tasks, keyed by shard
    (``pendingShard``) and sorted by createdAt (epoch ms); the reconciler passes the name its environment has from
    the template."""

    def __init__(
        self, table_name: str, dynamodb_client: Any | None = None, *, pending_index: str = PENDING_INDEX
    ) -> None:
        self.table_name = table_name
        self.pending_index = pending_index
        self._client = dynamodb_client

    @property
    def dynamodb(self) -> Any:
        return self._client or client("dynamodb")

    def get_task(self, task_id: str) -> TaskRecord:
        response = self.dynamodb.get_item(
            TableName=self.table_name, Key={"taskId": {"S": task_id}}, ConsistentRead=True
        )
        if "Item" not in response:
            raise TaskNotFound(f"task {task_id} does not exist")
        return _record(response["Item"])

    def tasks_with_status(self, status: TaskStatus, *, created_before: int, limit: int) -> list[TaskRecord]:
        """Each shard of the pending index, oldest first, filtered by status (the index holds only QUEUED and
        RUNNING tasks, so the filter passes over live tasks only); the oldest ``limit`` of all shards."""
        return self._pending(
            "#status = :status", {":status": {"S": status.value}}, created_before=created_before, limit=limit
        )

    def finished_in_pending_index(self, *, limit: int) -> list[TaskRecord]:
        """Each shard with a filter on the terminal statuses (the index projects status): entries a same-body retry
        of a finished task's Idempotency-Key re-added."""
        finished = sorted(TERMINAL_STATUSES)
        values = {f":finished{i}": {"S": status} for i, status in enumerate(finished)}
        return self._pending(f"#status IN ({', '.join(values)})", values, created_before=None, limit=limit)

    def leave_pending_index(self, task: TaskRecord) -> bool:
        finished = sorted(TERMINAL_STATUSES)
        values = {f":finished{i}": {"S": status} for i, status in enumerate(finished)}
        try:
            self.dynamodb.update_item(
                TableName=self.table_name,
                Key={"taskId": {"S": task.task_id}},
                UpdateExpression="REMOVE #shard",
                ConditionExpression=f"attribute_exists(#shard) AND #status IN ({', '.join(values)})",
                ExpressionAttributeNames={"#shard": PENDING_SHARD_ATTRIBUTE, "#status": "status"},
                ExpressionAttributeValues=values,
            )
        except ClientError as client_error:
            if _error_code(client_error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _pending(
        self, status_filter: str, values: dict[str, Any], *, created_before: int | None, limit: int
    ) -> list[TaskRecord]:
        tasks: list[TaskRecord] = []
        for shard in PENDING_SHARDS:
            tasks.extend(
                self._pending_in_shard(shard, status_filter, values, created_before=created_before, limit=limit)
            )
        tasks.sort(key=lambda task: (task.created_at or 0, task.task_id))
        return tasks[:limit]

    def _pending_in_shard(
        self, shard: str, status_filter: str, values: dict[str, Any], *, created_before: int | None, limit: int
    ) -> list[TaskRecord]:
        key_condition = "#shard = :shard"
        values = {**values, ":shard": {"S": shard}}
        if created_before is not None:
            key_condition += " AND createdAt < :before"
            values[":before"] = {"N": str(created_before)}
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": self.pending_index,
            "KeyConditionExpression": key_condition,
            "FilterExpression": status_filter,
            "ExpressionAttributeNames": {"#shard": PENDING_SHARD_ATTRIBUTE, "#status": "status"},
            "ExpressionAttributeValues": values,
            "ScanIndexForward": True,
        }
        tasks: list[TaskRecord] = []
        while len(tasks) < limit:
            # Limit counts the entries read before the filter: a page may match fewer, so page on.
            response = self.dynamodb.query(**request, Limit=limit - len(tasks))
            tasks.extend(_record(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                break
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return tasks[:limit]

    def fail_task(self, task: TaskRecord, *, execution_arn: str, error: str, cause: str) -> bool:
        values = {
            ":failed": {"S": TaskStatus.FAILED.value},
            ":status": {"S": task.status.value},
            ":attempt": {"N": str(task.attempt)},
            ":arn": {"S": execution_arn},
            ":error": {"S": error},
            ":cause": {"S": cause},
            ":now": {"S": _now()},
        }
        same_execution = "attribute_not_exists(executionArn)"
        if task.execution_arn is not None:
            same_execution, values[":read_arn"] = "executionArn = :read_arn", {"S": task.execution_arn}
        try:
            self.dynamodb.update_item(
                TableName=self.table_name,
                Key={"taskId": {"S": task.task_id}},
                UpdateExpression=(
                    "SET #status = :failed, executionArn = :arn, #error = :error, #cause = :cause, "
                    "updatedAt = :now, finishedAt = :now, outcomePending = :failed REMOVE #shard"
                ),
                ConditionExpression=f"#status = :status AND attempt = :attempt AND {same_execution}",
                ExpressionAttributeNames={
                    "#status": "status",
                    "#error": "error",
                    "#cause": "cause",
                    "#shard": PENDING_SHARD_ATTRIBUTE,
                },
                ExpressionAttributeValues=values,
            )
        except ClientError as client_error:
            if _error_code(client_error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def mark_outcome_delivered(self, task_id: str, *, status: str, execution_arn: str, key: str) -> bool:
        """The outbox entry is done: ``outcomeDelivered`` = the delivery key and ``outcomePending`` removed, if the
        task is still that pending outcome of that execution (False otherwise: it moved on, or was marked)."""
        try:
            self.dynamodb.update_item(
                TableName=self.table_name,
                Key={"taskId": {"S": task_id}},
                UpdateExpression="SET outcomeDelivered = :key REMOVE outcomePending",
                ConditionExpression="#status = :status AND outcomePending = :status AND executionArn = :arn",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":key": {"S": key},
                    ":status": {"S": status},
                    ":arn": {"S": execution_arn},
                },
            )
        except ClientError as client_error:
            if _error_code(client_error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def update_progress(self, task_id: str, percent: int) -> None:
        try:
            self.dynamodb.update_item(
                TableName=self.table_name,
                Key={"taskId": {"S": task_id}},
                UpdateExpression="SET #progress = :progress, #updatedAt = :now",
                ConditionExpression="#status = :running",
                ExpressionAttributeNames={
                    "#progress": "progress",
                    "#updatedAt": "updatedAt",
                    "#status": "status",
                },
                ExpressionAttributeValues={
                    ":progress": {"N": str(percent)},
                    ":now": {"S": _now()},
                    ":running": {"S": TaskStatus.RUNNING.value},
                },
            )
        except ClientError as error:
            if _error_code(error) == "ConditionalCheckFailedException":
                raise TaskCancelled(f"task {task_id} is no longer {TaskStatus.RUNNING.value}") from error
            raise

    def increment_counter(self, task_id: str, name: str) -> int:
        try:
            response = self.dynamodb.update_item(
                TableName=self.table_name,
                Key={"taskId": {"S": task_id}},
                UpdateExpression="ADD #counter :one",
                ConditionExpression="attribute_exists(taskId)",
                ExpressionAttributeNames={"#counter": name},
                ExpressionAttributeValues={":one": {"N": "1"}},
                ReturnValues="UPDATED_NEW",
            )
        except ClientError as error:
            if _error_code(error) == "ConditionalCheckFailedException":
                raise TaskNotFound(f"task {task_id} does not exist") from error
            raise
        return int(response["Attributes"][name]["N"])


class S3BlobStore(BlobStore):
    def __init__(self, bucket: str, s3_client: Any | None = None) -> None:
        self.bucket = bucket
        self._client = s3_client

    @property
    def s3(self) -> Any:
        return self._client or client("s3")

    def get_text(self, key: str) -> str:
        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _error_code(error) in _MISSING_OBJECT_CODES:
                raise BlobNotFound(f"{self.uri(key)} does not exist") from error
            raise
        return response["Body"].read().decode("utf-8")

    def put_text(self, key: str, text: str) -> None:
        content_type = mimetypes.guess_type(key)[0] or "text/plain"
        self.s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=text.encode("utf-8"),
            ContentType=f"{content_type}; charset=utf-8",
        )

    def exists(self, key: str) -> bool:
        try:
            self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _error_code(error) in _MISSING_OBJECT_CODES:
                return False
            raise
        return True


class StepFunctionsExecutions(WorkflowExecutions, LifecycleExecutions):
    def __init__(self, sfn_client: Any | None = None) -> None:
        self._client = sfn_client

    @property
    def sfn(self) -> Any:
        return self._client or client("stepfunctions")

    def stop(self, execution_arn: str, *, error: str, cause: str) -> StopOutcome:
        try:
            status = self.sfn.describe_execution(executionArn=execution_arn)["status"]
            if status != "RUNNING":
                return StopOutcome.NOT_RUNNING
            self.sfn.stop_execution(executionArn=execution_arn, error=error, cause=cause)
        except ClientError as client_error:
            if _error_code(client_error) in _MISSING_EXECUTION_CODES:
                return StopOutcome.NOT_FOUND
            raise
        return StopOutcome.STOPPED

    def status(self, execution_arn: str) -> str | None:
        described = self.describe(execution_arn)
        return None if described is None else described.status

    def describe(self, execution_arn: str) -> ExecutionEnd | None:
        try:
            execution = self.sfn.describe_execution(executionArn=execution_arn)
        except ClientError as client_error:
            if _error_code(client_error) in _MISSING_EXECUTION_CODES:
                return None
            raise
        return ExecutionEnd(str(execution["status"]), execution.get("error"), execution.get("cause"))

    def start(self, state_machine_arn: str, *, name: str, input_json: str) -> bool:
        try:
            self.sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=input_json)
        except ClientError as client_error:
            if _error_code(client_error) == "ExecutionAlreadyExists":
                return False
            raise
        return True


class SqsDeadLetterQueue(DeadLetterQueue):
    def __init__(self, queue_url: str, sqs_client: Any | None = None) -> None:
        self.queue_url = queue_url
        self._client = sqs_client

    @property
    def sqs(self) -> Any:
        return self._client or client("sqs")

    def send(self, message: DeadLetterMessage) -> None:
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=message.model_dump_json())
