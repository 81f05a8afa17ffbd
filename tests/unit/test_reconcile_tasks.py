from __future__ import annotations

from typing import Any

import boto3
import pytest
from fakes import InMemoryExecutions, InMemoryTaskStore, a_task
from moto import mock_aws

from reconcile_tasks.logic import reconcile_tasks, start_execution_name
from task_changes.outbox import Outcome
from task_common.aws import DynamoDBTaskStore
from task_common.contract import PENDING_INDEX, PENDING_SHARD_ATTRIBUTE, pending_shard
from task_common.errors import ReconciliationIncomplete
from task_common.models import ReconcileRequest, TaskRecord, TaskStatus
from task_common.ports import ExecutionEnd, execution_arn_of

LIFECYCLE_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:taskrail-TaskLifecycle"
NOW_MS = 1_735_700_000_000
MINUTE_MS = 60_000
THRESHOLD_SECONDS = 300
# The keys of a DLQ message (task_changes/outbox.py), which `taskrail replay` reads.
DLQ_MESSAGE_KEYS = {"taskId", "executionArn", "input", "error", "cause", "attempt"}


def execution(name: str) -> str:
    return execution_arn_of(LIFECYCLE_ARN, name)


def queued(task_id: str, *, minutes_ago: int, attempt: int = 0) -> TaskRecord:
    return a_task(
        task_id=task_id, status=TaskStatus.QUEUED, attempt=attempt, created_at=NOW_MS - minutes_ago * MINUTE_MS
    )


def running(task_id: str, execution_arn: str, *, minutes_ago: int = 10, attempt: int = 1) -> TaskRecord:
    return a_task(
        task_id=task_id,
        status=TaskStatus.RUNNING,
        attempt=attempt,
        execution_arn=execution_arn,
        created_at=NOW_MS - minutes_ago * MINUTE_MS,
    )


class OutboxView:
    """The DLQ messages the task-changes function sends for the tasks the reconciler failed: each FAILED write opens
    the task's outbox entry (task_changes/outbox.py), one per task and attempt."""

    def __init__(self, tasks: InMemoryTaskStore) -> None:
        self._tasks = tasks

    @property
    def messages(self) -> list[dict[str, object]]:
        found = []
        for task_id, (error, cause) in self._tasks.failures.items():
            task = self._tasks.get_task(task_id)
            outcome = Outcome(task_id, "FAILED", task.attempt, 0, task.execution_arn or "", error, cause, None)
            found.append(outcome.dead_letter().model_dump(mode="json"))
        return found


class Platform:
    """The reconciler's three ports, in memory."""

    def __init__(self, *tasks: TaskRecord, statuses: dict[str, str] | None = None) -> None:
        self.tasks = InMemoryTaskStore(*tasks)
        self.executions = InMemoryExecutions(statuses=dict(statuses or {}))
        self.dlq = OutboxView(self.tasks)

    def reconcile(self, *, max_tasks_per_run: int = 500) -> dict[str, Any]:
        return reconcile_tasks(
            ReconcileRequest(lifecycle_state_machine_arn=LIFECYCLE_ARN),
            tasks=self.tasks,
            executions=self.executions,
            now_ms=NOW_MS,
            stuck_queued_after_seconds=THRESHOLD_SECONDS,
            max_tasks_per_run=max_tasks_per_run,
        ).model_dump(mode="json")

    def status(self, task_id: str) -> TaskStatus:
        return self.tasks.get_task(task_id).status


def test_a_stuck_queued_task_is_started_once_even_when_reconciled_twice():
    # Given a task QUEUED ten minutes ago that no execution ever claimed
    platform = Platform(queued("t-stuck", minutes_ago=10))

    # When the reconciler runs twice
    first = platform.reconcile()
    second = platform.reconcile()

    # Then one lifecycle execution was started, under the deterministic name, with the pipe's input shape
    assert platform.executions.started == [(execution("t-stuck-q0"), '["t-stuck"]')]
    assert first["started"] == 1
    assert second["started"] == 0 and second["alreadyStarted"] == 1
    # And the task is left to the execution's claim
    assert platform.status("t-stuck") is TaskStatus.QUEUED
    assert platform.dlq.messages == []


def test_a_queued_task_younger_than_the_threshold_is_left_alone():
    platform = Platform(queued("t-fresh", minutes_ago=4))

    result = platform.reconcile()

    assert platform.executions.started == []
    assert result["queued"] == 0 and result["started"] == 0


