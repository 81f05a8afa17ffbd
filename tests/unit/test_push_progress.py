"""The push function's logic with in-memory fakes of its two ports: who receives a task's change, in which order,
and what a gone, failing or slow connection does to the others."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from push_progress.logic import push_changes
from push_progress.models import Connection, StreamRecord
from push_progress.ports import ConnectionGone, ConnectionPoster, Connections, PostFailed

ALICE, BOB = "AROAALICE", "AROABOB"
HANG_GUARD_SECONDS = 10
EVENT_IDS = (f"event-{n}" for n in itertools.count(1))


class FakeConnections(Connections):
    """The Connections table: rows by connection id; ``of_owner`` is the owner index's Query."""

    def __init__(self, rows: dict[str, tuple[str, str | None]]) -> None:
        self.rows = dict(rows)  # connection id -> (owner, subscribed task id or None)
        self.queried: list[str] = []

    def of_owner(self, owner: str) -> list[Connection]:
        self.queried.append(owner)
        return [Connection(connection_id=cid, task_id=task) for cid, (who, task) in self.rows.items() if who == owner]

    def delete(self, connection_id: str) -> None:
        self.rows.pop(connection_id, None)


class FakePoster(ConnectionPoster):
    """Records each message per connection; ``gone`` connections answer GoneException, ``failing`` ones fail."""

    def __init__(self, *, gone: set[str] | None = None, failing: dict[str, Exception] | None = None) -> None:
        self.received: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.gone = gone or set()
        self.failing = failing or {}
        self._lock = threading.Lock()

    def post(self, connection_id: str, data: bytes) -> None:
        if connection_id in self.gone:
            raise ConnectionGone(connection_id)
        if connection_id in self.failing:
            raise self.failing[connection_id]
        with self._lock:
            self.received[connection_id].append(json.loads(data))


def record(
    task_id: str, owner: str, status: str, progress: int = 0, *, event_id: str | None = None, **extra: Any
) -> StreamRecord:
    image: dict[str, Any] = {
        "taskId": {"S": task_id},
        "userId": {"S": owner},
        "status": {"S": status},
        "progress": {"N": str(progress)},
        "attempt": {"N": "0"},
        "updatedAt": {"S": "2026-12-01T22:00:00.000Z"},
        **extra,
    }
    return StreamRecord.model_validate(
        {
            "eventID": event_id or next(EVENT_IDS),
            "eventName": "MODIFY",
            "dynamodb": {"NewImage": image, "ApproximateCreationDateTime": 1764626400.0},
        }
    )


@pytest.fixture
def pool():
    with ThreadPoolExecutor(max_workers=4) as executor:
        yield executor


def test_the_connections_subscribed_to_the_task_or_to_all_tasks_receive_it(pool):
    # Given alice's connections: one on the task, one on all her tasks, one on another task, one not subscribed
    connections = FakeConnections(
        {"on-task": (ALICE, "t-1"), "on-all": (ALICE, "*"), "on-other": (ALICE, "t-2"), "silent": (ALICE, None)}
    )
    poster = FakePoster()

    # When her task's progress changes
    summary = push_changes([record("t-1", ALICE, "RUNNING", 40)], connections=connections, poster=poster, pool=pool)

    # Then exactly the two subscribed connections get the contract's message
    assert sorted(poster.received) == ["on-all", "on-task"]
    assert poster.received["on-task"] == [
        {
            "type": "progress",
            "taskId": "t-1",
            "status": "RUNNING",
            "progress": 40,
            "attempt": 0,
            "updatedAt": "2026-12-01T22:00:00.000Z",
        }
    ]
    assert (summary.posted, summary.gone, summary.failed) == (2, 0, 0)


def test_another_owners_subscription_to_the_task_receives_nothing(pool):
    # Given bob subscribed to alice's task id, and to all of his own tasks
    connections = FakeConnections({"bob-on-alices": (BOB, "t-1"), "bob-on-all": (BOB, "*"), "alice": (ALICE, "t-1")})
    poster = FakePoster()

    # When alice's task changes
    push_changes([record("t-1", ALICE, "SUCCEEDED", 100)], connections=connections, poster=poster, pool=pool)

    # Then only alice's connections were looked up and only hers received it
    assert connections.queried == [ALICE]
    assert list(poster.received) == ["alice"]


def test_a_gone_connection_is_deleted_and_the_others_still_receive_the_message(pool):
    # Given three subscribers, one of which API Gateway has closed
    connections = FakeConnections({"a": (ALICE, "t-1"), "closed": (ALICE, "t-1"), "b": (ALICE, "*")})
    poster = FakePoster(gone={"closed"})

    # When the task changes
    summary = push_changes([record("t-1", ALICE, "RUNNING", 10)], connections=connections, poster=poster, pool=pool)

    # Then the gone connection's row is deleted, the others got the message, and nothing was raised
    assert "closed" not in connections.rows and {"a", "b"} <= set(connections.rows)
    assert sorted(poster.received) == ["a", "b"]
    assert (summary.posted, summary.gone) == (2, 1)


