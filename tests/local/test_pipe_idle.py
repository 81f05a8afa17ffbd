"""An idle pipe poller backs off (few GetRecords while nothing arrives) and a stream write wakes it at once."""

from __future__ import annotations

import threading
from typing import Any

import boto3
from moto import mock_aws

from taskrail.local.pipes import IDLE_POLL_MAX, POLL_INTERVAL, PipeRunner, PipeSpec
from taskrail.local.services.dynamodbstreams import STREAM_WRITES, add_stream_listener, remove_stream_listener

WINDOW_S = 60.0
STREAM = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/x"


def spec() -> PipeSpec:
    return PipeSpec(
        logical_id="P",
        name="StartWorkflowPipe",
        source_stream_arn=STREAM,
        filters=[{"eventName": ["INSERT"]}],
        target_arn="arn:aws:states:us-east-1:123456789012:stateMachine:m",
        target_kind="stepfunctions",
        input_template=None,
        batch_size=1,
        dead_letter_queue_arn=None,
        maximum_retry_attempts=0,
    )


class FakeClock:
    """Simulated time: a wait advances it by the full delay (nothing wakes the poller), until the window ends."""

    def __init__(self, runner_stop: threading.Event) -> None:
        self.now = 0.0
        self.waits: list[float] = []
        self._stop = runner_stop

    def monotonic(self) -> float:
        return self.now

    def wait(self, event: threading.Event, seconds: float) -> bool:
        self.waits.append(seconds)
        self.now += seconds
        if self.now >= WINDOW_S:
            self._stop.set()
        return False


class EmptyStream:
    def __call__(self, service: str) -> Any:
        return self

    def describe_stream(self, StreamArn: str) -> dict[str, Any]:
        return {"StreamDescription": {"Shards": [{"ShardId": "shard-1"}]}}

    def get_shard_iterator(self, **_: Any) -> dict[str, str]:
        return {"ShardIterator": "it-0"}

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:
        return {"Records": [], "NextShardIterator": ShardIterator}


def test_an_idle_poller_backs_off_to_a_few_reads_a_second_at_most():
    # Given a pipe over a stream where nothing arrives, on a simulated clock
    runner = PipeRunner({"StartWorkflowPipe": spec()}, EmptyStream())
    clock = FakeClock(runner._stop)
    runner._clock = clock

    # When it polls for a simulated minute
    runner._poll(spec(), {"shard-1": "it-0"})

    # Then it read far less often than every POLL_INTERVAL, with waits growing to IDLE_POLL_MAX
    polls = runner.polls["StartWorkflowPipe"]
    print(f"GetRecords in {WINDOW_S:.0f} s idle: {polls} (without back-off: {WINDOW_S / POLL_INTERVAL:.0f})")
    assert polls <= WINDOW_S / IDLE_POLL_MAX + 10
    assert clock.waits[0] < clock.waits[3] and max(clock.waits) == IDLE_POLL_MAX


def test_a_stream_write_wakes_the_listeners_and_removing_the_last_gives_moto_its_code_back():
    woken = threading.Event()
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
        )
        add_stream_listener(woken.set)
        try:
            assert STREAM_WRITES.problems() == []
            dynamodb.put_item(TableName="t", Item={"k": {"S": "1"}})
            assert woken.is_set()
        finally:
            remove_stream_listener(woken.set)
        woken.clear()
        dynamodb.put_item(TableName="t", Item={"k": {"S": "2"}})
        assert not woken.is_set()
