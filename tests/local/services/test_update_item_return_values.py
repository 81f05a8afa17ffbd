"""UpdateItem ``ReturnValues: UPDATED_NEW`` answers the attributes the update sets, changed or not
(taskrail/local/services/dynamodb_return_values.py).

AWS: UPDATED_NEW "Returns only the updated attributes, as they appear after the UpdateItem operation" (UpdateItem API
reference); an attribute a SET names is updated even when its value stays the same (reported against DynamoDB in
ministackorg/ministack#1040; moto's UPDATED_OLD gap in getmoto/moto#2860). moto 5.2.5 diffs the old and new items and
answers nothing for a value set again: the WebSocket API's subscribe answered a repeated subscription with an
empty task id locally.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from taskrail.local.services import dynamodb_return_values as patch


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
        client.put_item(TableName="T", Item={"id": {"S": "c"}, "taskId": {"S": "t-1"}, "n": {"N": "1"}})
        yield client


def subscribe_again(client: Any, expression: str = "SET #t = :t, n = n + :one") -> dict[str, Any]:
    return client.update_item(
        TableName="T",
        Key={"id": {"S": "c"}},
        UpdateExpression=expression,
        ExpressionAttributeNames={"#t": "taskId"} if "#t" in expression else {},
        ExpressionAttributeValues={":t": {"S": "t-1"}, **({":one": {"N": "1"}} if ":one" in expression else {})},
        ReturnValues="UPDATED_NEW",
    )


def test_moto_answers_nothing_for_a_value_set_again(table: Any) -> None:
    assert subscribe_again(table)["Attributes"] == {"n": {"N": "2"}}


def test_patched_every_attribute_the_update_sets_is_answered_as_after_it(table: Any) -> None:
    patch.UPDATED_NEW_NAMES_SET.install()  # type: ignore[misc]
    try:
        assert subscribe_again(table)["Attributes"] == {"taskId": {"S": "t-1"}, "n": {"N": "2"}}
        assert subscribe_again(table, "SET taskId = :t")["Attributes"] == {"taskId": {"S": "t-1"}}
        untouched = table.update_item(
            TableName="T", Key={"id": {"S": "c"}}, UpdateExpression="REMOVE n", ReturnValues="UPDATED_NEW"
        )
        assert "Attributes" not in untouched or untouched["Attributes"] == {}
    finally:
        patch.UPDATED_NEW_NAMES_SET.uninstall()  # type: ignore[misc]


def test_the_clauses_name_their_top_level_targets() -> None:
    names = {"#t": "taskId", "#u": "updatedAt"}
    expression = "SET #t = :t, a = list_append(a, :l), #u = if_not_exists(#u, :now) ADD c :one REMOVE gone"
    assert patch.named_attributes(expression, names) == {"taskId", "a", "updatedAt", "c"}