@pytest.mark.parametrize("failure", [PostFailed("LimitExceededException"), RuntimeError("anything else")])
def test_a_failing_connection_never_fails_the_batch(pool, failure: Exception):
    connections = FakeConnections({"sick": (ALICE, "t-1"), "well": (ALICE, "t-1")})
    poster = FakePoster(failing={"sick": failure})

    summary = push_changes(
        [record("t-1", ALICE, "RUNNING", 10), record("t-1", ALICE, "RUNNING", 20)],
        connections=connections,
        poster=poster,
        pool=pool,
    )

    # The failing connection is kept (it may be alive) and the healthy one received both messages
    assert "sick" in connections.rows
    assert [m["progress"] for m in poster.received["well"]] == [10, 20]
    assert (summary.posted, summary.failed) == (2, 2)


def test_a_connection_receives_a_tasks_changes_in_stream_order(pool):
    connections = FakeConnections({"c": (ALICE, "*")})
    poster = FakePoster()
    changes = [
        record("t-1", ALICE, "RUNNING", 0),
        record("t-2", ALICE, "RUNNING", 0),
        *(record("t-1", ALICE, "RUNNING", p) for p in (25, 50, 75, 100)),
        record("t-1", ALICE, "SUCCEEDED", 100, resultLocation={"S": "s3://results/tasks/t-1/result.json"}),
    ]

    push_changes(changes, connections=connections, poster=poster, pool=pool)

    of_t1 = [(m["status"], m["progress"]) for m in poster.received["c"] if m["taskId"] == "t-1"]
    assert of_t1 == [
        ("RUNNING", 0),
        ("RUNNING", 25),
        ("RUNNING", 50),
        ("RUNNING", 75),
        ("RUNNING", 100),
        ("SUCCEEDED", 100),
    ]


def test_terminal_messages_carry_the_result_key_or_the_error(pool):
    connections = FakeConnections({"c": (ALICE, "*")})
    poster = FakePoster()

    push_changes(
        [
            record("t-1", ALICE, "SUCCEEDED", 100, resultLocation={"S": "s3://results/tasks/t-1/result.json"}),
            record("t-2", ALICE, "FAILED", 30, error={"S": "PermanentTaskError"}, cause={"S": "bad row 7"}),
            record("t-3", ALICE, "REJECTED", 0, error={"S": "ValidationFailed"}),
        ],
        connections=connections,
        poster=poster,
        pool=pool,
    )

    succeeded, failed, rejected = poster.received["c"]
    assert succeeded["resultKey"] == "tasks/t-1/result.json" and "error" not in succeeded
    assert failed["error"] == {"code": "PermanentTaskError", "message": "bad row 7"} and "resultKey" not in failed
    assert rejected["error"] == {"code": "ValidationFailed"}


def test_a_change_without_updated_at_is_stamped_with_the_stream_records_time(pool):
    connections = FakeConnections({"c": (ALICE, "t-1")})
    poster = FakePoster()
    change = record("t-1", ALICE, "QUEUED")
    del change.dynamodb.new_image["updatedAt"]

    push_changes([change], connections=connections, poster=poster, pool=pool)

    assert poster.received["c"][0]["updatedAt"] == "2025-12-01T22:00:00.000Z"


def test_a_slow_connection_does_not_hold_back_the_other_connections_message(pool):
    # Given a connection whose post blocks until released, beside a healthy one
    released, fast_delivered = threading.Event(), threading.Event()

    class SlowPoster(FakePoster):
        def post(self, connection_id: str, data: bytes) -> None:
            if connection_id == "slow":
                assert released.wait(HANG_GUARD_SECONDS), "the slow post was never released"
            super().post(connection_id, data)
            if connection_id == "fast":
                fast_delivered.set()

    connections = FakeConnections({"slow": (ALICE, "t-1"), "fast": (ALICE, "t-1")})
    poster = SlowPoster()
    batch = threading.Thread(
        target=push_changes,
        args=([record("t-1", ALICE, "RUNNING", 50)],),
        kwargs={"connections": connections, "poster": poster, "pool": pool},
    )

    # When the batch runs while the slow post is still blocked
    batch.start()
    try:
        # Then the fast connection has its message already
        assert fast_delivered.wait(HANG_GUARD_SECONDS)
        assert "slow" not in poster.received
    finally:
        released.set()
        batch.join(HANG_GUARD_SECONDS)
    assert sorted(poster.received) == ["fast", "slow"]


class FlakyConnections(FakeConnections):
    """The owner index's Query fails once, on its ``fail_on``-th call (a throttle, a timeout)."""

    def __init__(self, rows: dict[str, tuple[str, str | None]], *, fail_on: int) -> None:
        super().__init__(rows)
        self.fail_on = fail_on

    def of_owner(self, owner: str) -> list[Connection]:
        if len(self.queried) + 1 == self.fail_on:
            self.fail_on = 0
            self.queried.append(owner)
            raise RuntimeError("ProvisionedThroughputExceededException")
        return super().of_owner(owner)


