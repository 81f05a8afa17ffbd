"""An UpdateItem is measured by the item it makes (taskrail/local/services/dynamodb.py, ITEM_SIZE).

AWS: "The maximum item size in DynamoDB is 400 KB, which includes both attribute name binary length (UTF-8 length)
and attribute value lengths" (DynamoDB developer guide, "Service, account, and table quotas", Items): the size of the
item as stored. An attribute SET to a value replaces the old one, so setting it again does not grow the item.
moto 5.2.5 adds the new value to the item's size with the old one still counted, and refuses such an update from
about half the limit: the submission's same-body Idempotency-Key retry (``SET params = if_not_exists(params, :p)``)
of a large finished task would be a 400 locally and a 202 on AWS.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from taskrail.local.services import dynamodb

BIG, OTHER = "x" * 250_000, "y" * 140_000  # 390,000 bytes of values: under the limit once, over it counted twice


@pytest.fixture
def table() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="T",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        client.put_item(TableName="T", Item={"id": {"S": "a"}, "p": {"S": BIG}, "q": {"S": OTHER}})
        yield client


def set_again(client: Any, value: str, *, more: str = "1") -> None:
    client.update_item(
        TableName="T",
        Key={"id": {"S": "a"}},
        UpdateExpression="SET p = if_not_exists(p, :p), s = :s",
        ExpressionAttributeValues={":p": {"S": value}, ":s": {"S": more}},
    )


def test_moto_counts_a_value_set_again_twice(table: Any):
    with pytest.raises(ClientError) as refused:
        set_again(table, BIG)
    assert refused.value.response["Error"]["Message"] == "Item size to update has exceeded the maximum allowed size"


def test_patched_a_value_set_again_counts_once_and_an_item_over_the_limit_is_still_refused(table: Any):
    dynamodb.install_item_size()
    try:
        set_again(table, BIG)
        item = table.get_item(TableName="T", Key={"id": {"S": "a"}})["Item"]
        assert (item["p"], item["s"]) == ({"S": BIG}, {"S": "1"})
        with pytest.raises(ClientError) as refused:
            set_again(table, BIG, more="z" * 20_000)  # 410,000 bytes of values: over the limit as made
    finally:
        dynamodb.uninstall_item_size()
    assert refused.value.response["Error"]["Message"] == "Item size to update has exceeded the maximum allowed size"
