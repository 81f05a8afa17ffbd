"""One failure path on the whole local stack (issue 19): a failed execution ends at the state that failed, its
status-change event on the default bus starts the failure recorder (an EventBridge rule, as the template declares
it), which sets the task FAILED; the outbox pipe sends one DLQ message and one outcome event. And Redrive, from the
AWS CLI, resumes the same execution to success."""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from task_common.contract import EXECUTION_ENDED_CAUSE, EXECUTION_ENDED_ERROR
from taskrail.client import TaskrailClient
from taskrail.local.stack import LocalStack
from taskrail.local.state import LOCAL_CREDENTIALS, REGION
from taskrail.operator import Operator
from tests.e2e.polling import wait_for
from tests.e2e.test_local_stack import POISON_FIX_MARKER, notifications_of

pytestmark = pytest.mark.e2e


@pytest.fixture
def poison_fix(stack: LocalStack) -> Iterator[Callable[[], Any]]:
    """The fix marker is global to the bucket: absent while this test's poison task fails, absent after it."""
    assert stack.info is not None
    s3, bucket = stack.clients("s3"), stack.info.results_bucket
    s3.delete_object(Bucket=bucket, Key=POISON_FIX_MARKER)
    yield lambda: s3.put_object(Bucket=bucket, Key=POISON_FIX_MARKER, Body=b"fixed")
    s3.delete_object(Bucket=bucket, Key=POISON_FIX_MARKER)


def recorder_runs_for(stack: LocalStack, execution_arn: str) -> list[dict[str, Any]]:
    sfn = stack.clients("stepfunctions")
    (recorder,) = [
        m["stateMachineArn"]
        for m in sfn.list_state_machines()["stateMachines"]
        if m["name"].endswith("FailureRecorderStateMachine")
    ]
    runs = [
        sfn.describe_execution(executionArn=e["executionArn"])
        for e in sfn.list_executions(stateMachineArn=recorder)["executions"]
    ]
    return [r for r in runs if execution_arn in r["input"]]


def dead_letters_of(operator: Operator, task_id: str) -> list[dict[str, Any]]:
    return [m for m in operator.dlq_messages(max_messages=100) if m["taskId"] == task_id]


def last_state(stack: LocalStack, execution_arn: str) -> str:
    events = stack.clients("stepfunctions").get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e][-1]


