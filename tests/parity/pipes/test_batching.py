"""Pipes parity: how the running local pipe batches DynamoDB stream records for its Step Functions target.

Evidence:
- [BATCH] PipeSourceDynamoDBStreamParameters, EventBridge Pipes API Reference
  (https://docs.aws.amazon.com/eventbridge/latest/pipes-reference/API_PipeSourceDynamoDBStreamParameters.html):
  ``BatchSize`` "The maximum number of records to include in each batch"; ``StartingPosition`` TRIM_HORIZON reads
  the stream from its oldest record.
- [ARRAYS] "Amazon EventBridge Pipes batching and concurrency"
  (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-pipes-batching-concurrency.html): with batching "arrays
  of JSON records are passed through the pipe"; a target without a batch API that takes full JSON payloads (Lambda,
  Step Functions) receives the batch as one invocation.
- [ORDER] "Amazon DynamoDB stream as a source for EventBridge Pipes"
  (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-pipes-dynamodb.html): "EventBridge Pipes maintains the
  order of records from the data stream when sending that data to the destination."
- [FILTER] "Event filtering in Amazon EventBridge Pipes"
  (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-pipes-event-filtering.html): a pipe filters the source's
  events "and process[es] only a subset of them", as a Lambda event source mapping does: a record the filter drops
  reaches no batch, so the batches hold the matching records only, up to BatchSize each.

The records are in the stream before the pipe starts (TRIM_HORIZON), so every record is available to the first read
and the batch boundaries do not depend on when the pipe happens to poll.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from taskrail.local.pipes import PipeRunner
from tests.parity.pipes.conftest import PipeUnderTest

QUIET_SECONDS = 1.0  # after the expected batches, how long no further batch may arrive


@pytest.fixture
def batching_pipe(clients: Callable[[str], Any]) -> Iterator[Callable[..., PipeUnderTest]]:
    pipes: list[PipeUnderTest] = []

    def make(batch_size: int, filters: list[dict[str, Any]] | None = None) -> PipeUnderTest:
        pipe = PipeUnderTest(clients, filters or [], None)
        pipe.spec = dataclasses.replace(pipe.spec, batch_size=batch_size)
        pipe.runner = PipeRunner({pipe.spec.name: pipe.spec}, clients)  # not started: the test writes first
        pipes.append(pipe)
        return pipe

    yield make
    for pipe in pipes:
        pipe.runner.stop()


def write(pipe: PipeUnderTest, items: list[dict[str, Any]]) -> None:
    for item in items:
        pipe.clients("dynamodb").put_item(TableName=pipe.table, Item=item)


def batches_of(pipe: PipeUnderTest, count: int) -> list[list[int]]:
    """The ``count`` batches the pipe delivered (one execution each), as the item Ids each holds, in delivery order;
    no further batch may follow. Executions started in the same millisecond are ordered by their records' place in
    the stream (their start dates cannot order them); ones started apart must already be in stream order."""
    pipe.deliveries(count)
    time.sleep(QUIET_SECONDS)
    sfn = pipe.clients("stepfunctions")
    executions = sfn.list_executions(stateMachineArn=pipe.machine_arn)["executions"]
    assert len(executions) == count, f"{len(executions)} batches, expected {count}"
    started: list[tuple[Any, list[dict[str, Any]]]] = []
    for execution in executions:
        batch = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
        assert isinstance(batch, list) and batch, batch  # [ARRAYS]
        started.append((execution["startDate"], batch))
    started.sort(key=lambda s: (s[0], int(s[1][0]["dynamodb"]["SequenceNumber"])))
    sequence = [int(record["dynamodb"]["SequenceNumber"]) for _, batch in started for record in batch]
    assert sequence == sorted(sequence), "records out of stream order across or within batches"  # [ORDER]
    return [[int(record["dynamodb"]["Keys"]["Id"]["N"]) for record in batch] for _, batch in started]


def test_batch_size_2_delivers_five_records_as_2_2_1_in_stream_order(
    batching_pipe: Callable[..., PipeUnderTest],
) -> None:
    """[BATCH] at most 2 records per batch; [ORDER] in the order they were written."""
    pipe = batching_pipe(batch_size=2)
    write(pipe, [{"Id": {"N": str(n)}} for n in range(1, 6)])

    pipe.runner.start()
    batches = batches_of(pipe, 3)

    print("BatchSize 2, 5 records:", batches)
    assert batches == [[1, 2], [3, 4], [5]]


def test_batch_size_10_delivers_three_records_as_one_batch(batching_pipe: Callable[..., PipeUnderTest]) -> None:
    """[BATCH] fewer records than BatchSize, all available: one batch of all of them."""
    pipe = batching_pipe(batch_size=10)
    write(pipe, [{"Id": {"N": str(n)}} for n in (7, 8, 9)])

    pipe.runner.start()

    assert batches_of(pipe, 1) == [[7, 8, 9]]


def test_the_filter_drops_records_before_they_are_batched(batching_pipe: Callable[..., PipeUnderTest]) -> None:
    """[FILTER] 6 records, 3 matching, BatchSize 2: the batches hold only matching records, 2 and 1."""
    keep = {"dynamodb": {"NewImage": {"Kind": {"S": ["keep"]}}}}
    pipe = batching_pipe(batch_size=2, filters=[keep])
    kinds = {1: "keep", 2: "drop", 3: "drop", 4: "keep", 5: "drop", 6: "keep"}
    write(pipe, [{"Id": {"N": str(n)}, "Kind": {"S": kind}} for n, kind in kinds.items()])

    pipe.runner.start()
    batches = batches_of(pipe, 2)

    print("BatchSize 2, filter on Kind keep:", batches)
    assert batches == [[1, 4], [6]]
