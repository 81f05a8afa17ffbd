"""Outcomes the task-changes pipe gave up on: re-triggered from the sparse ``outcomePending`` index.

Every terminal write sets ``outcomePending`` and the outbox's mark removes it (``task_changes/outbox.py``), so the
index holds only outcomes not yet delivered. One still there after the threshold was dropped by the pipe (its
record went to the pipe's DLQ after its retries) or never reached it. The reconciler touches each such item with a
conditional write that changes nothing of the task (a counter, ``outcomeRetriggers``): the write's stream record
passes the pipe's outbox filter again, and the task-changes function delivers what was not yet delivered (each
effect once, by its idempotency key) and marks the item. Touching one that is being delivered at that moment costs
one more function invocation, never a second message.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from botocore.exceptions import ClientError
from pydantic import Field

from task_common.config import ReconcilerConfig
from task_common.contract import OUTCOME_DETAIL_TYPE, OUTCOME_PENDING_INDEX_ENV
from task_common.observability import logger

OUTCOME_STATUSES = tuple(OUTCOME_DETAIL_TYPE)


class ReconcilerOutboxConfig(ReconcilerConfig):
    tasks_outcome_pending_index_name: str = Field(alias=OUTCOME_PENDING_INDEX_ENV, min_length=1)


class PendingOutcomes(ABC):
    @abstractmethod
    def pending(self, status: str, *, created_before: int, limit: int) -> list[str]:
        """Ids of tasks whose ``status`` outcome is pending, created before ``created_before`` (epoch ms), oldest
        first (the index is eventually consistent: a task may have been delivered since)."""

    @abstractmethod
    def retrigger(self, task_id: str, *, status: str) -> bool:
        """Touch the item if its outcome is still pending; False when it was delivered meanwhile."""


def retrigger_pending(outcomes: PendingOutcomes, *, created_before: int, limit: int) -> int:
    """Every status's stuck outcomes, at most ``limit`` of each per run; how many were re-triggered."""
    retriggered = 0
    for status in OUTCOME_STATUSES:
        for task_id in outcomes.pending(status, created_before=created_before, limit=limit):
            if outcomes.retrigger(task_id, status=status):
                logger.warning("re-triggered an undelivered outcome", extra={"taskId": task_id, "outcome": status})
                retriggered += 1
    return retriggered


class DynamoDBPendingOutcomes(PendingOutcomes):
    def __init__(self, table_name: str, index_name: str, dynamodb_client: Any) -> None:
        self._table, self._index, self._dynamodb = table_name, index_name, dynamodb_client

    def pending(self, status: str, *, created_before: int, limit: int) -> list[str]:
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": self._index,
            "KeyConditionExpression": "outcomePending = :status AND createdAt < :before",
            "ExpressionAttributeValues": {":status": {"S": status}, ":before": {"N": str(created_before)}},
            "ScanIndexForward": True,
        }
        ids: list[str] = []
        while len(ids) < limit:
            response = self._dynamodb.query(**request, Limit=limit - len(ids))
            ids.extend(item["taskId"]["S"] for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                break
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return ids

    def retrigger(self, task_id: str, *, status: str) -> bool:
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key={"taskId": {"S": task_id}},
                UpdateExpression="SET outcomeRetriggers = if_not_exists(outcomeRetriggers, :zero) + :one",
                ConditionExpression="#status = :status AND outcomePending = :status",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":status": {"S": status}, ":zero": {"N": "0"}, ":one": {"N": "1"}},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True
