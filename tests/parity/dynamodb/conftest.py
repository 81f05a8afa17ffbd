"""DynamoDB parity cases run against the local AWS endpoint over HTTP (tests/parity/endpoint.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.parity.endpoint import client, local_endpoint

TABLE = "parity-tasks"


@pytest.fixture(scope="package")
def dynamodb() -> Iterator[Any]:
    """A table shaped like taskrail's Tasks table: taskId (S) key; GSIs byUser (userId S, createdAt N) and
    byStatus (status S, createdAt N)."""
    with local_endpoint() as url:
        ddb = client(url, "dynamodb")
        created_at = {"AttributeName": "createdAt", "KeyType": "RANGE"}
        ddb.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "taskId", "AttributeType": "S"},
                {"AttributeName": "userId", "AttributeType": "S"},
                {"AttributeName": "status", "AttributeType": "S"},
                {"AttributeName": "createdAt", "AttributeType": "N"},
            ],
            KeySchema=[{"AttributeName": "taskId", "KeyType": "HASH"}],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "byUser",
                    "KeySchema": [{"AttributeName": "userId", "KeyType": "HASH"}, created_at],
                    "Projection": {"ProjectionType": "ALL"},
                },
                {
                    "IndexName": "byStatus",
                    "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"}, created_at],
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                },
            ],
        )
        yield ddb
