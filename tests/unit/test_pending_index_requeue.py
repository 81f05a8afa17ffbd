"""A replay's requeue (FAILED → QUEUED) files the task in the reconciler's pending index again: were the replay's
start lost, the reconciler must still find it QUEUED (task_common.contract.PENDING_INDEX)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto import mock_aws

from task_common.contract import PENDING_SHARD_ATTRIBUTE, PENDING_SHARDS, pending_shard
from taskrail.operator.aws import DynamoTaskRecords


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Any:
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="Tasks",
            KeySchema=[{"AttributeName": "taskId", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "taskId", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def test_a_requeued_task_is_back_in_a_shard_of_the_pending_index(dynamodb: Any):
    # Given a FAILED task, which its terminal write took out of the pending index
    item = {"taskId": {"S": "t-1"}, "status": {"S": "FAILED"}, "error": {"S": "E"}, "cause": {"S": "c"}}
    dynamodb.put_item(TableName="Tasks", Item=item)
    records = DynamoTaskRecords(lambda _service: dynamodb, "Tasks")

    # When replay requeues it
    assert records.requeue_failed("t-1")

    # Then it is QUEUED and filed under its shard again
    after = dynamodb.get_item(TableName="Tasks", Key={"taskId": {"S": "t-1"}})["Item"]
    assert after["status"] == {"S": "QUEUED"}
    assert after[PENDING_SHARD_ATTRIBUTE] == {"S": pending_shard("t-1")}
    assert pending_shard("t-1") in PENDING_SHARDS
