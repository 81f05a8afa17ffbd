"""Cancel: stop the workflow execution of every task its owner cancelled."""

from __future__ import annotations

from collections.abc import Iterable

from aws_lambda_powertools.metrics import MetricUnit

from task_common.errors import TaskCancelled
from task_common.models import CancelResult, SkippedExecution, StreamRecord, TaskStatus
from task_common.observability import logger, metrics, tracer
from task_common.ports import StopOutcome, WorkflowExecutions

CANCEL_ERROR = TaskCancelled.__name__
CANCEL_CAUSE = "cancelled by the task's owner"


@tracer.capture_method
def cancel_executions(records: Iterable[StreamRecord], *, executions: WorkflowExecutions) -> CancelResult:
    """Executions already finished, or gone, are skipped: cancelling is idempotent, and the Pipe may deliver
    a record more than once."""
    stopped: list[str] = []
    skipped: list[SkippedExecution] = []
    for record in records:
        task_id, execution_arn = record.task_id, record.new_string("executionArn")
        if record.new_string("status") != TaskStatus.CANCELLED.value:
            reason = "task is not cancelled"
        elif execution_arn is None:
            reason = "task has no execution"
        else:
            outcome = executions.stop(execution_arn, error=CANCEL_ERROR, cause=CANCEL_CAUSE)
            if outcome is StopOutcome.STOPPED:
                logger.info("execution stopped", extra={"taskId": task_id, "executionArn": execution_arn})
                stopped.append(execution_arn)
                continue
            reason = f"execution {outcome.value}"
        skipped.append(SkippedExecution(task_id=task_id, execution_arn=execution_arn, reason=reason))
    metrics.add_metric(name="ExecutionsStopped", unit=MetricUnit.Count, value=len(stopped))
    return CancelResult(stopped=stopped, skipped=skipped)
