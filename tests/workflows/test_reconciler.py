"""asl/reconciler.asl.json in moto's interpreter, with the real reconcile_tasks handler and the lifecycle."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from typing import Any

from task_common.contract import PENDING_INDEX, PENDING_SHARD_ATTRIBUTE, PENDING_SHARDS, Status, pending_shard
from taskrail.local.scheduler import LocalScheduler
from taskrail.local.services.lambda_ import InvokeOutcome
from tests.workflows.conftest import Lifecycle, describe_failure
from tests.workflows.outbox import give_up

TEN_MINUTES_MS = 10 * 60 * 1000


def reconciler_arn(lifecycle: Lifecycle) -> str:
    return lifecycle.resources.state_machines["ReconcilerStateMachine"]


def store_task_created_ago(lifecycle: Lifecycle, task_id: str, *, age_ms: int, **attributes: Any) -> None:
    """The item as POST /tasks writes it, stored ``age_ms`` ago; ``attributes`` override (strings or ints). Filed
    in its own shard of the pending index."""
    item: dict[str, Any] = {
        "taskId": task_id,
        "userId": "alice",
        "type": "text.stats",
        "params": json.dumps({"text": "the reconciler found me"}),
        "status": "QUEUED",
        "progress": 0,
        "attempt": 0,
        PENDING_SHARD_ATTRIBUTE: pending_shard(task_id),
        "createdAt": int(time.time() * 1000) - age_ms,
        **attributes,
    }
    if item["status"] not in (Status.QUEUED, Status.RUNNING):
        del item[PENDING_SHARD_ATTRIBUTE]  # a finished task is in no shard
    lifecycle.client("dynamodb").put_item(
        TableName=lifecycle.resources.ref("TasksTable"),
        Item={k: {"N": str(v)} if isinstance(v, int) else {"S": v} for k, v in item.items()},
    )


def pending_index_entries(lifecycle: Lifecycle) -> list[str]:
    """The ids in the reconciler's pending index, every shard (the template's index, as moto keeps it)."""
    dynamodb, ids = lifecycle.client("dynamodb"), []
    for shard in PENDING_SHARDS:
        items = dynamodb.query(
            TableName=lifecycle.tasks_table,
            IndexName=PENDING_INDEX,
            KeyConditionExpression="#shard = :shard",
            ExpressionAttributeNames={"#shard": PENDING_SHARD_ATTRIBUTE},
            ExpressionAttributeValues={":shard": {"S": shard}},
        )["Items"]
        ids += [item["taskId"]["S"] for item in items]
    return sorted(ids)


def start_reconciler(lifecycle: Lifecycle) -> str:
    """As the schedule starts it: an object input with the scheduled time."""
    return lifecycle.client("stepfunctions").start_execution(
        stateMachineArn=reconciler_arn(lifecycle),
        name=f"reconcile-{uuid.uuid4()}",
        input=json.dumps({"scheduledTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}),
    )["executionArn"]


def run_reconciler(lifecycle: Lifecycle) -> dict[str, Any]:
    execution = lifecycle.wait(start_reconciler(lifecycle))
    assert execution["status"] == "SUCCEEDED", describe_failure(lifecycle, execution["executionArn"])
    return json.loads(execution["output"])["reconciled"]["counts"]


def lifecycle_executions(lifecycle: Lifecycle) -> list[dict[str, Any]]:
    return lifecycle.client("stepfunctions").list_executions(stateMachineArn=lifecycle.state_machine_arn)["executions"]


def test_a_stuck_queued_task_is_started_and_runs_to_success(lifecycle: Lifecycle):
    # Given a task stored ten minutes ago that no execution ever picked up (the pipe lost its record)
    store_task_created_ago(lifecycle, "t-stuck", age_ms=TEN_MINUTES_MS)

    # When the reconciler runs
    counts = run_reconciler(lifecycle)

    # Then it started the lifecycle under the deterministic name, and the task ran to success
    assert counts["queued"] == 1 and counts["started"] == 1
    (started,) = lifecycle_executions(lifecycle)
    assert started["name"] == "t-stuck-q0"
    execution = lifecycle.wait(started["executionArn"])
    assert execution["status"] == "SUCCEEDED", describe_failure(lifecycle, started["executionArn"])
    assert json.loads(execution["input"]) == ["t-stuck"]
    task = lifecycle.task("t-stuck")
    assert task["status"] == "SUCCEEDED"
    assert task["attempt"] == "1"
    assert PENDING_SHARD_ATTRIBUTE not in task and pending_index_entries(lifecycle) == []


def test_stuck_queued_and_running_tasks_are_found_in_every_shard_of_the_pending_index(lifecycle: Lifecycle):
    # Given stuck QUEUED tasks filed in three different shards, and a RUNNING task in a fourth whose execution ended
    dead = lifecycle.client("stepfunctions").start_execution(
        stateMachineArn=lifecycle.state_machine_arn, name="ended-execution", input="[]"
    )["executionArn"]
    assert lifecycle.wait(dead)["status"] == "FAILED"
    queued = {f"t-q{shard}": shard for shard in (PENDING_SHARDS[0], PENDING_SHARDS[7], PENDING_SHARDS[-1])}
    for task_id, shard in queued.items():
        store_task_created_ago(lifecycle, task_id, age_ms=TEN_MINUTES_MS, **{PENDING_SHARD_ATTRIBUTE: shard})
    store_task_created_ago(
        lifecycle,
        "t-r",
        age_ms=TEN_MINUTES_MS,
        status="RUNNING",
        attempt=1,
        executionArn=dead,
        **{PENDING_SHARD_ATTRIBUTE: PENDING_SHARDS[10]},
    )
    assert pending_index_entries(lifecycle) == sorted([*queued, "t-r"])

    # When the reconciler runs (it queries each shard)
    counts = run_reconciler(lifecycle)

    # Then it started every stuck QUEUED task and failed the RUNNING one; each has left the index once finished
    print("reconciler counts:", counts)
    assert (counts["queued"], counts["started"], counts["running"], counts["markedFailed"]) == (3, 3, 1, 1)
    for execution in lifecycle_executions(lifecycle):
        lifecycle.wait(execution["executionArn"])
    assert {task_id: lifecycle.task(task_id)["status"] for task_id in [*queued, "t-r"]} == {
        **dict.fromkeys(queued, "SUCCEEDED"),
        "t-r": "FAILED",
    }
    assert pending_index_entries(lifecycle) == []


def test_every_terminal_write_of_the_workflows_takes_the_task_out_of_the_pending_index(lifecycle: Lifecycle):
    # Given three tasks as the API files them in the pending index: one to succeed (MarkSucceeded), one to be rejected
    # (MarkRejected), one whose execution fails (the failure recorder's write)
    runs = {
        "t-ok": ("text.stats", {"text": "a b a"}),
        "t-bad": ("text.stats", {"text": "x", "top": 1000}),
        "t-poison": ("diagnostic.poison", {}),
    }
    for task_id, (task_type, params) in runs.items():
        lifecycle.store_task(task_id, task_type, params)
    assert pending_index_entries(lifecycle) == sorted(runs)

    # When each runs to its end
    for task_id in runs:
        lifecycle.wait(lifecycle.start(task_id))
    lifecycle.settle()

    # Then none is left in the index, whichever write ended it
    statuses = {task_id: lifecycle.task(task_id)["status"] for task_id in runs}
    assert statuses == {"t-ok": "SUCCEEDED", "t-bad": "REJECTED", "t-poison": "FAILED"}
    assert [PENDING_SHARD_ATTRIBUTE in lifecycle.task(task_id) for task_id in runs] == [False] * 3
    assert pending_index_entries(lifecycle) == []


def test_two_reconciler_runs_start_exactly_one_execution(lifecycle: Lifecycle):
    # Given a stuck task
    store_task_created_ago(lifecycle, "t-twice", age_ms=TEN_MINUTES_MS)

    # When two reconciler runs overlap (the schedule delivers at least once), and a third runs later
    runs = [start_reconciler(lifecycle), start_reconciler(lifecycle)]
    for run in runs:
        assert lifecycle.wait(run)["status"] == "SUCCEEDED", describe_failure(lifecycle, run)
    (only,) = lifecycle_executions(lifecycle)
    lifecycle.wait(only["executionArn"])
    run_reconciler(lifecycle)

    # Then exactly one lifecycle execution exists, and the task ran once
    assert [e["name"] for e in lifecycle_executions(lifecycle)] == ["t-twice-q0"]
    assert lifecycle.task("t-twice")["status"] == "SUCCEEDED"
    assert lifecycle.task("t-twice")["attempt"] == "1"


def test_a_queued_task_younger_than_the_threshold_is_left_to_the_pipe(lifecycle: Lifecycle):
    store_task_created_ago(lifecycle, "t-fresh", age_ms=60_000)

    counts = run_reconciler(lifecycle)

    assert counts["queued"] == 0
    assert lifecycle_executions(lifecycle) == []
    assert lifecycle.task("t-fresh")["status"] == "QUEUED"


def test_a_running_task_whose_execution_failed_outside_the_catch_is_failed_to_the_dlq(lifecycle: Lifecycle):
    # Given an execution that failed outside the workflow's Catch (an input with no task id: States.Runtime)
    dead = lifecycle.client("stepfunctions").start_execution(
        stateMachineArn=lifecycle.state_machine_arn, name="broken-execution", input="[]"
    )["executionArn"]
    ended = lifecycle.wait(dead)
    assert ended["status"] == "FAILED"
    # And a task still RUNNING under it
    store_task_created_ago(lifecycle, "t-orphan", age_ms=TEN_MINUTES_MS, status="RUNNING", attempt=1, executionArn=dead)

    # When the reconciler runs
    counts = run_reconciler(lifecycle)

    # Then the task is FAILED with the reason, and the DLQ holds what replay needs
    assert counts["markedFailed"] == 1
    task = lifecycle.task("t-orphan")
    assert task["status"] == "FAILED"
    # (the execution's own error and cause, as the failure recorder records them for its event)
    # (an error without a cause gets the ended-cause, as the recorder's NameTheCause gives it)
    cause = ended.get("cause") or "the execution ended FAILED while the task ran"
    assert (task["error"], task["cause"]) == (ended["error"], cause)
    assert PENDING_SHARD_ATTRIBUTE not in task, "the reconciler's failure is a terminal write: out of the index"
    assert lifecycle.drain("TaskDeadLetterQueue") == [
        {
            "taskId": "t-orphan",
            "executionArn": dead,
            "input": ["t-orphan"],
            "error": ended["error"],
            "cause": task["cause"],
            "attempt": 1,
        }
    ]
    # And a second run finds nothing more to do
    assert run_reconciler(lifecycle)["markedFailed"] == 0
    assert lifecycle.drain("TaskDeadLetterQueue") == []


def test_the_schedule_from_the_template_starts_the_reconciler(lifecycle: Lifecycle):
    # Given the schedule as provisioned from the template
    schedule = lifecycle.resources.schedules["ReconcileSchedule"]
    assert schedule.rate_seconds == 300
    assert schedule.target_arn == reconciler_arn(lifecycle)
    store_task_created_ago(lifecycle, "t-scheduled", age_ms=TEN_MINUTES_MS)

    # When the local scheduler fires it
    scheduler = LocalScheduler(lifecycle.resources.schedules, lifecycle.client, interval_scale=0.01)
    (run,) = scheduler.run_once()

    # Then the reconciler ran with the scheduled time in its input, and started the stuck task
    execution = lifecycle.wait(run)
    assert execution["status"] == "SUCCEEDED", describe_failure(lifecycle, run)
    assert json.loads(execution["input"])["scheduledTime"].endswith("Z")
    assert [e["name"] for e in lifecycle_executions(lifecycle)] == ["t-scheduled-q0"]
    lifecycle.wait(lifecycle_executions(lifecycle)[0]["executionArn"])


def test_an_undeliverable_scheduled_run_lands_in_the_schedule_dlq(lifecycle: Lifecycle):
    # Given the schedule pointed at a state machine that does not exist
    schedule = lifecycle.resources.schedules["ReconcileSchedule"]
    missing = dataclasses.replace(schedule, target_arn=schedule.target_arn + "-missing", maximum_retry_attempts=1)
    scheduler = LocalScheduler({"ReconcileSchedule": missing}, lifecycle.client, interval_scale=0.001)

    # When it fires
    assert scheduler.run_once() == []

    # Then the run is dead-lettered with the schedule's input
    (message,) = lifecycle.drain("ScheduleDeadLetterQueue")
    assert set(message) == {"scheduledTime"}
    assert scheduler.dead_lettered == {"ReconcileSchedule": 1}


def test_a_run_that_keeps_failing_is_retried_then_fails_the_execution(lifecycle: Lifecycle):
    # Given a stranded task, and a reconcile function that fails every run for it (the reconciler no longer sends to
    # the DLQ, whose loss made it fail before: the outbox does; so the failure is the function's own answer)
    dead = lifecycle.client("stepfunctions").start_execution(
        stateMachineArn=lifecycle.state_machine_arn, name="broken-execution", input="[]"
    )["executionArn"]
    lifecycle.wait(dead)
    store_task_created_ago(
        lifecycle, "t-stranded", age_ms=TEN_MINUTES_MS, status="RUNNING", attempt=1, executionArn=dead
    )
    incomplete = InvokeOutcome.unhandled("ReconciliationIncomplete", "1 task(s) could not be reconciled: t-stranded")

    # When the reconciler runs
    with lifecycle.invoking(lambda name, payload, qualifier: incomplete):
        execution = lifecycle.wait(start_reconciler(lifecycle))

    # Then the run was retried whole, then failed the execution (alarmed) with the function's reason
    assert execution["status"] == "FAILED"
    assert execution["error"] == "ReconciliationFailed"
    assert "ReconciliationIncomplete" in execution["cause"] and "t-stranded" in execution["cause"]
    assert lifecycle.states_entered(execution["executionArn"]) == ["ReconcileTasks", "ReconciliationFailed"]
    assert len(lifecycle.sleeps.retries()) == 2
    # And the task was not touched: the next run tries again
    assert lifecycle.task("t-stranded")["status"] == "RUNNING"


def test_an_outcome_the_pipe_gave_up_on_is_retriggered_and_delivered_once(lifecycle: Lifecycle):
    # Given a task that SUCCEEDED ten minutes after it was created, whose outcome record the pipe gave up on
    store_task_created_ago(
        lifecycle,
        "t-undelivered",
        age_ms=TEN_MINUTES_MS,
        status="SUCCEEDED",
        attempt=1,
        executionArn="arn:aws:states:us-east-1:123456789012:execution:taskrail-TaskLifecycleStateMachine:t-u",
        resultLocation="s3://bucket/tasks/t-undelivered/result.json",
        outcomePending="SUCCEEDED",
    )
    assert give_up(lifecycle) >= 1

    # When the reconciler runs (it finds the task in the sparse outcomePending index)
    counts = run_reconciler(lifecycle)

    # Then its touch reaches the task-changes function, which announces the outcome once and marks it delivered
    print("reconciler counts:", counts)
    assert counts["outcomesRetriggered"] == 1
    events = [n for n in lifecycle.drain("NotificationsArchiveQueue") if n["taskId"] == "t-undelivered"]
    assert [n["outcome"] for n in events] == ["SUCCEEDED"]
    task = lifecycle.task("t-undelivered")
    assert "outcomePending" not in task and task["outcomeDelivered"] == "t-undelivered#1#0#SUCCEEDED"
    # And a second run finds nothing pending
    assert run_reconciler(lifecycle)["outcomesRetriggered"] == 0
    assert [n for n in lifecycle.drain("NotificationsArchiveQueue") if n["taskId"] == "t-undelivered"] == []


def test_the_reconciler_and_the_failure_recorder_never_both_fail_a_task(lifecycle: Lifecycle):
    # Given an old task whose execution failed while its status-change event was lost (the rule's target gone)
    events, rule = lifecycle.client("events"), lifecycle.resources.ref("LifecycleFailedRule")
    targets = events.list_targets_by_rule(Rule=rule)["Targets"]
    events.remove_targets(Rule=rule, Ids=[t["Id"] for t in targets])
    try:
        store_task_created_ago(lifecycle, "t-lost", age_ms=TEN_MINUTES_MS, type="diagnostic.poison", params="{}")
        execution = lifecycle.wait(lifecycle.start("t-lost"))
    finally:
        events.put_targets(Rule=rule, Targets=targets)
    assert execution["status"] == "FAILED" and lifecycle.task("t-lost")["status"] == "RUNNING"

    # When the reconciler repairs it, and then the event arrives after all (EventBridge retried it)
    counts = run_reconciler(lifecycle)
    print("reconciler counts:", counts)
    assert counts["markedFailed"] == 1
    detail = {
        "executionArn": execution["executionArn"],
        "stateMachineArn": lifecycle.state_machine_arn,
        "status": "FAILED",
        "input": json.dumps(["t-lost"]),
        "error": execution.get("error"),
        "cause": execution.get("cause"),
        "redriveCount": 0,
    }
    recorder = lifecycle.resources.state_machines["FailureRecorderStateMachine"]
    late = lifecycle.client("stepfunctions").start_execution(
        stateMachineArn=recorder,
        input=json.dumps({"detail-type": "Step Functions Execution Status Change", "detail": detail}),
    )["executionArn"]
    lifecycle.wait(late)

    # Then the recorder finds it settled: one FAILED record (the reconciler's), one DLQ message, and they carry
    # what the recorder itself records for this event, the execution's error and cause (not ExecutionEnded)
    assert lifecycle.states_entered(late)[-1] == "TaskAlreadySettled"
    task = lifecycle.task("t-lost")
    print("reconciler recorded:", task["error"], "| execution ended with:", execution.get("error"))
    assert (
        (task["error"], task["cause"]) == (execution["error"], execution["cause"]) == (detail["error"], detail["cause"])
    )
    assert task["error"] == "PermanentTaskError"
    messages = lifecycle.drain("TaskDeadLetterQueue")
    assert [(m["taskId"], m["error"], m["cause"]) for m in messages] == [("t-lost", task["error"], task["cause"])]
