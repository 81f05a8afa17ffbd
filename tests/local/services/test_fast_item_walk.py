"""A table's items sorted once per item (taskrail/local/services/dynamodb.py, FAST_ITEM_WALK): a speed patch of
moto's Table.all_items, which every Scan and Query walks. Its order must be moto's own for every key schema and key
type (strings, numbers of every form, binary), and Scan pages and Query answers must not change.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.table import Table

from taskrail.local.services import dynamodb
from taskrail.local.services.patching import original

ACCOUNT, REGION = "123456789012", "us-east-1"
NUMBERS = ["0", "-0", "1", "1.0", "10", "9", "-1.5", "1e2", "99.999", "-100", "0.001", "123456789012345678901234567890"]


def _value(kind: str, rng: random.Random, index: int) -> dict[str, Any]:
    if kind == "N":
        return {"N": NUMBERS[index % len(NUMBERS)] if index < len(NUMBERS) else str(rng.uniform(-1e6, 1e6))}
    if kind == "B":
        return {"B": bytes(rng.randrange(256) for _ in range(rng.randrange(1, 6)))}
    return {"S": "".join(rng.choice("aAzZ09-_é ") for _ in range(rng.randrange(1, 6))) + str(index)}


SCHEMAS = [("S", None), ("N", None), ("B", None), ("S", "N"), ("N", "S"), ("S", "B")]


@pytest.fixture(params=SCHEMAS, ids=lambda schema: f"hash {schema[0]}, range {schema[1]}")
def table(request: pytest.FixtureRequest) -> Iterator[tuple[Any, Any, tuple[str, str | None]]]:
    hash_type, range_type = request.param
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        schema = [{"AttributeName": "h", "KeyType": "HASH"}]
        attributes = [{"AttributeName": "h", "AttributeType": hash_type}]
        if range_type:
            schema.append({"AttributeName": "r", "KeyType": "RANGE"})
            attributes.append({"AttributeName": "r", "AttributeType": range_type})
        client.create_table(
            TableName="T", KeySchema=schema, AttributeDefinitions=attributes, BillingMode="PAY_PER_REQUEST"
        )
        rng = random.Random(14)
        for index in range(120):
            item = {"h": _value(hash_type, rng, index if not range_type else index // 4), "v": {"N": str(index)}}
            if range_type:
                item["r"] = _value(range_type, rng, index)
            client.put_item(TableName="T", Item=item)
        yield client, dynamodb_backends[ACCOUNT][REGION].get_table("T"), request.param


def _stored(moto_table: Any) -> int:
    """Items stored (numbers such as 1 and 1.0 are one key, so a few puts replace an item)."""
    return sum(len(v) if moto_table.range_key_attr else 1 for v in moto_table.items.values())


def _keys(items: list[Any]) -> list[Any]:
    return [(item.hash_key.to_json(), item.range_key.to_json() if item.range_key else None) for item in items]


def _reads(client: Any, hash_key: dict[str, Any]) -> list[Any]:
    pages, start = [], None
    while True:
        page = client.scan(TableName="T", Limit=7, **({"ExclusiveStartKey": start} if start else {}))
        pages.append(page["Items"])
        start = page.get("LastEvaluatedKey")
        if not start:
            break
    query = client.query(TableName="T", KeyConditionExpression="h = :h", ExpressionAttributeValues={":h": hash_key})
    return [pages, query["Items"]]


def test_items_are_walked_in_moto_s_order(table: tuple[Any, Any, Any]) -> None:
    _client, moto_table, _schema = table
    theirs = original(Table, "all_items")(moto_table)
    dynamodb.install_fast_item_walk()
    try:
        ours = moto_table.all_items()
    finally:
        dynamodb.uninstall_fast_item_walk()
    assert len(ours) == _stored(moto_table) > 100
    assert _keys(ours) == _keys(theirs)
    assert [id(item) for item in ours] == [id(item) for item in theirs]  # the stored items themselves, as moto's


def test_scan_pages_and_queries_answer_as_moto_does(table: tuple[Any, Any, Any]) -> None:
    client, moto_table, _schema = table
    hash_key = moto_table.all_items()[5].hash_key.to_json()
    theirs = _reads(client, hash_key)
    dynamodb.install_fast_item_walk()
    try:
        ours = _reads(client, hash_key)
        assert dynamodb.FAST_ITEM_WALK.problems() == []
    finally:
        dynamodb.uninstall_fast_item_walk()
    assert ours == theirs
    assert sum(len(page) for page in ours[0]) == _stored(moto_table) > 100
