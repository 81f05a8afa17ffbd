"""The local pipe: filter, input template, at-least-once delivery, and the DLQ for records it cannot deliver."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from taskrail.local.pipes import (
    BatchFailed,
    PipeRunner,
    PipeSpec,
    as_delivered,
    matches,
    records_to_retry,
    render_input_template,
)

RECORD = {
    "eventName": "INSERT",
    "dynamodb": {"NewImage": {"taskId": {"S": "t-1"}, "status": {"S": "QUEUED"}}},
}


def spec(target_arn: str = "arn:aws:states:us-east-1:123456789012:stateMachine:m") -> PipeSpec:
    return PipeSpec(
        logical_id="P",
        name="StartWorkflowPipe",
        source_stream_arn="arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/x",
        filters=[{"eventName": ["INSERT"]}],
        target_arn=target_arn,
        target_kind="stepfunctions",
        input_template='"<$.dynamodb.NewImage.taskId.S>"',
        batch_size=1,
        dead_letter_queue_arn="arn:aws:sqs:us-east-1:123456789012:pipe-dlq",
        maximum_retry_attempts=2,
    )


class FakeClients:
    meta = SimpleNamespace(endpoint_url="https://sqs.local")  # the pipe addresses its DLQ by URL from the ARN

    def __init__(self, *, fail_starts: int) -> None:
        self.fail_starts = fail_starts
        self.starts: list[dict[str, Any]] = []
        self.dead_letters: list[dict[str, Any]] = []

    def __call__(self, service: str) -> Any:
        return self

    def start_execution(self, **request: Any) -> dict[str, str]:
        if self.fail_starts:
            self.fail_starts -= 1
            raise RuntimeError("throttled")
        self.starts.append(request)
        return {"executionArn": "arn"}

    def get_queue_url(self, QueueName: str) -> dict[str, str]:
        return {"QueueUrl": f"https://queue/{QueueName}"}

    def send_message(self, QueueUrl: str, MessageBody: str) -> None:
        self.dead_letters.append({"url": QueueUrl, **json.loads(MessageBody)})


def test_filters_match_like_eventbridge_patterns():
    assert matches({"eventName": ["INSERT"]}, RECORD)
    assert not matches({"eventName": ["MODIFY"]}, RECORD)
    assert matches({"dynamodb": {"NewImage": {"status": {"S": ["QUEUED", "RUNNING"]}}}}, RECORD)
    assert not matches({"dynamodb": {"NewImage": {"missing": {"S": ["x"]}}}}, RECORD)


def test_the_input_template_reduces_a_record_to_the_task_id():
    assert render_input_template('"<$.dynamodb.NewImage.taskId.S>"', RECORD) == "t-1"
    assert render_input_template(None, RECORD) == RECORD


def test_a_record_is_delivered_as_a_batch_of_one_to_a_fresh_execution_name():
    clients = FakeClients(fail_starts=1)
    runner = PipeRunner({"StartWorkflowPipe": spec()}, clients)

    runner._deliver(spec(), [as_delivered(RECORD)])

    [start] = clients.starts
    assert json.loads(start["input"]) == ["t-1"]
    assert start["name"] and start["name"] != "None"
    assert runner.delivered == {"StartWorkflowPipe": 1} and clients.dead_letters == []


def test_a_record_that_cannot_be_delivered_after_retries_goes_to_the_pipe_dlq():
    clients = FakeClients(fail_starts=99)
    runner = PipeRunner({"StartWorkflowPipe": spec()}, clients)

    runner._deliver(spec(), [as_delivered(RECORD)])

    assert clients.starts == []
    [dead] = clients.dead_letters
    assert dead["url"] == "https://sqs.local/123456789012/pipe-dlq"
    assert dead["pipe"] == "StartWorkflowPipe" and "throttled" in dead["reason"]
    assert dead["record"]["dynamodb"]["NewImage"]["taskId"] == {"S": "t-1"}
    assert runner.dead_lettered == {"StartWorkflowPipe": 1}


FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:push"


def lambda_spec(*, batch_size: int = 10, retries: int = 2) -> PipeSpec:
    return PipeSpec(
        logical_id="P",
        name="PushProgressPipe",
        source_stream_arn="arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/x",
        filters=[],
        target_arn=FUNCTION_ARN,
        target_kind="lambda",
        input_template=None,
        batch_size=batch_size,
        dead_letter_queue_arn="arn:aws:sqs:us-east-1:123456789012:pipe-dlq",
        maximum_retry_attempts=retries,
    )


def stream_record(n: int) -> dict[str, Any]:
    return {
        "eventID": f"e{n}",
        "eventName": "MODIFY",
        "dynamodb": {"SequenceNumber": str(100 + n), "NewImage": {"progress": {"N": str(n)}}},
    }


class FakeFunction(FakeClients):
    """A Lambda target: each invocation's batch is kept; ``answers`` are its replies, in turn (then ``{}``)."""

    def __init__(self, answers: list[Callable[[list[dict[str, Any]]], Any]]) -> None:
        super().__init__(fail_starts=0)
        self.answers = list(answers)
        self.batches: list[list[str]] = []

    def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, Any]:
        batch = json.loads(Payload)
        self.batches.append([record["eventID"] for record in batch])
        answer = self.answers.pop(0)(batch) if self.answers else {}
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(answer).encode())}


