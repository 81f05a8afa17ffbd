"""moto's data survives a snapshot and a restore into freshly provisioned resources; what cannot be trusted is
refused; the moto internals it reads are declared and still there."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models import dynamodb_backends

from taskrail.local.region import ACCOUNT_ID, REGION
from taskrail.local.services.persistence import (
    SNAPSHOT_FILE,
    STATE_SNAPSHOT,
    Autosave,
    SnapshotRefused,
    restore,
    snapshot,
)

TABLE, BUCKET, QUEUE = "taskrail-TasksTable", "taskrail-results", "taskrail-dlq"


def provision(aws: Any) -> str:
    """What the template provisions at every start: empty resources with fixed names."""
    aws["dynamodb"].create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "taskId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "taskId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )
    aws["s3"].create_bucket(Bucket=BUCKET)
    return str(aws["sqs"].create_queue(QueueName=QUEUE, Attributes={"VisibilityTimeout": "300"})["QueueUrl"])


def stream_records() -> int:
    """The records in the table's stream (moto's shard: its DynamoDB Streams API is not routed under mock_aws)."""
    shard = dynamodb_backends[ACCOUNT_ID][REGION].tables[TABLE].stream_shard
    assert shard is not None
    return len(shard.items)


@contextmanager
def fresh_aws() -> Iterator[dict[str, Any]]:
    """moto as a stack starts it: empty."""
    with mock_aws():
        yield {s: boto3.client(s, region_name=REGION) for s in ("dynamodb", "s3", "sqs")}


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with fresh_aws() as clients:
        yield clients


def test_items_objects_and_messages_come_back_in_a_fresh_stack_without_stream_records(tmp_path: Path):
    # Given a stack with a task, its result and a DLQ message being received when it stops
    item = {"taskId": {"S": "t-1"}, "status": {"S": "SUCCEEDED"}, "progress": {"N": "100"}}
    with fresh_aws() as aws:
        queue = provision(aws)
        aws["dynamodb"].put_item(TableName=TABLE, Item=item)
        aws["s3"].put_object(Bucket=BUCKET, Key="tasks/t-1/result.json", Body=b'{"result": 1}')
        aws["sqs"].send_message(QueueUrl=queue, MessageBody='{"taskId": "t-2"}')
        assert aws["sqs"].receive_message(QueueUrl=queue)["Messages"]  # in flight for 300 s
        saved = snapshot(tmp_path / SNAPSHOT_FILE)
    assert (saved.items, saved.objects, saved.messages) == (1, 1, 1)

    # When a new stack starts (moto empty, the template provisioned again) and restores the snapshot
    with fresh_aws() as fresh:
        queue = provision(fresh)
        assert fresh["dynamodb"].scan(TableName=TABLE)["Count"] == 0
        restored = restore(tmp_path / SNAPSHOT_FILE)

        # Then the data is back, the message is visible again, and the pipes have nothing to deliver again
        print(restored)
        assert (restored.items, restored.objects, restored.messages, restored.skipped) == (1, 1, 1, [])
        assert fresh["dynamodb"].get_item(TableName=TABLE, Key={"taskId": {"S": "t-1"}})["Item"] == item
        body = fresh["s3"].get_object(Bucket=BUCKET, Key="tasks/t-1/result.json")["Body"].read()
        assert body == b'{"result": 1}'
        [message] = fresh["sqs"].receive_message(QueueUrl=queue)["Messages"]
        assert message["Body"] == '{"taskId": "t-2"}'
        assert stream_records() == 0
        # and the restored table takes writes as any other
        fresh["dynamodb"].put_item(TableName=TABLE, Item={"taskId": {"S": "t-3"}})
        assert fresh["dynamodb"].scan(TableName=TABLE)["Count"] == 2


def test_a_resource_the_template_no_longer_has_is_left_out_and_named(tmp_path: Path):
    with fresh_aws() as aws:
        provision(aws)
        aws["dynamodb"].put_item(TableName=TABLE, Item={"taskId": {"S": "t-1"}})
        snapshot(tmp_path / SNAPSHOT_FILE)
    with fresh_aws():
        restored = restore(tmp_path / SNAPSHOT_FILE)
    assert restored.items == 0
    assert f"table {TABLE}: not in the template" in restored.skipped


def test_a_snapshot_another_os_user_could_write_is_not_loaded(aws, tmp_path: Path):
    provision(aws)
    path = tmp_path / SNAPSHOT_FILE
    snapshot(path)
    path.chmod(0o666)
    with pytest.raises(SnapshotRefused, match="writable by another OS user"):
        restore(path)


def test_a_snapshot_of_another_format_or_moto_is_refused(aws, tmp_path: Path):
    path = tmp_path / SNAPSHOT_FILE
    path.write_bytes(pickle.dumps({"format": 0, "moto": "4.0.0"}))
    path.chmod(0o600)
    with pytest.raises(SnapshotRefused, match=r"moto 4\.0\.0"):
        restore(path)


def test_the_moto_internals_the_snapshot_reads_are_declared_and_present():
    assert STATE_SNAPSHOT.problems() == []
    names = {d.symbol for d in STATE_SNAPSHOT.depends}
    assert {"moto.dynamodb.models.table.Table.__init__", "moto.sqs.models.Queue.__init__"} <= names


def test_autosave_writes_a_snapshot_after_table_writes_and_none_while_idle(tmp_path: Path):
    path = tmp_path / SNAPSHOT_FILE
    with fresh_aws() as aws:
        provision(aws)
        autosave = Autosave(path, every=3600)  # its own thread stays asleep: the test drives each period
        autosave.start()
        try:
            assert not autosave.save_if_written() and not path.exists()
            aws["dynamodb"].put_item(TableName=TABLE, Item={"taskId": {"S": "t-1"}})
            assert autosave.save_if_written() and path.exists()
            assert not autosave.save_if_written()
        finally:
            autosave.stop()
    with fresh_aws() as fresh:
        provision(fresh)
        assert restore(path).items == 1
