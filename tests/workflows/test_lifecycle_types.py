"""Both lifecycle types (`cdk deploy -c lifecycleType=EXPRESS`, STANDARD by default) keep taskrail's guarantees:
each accepted task ends terminal, a failed one with exactly one DLQ message, and `taskrail replay` runs it again.

Each platform is provisioned from its own synthesized template and ``asl/`` file (the EXPRESS lifecycle records its
failures itself: Express executions send no status-change events, docs/DECISIONS.md "An EXPRESS lifecycle").
moto runs an EXPRESS machine with its interpreter as it runs a STANDARD one; the local stack refuses what AWS refuses
for an Express execution (DescribeExecution, its history, a list: services/stepfunctions_express.py), and the
in-process platform looks at the emulator's own record of it (``inspecting``) where a test waits for an execution.
"""

from __future__ import annotations

import time
from typing import Any

from task_types.diagnostic_poison import FIX_MARKER_KEY
from taskrail.local.services.stepfunctions_express import inspecting
from taskrail.operator.aws import DynamoTaskRecords, SqsDeadLetters, StepFunctionsExecutions
from taskrail.operator.replay import replay_task
from tests.workflows.conftest import Lifecycle
from tests.workflows.test_reconciler import run_reconciler, store_task_created_ago
from tests.workflows.test_task_lifecycle import HAPPY_PATH_STATES
from workflows.lifecycle_type import EXPRESS
from workflows.task_lifecycle import RECORD_FAILURE, TASK_FAILED

DEAD_LETTER_QUEUE = "TaskDeadLetterQueue"


def lifecycle_type(lifecycle: Lifecycle) -> str:
    machine = lifecycle.client("stepfunctions").describe_state_machine(stateMachineArn=lifecycle.state_machine_arn)
    return str(machine["type"])


def outcomes(lifecycle: Lifecycle, task_id: str) -> list[str]:
    return [n["outcome"] for n in lifecycle.drain("NotificationsArchiveQueue") if n["taskId"] == task_id]


def started(lifecycle: Lifecycle, name: str) -> str:
    """The ARN of the lifecycle's execution of this name (an Express ARN ends in a UUID: not derived from it)."""
    sfn = lifecycle.client("stepfunctions")
    with inspecting():
        listed = sfn.list_executions(stateMachineArn=lifecycle.state_machine_arn)["executions"]
    return next(str(e["executionArn"]) for e in listed if e["name"] == name)


def replay(lifecycle: Lifecycle, task_id: str) -> Any:
    """`taskrail replay TASK_ID` with the operator's own functions and adapters."""
    tasks = DynamoTaskRecords(lifecycle.client, lifecycle.tasks_table)
    item = tasks.get(task_id)
    assert item is not None
    return replay_task(
        item,
        queue=SqsDeadLetters(lifecycle.client, lifecycle.resources.ref(DEAD_LETTER_QUEUE), wait_seconds=0),
        tasks=tasks,
        executions=StepFunctionsExecutions(lifecycle.client, lifecycle.state_machine_arn),
    )


def test_the_happy_path_succeeds_with_one_result_and_one_notification(typed_lifecycle: Lifecycle):
    kind = lifecycle_type(typed_lifecycle)
    execution = typed_lifecycle.run("t-typed-happy", "text.stats", {"text": "the cat sat on the mat"})

    entered = typed_lifecycle.states_entered(execution["executionArn"])
    print(f"{kind}: {execution['status']}, {entered}")
    assert execution["status"] == "SUCCEEDED"
    assert entered == HAPPY_PATH_STATES
    assert typed_lifecycle.task("t-typed-happy")["status"] == "SUCCEEDED"
    assert typed_lifecycle.result("t-typed-happy")["result"]["words"] == 6
    assert len(typed_lifecycle.result_versions("t-typed-happy")) == 1
    assert outcomes(typed_lifecycle, "t-typed-happy") == ["SUCCEEDED"]
    assert typed_lifecycle.drain(DEAD_LETTER_QUEUE) == []


def test_invalid_parameters_are_rejected_without_a_dlq_message(typed_lifecycle: Lifecycle):
    kind = lifecycle_type(typed_lifecycle)
    execution = typed_lifecycle.run("t-typed-invalid", "text.stats", {"text": "x", "top": 1000})

    task = typed_lifecycle.task("t-typed-invalid")
    print(f"{kind}: execution {execution['status']}, task {task['status']} ({task['error']}: {task['cause'][:60]})")
    assert execution["status"] == "SUCCEEDED"
    assert typed_lifecycle.states_entered(execution["executionArn"])[-1] == "TaskRejected"
    assert (task["status"], task["error"]) == ("REJECTED", "ValidationFailed")
    assert outcomes(typed_lifecycle, "t-typed-invalid") == ["REJECTED"]
    assert typed_lifecycle.drain(DEAD_LETTER_QUEUE) == []


def test_a_permanent_failure_ends_failed_with_exactly_one_dlq_message(typed_lifecycle: Lifecycle):
    kind = lifecycle_type(typed_lifecycle)
    execution = typed_lifecycle.run("t-typed-poison", "diagnostic.poison", {})
    typed_lifecycle.settle()

    task = typed_lifecycle.task("t-typed-poison")
    entered = typed_lifecycle.states_entered(execution["executionArn"])
    recorder = typed_lifecycle.recorder_runs()
    messages = [m for m in typed_lifecycle.drain(DEAD_LETTER_QUEUE) if m["taskId"] == "t-typed-poison"]
    print(f"{kind}: execution {execution['status']} after {entered[-2:]}, task {task['status']}, recorder runs "
          f"{len(recorder)}, DLQ messages {len(messages)}")  # fmt: skip
    assert execution["status"] == "FAILED"
    assert (task["status"], task["error"]) == ("FAILED", "PermanentTaskError")
    assert [(m["executionArn"], m["error"]) for m in messages] == [(execution["executionArn"], "PermanentTaskError")]
    assert outcomes(typed_lifecycle, "t-typed-poison") == ["FAILED"]
    if kind == EXPRESS:
        # No status-change event: the lifecycle recorded the failure itself
        assert entered[-3:] == ["ProcessTask", RECORD_FAILURE, TASK_FAILED]
        assert recorder == []
    else:
        assert entered[-1] == "ProcessTask"
        assert len(recorder) == 1