def test_a_running_task_whose_execution_was_aborted_is_failed_to_the_dead_letter_queue():
    # Given a RUNNING task whose execution was aborted (stopped outside the workflow's Catch)
    arn = execution("t-aborted")
    platform = Platform(running("t-aborted", arn, attempt=2), statuses={arn: "ABORTED"})

    # When the reconciler runs
    result = platform.reconcile()

    # Then the task is FAILED with the reason, conditionally on the execution it was RUNNING under
    assert result["markedFailed"] == 1
    assert platform.status("t-aborted") is TaskStatus.FAILED
    error, cause = platform.tasks.failures["t-aborted"]
    assert error == "ExecutionEnded"
    assert "ABORTED" in cause
    # And the dead-letter queue holds the message the lifecycle's failure path would have sent
    (message,) = platform.dlq.messages
    assert set(message) == DLQ_MESSAGE_KEYS
    assert message == {
        "taskId": "t-aborted",
        "executionArn": arn,
        "input": ["t-aborted"],
        "error": "ExecutionEnded",
        "cause": cause,
        "attempt": 2,
    }


@pytest.mark.parametrize("status", ["FAILED", "TIMED_OUT"])
def test_a_running_task_whose_execution_failed_or_timed_out_is_failed_too(status: str):
    arn = execution("t-ended")
    platform = Platform(running("t-ended", arn), statuses={arn: status})

    platform.reconcile()

    assert platform.status("t-ended") is TaskStatus.FAILED
    assert status in platform.dlq.messages[0]["cause"]  # type: ignore[operator]


class DescribedExecutions(InMemoryExecutions):
    """Executions whose DescribeExecution carries an error and cause, as Step Functions' does for a FAILED one."""

    def __init__(self, statuses: dict[str, str], ends: dict[str, tuple[str | None, str | None]]) -> None:
        super().__init__(statuses=statuses)
        self.ends = ends

    def describe(self, execution_arn: str) -> ExecutionEnd | None:
        status = self.status(execution_arn)
        if status is None:
            return None
        error, cause = self.ends.get(execution_arn, (None, None))
        return ExecutionEnd(status, error, cause)


@pytest.mark.parametrize(
    ("status", "error", "cause", "recorded"),
    [
        (
            "FAILED",
            "PermanentTaskError",
            '{"errorMessage": "poison"}',
            ("PermanentTaskError", '{"errorMessage": "poison"}'),
        ),
        ("ABORTED", "OperatorStopped", None, ("OperatorStopped", "the execution ended ABORTED while the task ran")),
        ("TIMED_OUT", None, None, ("ExecutionEnded", "the execution ended TIMED_OUT while the task ran")),
    ],
    ids=["error-and-cause", "error-only", "neither"],
)
def test_a_running_task_is_failed_with_the_error_and_cause_the_recorder_would_record(
    status: str, error: str | None, cause: str | None, recorded: tuple[str, str]
):
    # Given a RUNNING task whose execution ended, DescribeExecution giving its error and cause (or not)
    arn = execution("t-described")
    platform = Platform(running("t-described", arn))
    platform.executions = DescribedExecutions({arn: status}, {arn: (error, cause)})

    # When the reconciler runs (the status-change event lost, or the recorder not yet run)
    platform.reconcile()

    # Then the task, its DLQ message and its event carry what the failure recorder records for that event
    print(status, "->", platform.tasks.failures["t-described"])
    assert platform.tasks.failures["t-described"] == recorded
    assert (platform.dlq.messages[0]["error"], platform.dlq.messages[0]["cause"]) == recorded


def test_a_running_task_whose_execution_no_longer_exists_is_failed():
    platform = Platform(running("t-gone", execution("t-gone")))

    platform.reconcile()

    assert platform.status("t-gone") is TaskStatus.FAILED
    assert "no longer exists" in str(platform.dlq.messages[0]["cause"])


def test_a_running_task_whose_execution_still_runs_is_left_alone():
    arn = execution("t-busy")
    platform = Platform(running("t-busy", arn), statuses={arn: "RUNNING"})

    result = platform.reconcile()

    assert result["stillRunning"] == 1
    assert platform.status("t-busy") is TaskStatus.RUNNING
    assert platform.dlq.messages == []


def test_reconciling_again_changes_nothing():
    # Given a stuck task, an ended execution and a live one
    ended, live = execution("t-ended"), execution("t-live")
    platform = Platform(
        queued("t-stuck", minutes_ago=30),
        running("t-ended", ended),
        running("t-live", live),
        statuses={ended: "ABORTED", live: "RUNNING"},
    )
    platform.reconcile()
    tasks_after_first = dict(platform.tasks.tasks)

    # When the reconciler runs again
    second = platform.reconcile()

    # Then nothing more is started, written or sent
    assert len(platform.executions.started) == 1
    assert len(platform.dlq.messages) == 1
    assert platform.tasks.tasks == tasks_after_first
    assert second["started"] == 0 and second["markedFailed"] == 0


