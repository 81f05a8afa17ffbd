"""The access log's subscriber (lambdas/users/seen.py): every authenticated caller of any route is signed in once, the
record created once even when two batches race, ``lastLogin`` written at most once an hour, a container's memo
saving even the reads, and the owner derived exactly as owner.vtl derives a task's owner (IAM user and assumed role).

The payload is CloudWatch Logs' documented subscription delivery ("Using CloudWatch Logs subscription filters",
https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/SubscriptionFilters.html: base64 of gzip of
``{messageType, owner, logGroup, logStream, subscriptionFilters, logEvents}``).
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto_aws import REGION, create_users_tables

from infra.constructs.api import load_template
from taskrail.local.vtl import ApiRequest, render_request
from users.aws import DynamoDBUserDirectory
from users.models import LogsSubscriptionEvent, ProfileRecord, UserRecord
from users.ports import UserDirectory
from users.seen import Caller, SeenMemo, callers_of, record_callers
from users.sign_in import owner_of

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
BATCH = json.loads((Path(__file__).parent / "fixtures" / "access_log_batch.json").read_text())
ALICE = Caller("AIDAALICE", "arn:aws:iam::123456789012:user/alice")


def delivery(messages: list[str], message_type: str = "DATA_MESSAGE") -> dict[str, Any]:
    data = {
        "messageType": message_type,
        "owner": "123456789012",
        "logGroup": "taskrail-ApiAccessLogs",
        "logStream": "access",
        "subscriptionFilters": ["taskrail-UserSeen"],
        "logEvents": [{"id": str(i), "timestamp": 1_796_131_200_000 + i, "message": m} for i, m in enumerate(messages)],
    }
    return {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(data).encode())).decode()}}


class CountingClient:
    """The DynamoDB client, counting reads, write attempts and writes whose condition held."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.reads = self.attempts = self.writes = 0
        self._lock = threading.Lock()

    def get_item(self, **request: Any) -> Any:
        with self._lock:
            self.reads += 1
        return self._client.get_item(**request)

    def update_item(self, **request: Any) -> Any:
        # One write at a time, as DynamoDB applies a conditional write to an item atomically (moto in this process
        # checks the condition and writes without a lock, so two threads could both pass it)
        with self._lock:
            self.attempts += 1
            answer = self._client.update_item(**request)
            self.writes += 1
        return answer


@pytest.fixture
def tables() -> Iterator[tuple[DynamoDBUserDirectory, CountingClient]]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_users_tables(client)
        counting = CountingClient(client)
        yield DynamoDBUserDirectory("users", "profiles", dynamodb_client=counting), counting


def test_a_delivery_decodes_to_its_log_events() -> None:
    data = LogsSubscriptionEvent.model_validate(delivery(["a", "b"])).data()
    assert (data.message_type, data.log_group, [e.message for e in data.log_events]) == (
        "DATA_MESSAGE",
        "taskrail-ApiAccessLogs",
        ["a", "b"],
    )


def test_a_batch_gives_each_authenticated_owner_once_and_no_one_else() -> None:
    messages = [json.dumps(line) for line in BATCH["lines"]] + [BATCH["notJson"]]
    callers = callers_of("DATA_MESSAGE", messages)
    print(callers)
    assert callers == [
        Caller("AIDAALICE", "arn:aws:iam::123456789012:user/alice"),
        Caller("AROACIROLE", "arn:aws:sts::123456789012:assumed-role/ci/botocore-session-1"),
    ]


def test_a_control_message_signs_in_no_one() -> None:
    assert callers_of("CONTROL_MESSAGE", [json.dumps(BATCH["lines"][0])]) == []


def _owner_vtl(user: str, user_arn: str) -> str:
    """owner.vtl as the stack deploys it, rendered by the local API Gateway's renderer."""
    template = load_template("owner.vtl", "Tasks") + "$owner"
    request = ApiRequest(method="GET", resource_path="/me", path="/me", identity={"user": user, "userArn": user_arn})
    return render_request(template, request).strip()


@pytest.mark.parametrize(
    ("user", "user_arn", "owner"),
    [
        ("AIDAALICE", "arn:aws:iam::123456789012:user/alice", "AIDAALICE"),
        ("AROACIROLE:botocore-session-1", "arn:aws:sts::123456789012:assumed-role/ci/botocore-session-1", "AROACIROLE"),
        ("AROACIROLE:a:b", "arn:aws:sts::123456789012:assumed-role/ci/a:b", "AROACIROLE"),
        ("AIDAALICE:x", "arn:aws:iam::123456789012:user/alice", "AIDAALICE:x"),  # not a session: kept whole
    ],
)
def test_the_owner_is_owner_vtls_for_both_identity_kinds(user: str, user_arn: str, owner: str) -> None:
    assert _owner_vtl(user, user_arn) == owner
    assert owner_of(user, user_arn) == owner


def test_the_first_request_of_any_route_creates_the_record_with_its_login(tables) -> None:
    users, counting = tables
    messages = [json.dumps(line) for line in BATCH["lines"]]
    answer = record_callers(callers_of("DATA_MESSAGE", messages), directory=users, memo=SeenMemo(), now=lambda: T0)
    print(answer, "writes:", counting.writes)
    assert answer.signed_in == ["AIDAALICE", "AROACIROLE"]
    alice, ci = users.user("AIDAALICE"), users.user("AROACIROLE")
    assert alice is not None and (alice.username, alice.created_at) == ("alice", "2026-12-01T12:00:00.000Z")
    assert ci is not None and ci.username == "ci"
    profile = users.profile("AIDAALICE")
    assert profile is not None and profile.last_login == "2026-12-01T12:00:00.000Z"
    assert counting.writes == 4  # one record and one login each


