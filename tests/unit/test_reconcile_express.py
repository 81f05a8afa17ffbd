"""The reconciler on an EXPRESS lifecycle: Step Functions does not describe Express executions ("Executions of an
EXPRESS state machine aren't supported by DescribeExecution", its API reference), so a RUNNING task is settled by its
claim's age: none of its executions runs past 5 minutes, so a task claimed longer ago (and a minute) outlived it,
outside every Catch (States.Runtime, the execution's limit) and is failed to the DLQ; a younger one is left alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fakes import InMemoryExecutions, InMemoryTaskStore, a_task

from reconcile_tasks.logic import EXPRESS_GRACE_SECONDS, reconcile_tasks
from task_common.config import ReconcilerConfig
from task_common.models import ReconcileRequest, TaskStatus
from tests.unit.test_reconcile_tasks import LIFECYCLE_ARN, NOW_MS, THRESHOLD_SECONDS, execution

LIMIT_SECONDS = 300


class ExpressExecutions(InMemoryExecutions):
    def status(self, execution_arn: str) -> str | None:
        raise AssertionError("DescribeExecution of an EXPRESS execution")


def claimed(task_id: str, *, seconds_ago: int) -> Any:
    started = datetime.fromtimestamp(NOW_MS / 1000, UTC) - timedelta(seconds=seconds_ago)
    return a_task(
        task_id=task_id,
        status=TaskStatus.RUNNING,
        attempt=1,
        execution_arn=execution(task_id),
        created_at=NOW_MS - 3_600_000,
        started_at=started.isoformat().replace("+00:00", "Z"),
    )


def reconcile(tasks: InMemoryTaskStore) -> dict[str, Any]:
    return reconcile_tasks(
        ReconcileRequest(lifecycle_state_machine_arn=LIFECYCLE_ARN),
        tasks=tasks,
        executions=ExpressExecutions(),
        now_ms=NOW_MS,
        stuck_queued_after_seconds=THRESHOLD_SECONDS,
        max_tasks_per_run=500,
        max_execution_seconds=LIMIT_SECONDS,
    ).model_dump(mode="json")


def test_a_task_claimed_longer_ago_than_the_express_limit_is_failed_and_a_younger_one_left_alone():
    # Given a task claimed 7 minutes ago and one claimed 2 minutes ago, both RUNNING, created an hour ago
    tasks = InMemoryTaskStore(claimed("t-old", seconds_ago=420), claimed("t-young", seconds_ago=120))

    # When the reconciler of an EXPRESS lifecycle runs (twice: its runs repeat)
    result = reconcile(tasks)
    again = reconcile(tasks)

    # Then the old one is FAILED once, with the cause, without asking for its execution; the young one still runs
    print(result)
    assert tasks.get_task("t-old").status is TaskStatus.FAILED
    assert tasks.failures["t-old"] == (
        "ExecutionEnded",
        "the EXPRESS execution ended while the task ran (it runs at most 300 s)",
    )
    assert tasks.get_task("t-young").status is TaskStatus.RUNNING
    assert (result["markedFailed"], result["stillRunning"]) == (1, 1)
    assert (again.get("markedFailed", 0), again["stillRunning"]) == (0, 1)


def test_the_grace_is_a_minute_past_the_limit_and_a_task_without_a_claim_time_is_left_alone():
    edge = LIMIT_SECONDS + EXPRESS_GRACE_SECONDS
    tasks = InMemoryTaskStore(claimed("t-edge", seconds_ago=edge), claimed("t-past", seconds_ago=edge + 1))
    unknown = a_task(task_id="t-unknown", status=TaskStatus.RUNNING, attempt=1, execution_arn=execution("t-unknown"),
                     created_at=NOW_MS - 3_600_000)  # fmt: skip
    tasks.tasks[unknown.task_id] = unknown

    reconcile(tasks)

    assert tasks.get_task("t-edge").status is TaskStatus.RUNNING
    assert tasks.get_task("t-past").status is TaskStatus.FAILED
    assert tasks.get_task("t-unknown").status is TaskStatus.RUNNING


def test_only_an_express_template_tells_the_reconciler_its_limit():
    base = {"TASKS_TABLE_NAME": "T", "TASKS_PENDING_INDEX_NAME": "I"}
    assert ReconcilerConfig.from_environ(base).lifecycle_max_execution_seconds is None
    express = {**base, "LIFECYCLE_MAX_EXECUTION_SECONDS": "300"}
    assert ReconcilerConfig.from_environ(express).lifecycle_max_execution_seconds == 300


def test_a_cancel_on_an_express_lifecycle_never_asks_step_functions_to_stop_the_execution():
    from cancel_task.logic import cancel_executions
    from task_common.config import TaskChangesConfig
    from task_common.models import StreamRecord
    from task_common.ports import ExpressExecutions, StopOutcome

    record = StreamRecord.model_validate(
        {
            "eventName": "MODIFY",
            "dynamodb": {
                "Keys": {"taskId": {"S": "t-1"}},
                "NewImage": {"taskId": {"S": "t-1"}, "status": {"S": "CANCELLED"}, "executionArn": {"S": "arn:x"}},
            },
        }
    )
    result = cancel_executions([record], executions=ExpressExecutions())

    assert result.stopped == []
    assert [(s.task_id, s.reason) for s in result.skipped] == [("t-1", f"execution {StopOutcome.NOT_STOPPABLE.value}")]
    env = {"TASKS_TABLE_NAME": "T", "IDEMPOTENCY_TABLE_NAME": "I", "DEAD_LETTER_QUEUE_URL": "q", "EVENT_BUS_NAME": "b"}
    assert TaskChangesConfig.from_environ(env).stop_executions is True
    assert TaskChangesConfig.from_environ({**env, "STOP_EXECUTIONS": "false"}).stop_executions is False


def test_a_stuck_queued_task_is_started_again_without_asking_for_its_execution():
    # Given a task QUEUED for an hour (its pipe start was lost), on an EXPRESS lifecycle
    tasks = InMemoryTaskStore(
        a_task(task_id="t-queued", status=TaskStatus.QUEUED, attempt=1, created_at=NOW_MS - 3_600_000)
    )

    # When the reconciler runs: ExpressExecutions.status raises (DescribeExecution does not serve Express executions)
    result = reconcile(tasks)

    # Then it started a -q execution for it without describing one first
    print(result)
    assert result["started"] == 1