def test_a_failed_lookup_reports_that_record_and_every_later_one_so_a_retry_never_repeats_a_posted_one(pool):
    # Given a batch of five progress writes of one task, and a Query of the owner index that fails on the third
    connections = FlakyConnections({"c": (ALICE, "t-1")}, fail_on=3)
    poster = FakePoster()
    batch = [record("t-1", ALICE, "RUNNING", p, event_id=f"e{p}") for p in (10, 20, 30, 40, 50)]

    # When the pipe invokes the function with the batch
    answer = push_changes(batch, connections=connections, poster=poster, pool=pool).model_dump(by_alias=True)

    # Then the answer names the third record and every later one (Pipes' partial batch failure, by eventID)
    assert answer["batchItemFailures"] == [{"itemIdentifier": f"e{p}"} for p in (30, 40, 50)]
    assert [m["progress"] for m in poster.received["c"]] == [10, 20]

    # And when the pipe retries those records only, the client has each change once, in order
    retried = [r for r in batch if r.event_id in {f["itemIdentifier"] for f in answer["batchItemFailures"]}]
    again = push_changes(retried, connections=connections, poster=poster, pool=pool).model_dump(by_alias=True)
    assert again["batchItemFailures"] == []
    assert [m["progress"] for m in poster.received["c"]] == [10, 20, 30, 40, 50]


def test_a_batch_that_went_through_reports_no_item_failures(pool):
    answer = push_changes(
        [record("t-1", ALICE, "RUNNING", 10)], connections=FakeConnections({}), poster=FakePoster(), pool=pool
    ).model_dump(by_alias=True)

    assert answer["batchItemFailures"] == []


def test_a_record_that_is_not_a_tasks_change_is_skipped_not_retried(pool):
    # Given a record whose image has no status (a retry could not fix it), before a valid one
    connections = FakeConnections({"c": (ALICE, "*")})
    poster = FakePoster()
    broken = record("t-1", ALICE, "RUNNING", 10)
    del broken.dynamodb.new_image["status"]

    answer = push_changes(
        [broken, record("t-2", ALICE, "RUNNING", 20)], connections=connections, poster=poster, pool=pool
    ).model_dump(by_alias=True)

    assert answer["batchItemFailures"] == [] and answer["skipped"] == 1
    assert [m["taskId"] for m in poster.received["c"]] == ["t-2"]


@pytest.mark.parametrize(
    ("stored", "pushed"),
    [
        ("2026-12-02T07:47:41.177195+00:00", "2026-12-02T07:47:41.177Z"),  # moto's $$.State.EnteredTime
        ("2026-12-02T07:47:41.192Z", "2026-12-02T07:47:41.192Z"),  # AWS's EnteredTime, the functions' writes
        ("2026-12-02T07:47:41Z", "2026-12-02T07:47:41.000Z"),
        ("2026-12-02T09:47:41.5+02:00", "2026-12-02T07:47:41.500Z"),
        ("not a time", "not a time"),  # answered as stored, never dropped (as iso_time.vtl does)
    ],
)
def test_updated_at_is_pushed_in_the_apis_timestamp_form(pool, stored: str, pushed: str):
    connections = FakeConnections({"c": (ALICE, "t-1")})
    poster = FakePoster()

    change = record("t-1", ALICE, "RUNNING", 10, updatedAt={"S": stored})

    push_changes([change], connections=connections, poster=poster, pool=pool)

    assert poster.received["c"][0]["updatedAt"] == pushed


POST_BUDGET_SECONDS = 0.1  # the adapter's budget, scaled down (config.DEFAULT_POST_TIMEOUT_SECONDS is 1 s)


def test_a_batch_with_a_hanging_connection_takes_at_most_about_one_post_budget_per_record(pool):
    # Given a connection whose every post hangs until the adapter gives up (its read timeout), beside a healthy one
    class HangingPoster(FakePoster):
        def post(self, connection_id: str, data: bytes) -> None:
            if connection_id == "hanging":
                time.sleep(POST_BUDGET_SECONDS)
                raise PostFailed("Read timeout on endpoint URL")
            super().post(connection_id, data)

    connections = FakeConnections({"hanging": (ALICE, "t-1"), "well": (ALICE, "t-1")})
    poster = HangingPoster()
    batch = [record("t-1", ALICE, "RUNNING", p) for p in (10, 20, 30, 40, 50)]

    # When the batch is pushed
    started = time.monotonic()
    summary = push_changes(batch, connections=connections, poster=poster, pool=pool)
    took = time.monotonic() - started

    # Then it took about one budget per record (each record's posts end before the next one's begin), no more,
    # and the healthy connection has every change in order
    assert took <= len(batch) * POST_BUDGET_SECONDS + 0.25, f"{took:.3f} s for {len(batch)} records"
    assert [m["progress"] for m in poster.received["well"]] == [10, 20, 30, 40, 50]
    assert (summary.posted, summary.failed, summary.batch_item_failures) == (5, 5, [])
