"""Claim-check and adapter behaviours that surviving mutants showed no test held (docs/TEST-STRENGTH.md, area
lambdas)."""

from __future__ import annotations

import json

import boto3
from fakes import InMemoryBlobStore, InMemoryTaskStore, a_task

from process_task.logic import process_task
from task_common.aws import SqsDeadLetterQueue
from task_common.config import TaskFunctionConfig
from task_common.models import DeadLetterMessage, ProcessRequest

REGION = "us-east-1"


def test_parameters_are_claim_checked_past_200000_bytes_unless_configured_otherwise():
    # docs/DECISIONS.md ("Nothing large travels in the workflow"): parameters move to S3 when larger than
    # 200,000 bytes; the functions' environment sets no threshold unless an operator overrides it
    environ = {"TASKS_TABLE_NAME": "tasks", "RESULTS_BUCKET_NAME": "results"}
    assert TaskFunctionConfig.from_environ(environ).claim_check_threshold_bytes == 200_000
    overridden = {**environ, "CLAIM_CHECK_THRESHOLD_BYTES": "1000"}
    assert TaskFunctionConfig.from_environ(overridden).claim_check_threshold_bytes == 1000


def process_echo(payload: object, threshold: int, blobs: InMemoryBlobStore):
    task = a_task(type="diagnostic.echo")
    request = ProcessRequest.model_validate(
        {"taskId": task.task_id, "userId": task.user_id, "type": "diagnostic.echo", "params": {"payload": payload}}
    )
    return process_task(request, tasks=InMemoryTaskStore(task), blobs=blobs, claim_check_threshold_bytes=threshold)


def test_a_non_ascii_result_is_measured_and_stored_as_utf_8_not_as_escapes():
    # Given a result of 100 two-byte characters: {"echo":"é…é"} is 211 bytes in UTF-8, 217 once escaped again
    # as StoreResult carries it; written with \u00e9 escapes it would be over 600
    blobs = InMemoryBlobStore()

    # When processed with a 300-byte threshold, Then it stays inline
    assert process_echo("é" * 100, 300, blobs).result == {"echo": "é" * 100}

    # And a result that does go to S3 is stored as the characters themselves, measured in UTF-8 bytes
    processed = process_echo("é" * 100, 100, blobs)
    (body,) = blobs.objects.values()
    assert body == '{"echo":"' + "é" * 100 + '"}'
    assert processed.result_bytes == 211


def test_the_dead_letter_queue_adapter_sends_the_message_as_json(aws_environment):
    # Given a queue (moto) and the adapter over it
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="task-dlq")["QueueUrl"]
    message = DeadLetterMessage(
        task_id="t-1", execution_arn="arn:aws:states:::execution:x:t-1", input=["t-1"], error="E", cause="C", attempt=2
    )

    # When it sends a failed task's message
    SqsDeadLetterQueue(url).send(message)

    # Then the queue holds exactly that message, in the shape taskrail replay reads
    (received,) = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert json.loads(received["Body"]) == {
        "taskId": "t-1",
        "executionArn": "arn:aws:states:::execution:x:t-1",
        "input": ["t-1"],
        "error": "E",
        "cause": "C",
        "attempt": 2,
    }
