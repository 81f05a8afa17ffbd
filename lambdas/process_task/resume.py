"""A redrive resumes its task: the execution that failed is run again from the state that failed (RedriveExecution),
under the same ARN, and its task, which the failure recorder set FAILED, becomes RUNNING again before the task
type runs.

The write is conditional on the task being this execution's, this attempt's, and FAILED (or RUNNING, when the
recorder's event has not arrived yet, or a retry of this same redrive already resumed it), with a ``redriveCount``
not newer than this redrive's. It sets ``redriveCount``, so the recorder's late event for an earlier run writes
nothing, removes the failure and its outbox entry, and files the task in the pending index again (the
reconciler's, ``pendingShard``). When the task moved on (a replay requeued it, a cancel, a
new attempt), the redrive must not run it: ``TaskCancelled``, which the workflow ends quietly in TaskWasCancelled.
A replay's requeue is conditional on FAILED too, so a replay and a redrive can never both run the task.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from botocore.exceptions import ClientError
from pydantic import Field

from task_common.contract import PENDING_SHARD_ATTRIBUTE, Status, pending_shard
from task_common.errors import TaskCancelled
from task_common.models import ProcessRequest
from task_common.observability import logger


class RedrivableProcessRequest(ProcessRequest):
    """ProcessTask's payload: the work order, plus the execution (``$$.Execution.Id``) and its redrive count
    (``$$.Execution.RedriveCount``, 0 on a first run)."""

    execution_arn: str | None = None
    redrive_count: int = Field(default=0, ge=0)


class TaskResumer(ABC):
    @abstractmethod
    def resume(self, task_id: str, *, execution_arn: str, attempt: int, redrive_count: int) -> bool:
        """RUNNING again under this redrive; False when the task is no longer this execution's to run."""


def resume_if_redriven(request: RedrivableProcessRequest, resumer: TaskResumer) -> None:
    if request.redrive_count == 0:
        return
    if request.execution_arn is None:
        raise TaskCancelled(f"task {request.task_id}: a redriven ProcessTask needs its execution's ARN")
    if not resumer.resume(
        request.task_id,
        execution_arn=request.execution_arn,
        attempt=request.attempt,
        redrive_count=request.redrive_count,
    ):
        raise TaskCancelled(
            f"task {request.task_id} is no longer {Status.FAILED.value} under this execution "
            f"(replayed, cancelled or done): redrive {request.redrive_count} does not run it"
        )
    logger.info("redrive resumed the task", extra={"taskId": request.task_id, "redriveCount": request.redrive_count})


class DynamoDBTaskResumer(TaskResumer):
    def __init__(self, table_name: str, dynamodb_client: Any) -> None:
        self._table_name = table_name
        self._dynamodb = dynamodb_client

    def resume(self, task_id: str, *, execution_arn: str, attempt: int, redrive_count: int) -> bool:
        try:
            self._dynamodb.update_item(
                TableName=self._table_name,
                Key={"taskId": {"S": task_id}},
                UpdateExpression=(
                    "SET #status = :running, redriveCount = :redrive, progress = :zero, #shard = :shard "
                    "REMOVE #error, #cause, finishedAt, outcomePending"
                ),
                ConditionExpression=(
                    "executionArn = :arn AND attempt = :attempt AND #status IN (:failed, :running) "
                    "AND (attribute_not_exists(redriveCount) OR redriveCount <= :redrive)"
                ),
                ExpressionAttributeNames={
                    "#status": "status",
                    "#error": "error",
                    "#cause": "cause",
                    "#shard": PENDING_SHARD_ATTRIBUTE,
                },
                ExpressionAttributeValues={
                    ":shard": {"S": pending_shard(task_id)},
                    ":running": {"S": Status.RUNNING.value},
                    ":failed": {"S": Status.FAILED.value},
                    ":arn": {"S": execution_arn},
                    ":attempt": {"N": str(attempt)},
                    ":redrive": {"N": str(redrive_count)},
                    ":zero": {"N": "0"},
                },
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True
