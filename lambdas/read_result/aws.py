"""boto3 adapters of read_result's ports: one GetItem of four attributes, S3 reads, SigV4 presigning."""

from __future__ import annotations

import json
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer
from botocore.config import Config
from botocore.exceptions import ClientError

from read_result.models import TaskSummary
from read_result.ports import ResultObjects, ResultTasks
from task_common.aws import client

_DESERIALIZER = TypeDeserializer()
_MISSING_OBJECT_CODES = {"404", "NoSuchKey", "NotFound"}
# Presigned URLs are SigV4 (query string) whatever botocore's default for the region is.
_PRESIGN_CONFIG = Config(signature_version="s3v4", retries={"mode": "standard"})


class DynamoDBResultTasks(ResultTasks):
    def __init__(self, table_name: str, dynamodb_client: Any | None = None) -> None:
        self.table_name = table_name
        self._client = dynamodb_client

    def find(self, task_id: str) -> TaskSummary | None:
        response = (self._client or client("dynamodb")).get_item(
            TableName=self.table_name,
            Key={"taskId": {"S": task_id}},
            ConsistentRead=True,
            ProjectionExpression="taskId, userId, #type, #status, #error",
            ExpressionAttributeNames={"#type": "type", "#status": "status", "#error": "error"},
        )
        item = response.get("Item")
        if item is None:
            return None
        return TaskSummary.model_validate({name: _DESERIALIZER.deserialize(value) for name, value in item.items()})


class S3ResultObjects(ResultObjects):
    def __init__(self, bucket: str, s3_client: Any | None = None) -> None:
        self.bucket = bucket
        self._client = s3_client

    @property
    def s3(self) -> Any:
        if self._client is None:  # one client with the presigning config, created on first use
            self._client = boto3.client("s3", config=_PRESIGN_CONFIG)
        return self._client

    def read_json(self, key: str) -> Any | None:
        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code", "")) in _MISSING_OBJECT_CODES:
                return None
            raise
        return json.loads(response["Body"].read())

    def presigned_get(self, key: str, *, expires_in: int) -> str:
        return str(
            self.s3.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_in
            )
        )
