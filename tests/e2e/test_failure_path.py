"""One failure path on the whole local stack (issue 19): a failed execution ends at the state that failed, its
status-change event on the default bus starts the failure recorder (an EventBridge rule, as the template declares
it), which sets the task FAILED; the outbox pipe sends one DLQ message and one outcome event. And Redrive, from the
AWS CLI, resumes the same execution to success."""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

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


def test_an_abort_not_caused_by_a_cancel_fails_the_task_once(
    stack: LocalStack, alice: TaskrailClient, alice_operator: Operator
):
    # Given a task inside ProcessTask
    task_id = alice.submit("diagnostic.sleep", {"seconds": 3, "steps": 3})["taskId"]
    wait_for(lambda: alice.get(task_id)["progress"] > 0, what="progress")
    arn = alice.get(task_id)["executionArn"]

    # When an operator stops its execution (no cancel: the task is RUNNING)
    stack.clients("stepfunctions").stop_execution(executionArn=arn, error="OperatorStopped", cause="from the console")

    # Then the recorder sets it FAILED, and the outbox sends one DLQ message and one outcome event
    task = alice.wait([task_id], timeout=60)[task_id]
    print("stopped:", task["status"], task.get("error"), task.get("cause"))
    assert task["status"] == "FAILED" and task["error"] in ("OperatorStopped", "ExecutionEnded")
    assert [r["status"] for r in wait_for(lambda: recorder_runs_for(stack, arn), what="the recorder's run")] == [
        "SUCCEEDED"
    ]
    messages = wait_for(lambda: dead_letters_of(alice_operator, task_id), timeout=30, what="the DLQ message")
    assert [m["executionArn"] for m in messages] == [arn]
    assert notifications_of(stack, task_id, Counter(FAILED=1)) == Counter(FAILED=1)
