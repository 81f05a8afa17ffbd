"""Task changes: what follows from a task's change on the Tasks stream, in one function behind one pipe (the
stream allows two readers per shard; the start pipe is the other).

- CANCELLED (the cancel's write, :func:`is_cancel`): stop the task's execution (``cancel_task.logic``).
- SUCCEEDED, REJECTED, FAILED and not yet delivered: its outcome event, and for FAILED its dead-letter message
  (``task_changes.outbox``).
"""

from __future__ import annotations

from collections.abc import Iterable

from aws_lambda_powertools.metrics import MetricUnit

from cancel_task.logic import cancel_executions
from task_changes.outbox import OutcomePorts, deliver, outcome_of
from task_common.contract import PENDING_SHARD_ATTRIBUTE
from task_common.models import StreamRecord, TaskChangesResult, TaskStatus
from task_common.observability import logger, metrics, tracer
from task_common.ports import WorkflowExecutions


def is_cancel(record: StreamRecord) -> bool:
    """The cancel's own write: CANCELLED, and out of the pending index (the cancel REMOVEs pendingShard). A
    same-body retry of POST /tasks for a CANCELLED task changes nothing but pendingShard, which its if_not_exists
    SET adds back: its MODIFY matches the cancel filter too, and its execution ended long ago."""
    return (
        record.new_string("status") == TaskStatus.CANCELLED.value
        and PENDING_SHARD_ATTRIBUTE not in record.dynamodb.new_image
    )


@tracer.capture_method
def handle_changes(
    records: Iterable[StreamRecord], *, executions: WorkflowExecutions, outcomes: OutcomePorts
) -> TaskChangesResult:
    """A failed delivery raises after the other records are done: the pipe retries the batch (every step is
    idempotent), and the reconciler repairs what the pipe gives up on."""
    records = list(records)
    cancelled = [r for r in records if is_cancel(r)]
    cancel = cancel_executions(cancelled, executions=executions)
    delivered: list[str] = []
    moved_on: list[str] = []
    for record in records:
        outcome = outcome_of(record)
        if outcome is None:
            continue
        if deliver(outcome, outcomes):
            logger.info("outcome delivered", extra={"taskId": outcome.task_id, "outcome": outcome.status})
            delivered.append(outcome.key)
        else:
            moved_on.append(outcome.key)
    metrics.add_metric(name="OutcomesDelivered", unit=MetricUnit.Count, value=len(delivered))
    return TaskChangesResult(stopped=cancel.stopped, skipped=cancel.skipped, delivered=delivered, moved_on=moved_on)
