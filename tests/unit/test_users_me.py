"""GET /me's logic (lambdas/users/me.py) over the real DynamoDB adapter on moto: the record is created once,
lastLogin is written at most once an hour, and a lost race reads the winner's record."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws
from moto_aws import REGION, create_users_tables

from users.aws import DynamoDBUserDirectory
from users.me import read_me, username_of
from users.models import MeRequest

ALICE = MeRequest(owner="AIDAALICE", owner_arn="arn:aws:iam::123456789012:user/alice")
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class CountingClient:
    """The DynamoDB client, counting the writes the logic makes."""

    def __init__(self, client: object) -> None:
        self._client = client
        self.writes = 0

    def __getattr__(self, name: str) -> object:
        if name in ("update_item", "put_item"):
            self.writes += 1
        return getattr(self._client, name)


@pytest.fixture
def directory() -> Iterator[tuple[DynamoDBUserDirectory, CountingClient]]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_users_tables(client)
        counting = CountingClient(client)
        yield DynamoDBUserDirectory("users", "profiles", dynamodb_client=counting), counting


def test_the_first_request_creates_the_record_and_the_profile(directory) -> None:
    users, _ = directory
    answer = read_me(ALICE, directory=users, now=lambda: T0)
    print(answer.body)
    assert answer.status_code == 200
    assert answer.body["user"] == {
        "userId": "AIDAALICE",
        "username": "alice",
        "status": "ACTIVE",
        "createdAt": "2026-12-01T12:00:00.000Z",
        "updatedAt": "2026-12-01T12:00:00.000Z",
    }
    assert answer.body["profile"] == {"userId": "AIDAALICE", "lastLogin": "2026-12-01T12:00:00.000Z", "preferences": {}}


def test_later_requests_within_the_hour_write_nothing_and_keep_created_at(directory) -> None:
    users, counting = directory
    read_me(ALICE, directory=users, now=lambda: T0)
    written = counting.writes
    again = read_me(ALICE, directory=users, now=lambda: T0 + timedelta(minutes=59))
    print("writes of the first request:", written, "of a request 59 minutes later:", counting.writes - written)
    assert counting.writes == written
    assert again.body["user"]["createdAt"] == "2026-12-01T12:00:00.000Z"
    assert again.body["profile"]["lastLogin"] == "2026-12-01T12:00:00.000Z"


def test_last_login_moves_once_the_hour_has_passed_and_the_record_stays_one(directory) -> None:
    users, counting = directory
    read_me(ALICE, directory=users, now=lambda: T0)
    written = counting.writes
    later = read_me(ALICE, directory=users, now=lambda: T0 + timedelta(minutes=61))
    assert counting.writes == written + 1
    assert later.body["profile"]["lastLogin"] == "2026-12-01T13:01:00.000Z"
    assert later.body["user"]["createdAt"] == "2026-12-01T12:00:00.000Z"


def test_a_request_that_lost_the_race_reads_the_winners_record(directory) -> None:
    users, _ = directory
    winner = users.create_user("AIDAALICE", "alice", at="2026-12-01T11:00:00.000Z")
    loser = users.create_user("AIDAALICE", "someone-else", at="2026-12-01T12:00:00.000Z")
    assert loser == winner
    assert loser.username == "alice"


def test_a_record_the_profile_function_started_gets_its_creation_fields(directory) -> None:
    users, counting = directory
    counting.update_item(  # type: ignore[attr-defined]
        TableName="users",
        Key={"userId": {"S": "AIDAALICE"}},
        UpdateExpression="SET email = :e",
        ExpressionAttributeValues={":e": {"S": "alice@example.com"}},
    )
    answer = read_me(ALICE, directory=users, now=lambda: T0)
    assert answer.body["user"]["email"] == "alice@example.com"
    assert answer.body["user"]["createdAt"] == "2026-12-01T12:00:00.000Z"


@pytest.mark.parametrize(
    ("owner_arn", "expected"),
    [
        ("arn:aws:iam::123456789012:user/alice", "alice"),
        ("arn:aws:iam::123456789012:user/team/bob", "bob"),
        ("arn:aws:sts::123456789012:assumed-role/ci/botocore-session-1", "ci"),
        ("", "AIDAALICE"),
    ],
)
def test_the_username_is_the_iam_user_or_role_name(owner_arn: str, expected: str) -> None:
    assert username_of("AIDAALICE", owner_arn) == expected
