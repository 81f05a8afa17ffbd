"""A function that exceeds its timeout, and a worker killed mid-invocation, on the whole local stack."""

from __future__ import annotations

from taskrail.client import TaskrailClient
from taskrail.local.stack import LocalStack
from taskrail.operator import Operator
from tests.e2e.polling import wait_for


def process_failures(stack: LocalStack, execution_arn: str) -> list[str]:
    events = stack.clients("stepfunctions").get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    return [e["taskFailedEventDetails"]["error"] for e in events if e["type"] == "TaskFailed"]


def test_a_function_past_its_timeout_is_retried_then_failed_to_the_dlq(
    stack: LocalStack, alice: TaskrailClient, alice_operator: Operator
):
    # Given ProcessTaskFunction's timeout cut to 1 s, and a task that needs 3 s
    stack.functions.set_timeout("ProcessTaskFunction", 1.0)
    try:
        task_id = alice.submit("diagnostic.sleep", {"seconds": 3, "steps": 1})["taskId"]
        task = alice.wait([task_id], timeout=90)[task_id]
    finally:
        stack.functions.set_timeout("ProcessTaskFunction", None)

    # Then every try timed out as on AWS (Sandbox.Timedout), was retried, and the task FAILED to the DLQ
    assert task["status"] == "FAILED"
    assert task["error"] == "Sandbox.Timedout"
    assert process_failures(stack, task["executionArn"]) == ["Sandbox.Timedout"] * 5
    # (the DLQ message leaves from the FAILED item through the outbox pipe, just after the status changed)
    dead_letters = wait_for(
        lambda: [m for m in alice_operator.dlq_messages(max_messages=100) if m["taskId"] == task_id],
        timeout=30,
        what="the task's DLQ message",
    )
    assert [m["error"] for m in dead_letters] == ["Sandbox.Timedout"]

    # And with the timeout back, a replay succeeds
    assert [o.started for o in alice_operator.replay_dlq({task_id})] == [True]
    assert alice.wait([task_id], timeout=60)[task_id]["status"] == "SUCCEEDED"


def test_a_worker_killed_mid_invocation_does_not_lose_the_task(stack: LocalStack, alice: TaskrailClient):
    # Given a task inside a 3-second ProcessTask invocation
    task_id = alice.submit("diagnostic.sleep", {"seconds": 3, "steps": 3})["taskId"]
    wait_for(lambda: alice.get(task_id)["progress"] > 0)

    # When its worker process is killed
    assert stack.functions.kill_worker("ProcessTaskFunction") is not None

    # Then the try fails as Runtime.ExitError, the workflow retries it on a fresh worker, and the task succeeds
    task = alice.wait([task_id], timeout=60)[task_id]
    assert task["status"] == "SUCCEEDED"
    assert process_failures(stack, task["executionArn"]) == ["Runtime.ExitError"]
