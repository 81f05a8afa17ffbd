"""The whole platform on 127.0.0.1, over HTTP and boto3: the local stack started by a fixture."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from taskrail.cli import app
from taskrail.client import ApiError, TaskrailClient
from taskrail.local.stack import LocalStack
from taskrail.local.users import ALICE
from taskrail.operator import Operator
from tests.e2e.polling import wait_for
from tests.listening import LOOPBACK_HEX, listening_sockets_of_this_process, non_loopback_listeners

pytestmark = pytest.mark.e2e

POISON_FIX_MARKER = "diagnostics/poison-fixed"
TERMINAL_EXECUTION = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


@pytest.fixture
def poison_fix(stack: LocalStack) -> Iterator[Any]:
    """The fix marker is global to the bucket: absent while this test's poison task fails, absent after it."""
    assert stack.info is not None
    s3, bucket = stack.clients("s3"), stack.info.results_bucket
    s3.delete_object(Bucket=bucket, Key=POISON_FIX_MARKER)
    yield lambda: s3.put_object(Bucket=bucket, Key=POISON_FIX_MARKER, Body=b"fixed")
    s3.delete_object(Bucket=bucket, Key=POISON_FIX_MARKER)


def executions_of(stack: LocalStack, task_id: str) -> list[dict[str, Any]]:
    assert stack.info is not None
    listed = stack.clients("stepfunctions").list_executions(stateMachineArn=stack.info.state_machine_arn)
    return [e for e in listed["executions"] if e["name"].startswith(task_id)]


def notifications_of(stack: LocalStack, task_id: str, expected: Counter[str], timeout: float = 30) -> Counter[str]:
    """The outcomes notified for ``task_id`` (the archive queue is shared by the package: other tasks' messages
    are hidden while reading and made visible again). Reads until ``expected`` arrived or the deadline passed."""
    assert stack.info is not None
    sqs, url = stack.clients("sqs"), stack.info.notifications_queue_url
    seen: Counter[str] = Counter()
    others: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=120)
            for message in batch.get("Messages", []):
                body = json.loads(message["Body"])
                if body["taskId"] == task_id:
                    seen[body["outcome"]] += 1
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                else:
                    others.append(message)
            if not batch.get("Messages"):
                if all(seen[o] >= n for o, n in expected.items()) or time.monotonic() > deadline:
                    return seen
                time.sleep(0.05)
    finally:
        for message in others:
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)


def test_submitted_task_runs_to_success_with_progress_and_a_result(alice: TaskrailClient, alice_operator: Operator):
    accepted = alice.submit("text.stats", {"text": "a b a"})
    assert accepted["status"] == "QUEUED"

    task = alice.wait([accepted["taskId"]], timeout=60)[accepted["taskId"]]

    assert task["status"] == "SUCCEEDED"
    assert task["progress"] == 100
    assert alice_operator.result(accepted["taskId"])["result"]["words"] == 3
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

    # Then the task-changes pipe → TaskChangesFunction → StopExecution aborts it, and the task stays CANCELLED
    sfn = stack.clients("stepfunctions")
    arn = running["executionArn"]
    assert wait_for(lambda: sfn.describe_execution(executionArn=arn)["status"] == "ABORTED", timeout=30)
    assert alice.get(task_id)["status"] == "CANCELLED"