def test_a_stuck_task_whose_reconciler_execution_ended_before_its_claim_is_failed_to_the_dlq():
    # Given a stuck task whose earlier reconciler execution failed before it claimed the task
    earlier = execution("t-unclaimed-q0")
    platform = Platform(queued("t-unclaimed", minutes_ago=20), statuses={earlier: "FAILED"})

    # When the reconciler runs
    result = platform.reconcile()

    # Then it is not started again under the used name: the task is FAILED, for replay, with that execution
    assert platform.executions.started == []
    assert result["markedFailed"] == 1
    assert platform.status("t-unclaimed") is TaskStatus.FAILED
    assert platform.tasks.get_task("t-unclaimed").execution_arn == earlier
    (message,) = platform.dlq.messages
    assert (message["executionArn"], message["attempt"], message["input"]) == (earlier, 0, ["t-unclaimed"])


def test_a_task_the_index_still_shows_running_is_not_failed_after_it_succeeded():
    # Given a task that succeeded, which the lagging index still shows RUNNING, and whose execution has ended
    arn = execution("t-done")
    platform = Platform(
        a_task(task_id="t-done", status=TaskStatus.SUCCEEDED, execution_arn=arn, created_at=NOW_MS - 10 * MINUTE_MS),
        statuses={arn: "FAILED"},
    )
    platform.tasks.stale_index["t-done"] = running("t-done", arn)

    # When the reconciler runs
    result = platform.reconcile()

    # Then the table is read before acting: no message, no write
    assert result["changedMeanwhile"] == 1
    assert platform.status("t-done") is TaskStatus.SUCCEEDED
    assert platform.dlq.messages == []


def test_a_running_task_with_a_succeeded_execution_is_reported_not_changed():
    arn = execution("t-odd")
    platform = Platform(running("t-odd", arn), statuses={arn: "SUCCEEDED"})

    result = platform.reconcile()

    assert result["succeededButRunning"] == 1
    assert platform.status("t-odd") is TaskStatus.RUNNING
    assert platform.dlq.messages == []


def test_one_failing_task_does_not_stop_the_others_and_the_run_reports_incomplete():
    # Given two stuck tasks, and a lifecycle that refuses to start the first
    platform = Platform(queued("t-a", minutes_ago=30), queued("t-b", minutes_ago=20))
    start = platform.executions.start

    def refuse_a(state_machine_arn: str, *, name: str, input_json: str) -> bool:
        if name.startswith("t-a"):
            raise RuntimeError("throttled")
        return start(state_machine_arn, name=name, input_json=input_json)

    platform.executions.start = refuse_a  # type: ignore[method-assign]

    # When the reconciler runs, Then it reports the task it could not reconcile, after starting the other
    with pytest.raises(ReconciliationIncomplete, match="t-a"):
        platform.reconcile()
    assert [arn for arn, _ in platform.executions.started] == [execution("t-b-q0")]


def test_a_run_looks_at_the_oldest_tasks_first_and_says_when_it_left_some():
    platform = Platform(*(queued(f"t-{age}", minutes_ago=age) for age in (10, 30, 20)))

    result = platform.reconcile(max_tasks_per_run=2)

    assert result["truncated"] is True
    assert [arn for arn, _ in platform.executions.started] == [execution("t-30-q0"), execution("t-20-q0")]


def test_execution_names_are_deterministic_and_fit_the_80_character_limit():
    long_id = "k-" + "A" * 100

    assert start_execution_name("t-1", 3) == "t-1-q3"
    assert start_execution_name(long_id, 1) == start_execution_name(long_id, 1)
    assert len(start_execution_name(long_id, 12)) <= 80
    assert start_execution_name(long_id, 1).endswith("-q1")


# -- the DynamoDB adapter, against moto ---------------------------------------------------------------------


