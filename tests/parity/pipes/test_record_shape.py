"""Pipes parity: the DynamoDB stream record a pipe hands to its filter, input template and target.

Evidence: the example event of "Amazon DynamoDB stream as a source for EventBridge Pipes"
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-pipes-dynamodb.html): three records (INSERT, MODIFY,
REMOVE of item Id 101) with eventID, eventVersion "1.0", dynamodb.{Keys, NewImage, OldImage, StreamViewType,
SequenceNumber, SizeBytes 26 / 59 / 38}, awsRegion, eventName, eventSourceARN, eventSource "aws:dynamodb". Lambda's
DynamoDB example event (https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html) adds
dynamodb.ApproximateCreationDateTime in epoch seconds. The cases write the documented item changes to a table on
the running local moto server and read what the local pipe delivered to its Step Functions target.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.parity.pipes.conftest import REGION

KEYS = {"Id": {"N": "101"}}
FIRST = {"Message": {"S": "New item!"}, "Id": {"N": "101"}}
CHANGED = {"Message": {"S": "This item has changed"}, "Id": {"N": "101"}}
# The documented records, less the values AWS assigns (eventID, SequenceNumber, the stream ARN, the region).
DOCUMENTED = {
    "INSERT": {"Keys": KEYS, "NewImage": FIRST, "SizeBytes": 26},
    "MODIFY": {"Keys": KEYS, "NewImage": CHANGED, "OldImage": FIRST, "SizeBytes": 59},
    "REMOVE": {"Keys": KEYS, "OldImage": CHANGED, "SizeBytes": 38},
}
RECORD_FIELDS = {"eventID", "eventName", "eventVersion", "eventSource", "awsRegion", "dynamodb", "eventSourceARN"}


def write_the_documented_changes(pipe: Any) -> None:
    dynamodb = pipe.clients("dynamodb")
    dynamodb.put_item(TableName=pipe.table, Item=FIRST)
    dynamodb.put_item(TableName=pipe.table, Item=CHANGED)
    dynamodb.delete_item(TableName=pipe.table, Key=KEYS)


def test_each_record_carries_the_fields_aws_sends(make_pipe: Callable[..., Any]) -> None:
    pipe = make_pipe()
    write_the_documented_changes(pipe)

    batches = pipe.deliveries(3)

    assert all(isinstance(batch, list) and len(batch) == 1 for batch in batches)  # BatchSize 1: a batch of one
    records = {batch[0]["eventName"]: batch[0] for batch in batches}
    assert set(records) == {"INSERT", "MODIFY", "REMOVE"}
    for name, record in records.items():
        stream = record["dynamodb"]
        print(name, sorted(record), sorted(stream), stream["SizeBytes"])
        assert set(record) >= RECORD_FIELDS
        assert record["eventVersion"] == "1.0" and record["eventSource"] == "aws:dynamodb"
        assert record["awsRegion"] == REGION and record["eventSourceARN"] == pipe.stream_arn
        assert isinstance(record["eventID"], str) and record["eventID"]
        assert stream["StreamViewType"] == "NEW_AND_OLD_IMAGES"
        assert isinstance(stream["SequenceNumber"], str) and re.fullmatch(r"\d+", stream["SequenceNumber"])
        assert isinstance(stream["ApproximateCreationDateTime"], float)
        for field, value in DOCUMENTED[name].items():
            assert stream[field] == value, (name, field)
        assert ("NewImage" in stream) == (name != "REMOVE") and ("OldImage" in stream) == (name != "INSERT")


def test_sequence_numbers_grow_in_stream_order(make_pipe: Callable[..., Any]) -> None:
    pipe = make_pipe()
    write_the_documented_changes(pipe)

    records = {batch[0]["eventName"]: batch[0]["dynamodb"] for batch in pipe.deliveries(3)}

    order = [int(records[name]["SequenceNumber"]) for name in ("INSERT", "MODIFY", "REMOVE")]
    print("sequence numbers", order)
    assert order == sorted(order) and len(set(order)) == 3


def test_the_input_template_reads_the_fields_aws_sends(make_pipe: Callable[..., Any]) -> None:
    template = '{"id": <$.dynamodb.Keys.Id.N>, "name": "<$.eventName>", "source": "<$.eventSourceARN>"}'
    pipe = make_pipe(filters=[{"eventName": ["INSERT"]}], input_template=template)
    write_the_documented_changes(pipe)

    [batch] = pipe.deliveries(1)

    print("rendered", batch)
    assert batch == [{"id": 101, "name": "INSERT", "source": pipe.stream_arn}]
