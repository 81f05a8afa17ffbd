"""The local stack's DynamoDB throttling faults refuse exactly the requests a rule names, as many times as it
says, the way DynamoDB refuses them (docs/TEST-STRENGTH.md, area emulator).

DynamoDB answers a throttled request with HTTP 400 and the error's ``__type`` ("Error handling with DynamoDB",
Amazon DynamoDB Developer Guide: ThrottlingException, ProvisionedThroughputExceededException and
RequestLimitExceeded are 400 errors the SDKs retry). The SDK's own retries are off here so that each refusal shows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from taskrail.local.services import dynamodb, server
from tests.local.services.harness import REGION

TABLE = "Tasks"


@pytest.fixture
def table() -> Iterator[Any]:
    with mock_aws(config=server.LOCAL_MOTO_CONFIG):
        client = boto3.client("dynamodb", region_name=REGION, config=Config(retries={"total_max_attempts": 1}))
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "taskId", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "taskId", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def put(client: Any, task_id: str) -> str:
    """ "ok", or the error code DynamoDB answered with."""
    try:
        client.put_item(TableName=TABLE, Item={"taskId": {"S": task_id}})
    except ClientError as error:
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        return str(error.response["Error"]["Code"])
    return "ok"


def test_a_rule_for_n_requests_refuses_the_first_n_that_match_and_no_other(table: Any):
    # Given a rule refusing two PutItems that carry the marker
    rule = dynamodb.ThrottleRule("PutItem", "ThrottlingException", "throttle-me", times=2)
    with dynamodb.throttling(rule):
        # Then a request without the marker passes, the first two with it are refused, the third passes
        outcomes = [put(table, "other"), put(table, "throttle-me-1"), put(table, "throttle-me-2")]
        outcomes.append(put(table, "throttle-me-3"))
    assert outcomes == ["ok", "ThrottlingException", "ThrottlingException", "ok"]
    assert rule.refused == 2

    # And the refused writes wrote nothing, the others did
    stored = {item["taskId"]["S"] for item in table.scan(TableName=TABLE)["Items"]}
    assert stored == {"other", "throttle-me-3"}


def test_a_rule_without_a_count_refuses_every_matching_request_while_its_block_runs(table: Any):
    with dynamodb.throttling(dynamodb.ThrottleRule("PutItem", "ProvisionedThroughputExceededException", "hot")):
        during = [put(table, f"hot-{n}") for n in range(3)]
    after = put(table, "hot-after")

    assert during == ["ProvisionedThroughputExceededException"] * 3
    assert after == "ok"
