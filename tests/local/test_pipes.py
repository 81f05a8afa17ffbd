"""The local pipe: filter, input template, at-least-once delivery, and the DLQ for records it cannot deliver."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from taskrail.local.pipes import PipeRunner, PipeSpec, as_delivered, matches, render_input_template

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

    runner._deliver(spec(), as_delivered(RECORD))

    [start] = clients.starts
    assert json.loads(start["input"]) == ["t-1"]
    assert start["name"] and start["name"] != "None"
    assert runner.delivered == {"StartWorkflowPipe": 1} and clients.dead_letters == []


def test_a_record_that_cannot_be_delivered_after_retries_goes_to_the_pipe_dlq():
    clients = FakeClients(fail_starts=99)
    runner = PipeRunner({"StartWorkflowPipe": spec()}, clients)

    runner._deliver(spec(), as_delivered(RECORD))

    assert clients.starts == []
    [dead] = clients.dead_letters
    assert dead["url"] == "https://sqs.local/123456789012/pipe-dlq"
    assert dead["pipe"] == "StartWorkflowPipe" and "throttled" in dead["reason"]
    assert dead["record"]["dynamodb"]["NewImage"]["taskId"] == {"S": "t-1"}
    assert runner.dead_lettered == {"StartWorkflowPipe": 1}