def test_replay_after_the_fix_runs_the_task_to_succeeded(typed_lifecycle: Lifecycle):
    # Given a poison task that FAILED, with its DLQ message
    kind = lifecycle_type(typed_lifecycle)
    failed = typed_lifecycle.run("t-typed-replay", "diagnostic.poison", {})
    typed_lifecycle.settle()
    assert typed_lifecycle.task("t-typed-replay")["status"] == "FAILED"

    # When the operator fixes the cause and runs `taskrail replay t-typed-replay`
    typed_lifecycle.client("s3").put_object(Bucket=typed_lifecycle.results_bucket, Key=FIX_MARKER_KEY, Body=b"fixed")
    outcome = replay(typed_lifecycle, "t-typed-replay")
    arn = failed["executionArn"]
    if outcome.action == "started":
        arn = started(typed_lifecycle, outcome.execution_name)
    execution = typed_lifecycle.wait(arn)
    typed_lifecycle.settle()

    # Then STANDARD redrives the same execution, EXPRESS (no redrive) starts a new one; the task SUCCEEDED once
    task = typed_lifecycle.task("t-typed-replay")
    print(f"{kind}: replay {outcome.action} ({outcome.detail[:70]}), execution {execution['status']}, "
          f"task {task['status']} attempt {task['attempt']}")  # fmt: skip
    assert outcome.action == ("started" if kind == EXPRESS else "redriven")
    assert execution["status"] == "SUCCEEDED"
    assert task["status"] == "SUCCEEDED"
    assert len(typed_lifecycle.result_versions("t-typed-replay")) == 1
    assert outcomes(typed_lifecycle, "t-typed-replay") == ["FAILED", "SUCCEEDED"]
    assert [m for m in typed_lifecycle.drain(DEAD_LETTER_QUEUE) if m["taskId"] == "t-typed-replay"] == []


def test_a_task_type_too_long_for_five_minutes_is_rejected_on_express_only(typed_lifecycle: Lifecycle):
    # Given diagnostic.sleep, which declares 840 s a try (5 tries with retries), asked to sleep briefly
    kind = lifecycle_type(typed_lifecycle)
    execution = typed_lifecycle.run("t-typed-long", "diagnostic.sleep", {"seconds": 0.01, "steps": 1})

    task = typed_lifecycle.task("t-typed-long")
    print(f"{kind}: task {task['status']} {task.get('cause', '')}")
    assert execution["status"] == "SUCCEEDED"
    if kind == EXPRESS:
        # Then EXPRESS refuses it at Validate, with the reason, and never runs it
        assert (task["status"], task["error"]) == ("REJECTED", "ValidationFailed")
        assert "diagnostic.sleep may run 840 s a try, 4200 s over its 5 tries" in task["cause"]
        assert "EXPRESS lifecycle" in task["cause"] and "after 300 s" in task["cause"]
        assert "ProcessTask" not in typed_lifecycle.states_entered(execution["executionArn"])
    else:
        assert task["status"] == "SUCCEEDED"


def test_an_express_task_that_outlived_its_execution_outside_every_catch_is_failed_by_the_reconciler(
    typed_lifecycle: Lifecycle,
):
    # Given a task still RUNNING under an execution that failed outside every Catch (States.Runtime: no task id),
    # claimed 10 minutes ago: on EXPRESS no execution runs that long, and none is described (as on AWS)
    kind = lifecycle_type(typed_lifecycle)
    dead = typed_lifecycle.client("stepfunctions").start_execution(
        stateMachineArn=typed_lifecycle.state_machine_arn, name="broken-execution", input="[]"
    )["executionArn"]
    assert typed_lifecycle.wait(dead)["status"] == "FAILED"
    claimed = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 600))
    store_task_created_ago(typed_lifecycle, "t-typed-orphan", age_ms=11 * 60_000, status="RUNNING", attempt=1,
                           executionArn=dead, startedAt=claimed)  # fmt: skip

    # When the reconciler runs
    counts = run_reconciler(typed_lifecycle)

    # Then either way the task ends FAILED with one DLQ message (EXPRESS: by the claim's age)
    task = typed_lifecycle.task("t-typed-orphan")
    print(f"{kind}: reconciler {counts}, task {task['status']}: {task['cause']}")
    # (STANDARD: the execution's own error, as the failure recorder records it; EXPRESS describes none)
    error = "ExecutionEnded" if kind == EXPRESS else typed_lifecycle.wait(dead)["error"]
    assert (counts["markedFailed"], task["status"], task["error"]) == (1, "FAILED", error)
    if kind == EXPRESS:
        assert task["cause"] == "the EXPRESS execution ended while the task ran (it runs at most 300 s)"
    messages = [m for m in typed_lifecycle.drain(DEAD_LETTER_QUEUE) if m["taskId"] == "t-typed-orphan"]
    assert [(m["executionArn"], m["error"]) for m in messages] == [(dead, error)]
