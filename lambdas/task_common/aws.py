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

from task_common.errors import TaskCancelled
from task_common.models import TaskRecord, TaskStatus
from task_common.ports import (
    BlobNotFound,
    BlobStore,
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


class DynamoDBTaskStore(TaskStore):
    def __init__(self, table_name: str, dynamodb_client: Any | None = None) -> None:
        self.table_name = table_name
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
        item = {name: _DESERIALIZER.deserialize(value) for name, value in response["Item"].items()}
        return TaskRecord.model_validate(item)

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


class StepFunctionsExecutions(WorkflowExecutions):
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