@pytest.fixture
def tasks_table(monkeypatch: pytest.MonkeyPatch) -> Any:
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName="Tasks",
            KeySchema=[{"AttributeName": "taskId", "KeyType": "HASH"}],
            AttributeDefinitions=[
                {"AttributeName": "taskId", "AttributeType": "S"},
                {"AttributeName": PENDING_SHARD_ATTRIBUTE, "AttributeType": "S"},
                {"AttributeName": "createdAt", "AttributeType": "N"},
            ],
            BillingMode="PAY_PER_REQUEST",
            GlobalSecondaryIndexes=[
                {
                    "IndexName": PENDING_INDEX,
                    "KeySchema": [
                        {"AttributeName": PENDING_SHARD_ATTRIBUTE, "KeyType": "HASH"},
                        {"AttributeName": "createdAt", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        )
        yield dynamodb


def put(dynamodb: Any, task_id: str, status: str, created_at: int, **extra: str) -> None:
    item = {
        "taskId": {"S": task_id},
        "userId": {"S": "alice"},
        "type": {"S": "text.stats"},
        "status": {"S": status},
        "attempt": {"N": "1"},
        "createdAt": {"N": str(created_at)},
        PENDING_SHARD_ATTRIBUTE: {"S": pending_shard(task_id)},
    }
    item |= {name: {"S": value} for name, value in extra.items()}
    dynamodb.put_item(TableName="Tasks", Item=item)


def test_the_store_queries_the_pending_index_oldest_first_before_the_cutoff(tasks_table: Any):
    for task_id, created_at in (("t-3", 3000), ("t-1", 1000), ("t-2", 2000), ("t-late", 9000)):
        put(tasks_table, task_id, "QUEUED", created_at)
    put(tasks_table, "t-running", "RUNNING", 500)
    store = DynamoDBTaskStore("Tasks", tasks_table)

    found = store.tasks_with_status(TaskStatus.QUEUED, created_before=5000, limit=2)

    assert [t.task_id for t in found] == ["t-1", "t-2"]


def test_the_store_fails_a_task_only_while_it_is_as_read(tasks_table: Any):
    put(tasks_table, "t-1", "RUNNING", 1000, executionArn="arn:old")
    store = DynamoDBTaskStore("Tasks", tasks_table)
    as_read = store.get_task("t-1")

    assert store.fail_task(as_read, execution_arn="arn:old", error="ExecutionEnded", cause="ended ABORTED")
    assert not store.fail_task(as_read, execution_arn="arn:old", error="ExecutionEnded", cause="again")

    item = tasks_table.get_item(TableName="Tasks", Key={"taskId": {"S": "t-1"}})["Item"]
    assert item["status"] == {"S": "FAILED"}
    assert item["cause"] == {"S": "ended ABORTED"}
    assert "finishedAt" in item
    assert item["error"] == {"S": "ExecutionEnded"}
    assert PENDING_SHARD_ATTRIBUTE not in item, "a FAILED task leaves the reconciler's pending index"


def test_the_store_finds_finished_tasks_in_the_pending_index_and_takes_them_out_only_while_finished(tasks_table: Any):
    # Given a same-body Idempotency-Key retry re-added the shard of a finished task (the submission's if_not_exists)
    put(tasks_table, "t-done", "SUCCEEDED", 1000)
    put(tasks_table, "t-live", "QUEUED", 2000)
    put(tasks_table, "t-cancelled", "CANCELLED", 3000)
    store = DynamoDBTaskStore("Tasks", tasks_table)

    # When the store looks for finished tasks in the index
    found = store.finished_in_pending_index(limit=10)

    # Then it finds the finished ones only, and takes them out; a live task keeps its shard
    assert [t.task_id for t in found] == ["t-done", "t-cancelled"]
    assert [store.leave_pending_index(t) for t in found] == [True, True]
    assert not store.leave_pending_index(store.get_task("t-live")), "a live task stays in the index"
    assert not store.leave_pending_index(found[0]), "already out"
    items = {t: tasks_table.get_item(TableName="Tasks", Key={"taskId": {"S": t}})["Item"] for t in ("t-done", "t-live")}
    assert PENDING_SHARD_ATTRIBUTE not in items["t-done"] and items["t-done"]["status"] == {"S": "SUCCEEDED"}
    assert items["t-live"][PENDING_SHARD_ATTRIBUTE] == {"S": pending_shard("t-live")}
    assert store.finished_in_pending_index(limit=10) == []


def test_a_run_takes_finished_tasks_out_of_the_pending_index_and_acts_on_nothing_else():
    # Given a SUCCEEDED task whose shard a same-body retry re-added, beside a stuck QUEUED task
    done = a_task(task_id="t-done", status=TaskStatus.SUCCEEDED, created_at=NOW_MS - 60 * MINUTE_MS)
    platform = Platform(done, queued("t-stuck", minutes_ago=10))
    platform.tasks.readded_shards.add("t-done")

    # When the reconciler runs twice
    first, second = platform.reconcile(), platform.reconcile()

    # Then the finished task left the index once, unchanged otherwise; the stuck task was started as before
    assert (first["leftPendingIndex"], second["leftPendingIndex"]) == (1, 0)
    assert platform.tasks.get_task("t-done") == done
    assert first["started"] == 1 and platform.dlq.messages == []
