"""Reconcile: repair the tasks that the event-driven path left behind.

- A task QUEUED for longer than the threshold was never claimed: the pipe lost or has not delivered its
  record, or an execution ended before its claim. It is started under a deterministic name,
  ``{taskId}-q{attempt}``, so two runs never start it twice; if that execution already exists and ended
  without claiming the task, the task is FAILED to the dead-letter queue instead (replay takes it from there).
- A task RUNNING whose execution is no longer running would stay RUNNING for ever if the execution's status-change
  event was lost (the failure recorder, ``workflows/failure_recorder.py``, normally fails it within seconds): it is
  marked FAILED, with the recorder's condition (RUNNING, same execution), so the two never both write, and with
  what the recorder records (the execution's error and cause, as DescribeExecution gives them), so either write
  reads the same. That
  write, like the recorder's, opens the task's
  outbox entry (``outcomePending``): the task-changes function sends the DLQ message and the outcome event, once,
  whoever failed the task (``task_changes/outbox.py``), so ``taskrail replay`` works on it.
- An outcome still pending after the threshold (the task-changes pipe gave up on its record) is re-triggered from
  the sparse ``outcomePending`` index (``reconcile_tasks/outbox.py``).
- A finished task in the pending index (a same-body retry of its Idempotency-Key re-added its shard: the
  submission only fills absent attributes) is taken out of it, only if its status is still terminal. The status
  filters above never act on one; this keeps the index to the live tasks.

Every write is conditional on the task being as it was read, so a run repeated, or two runs at once, change
each task at most once. The claim in the lifecycle stays the exactly-once gate for starts.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum

from aws_lambda_powertools.metrics import MetricUnit

from reconcile_tasks.outbox import PendingOutcomes, retrigger_pending
from task_common.contract import (
    EXECUTION_ENDED_CAUSE,
    EXECUTION_ENDED_ERROR,
    UNSUCCESSFUL_EXECUTION_STATUSES,
    reconciler_execution_name,
)
from task_common.errors import ReconciliationIncomplete
from task_common.models import ReconcileRequest, ReconcileResult, TaskRecord, TaskStatus
from task_common.observability import logger, metrics, tracer
from task_common.ports import (
    ExecutionEnd,
    LifecycleExecutions,
    ReconcilerTasks,
    TaskNotFound,
    execution_arn_of,
)

# What the failure recorder records for an event without an error: a repair by the reconciler reads the same.
EXECUTION_ENDED = EXECUTION_ENDED_ERROR
ENDED_STATUSES = UNSUCCESSFUL_EXECUTION_STATUSES
# PENDING_REDRIVE: an operator redrove the execution and it is about to run again.
LIVE_STATUSES = frozenset({"RUNNING", "PENDING_REDRIVE"})
# Beyond an EXPRESS execution's limit, before its task counts as outliving it (clocks, the execution's start).
EXPRESS_GRACE_SECONDS = 60


def recorded_failure(execution: ExecutionEnd) -> tuple[str, str]:
    """The error and cause the failure recorder records for this execution's status-change event (its
    IsTheFailureNamed Choice, ``workflows/failure_recorder.py``): the execution's own when it has an error, its
    error with the ended-cause when it has no cause, ``ExecutionEnded`` and the ended-cause when it has neither
    (a timeout, an abort without one). So whichever of the two writes first, the task reads the same."""
    ended = EXECUTION_ENDED_CAUSE.format(execution.status)
    if execution.error is None:
        return EXECUTION_ENDED, ended
    return execution.error, ended if execution.cause is None else execution.cause


def _epoch_ms(timestamp: str | None) -> int | None:
    """Epoch milliseconds of an ISO 8601 time (Step Functions' EnteredTime), None when absent or unreadable."""
    if not timestamp:
        return None
    try:
        return int(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


class Outcome(StrEnum):
    """What a run did with one task; each value names a field of ReconcileResult."""

    STARTED = "started"
    ALREADY_STARTED = "already_started"
    STILL_RUNNING = "still_running"
    MARKED_FAILED = "marked_failed"
    CHANGED_MEANWHILE = "changed_meanwhile"
    SUCCEEDED_BUT_RUNNING = "succeeded_but_running"
    WITHOUT_EXECUTION = "without_execution"


METRIC_NAMES = {
    Outcome.STARTED: "StuckTasksStarted",
    Outcome.MARKED_FAILED: "EndedTasksMarkedFailed",
    Outcome.SUCCEEDED_BUT_RUNNING: "RunningTasksWithSucceededExecution",
    Outcome.WITHOUT_EXECUTION: "RunningTasksWithoutExecution",
}


def start_execution_name(task_id: str, attempt: int) -> str:
    """``{taskId}-q{attempt}``, long ids hashed: the contract's rule (``task_common.contract.execution_name``),
    which ``taskrail replay`` follows with ``-r``."""
    return reconciler_execution_name(task_id, attempt)


class TaskReconciler:
    def __init__(
        self,
        request: ReconcileRequest,
        *,
        tasks: ReconcilerTasks,
        executions: LifecycleExecutions,
        now_ms: int = 0,
        max_execution_seconds: int | None = None,
    ) -> None:
        self._state_machine_arn = request.lifecycle_state_machine_arn
        self._tasks = tasks
        self._executions = executions
        self._now_ms = now_ms
        self._max_execution_seconds = max_execution_seconds

    def start_stuck(self, task: TaskRecord) -> Outcome:
        name = start_execution_name(task.task_id, task.attempt)
        if self._max_execution_seconds is not None:
            # EXPRESS: DescribeExecution does not serve its executions, and a name starts a new one each time ("Starting
            # multiple workflows with the same name results in concurrent executions", Execution guarantees): start;
            # ClaimTask lets one of them run the task, the others end TaskAlreadyClaimed.
            started = self._executions.start(self._state_machine_arn, name=name, input_json=json.dumps([task.task_id]))
            return Outcome.STARTED if started else Outcome.ALREADY_STARTED
        execution_arn = execution_arn_of(self._state_machine_arn, name)
        status = self._executions.status(execution_arn)
        if status is None:
            started = self._executions.start(self._state_machine_arn, name=name, input_json=json.dumps([task.task_id]))
            if started:
                logger.info("started a stuck task", extra={"taskId": task.task_id, "executionArn": execution_arn})
            return Outcome.STARTED if started else Outcome.ALREADY_STARTED
        if status not in ENDED_STATUSES:
            return Outcome.ALREADY_STARTED
        cause = f"execution {name} ended {status} before it claimed the task"
        return self._fail(task, execution_arn=execution_arn, cause=cause)

    def settle_running(self, task: TaskRecord) -> Outcome:
        if task.execution_arn is None:
            logger.error("a RUNNING task has no execution", extra={"taskId": task.task_id})
            return Outcome.WITHOUT_EXECUTION
        described = self._executions.describe(task.execution_arn)
        status = described.status if described else None
        if status in LIVE_STATUSES:
            return Outcome.STILL_RUNNING
        if status == "SUCCEEDED":
            if self._unchanged(task) is None:
                return Outcome.CHANGED_MEANWHILE
            logger.error(
                "a RUNNING task's execution succeeded",
                extra={"taskId": task.task_id, "executionArn": task.execution_arn},
            )
            return Outcome.SUCCEEDED_BUT_RUNNING
        if described:
            error, cause = recorded_failure(described)
            return self._fail(task, execution_arn=task.execution_arn, error=error, cause=cause)
        return self._fail(task, execution_arn=task.execution_arn, cause="the execution no longer exists")

    def settle_running_by_age(self, task: TaskRecord) -> Outcome:
        """EXPRESS: Step Functions does not describe Express executions ("Executions of an EXPRESS state machine
        aren't supported by DescribeExecution"), but none runs longer than its limit: a task claimed longer ago than
        that (and a minute) is RUNNING after its execution ended, outside every Catch (States.Runtime, the limit)."""
        max_seconds = self._max_execution_seconds
        if task.execution_arn is None or max_seconds is None:
            return self.settle_running(task)
        execution_arn = task.execution_arn
        current = self._unchanged(task)
        if current is None:
            return Outcome.CHANGED_MEANWHILE
        started = _epoch_ms(current.started_at)
        if started is None or self._now_ms - started <= (max_seconds + EXPRESS_GRACE_SECONDS) * 1000:
            return Outcome.STILL_RUNNING
        cause = f"the EXPRESS execution ended while the task ran (it runs at most {max_seconds} s)"
        return self._fail(task, execution_arn=execution_arn, cause=cause)

    def _unchanged(self, task: TaskRecord) -> TaskRecord | None:
        """The task as the table holds it now, if it is still as the index showed it; the index lags the
        table, and acting on a stale entry would send a message for a task that has moved on."""
        try:
            current = self._tasks.get_task(task.task_id)
        except TaskNotFound:
            return None
        same = (current.status, current.attempt, current.execution_arn) == (
            task.status,
            task.attempt,
            task.execution_arn,
        )
        return current if same else None

    def _fail(self, task: TaskRecord, *, execution_arn: str, cause: str, error: str = EXECUTION_ENDED) -> Outcome:
        """One conditional write; the DLQ message and the event leave from it (the outbox), so a run that stops
        half-way loses nothing and two runs never send two messages."""
        current = self._unchanged(task)
        if current is None:
            return Outcome.CHANGED_MEANWHILE
        if not self._tasks.fail_task(current, execution_arn=execution_arn, error=error, cause=cause):
            return Outcome.CHANGED_MEANWHILE
        logger.warning("marked a task FAILED", extra={"taskId": current.task_id, "cause": cause})
        return Outcome.MARKED_FAILED


@tracer.capture_method
def reconcile_tasks(
    request: ReconcileRequest,
    *,
    tasks: ReconcilerTasks,
    executions: LifecycleExecutions,
    now_ms: int,
    stuck_queued_after_seconds: int,
    max_tasks_per_run: int,
    pending_outcomes: PendingOutcomes | None = None,
    max_execution_seconds: int | None = None,
) -> ReconcileResult:
    """One task's failure does not stop the others; the run then raises ReconciliationIncomplete, and the
    workflow retries it whole (every step is idempotent). ``max_execution_seconds`` (EXPRESS) settles RUNNING tasks
    by their claim's age instead of asking for their execution."""
    reconciler = TaskReconciler(
        request, tasks=tasks, executions=executions, now_ms=now_ms, max_execution_seconds=max_execution_seconds
    )
    settle = reconciler.settle_running if max_execution_seconds is None else reconciler.settle_running_by_age
    created_before = now_ms - stuck_queued_after_seconds * 1000
    # One more than the cap tells whether the run saw everything.
    queued = tasks.tasks_with_status(TaskStatus.QUEUED, created_before=created_before, limit=max_tasks_per_run + 1)
    running = tasks.tasks_with_status(TaskStatus.RUNNING, created_before=created_before, limit=max_tasks_per_run + 1)
    outcomes: Counter[Outcome] = Counter()
    failed: list[str] = []
    # Before this run's own FAILED writes, whose outcomes the pipe is about to deliver.
    retriggered = 0
    if pending_outcomes is not None:
        try:
            retriggered = retrigger_pending(pending_outcomes, created_before=created_before, limit=max_tasks_per_run)
        except Exception:
            logger.exception("could not re-trigger the undelivered outcomes")
            failed.append("(outcomes)")
    work: list[tuple[TaskRecord, Callable[[TaskRecord], Outcome]]] = [
        *((task, reconciler.start_stuck) for task in queued[:max_tasks_per_run]),
        *((task, settle) for task in running[:max_tasks_per_run]),
    ]
    for task, reconcile in work:
        try:
            outcomes[reconcile(task)] += 1
        except Exception:
            logger.exception("could not reconcile a task", extra={"taskId": task.task_id, "status": task.status})
            failed.append(task.task_id)
    left_pending_index = 0
    try:
        for task in tasks.finished_in_pending_index(limit=max_tasks_per_run):
            left_pending_index += tasks.leave_pending_index(task)
    except Exception:
        logger.exception("could not take the finished tasks out of the pending index")
        failed.append("(pending index)")
    metrics.add_metric(name="OutcomesRetriggered", unit=MetricUnit.Count, value=retriggered)
    metrics.add_metric(name="FinishedTasksLeftPendingIndex", unit=MetricUnit.Count, value=left_pending_index)
    for outcome, metric_name in METRIC_NAMES.items():
        metrics.add_metric(name=metric_name, unit=MetricUnit.Count, value=outcomes[outcome])
    result = ReconcileResult(
        queued=min(len(queued), max_tasks_per_run),
        running=min(len(running), max_tasks_per_run),
        truncated=len(queued) > max_tasks_per_run or len(running) > max_tasks_per_run,
        outcomes_retriggered=retriggered,
        left_pending_index=left_pending_index,
        **{outcome.value: count for outcome, count in outcomes.items()},
    )
    logger.info("reconciled", extra={"result": result.model_dump(mode="json")})
    if failed:
        raise ReconciliationIncomplete(f"{len(failed)} task(s) could not be reconciled: {', '.join(failed[:10])}")
    return result
