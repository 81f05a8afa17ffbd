"""taskrail.local.services.dynamodb: a conditional write and its condition are atomic, as in DynamoDB."""

from __future__ import annotations

import threading

import boto3
import pytest
from moto import mock_aws

from taskrail.local.services.dynamodb import install_atomic_dynamodb_writes, uninstall_atomic_dynamodb_writes
from tests.claim_race import ClaimRace, gate_condition_checks
from tests.local.services.harness import (
    DEADLINE_SECONDS,
    REGION,
)


def test_two_claims_racing_through_the_condition_check_cannot_both_win(monkeypatch: pytest.MonkeyPatch) -> None:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        key = {"k": {"S": "task-1"}}
        dynamodb.put_item(TableName="t", Item={**key, "s": {"S": "QUEUED"}})
        install_atomic_dynamodb_writes()
        gate_condition_checks(monkeypatch, ClaimRace())
        wins: list[int] = []

        def claim(me: int) -> None:
            try:
                dynamodb.update_item(
                    TableName="t",
                    Key=key,
                    UpdateExpression="SET s = :r, winner = :me",
                    ConditionExpression="s = :q",
                    ExpressionAttributeValues={":r": {"S": "RUNNING"}, ":q": {"S": "QUEUED"}, ":me": {"N": str(me)}},
                )
                wins.append(me)
            except dynamodb.exceptions.ConditionalCheckFailedException:
                pass

        try:
            threads = [threading.Thread(target=claim, args=(i,)) for i in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=DEADLINE_SECONDS)
            assert not any(t.is_alive() for t in threads)
        finally:
            uninstall_atomic_dynamodb_writes()
        assert len(wins) == 1, f"{len(wins)} claims won"
        assert dynamodb.get_item(TableName="t", Key=key)["Item"]["winner"] == {"N": str(wins[0])}