def test_poison_fails_to_the_dlq_and_replay_succeeds_without_duplicates(
    stack: LocalStack, alice: TaskrailClient, alice_operator: Operator, poison_fix: Any
):
    assert stack.info is not None
    task_id = alice.submit("diagnostic.poison", {})["taskId"]
    assert alice.wait([task_id], timeout=60)[task_id]["status"] == "FAILED"
    # The DLQ message leaves from the FAILED item (the task-changes pipe's outbox), just after the status changed
    dead_letters = wait_for(
        lambda: [m for m in alice_operator.dlq_messages() if m["taskId"] == task_id], timeout=30, what="DLQ message"
    )
    assert [m["taskId"] for m in dead_letters] == [task_id]

    s3 = stack.clients("s3")
    poison_fix()
    outcomes = alice_operator.replay_dlq({task_id})
    assert [o.execution_name for o in outcomes] == [f"{task_id}-r1"]

    assert alice.wait([task_id], timeout=60)[task_id]["status"] == "SUCCEEDED"
    assert alice_operator.replay_dlq({task_id}) == [], "running replay twice never starts twice"
    versions = s3.list_object_versions(Bucket=stack.info.results_bucket, Prefix=f"tasks/{task_id}/result.json")
    assert len(versions.get("Versions", [])) == 1
    # Both executions of the task (the pipe's, the replay's) have ended, so every notification they send is out.
    sfn = stack.clients("stepfunctions")
    arns = [dead_letters[0]["executionArn"], *(e["executionArn"] for e in executions_of(stack, f"{task_id}-r"))]
    assert len(set(arns)) == 2, arns
    assert wait_for(lambda: all(sfn.describe_execution(executionArn=a)["status"] in TERMINAL_EXECUTION for a in arns))
    expected = Counter({"FAILED": 1, "SUCCEEDED": 1})
    assert notifications_of(stack, task_id, expected) == expected


def test_invalid_input_gets_a_4xx_with_the_reason(alice: TaskrailClient):
    status, body = alice.request("POST", "/tasks", {"params": {}})
    assert status == 400
    assert "type" in body["message"]


def test_nothing_listens_on_a_non_loopback_address(stack: LocalStack):
    assert stack.info is not None
    urls = (stack.info.api_url, stack.info.aws_endpoint_url, stack.info.console_url)
    ports = {int(url.split(":")[2].split("/")[0]) for url in urls}
    assert all(url.startswith("http://127.0.0.1:") for url in urls), urls

    # The API serves from a process of its own (taskrail/local/apigw_process.py): its sockets count too.
    api_process = [pid] if (pid := getattr(stack.api, "pid", None)) is not None else []
    listening = listening_sockets_of_this_process(*api_process)

    # The stack's servers are among these processes' listening sockets (with the functions' Runtime APIs), and
    # every one of them is loopback only (0.0.0.0 or :: would accept connections from other machines).
    assert non_loopback_listeners(ports, *api_process) == []
    assert [(a, p) for a, p in listening if a not in LOOPBACK_HEX] == []


def test_users_source_files_are_read_through_their_own_prefix(stack: LocalStack, alice: TaskrailClient):
    assert stack.info is not None
    stack.clients("s3").put_object(
        Bucket=stack.info.results_bucket, Key=f"users/{ALICE.principal_id}/t.csv", Body=b"a,b\n1,2\n3,4\n"
    )
    task_id = alice.submit("csv.summary", {"source": f"users/{ALICE.principal_id}/t.csv"})["taskId"]
    assert alice.wait([task_id], timeout=60)[task_id]["status"] == "SUCCEEDED"


def test_a_result_over_the_claim_check_threshold_is_read_back_whole_through_s3(
    stack: LocalStack, alice: TaskrailClient, alice_operator: Operator, template: dict[str, Any], tmp_path: Path
):
    # Given a result larger than the process function's claim-check threshold (read from the template)
    environments = [
        f["Properties"].get("Environment", {}).get("Variables", {})
        for f in template["Resources"].values()
        if f["Type"] == "AWS::Lambda::Function"
    ]
    threshold = int(next(e["CLAIM_CHECK_THRESHOLD_BYTES"] for e in environments if "CLAIM_CHECK_THRESHOLD_BYTES" in e))
    payload = {"rows": [f"row {i:06d} " + "x" * 40 for i in range(threshold // 48 + 100)]}
    assert len(json.dumps({"echo": payload})) > threshold

    task_id = alice.submit("diagnostic.echo", {"payload": payload})["taskId"]
    assert alice.wait([task_id], timeout=60)[task_id]["status"] == "SUCCEEDED"

    # Then result.json holds a reference, not the result
    stored = alice_operator.result(task_id)
    assert "result" not in stored and (stored.get("resultRef") or stored.get("result_ref")), list(stored)
    # And `taskrail result` follows it and prints the whole result
    state_file = tmp_path / "local.json"
    stack.write_state(state_file)
    printed = CliRunner(env={"COLUMNS": "250"}).invoke(
        app, ["result", task_id, "--json", "--local-state", str(state_file)]
    )
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.stdout)["result"] == {"echo": payload}
