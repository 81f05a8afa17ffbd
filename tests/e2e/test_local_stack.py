"""The whole platform on 127.0.0.1, over HTTP and boto3: the local stack started by a fixture."""

from __future__ import annotations

import json
import socket

import pytest

from taskrail.client import ApiError, TaskrailClient
from taskrail.local.stack import LocalStack
from taskrail.local.users import ALICE
from tests.e2e.polling import wait_for

pytestmark = pytest.mark.e2e


def test_submitted_task_runs_to_success_with_progress_and_a_result(alice: TaskrailClient):
    accepted = alice.submit("text.stats", {"text": "a b a"})
    assert accepted["status"] == "QUEUED"

    task = alice.wait([accepted["taskId"]], timeout=60)[accepted["taskId"]]

    assert task["status"] == "SUCCEEDED"
    assert task["progress"] == 100
    assert alice.result(accepted["taskId"])["result"]["words"] == 3
    assert any(t["taskId"] == accepted["taskId"] for t in alice.list_tasks(status="SUCCEEDED"))


def test_resubmission_with_the_same_idempotency_key_returns_the_same_task(alice: TaskrailClient):
    first = alice.submit("text.stats", {"text": "once"}, idempotency_key="e2e-key-1")
    second = alice.submit("text.stats", {"text": "once"}, idempotency_key="e2e-key-1")

    assert first["taskId"] == second["taskId"]


def test_another_user_cannot_read_or_cancel_a_task(alice: TaskrailClient, bob: TaskrailClient):
    task_id = alice.submit("diagnostic.sleep", {"seconds": 0.1, "steps": 1})["taskId"]

    for action in (bob.get, bob.cancel):
        with pytest.raises(ApiError) as refused:
            action(task_id)
        assert refused.value.status == 404
    assert all(t["taskId"] != task_id for t in bob.list_tasks())


def test_cancelling_a_long_task_stops_its_execution(stack: LocalStack, alice: TaskrailClient):
    # Given a task inside a long ProcessTask invocation that reports progress only at its end
    # (so the workflow cannot notice the cancel by itself: the cancel pipe must stop the execution)
    task_id = alice.submit("diagnostic.sleep", {"seconds": 20, "steps": 1})["taskId"]
    running = wait_for(
        lambda: (t := alice.get(task_id))["status"] == "RUNNING" and t.get("updatedAt") != t.get("startedAt") and t
    )
    assert running["progress"] == 0

    # When its owner cancels it
    assert alice.cancel(task_id)["status"] == "CANCELLED"

    # Then the cancel pipe → CancelTaskFunction → StopExecution aborts it, and the task stays CANCELLED
    sfn = stack.clients("stepfunctions")
    arn = running["executionArn"]
    assert wait_for(lambda: sfn.describe_execution(executionArn=arn)["status"] == "ABORTED", timeout=30)
    assert alice.get(task_id)["status"] == "CANCELLED"


def test_poison_fails_to_the_dlq_and_replay_succeeds_without_duplicates(stack: LocalStack, alice: TaskrailClient):
    assert stack.info is not None
    task_id = alice.submit("diagnostic.poison", {})["taskId"]
    assert alice.wait([task_id], timeout=60)[task_id]["status"] == "FAILED"
    assert [m["taskId"] for m in alice.dlq_messages() if m["taskId"] == task_id] == [task_id]

    s3 = stack.clients("s3")
    s3.put_object(Bucket=stack.info.results_bucket, Key="diagnostics/poison-fixed", Body=b"fixed")
    outcomes = alice.replay_dlq({task_id})
    assert [o.execution_name for o in outcomes] == [f"{task_id}-r1"]

    assert alice.wait([task_id], timeout=60)[task_id]["status"] == "SUCCEEDED"
    assert alice.replay_dlq({task_id}) == [], "running replay twice never starts twice"
    versions = s3.list_object_versions(Bucket=stack.info.results_bucket, Prefix=f"tasks/{task_id}/result.json")
    assert len(versions.get("Versions", [])) == 1
    archive = stack.clients("sqs")
    notes = archive.receive_message(QueueUrl=stack.info.notifications_queue_url, MaxNumberOfMessages=10)
    outcomes_for_task = [json.loads(m["Body"])["outcome"] for m in notes.get("Messages", []) if task_id in m["Body"]]
    assert outcomes_for_task.count("SUCCEEDED") <= 1


def test_invalid_input_gets_a_4xx_with_the_reason(alice: TaskrailClient):
    status, body = alice.request("POST", "/tasks", {"params": {}})
    assert status == 400
    assert "type" in body["message"]


def test_nothing_listens_on_a_non_loopback_address(stack: LocalStack):
    assert stack.info is not None
    for url in (stack.info.api_url, stack.info.aws_endpoint_url):
        assert url.startswith("http://127.0.0.1:")
    port = int(stack.info.api_url.split(":")[2].split("/")[0])
    outward = socket.gethostbyname(socket.gethostname())
    if not outward.startswith("127."):
        with pytest.raises(OSError):
            socket.create_connection((outward, port), timeout=1).close()


def test_users_source_files_are_read_through_their_own_prefix(stack: LocalStack, alice: TaskrailClient):
    assert stack.info is not None
    stack.clients("s3").put_object(
        Bucket=stack.info.results_bucket, Key=f"users/{ALICE.principal_id}/t.csv", Body=b"a,b\n1,2\n3,4\n"
    )
    task_id = alice.submit("csv.summary", {"source": f"users/{ALICE.principal_id}/t.csv"})["taskId"]
    assert alice.wait([task_id], timeout=60)[task_id]["status"] == "SUCCEEDED"
