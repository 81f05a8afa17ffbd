"""Reconciler behaviours that surviving mutants showed no test held (docs/TEST-STRENGTH.md, area lambdas)."""

from __future__ import annotations

from test_reconcile_tasks import Platform, execution, running

from task_common.models import TaskStatus


def test_a_task_the_index_shows_but_the_table_no_longer_holds_is_left_alone():
    # Given a RUNNING task whose execution ended, still in the lagging index but deleted from the table
    arn = execution("t-gone")
    platform = Platform(statuses={arn: "ABORTED"})
    platform.tasks.stale_index["t-gone"] = running("t-gone", arn)

    # When the reconciler runs
    result = platform.reconcile()

    # Then it reports the task as changed meanwhile, sends no message and writes nothing
    assert result["changedMeanwhile"] == 1
    assert result.get("markedFailed", 0) == 0
    assert platform.dlq.messages == []
    assert "t-gone" not in platform.tasks.tasks


def test_a_run_over_the_cap_of_running_tasks_says_it_left_some():
    # Given three RUNNING tasks whose executions still run, and a cap of two tasks per run
    arns = {f"t-{age}": execution(f"t-{age}") for age in (10, 30, 20)}
    platform = Platform(
        *(running(task_id, arn, minutes_ago=int(task_id[2:])) for task_id, arn in arns.items()),
        statuses=dict.fromkeys(arns.values(), "RUNNING"),
    )

    # When the reconciler runs
    result = platform.reconcile(max_tasks_per_run=2)

    # Then it looks at the two oldest only, and says the run did not see everything
    assert result["truncated"] is True
    assert result["running"] == 2
    assert result["stillRunning"] == 2


def test_a_run_at_exactly_the_cap_of_running_tasks_is_complete():
    arns = {f"t-{age}": execution(f"t-{age}") for age in (10, 30)}
    platform = Platform(
        *(running(task_id, arn, minutes_ago=int(task_id[2:])) for task_id, arn in arns.items()),
        statuses=dict.fromkeys(arns.values(), "RUNNING"),
    )

    result = platform.reconcile(max_tasks_per_run=2)

    assert result["truncated"] is False
    assert result["running"] == 2
    assert all(platform.status(task_id) is TaskStatus.RUNNING for task_id in arns)


def test_a_run_under_the_cap_of_running_tasks_is_complete():
    # Given one RUNNING task whose execution still runs, and a cap of three tasks per run
    arn = execution("t-10")
    platform = Platform(running("t-10", arn, minutes_ago=10), statuses={arn: "RUNNING"})

    # When the reconciler runs
    result = platform.reconcile(max_tasks_per_run=3)

    # Then the run saw everything: not truncated
    assert result["truncated"] is False
    assert result["running"] == 1