class RacingDirectory(UserDirectory):
    """Both batches read "no record" before either writes: the race two containers can run."""

    def __init__(self, inner: DynamoDBUserDirectory) -> None:
        self._inner = inner
        self._barrier = threading.Barrier(2, timeout=10)

    def user(self, user_id: str) -> UserRecord | None:
        found = self._inner.user(user_id)
        self._barrier.wait()
        return found

    def profile(self, user_id: str) -> ProfileRecord | None:
        found = self._inner.profile(user_id)
        self._barrier.wait()
        return found

    def create_user(self, user_id: str, username: str, *, at: str) -> UserRecord:
        return self._inner.create_user(user_id, username, at=at)

    def record_login(self, user_id: str, *, at: str, unless_since: str) -> ProfileRecord:
        return self._inner.record_login(user_id, at=at, unless_since=unless_since)


def test_two_batches_at_once_create_the_record_once(tables) -> None:
    users, counting = tables
    racing = RacingDirectory(users)
    moments = iter([T0, T0 + timedelta(seconds=1)])
    errors: list[BaseException] = []

    def batch(moment: datetime) -> None:
        try:
            record_callers([ALICE], directory=racing, memo=SeenMemo(), now=lambda: moment)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=batch, args=(next(moments),)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    print("write attempts:", counting.attempts, "writes whose condition held:", counting.writes)
    assert errors == []
    assert counting.attempts == 4  # each batch tried the record and the login
    assert counting.writes == 2  # one record, one login: the loser's conditions failed
    alice = users.user("AIDAALICE")
    assert alice is not None and alice.created_at in ("2026-12-01T12:00:00.000Z", "2026-12-01T12:00:01.000Z")


def test_last_login_is_written_at_most_once_an_hour(tables) -> None:
    users, counting = tables
    minutes = [0, 10, 59, 61, 100, 122]
    writes = []
    for minute in minutes:
        before = counting.writes
        # a fresh memo each time: a new container, so only the stored lastLogin holds the writes back
        record_callers([ALICE], directory=users, memo=SeenMemo(), now=lambda m=minute: T0 + timedelta(minutes=m))
        writes.append(counting.writes - before)
    print(dict(zip(minutes, writes, strict=True)))
    assert writes == [2, 0, 0, 1, 0, 1]
    profile = users.profile("AIDAALICE")
    assert profile is not None and profile.last_login == "2026-12-01T14:02:00.000Z"


def test_a_container_that_signed_a_caller_in_within_the_hour_reads_nothing(tables) -> None:
    users, counting = tables
    memo = SeenMemo()
    record_callers([ALICE], directory=users, memo=memo, now=lambda: T0)
    reads = counting.reads
    answer = record_callers([ALICE], directory=users, memo=memo, now=lambda: T0 + timedelta(minutes=59))
    print("reads of the first batch:", reads, "of one 59 minutes later:", counting.reads - reads, answer)
    assert (counting.reads, answer.skipped) == (reads, ["AIDAALICE"])
    record_callers([ALICE], directory=users, memo=memo, now=lambda: T0 + timedelta(minutes=61))
    assert counting.reads == reads + 2
    profile = users.profile("AIDAALICE")
    assert profile is not None and profile.last_login == "2026-12-01T13:01:00.000Z"


def test_the_memo_counts_the_hour_from_the_stored_login_not_from_its_own_visit(tables) -> None:
    users, counting = tables
    record_callers([ALICE], directory=users, memo=SeenMemo(), now=lambda: T0)  # another container, at T0
    memo = SeenMemo()
    record_callers([ALICE], directory=users, memo=memo, now=lambda: T0 + timedelta(minutes=50))  # finds it fresh
    reads = counting.reads
    record_callers([ALICE], directory=users, memo=memo, now=lambda: T0 + timedelta(minutes=61))
    assert counting.reads == reads + 2  # the login is 61 minutes old: read, and written
    profile = users.profile("AIDAALICE")
    assert profile is not None and profile.last_login == "2026-12-01T13:01:00.000Z"


def test_the_memo_forgets_its_oldest_owner_past_its_size() -> None:
    memo = SeenMemo(size=2)
    for owner in ("a", "b", "c"):
        memo.remember(owner, T0)
    assert [memo.fresh(owner, T0) for owner in ("a", "b", "c")] == [False, True, True]


def test_a_throttled_write_raises_for_lambda_to_retry(tables) -> None:
    users, _ = tables

    class Throttled(DynamoDBUserDirectory):
        def create_user(self, user_id: str, username: str, *, at: str) -> UserRecord:
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "UpdateItem")

    broken = Throttled("users", "profiles", dynamodb_client=users._client)
    memo = SeenMemo()
    with pytest.raises(ClientError):
        record_callers([ALICE], directory=broken, memo=memo, now=lambda: T0)
    assert not memo.fresh("AIDAALICE", T0)
