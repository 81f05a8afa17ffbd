"""An UpdateItem writes the stream record DynamoDB writes (taskrail/local/services/dynamodb.py, atomic writes).

AWS: a stream record is "a single data modification that was performed on an item" (DynamoDB Streams API
reference, StreamRecord: https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_StreamRecord.html),
and its eventName is INSERT when "a new item was added to the table", MODIFY when "one or more of an existing item's
attributes were modified" (Record: https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_Record.html).
So an UpdateItem that creates an item is one INSERT with the new image, and one that modifies no attribute writes no
record (an identical PutItem sent again triggers nothing behind the stream either:
https://www.tecracer.com/blog/2021/01/why-i-had-to-update-my-mental-model-of-dynamodb-streams.html).
moto 5.2.5 without the patch: INSERT {id}, INSERT {id, v}, MODIFY.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models import dynamodb_backends

from taskrail.local.services import dynamodb

ACCOUNT, REGION = "123456789012", "us-east-1"


@contextmanager
def a_streamed_table(*, patched: bool) -> Iterator[Any]:
    with mock_aws():
        if patched:
            dynamodb.install_atomic_dynamodb_writes()
        try:
            client = boto3.client("dynamodb", region_name=REGION)
            client.create_table(
                TableName="T",
                KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
                StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
            )
            yield client
        finally:
            dynamodb.uninstall_atomic_dynamodb_writes()


@pytest.fixture
def client() -> Iterator[Any]:
    with a_streamed_table(patched=True) as patched:
        yield patched


def records() -> list[tuple[str, Any]]:
    shard = dynamodb_backends[ACCOUNT][REGION].get_table("T").stream_shard
    return [(r.record["eventName"], r.record["dynamodb"].get("NewImage")) for r in shard.items]


def set_if_absent(client: Any, value: str) -> None:
    client.update_item(
        TableName="T",
        Key={"id": {"S": "a"}},
        UpdateExpression="SET v = if_not_exists(v, :v)",
        ExpressionAttributeValues={":v": {"S": value}},
    )


def test_moto_alone_records_a_created_item_twice_and_an_unchanged_one_again():
    # What the patch corrects (this test fails if moto changes it)
    with a_streamed_table(patched=False) as unpatched:
        set_if_absent(unpatched, "x")
        set_if_absent(unpatched, "y")

        assert records() == [
            ("INSERT", {"id": {"S": "a"}}),
            ("INSERT", {"id": {"S": "a"}, "v": {"S": "x"}}),
            ("MODIFY", {"id": {"S": "a"}, "v": {"S": "x"}}),
        ]


def test_an_update_that_creates_an_item_is_one_insert_and_one_that_changes_nothing_is_none(client):
    set_if_absent(client, "x")
    set_if_absent(client, "y")  # v exists: nothing changes

    assert records() == [("INSERT", {"id": {"S": "a"}, "v": {"S": "x"}})]


def test_an_update_that_changes_the_item_is_one_modify(client):
    set_if_absent(client, "x")

    client.update_item(
        TableName="T",
        Key={"id": {"S": "a"}},
        UpdateExpression="SET w = :w",
        ExpressionAttributeValues={":w": {"N": "1"}},
    )

    assert records()[1:] == [("MODIFY", {"id": {"S": "a"}, "v": {"S": "x"}, "w": {"N": "1"}})]


def test_a_refused_update_records_nothing(client):
    with pytest.raises(client.exceptions.ConditionalCheckFailedException):
        client.update_item(
            TableName="T",
            Key={"id": {"S": "a"}},
            UpdateExpression="SET v = :v",
            ConditionExpression="attribute_exists(id)",
            ExpressionAttributeValues={":v": {"S": "x"}},
        )

    assert records() == []
