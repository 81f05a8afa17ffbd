"""boto3 adapters of push_progress's ports: a Query of the owner index, DeleteItem, and the management API's
PostToConnection with a short budget and no retry."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from push_progress.models import Connection
from push_progress.ports import ConnectionGone, ConnectionPoster, Connections, PostFailed
from task_common.aws import client

GONE = "GoneException"


class DynamoDBConnections(Connections):
    def __init__(self, table_name: str, owner_index: str, dynamodb_client: Any | None = None) -> None:
        self.table_name = table_name
        self.owner_index = owner_index
        self._client = dynamodb_client

    @property
    def _dynamodb(self) -> Any:
        return self._client or client("dynamodb")

    def of_owner(self, owner: str) -> list[Connection]:
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": self.owner_index,
            "KeyConditionExpression": "ownerId = :owner",
            "ExpressionAttributeValues": {":owner": {"S": owner}},
            "ProjectionExpression": "connectionId, taskId",
        }
        connections: list[Connection] = []
        while True:
            response = self._dynamodb.query(**request)
            connections.extend(
                Connection(connection_id=item["connectionId"]["S"], task_id=item.get("taskId", {}).get("S"))
                for item in response.get("Items", [])
            )
            if "LastEvaluatedKey" not in response:
                return connections
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def delete(self, connection_id: str) -> None:
        self._dynamodb.delete_item(TableName=self.table_name, Key={"connectionId": {"S": connection_id}})


class ManagementApiPoster(ConnectionPoster):
    """``endpoint_url`` is the stage's callback URL (https://{apiId}.execute-api.{region}.{suffix}/{stage})."""

    def __init__(self, endpoint_url: str, *, timeout_seconds: float, management_client: Any | None = None) -> None:
        self.endpoint_url = endpoint_url
        self.timeout_seconds = timeout_seconds
        self._client = management_client

    @property
    def _management(self) -> Any:
        if self._client is None:  # created on the first post (the endpoint is the template's, known at cold start)
            self._client = boto3.client(
                "apigatewaymanagementapi",
                endpoint_url=self.endpoint_url,
                config=Config(
                    connect_timeout=self.timeout_seconds,
                    read_timeout=self.timeout_seconds,
                    retries={"total_max_attempts": 1},
                    max_pool_connections=64,
                ),
            )
        return self._client

    def post(self, connection_id: str, data: bytes) -> None:
        try:
            self._management.post_to_connection(ConnectionId=connection_id, Data=data)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == GONE:
                raise ConnectionGone(connection_id) from error
            raise PostFailed(str(error)) from error
        except BotoCoreError as error:  # a timeout, a refused connection
            raise PostFailed(str(error)) from error