def aws_cli(stack: LocalStack, *args: str) -> subprocess.CompletedProcess[str]:
    assert stack.info is not None
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": REGION,
    }
    env.pop("AWS_PROFILE", None)
    env.pop("AWS_SESSION_TOKEN", None)
    return subprocess.run(
        ["aws", *args, "--endpoint-url", stack.info.aws_endpoint_url, "--region", REGION],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_poison_task_is_recorded_once_then_redriven_to_success_with_the_aws_cli(
    stack: LocalStack, alice: TaskrailClient, alice_operator: Operator, poison_fix: Callable[[], Any]
):
    assert stack.info is not None
    # Given a poison task, FAILED
    task_id = alice.submit("diagnostic.poison", {})["taskId"]
    task = alice.wait([task_id], timeout=60)[task_id]
    arn = task["executionArn"]

    # Then its execution failed at ProcessTask (no Catch), and the recorder (not the reconciler, which records
    # ExecutionEnded) set it FAILED with the function's error: one DLQ message, one outcome event
    sfn = stack.clients("stepfunctions")
    assert (sfn.describe_execution(executionArn=arn)["status"], last_state(stack, arn)) == ("FAILED", "ProcessTask")
    assert (task["status"], task["error"]) == ("FAILED", "PermanentTaskError")
    assert [r["status"] for r in wait_for(lambda: recorder_runs_for(stack, arn), what="the recorder's run")] == [
        "SUCCEEDED"
    ]
    messages = wait_for(lambda: dead_letters_of(alice_operator, task_id), timeout=30, what="the DLQ message")
    assert [(m["executionArn"], m["error"]) for m in messages] == [(arn, "PermanentTaskError")]
    assert notifications_of(stack, task_id, Counter(FAILED=1)) == Counter(FAILED=1)

    # When the fix is in and the execution is redriven with the AWS CLI
    poison_fix()
    redrive = aws_cli(stack, "stepfunctions", "redrive-execution", "--execution-arn", arn)
    print("aws stepfunctions redrive-execution:", redrive.returncode, redrive.stdout.strip(), redrive.stderr.strip())
    assert redrive.returncode == 0, redrive.stderr

    # Then the same execution ends SUCCEEDED, the task SUCCEEDED in its first attempt, one result, one success
    wait_for(lambda: sfn.describe_execution(executionArn=arn)["status"] == "SUCCEEDED", what="the redrive's end")
    described = sfn.describe_execution(executionArn=arn)
    task = wait_for(lambda: alice.get(task_id)["status"] == "SUCCEEDED" and alice.get(task_id), what="SUCCEEDED")
    print("after the redrive:", described["redriveCount"], task["status"], task["attempt"], task["executionArn"])
    assert (task["executionArn"], task["attempt"], described["redriveCount"]) == (arn, 1, 1)
    versions = stack.clients("s3").list_object_versions(
        Bucket=stack.info.results_bucket, Prefix=f"tasks/{task_id}/result.json"
    )
    assert len(versions.get("Versions", [])) == 1
    assert notifications_of(stack, task_id, Counter(SUCCEEDED=1)) == Counter(SUCCEEDED=1)
    # And its earlier DLQ message is harmless: the replay tooling drops it, starting nothing
    outcomes = alice_operator.replay_dlq({task_id})
    print("replaying the old DLQ message:", [(o.action, o.detail) for o in outcomes])
    assert [o.action for o in outcomes] == ["dropped"]
    assert alice.get(task_id)["status"] == "SUCCEEDED"

    # And redriving it again is refused with AWS's error
    again = aws_cli(stack, "stepfunctions", "redrive-execution", "--execution-arn", arn)
    assert again.returncode != 0 and "ExecutionNotRedrivable" in again.stderr, again.stderr


def assert_recorded_once(
    stack: LocalStack, operator: Operator, task_id: str, arn: str, status: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The execution ended ``status``; exactly one FAILED record, written by the recorder's one run (it ends in
    TaskFailureRecorded: not TaskAlreadySettled after a reconciler's write), one DLQ message of that execution with
    the task's error and cause, one FAILED notification. Returns the task and the status-change event's detail."""
    sfn = stack.clients("stepfunctions")
    assert sfn.describe_execution(executionArn=arn)["status"] == status
    (run,) = wait_for(lambda: recorder_runs_for(stack, arn), what="the recorder's run")
    wait_for(lambda: sfn.describe_execution(executionArn=run["executionArn"])["status"] != "RUNNING", what="its end")
    task = stack_task(stack, task_id)
    messages = wait_for(lambda: dead_letters_of(operator, task_id), timeout=30, what="the DLQ message")
    print(
        f"{task_id}: execution {status}, task {task['status']} ({task.get('error')}: {task.get('cause')}), "
        f"recorder {last_state(stack, run['executionArn'])}, DLQ {[(m['error'], m['cause']) for m in messages]}"
    )
    assert task["status"] == "FAILED"
    assert last_state(stack, run["executionArn"]) == "TaskFailureRecorded"
    assert [(m["executionArn"], m["error"], m["cause"]) for m in messages] == [(arn, task["error"], task["cause"])]
    assert notifications_of(stack, task_id, Counter(FAILED=1)) == Counter(FAILED=1)
    assert len(recorder_runs_for(stack, arn)) == 1
    detail: dict[str, Any] = json.loads(run["input"])["detail"]
    return task, detail


def stack_task(stack: LocalStack, task_id: str) -> dict[str, Any]:
    """The Tasks item (a consistent read), each attribute as its plain value."""
    assert stack.info is not None
    item = stack.clients("dynamodb").get_item(
        TableName=stack.info.tasks_table, Key={"taskId": {"S": task_id}}, ConsistentRead=True
    )["Item"]
    return {k: next(iter(v.values())) for k, v in item.items()}


def ended_as_recorded(detail: dict[str, Any], status: str) -> tuple[str, str]:
    """What the recorder writes for the event (workflows/failure_recorder.py, IsTheFailureNamed)."""
    ended = EXECUTION_ENDED_CAUSE.format(status)
    if detail.get("error") is None:
        return EXECUTION_ENDED_ERROR, ended
    return detail["error"], ended if detail.get("cause") is None else detail["cause"]


def test_an_abort_not_caused_by_a_cancel_fails_the_task_once(
    stack: LocalStack, alice: TaskrailClient, alice_operator: Operator
):
    # Given a task inside ProcessTask
    task_id = alice.submit("diagnostic.sleep", {"seconds": 3, "steps": 3})["taskId"]
    wait_for(lambda: alice.get(task_id)["progress"] > 0, what="progress")
    arn = alice.get(task_id)["executionArn"]

    # When an operator stops its execution (no cancel: the task is RUNNING)
    stack.clients("stepfunctions").stop_execution(executionArn=arn, error="OperatorStopped", cause="from the console")

    # Then the recorder's one run (not the reconciler) sets it FAILED with what the abort's event carries, and the
    # outbox sends one DLQ message and one outcome event
    alice.wait([task_id], timeout=60)
    task, detail = assert_recorded_once(stack, alice_operator, task_id, arn, "ABORTED")
    print("abort event error/cause:", detail.get("error"), detail.get("cause"))
    assert (task["error"], task["cause"]) == ended_as_recorded(detail, "ABORTED")


@contextmanager
def process_task_answers_malformed(stack: LocalStack) -> Iterator[None]:
    """taskrail/local/faults.py's ``malformed`` fault on ProcessTaskFunction while the block runs."""
    assert stack.faults is not None
    plan = stack.faults.plan
    plan.malformed = {**plan.malformed, "ProcessTaskFunction": 1.0}
    try:
        yield
    finally:
        plan.malformed = {k: v for k, v in plan.malformed.items() if k != "ProcessTaskFunction"}


def test_a_states_runtime_error_fails_the_task_once(stack: LocalStack, alice: TaskrailClient, alice_operator: Operator):
    # Given ProcessTask's function answers a JSON array (its ResultSelector's $.Payload.taskId is missing)
    with process_task_answers_malformed(stack):
        task_id = alice.submit("text.stats", {"text": "a b"})["taskId"]
        alice.wait([task_id], timeout=60)
    arn = stack_task(stack, task_id)["executionArn"]

    # Then the execution failed at ProcessTask with States.Runtime, tried once (no Retry on States.ALL takes it),
    # and the recorder's one run set the task FAILED with it: one DLQ message, one outcome event
    sfn = stack.clients("stepfunctions")
    assert (sfn.describe_execution(executionArn=arn)["error"], last_state(stack, arn)) == (
        "States.Runtime",
        "ProcessTask",
    )
    events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    entered = [e.get("stateEnteredEventDetails", {}).get("name") for e in events].index("ProcessTask")
    assert [e["type"] for e in events[entered:]].count("TaskScheduled") == 1
    task, _detail = assert_recorded_once(stack, alice_operator, task_id, arn, "FAILED")
    assert task["error"] == "States.Runtime"


@contextmanager
def lifecycle_timeout_seconds(stack: LocalStack, seconds: int) -> Iterator[None]:
    """While the block runs, the lifecycle's alias (what the pipe starts) routes to a version of the same
    definition with ``TimeoutSeconds`` = ``seconds``; the version it routed to before afterwards. An execution
    keeps the version it started with."""
    sfn = stack.clients("stepfunctions")
    (machine,) = [
        m["stateMachineArn"]
        for m in sfn.list_state_machines()["stateMachines"]
        if m["name"].endswith("TaskLifecycleStateMachine")
    ]
    (alias,) = sfn.list_state_machine_aliases(stateMachineArn=machine)["stateMachineAliases"]
    routing = sfn.describe_state_machine_alias(stateMachineAliasArn=alias["stateMachineAliasArn"])[
        "routingConfiguration"
    ]
    definition = sfn.describe_state_machine(stateMachineArn=machine)["definition"]
    short = json.dumps({**json.loads(definition), "TimeoutSeconds": seconds})
    version = sfn.update_state_machine(stateMachineArn=machine, definition=short, publish=True)
    sfn.update_state_machine_alias(
        stateMachineAliasArn=alias["stateMachineAliasArn"],
        routingConfiguration=[{"stateMachineVersionArn": version["stateMachineVersionArn"], "weight": 100}],
    )
    try:
        yield
    finally:
        sfn.update_state_machine_alias(stateMachineAliasArn=alias["stateMachineAliasArn"], routingConfiguration=routing)
        sfn.update_state_machine(stateMachineArn=machine, definition=definition)


def test_an_execution_timeout_fails_the_task_once(stack: LocalStack, alice: TaskrailClient, alice_operator: Operator):
    # Given the lifecycle with a one-second execution timeout (its ARN, so its rule applies) while a task that
    # sleeps far longer starts
    with lifecycle_timeout_seconds(stack, 1):
        task_id = alice.submit("diagnostic.sleep", {"seconds": 300, "steps": 3})["taskId"]
        arn = wait_for(lambda: stack_task(stack, task_id).get("executionArn"), what="the task's execution")

    # Then the execution TIMED_OUT, and the recorder's one run set the task FAILED with what its event carries:
    # one DLQ message, one outcome event
    sfn = stack.clients("stepfunctions")
    wait_for(lambda: sfn.describe_execution(executionArn=arn)["status"] != "RUNNING", timeout=60, what="the timeout")
    alice.wait([task_id], timeout=60)
    task, detail = assert_recorded_once(stack, alice_operator, task_id, arn, "TIMED_OUT")
    print("timeout event error/cause:", detail.get("error"), detail.get("cause"))
    assert (task["error"], task["cause"]) == ended_as_recorded(detail, "TIMED_OUT")
