"""Scan and Query see no write half-done (taskrail/local/services/dynamodb.py, CONSISTENT_READS).

AWS: a Scan or a Query never fails because another client writes the table meanwhile (their errors are the
throttling, validation and internal-server errors of the API reference: https://docs.aws.amazon.com/amazondynamodb/
latest/APIReference/API_Scan.html#API_Scan_Errors); a Scan is eventually consistent, a strongly consistent Query
reflects every write that succeeded before it. moto 5.2.5 iterates the table's item dict without a lock, so a write
from another request thread in the middle of a read (the local stack's endpoint serves requests on many threads)
fails the read with ``RuntimeError: dictionary changed size during iteration``: seen during ``make bench``.

The race is reproduced deterministically: the table's item dict, as the read walks it, lets another thread write the
table the way the stack's writes do (moto's own Table.put_item under the write lock), before the read takes its next
item. Without the patch the write lands in the middle of the walk; with it the writer finds the lock held and writes
after the read.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models import dynamodb_backends

from taskrail.local.services import dynamodb

ACCOUNT, REGION = "123456789012", "us-east-1"


class MeddlingItems(defaultdict):  # type: ignore[type-arg]
    """A table's item dict that lets another thread write the table while a read iterates it, after one item."""

    def __init__(self, items: Any, table: Any) -> None:
        super().__init__(dict, items)
        self.table = table
        self.writes: list[str] = []

    def values(self) -> Iterator[Any]:  # type: ignore[override]
        walk = iter(super().values())
        yield next(walk)
        self._write_from_another_thread()
        yield from walk

    def _write_from_another_thread(self) -> None:
        def write() -> None:
            if dynamodb._dynamodb_write_lock.acquire(blocking=False):  # as a write of the stack's: under the lock
                try:
                    self.table.put_item({"id": {"S": f"new-{len(self.writes)}"}, "g": {"S": "x"}, "n": {"N": "1"}})
                finally:
                    dynamodb._dynamodb_write_lock.release()
                self.writes.append("during the read")
            else:
                self.writes.append("after the read")

        writer = threading.Thread(target=write)
        writer.start()
        writer.join()


@pytest.fixture
def table() -> Iterator[tuple[Any, MeddlingItems]]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(
            TableName="T",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[
                {"AttributeName": "id", "AttributeType": "S"},
                {"AttributeName": "g", "AttributeType": "S"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by-g",
                    "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        for index in range(5):
            client.put_item(TableName="T", Item={"id": {"S": f"item-{index}"}, "g": {"S": "x"}, "n": {"N": "1"}})
        moto_table = dynamodb_backends[ACCOUNT][REGION].get_table("T")
        moto_table.items = items = MeddlingItems(moto_table.items, moto_table)
        yield client, items


READS = {
    "scan": lambda client: client.scan(TableName="T"),
    "scan of an index": lambda client: client.scan(TableName="T", IndexName="by-g"),
    "query": lambda client: client.query(
        TableName="T", KeyConditionExpression="id = :id", ExpressionAttributeValues={":id": {"S": "item-1"}}
    ),
    "query of an index": lambda client: client.query(
        TableName="T", IndexName="by-g", KeyConditionExpression="g = :g", ExpressionAttributeValues={":g": {"S": "x"}}
    ),
}


@pytest.mark.parametrize("read", list(READS))
def test_moto_alone_fails_a_read_when_a_write_lands_during_it(table: tuple[Any, MeddlingItems], read: str) -> None:
    client, items = table
    with pytest.raises(RuntimeError, match="dictionary changed size during iteration"):
        READS[read](client)
    assert items.writes == ["during the read"]


@pytest.mark.parametrize("read", list(READS))
def test_a_read_sees_a_concurrent_write_whole_or_not_at_all(table: tuple[Any, MeddlingItems], read: str) -> None:
    client, items = table
    dynamodb.install_consistent_reads()
    try:
        answer = READS[read](client)
    finally:
        dynamodb.uninstall_consistent_reads()
    assert items.writes == ["after the read"]  # the writer found the read holding the lock
    ids = sorted(item["id"]["S"] for item in answer["Items"])
    assert ids == (["item-1"] if read == "query" else [f"item-{index}" for index in range(5)])
    assert dynamodb.CONSISTENT_READS.problems() == []