def failing_from(event_id: str) -> Callable[[list[dict[str, Any]]], Any]:
    """The push function's answer when its Query fails on ``event_id``: that record and every later one."""

    def answer(batch: list[dict[str, Any]]) -> Any:
        ids = [record["eventID"] for record in batch]
        return {"records": len(ids), "batchItemFailures": [{"itemIdentifier": i} for i in ids[ids.index(event_id) :]]}

    return answer


def test_a_partial_batch_failure_is_retried_from_the_first_failed_record_only():
    # Given a Lambda target that fails the third record of its first batch (and every later one)
    function = FakeFunction([failing_from("e3")])
    runner = PipeRunner({"PushProgressPipe": lambda_spec()}, function)

    # When the pipe delivers a batch of five records
    runner._deliver(lambda_spec(), [stream_record(n) for n in range(1, 6)])

    # Then the retry carries the third record on, never the two that went through, and nothing is dead-lettered
    assert function.batches == [["e1", "e2", "e3", "e4", "e5"], ["e3", "e4", "e5"]]
    assert runner.delivered == {"PushProgressPipe": 5} and function.dead_letters == []


def test_the_earliest_record_named_is_where_the_retry_starts():
    function = FakeFunction([lambda batch: {"batchItemFailures": [{"itemIdentifier": "e4"}, {"itemIdentifier": "e2"}]}])
    runner = PipeRunner({"PushProgressPipe": lambda_spec()}, function)

    runner._deliver(lambda_spec(), [stream_record(n) for n in range(1, 6)])

    assert function.batches[1] == ["e2", "e3", "e4", "e5"]


def test_the_records_still_failing_after_the_retries_go_to_the_dlq_and_the_others_are_delivered():
    function = FakeFunction([failing_from("e2")] * 3)
    runner = PipeRunner({"PushProgressPipe": lambda_spec(retries=2)}, function)

    runner._deliver(lambda_spec(retries=2), [stream_record(n) for n in range(1, 4)])

    assert function.batches == [["e1", "e2", "e3"], ["e2", "e3"], ["e2", "e3"]]
    assert [dead["record"]["eventID"] for dead in function.dead_letters] == ["e2", "e3"]
    assert "partial batch failure" in function.dead_letters[0]["reason"]
    assert runner.delivered == {"PushProgressPipe": 1}


def test_a_read_is_delivered_in_batches_of_the_pipes_batch_size_in_stream_order():
    function = FakeFunction([])
    runner = PipeRunner({"PushProgressPipe": lambda_spec(batch_size=2)}, function)
    stream = SimpleNamespace(
        get_records=lambda **_: {"Records": [stream_record(n) for n in range(1, 6)], "NextShardIterator": "next"}
    )

    runner._read(lambda_spec(batch_size=2), stream, {"shard-1": "iterator"})

    assert function.batches == [["e1", "e2"], ["e3", "e4"], ["e5"]]


@pytest.mark.parametrize(
    "answer",
    [
        {"batchItemFailures": None},
        {"batchItemFailures": []},
        {},
        None,
        {"records": 3, "posted": 2},
    ],
)
def test_an_answer_without_item_failures_is_a_complete_success(answer: Any):
    assert records_to_retry([stream_record(1), stream_record(2)], answer) == []


@pytest.mark.parametrize(
    "failure",
    [{"itemIdentifier": ""}, {"itemIdentifier": None}, {"itemId": "e1"}, {"itemIdentifier": "not-in-the-batch"}],
)
def test_an_identifier_empty_null_misnamed_or_unknown_fails_the_whole_batch(failure: dict[str, Any]):
    with pytest.raises(BatchFailed):
        records_to_retry([stream_record(1), stream_record(2)], {"batchItemFailures": [failure]})
