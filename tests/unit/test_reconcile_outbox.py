"""The reconciler re-triggers outcomes the task-changes pipe gave up on (reconcile_tasks/outbox.py): found in the
sparse outcomePending index, touched with a write conditional on the outcome still pending."""

from __future__ import annotations

from typing import Any

from moto_aws import Aws

from reconcile_tasks.outbox import DynamoDBPendingOutcomes, PendingOutcomes, retrigger_pending

TABLE, INDEX = "TasksWithPendingIndex", "outcomePending-createdAt"


class FakePending(PendingOutcomes):
    def __init__(self, pending: dict[str, list[str]], delivered: set[str]) -> None:
        self._pending, self._delivered, self.touched = pending, delivered, []

    def pending(self, status: str, *, created_before: int, limit: int) -> list[str]:
        return self._pending.get(status, [])[:limit]

    def retrigger(self, task_id: str, *, status: str) -> bool:
        if task_id in self._delivered:
            return False
        self.touched.append((task_id, status))
        return True


def test_every_outcome_status_is_looked_at_and_only_still_pending_ones_count():
    fake = FakePending({"SUCCEEDED": ["a", "b"], "FAILED": ["c"], "REJECTED": ["d"]}, delivered={"b"})
    assert retrigger_pending(fake, created_before=0, limit=10) == 3
    assert sorted(fake.touched) == [("a", "SUCCEEDED"), ("c", "FAILED"), ("d", "REJECTED")]


def table(aws: Aws) -> None:
    aws.dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "taskId", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "taskId", "AttributeType": "S"},
            {"AttributeName": "outcomePending", "AttributeType": "S"},
            {"AttributeName": "createdAt", "AttributeType": "N"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": INDEX,
                "KeySchema": [
                    {"AttributeName": "outcomePending", "KeyType": "HASH"},
                    {"AttributeName": "createdAt", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def put(aws: Aws, task_id: str, **attributes: Any) -> None:
    item = {"taskId": task_id, **attributes}
    aws.dynamodb.put_item(
        TableName=TABLE, Item={k: {"N": str(v)} if isinstance(v, int) else {"S": v} for k, v in item.items()}
    )


def test_the_index_finds_old_pending_outcomes_and_the_touch_is_conditional(aws_environment: Aws):
    table(aws_environment)
    put(aws_environment, "old", status="SUCCEEDED", outcomePending="SUCCEEDED", createdAt=1_000)
    put(aws_environment, "young", status="SUCCEEDED", outcomePending="SUCCEEDED", createdAt=9_000)
    put(aws_environment, "delivered", status="SUCCEEDED", outcomeDelivered="k", createdAt=1_000)
    put(aws_environment, "moved-on", status="QUEUED", outcomePending="FAILED", createdAt=1_000)
    outcomes = DynamoDBPendingOutcomes(TABLE, INDEX, aws_environment.dynamodb)

    assert outcomes.pending("SUCCEEDED", created_before=5_000, limit=10) == ["old"]
    assert outcomes.pending("FAILED", created_before=5_000, limit=10) == ["moved-on"]
    assert outcomes.retrigger("old", status="SUCCEEDED") is True
    assert outcomes.retrigger("old", status="SUCCEEDED") is True  # each touch is a new stream record
    assert outcomes.retrigger("moved-on", status="FAILED") is False  # a replay requeued it: no touch
    assert outcomes.retrigger("delivered", status="SUCCEEDED") is False
    item = aws_environment.dynamodb.get_item(TableName=TABLE, Key={"taskId": {"S": "old"}})["Item"]
    assert item["outcomeRetriggers"] == {"N": "2"} and item["status"] == {"S": "SUCCEEDED"}
