"""Isolation on the local stack: bob can neither read, list, cancel nor replay alice's tasks.

Over HTTP (the API derives the owner from the SigV4 signature) and through ``taskrail.client``, the functions the
CLI's per-user commands call (``status``/``watch``/``list``/``cancel``/``replay ID``).
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.credentials import Credentials

from task_common.contract import replay_execution_name
from taskrail.client import ApiError, TaskrailClient
from taskrail.local.inprocess import api_task_item
from taskrail.local.stack import LocalStack
from taskrail.local.users import ALICE, BOB
from taskrail.operator import Operator
from tests.e2e.polling import wait_for

pytestmark = pytest.mark.e2e

STATUSES = [None, "QUEUED", "RUNNING", "SUCCEEDED", "REJECTED", "FAILED", "CANCELLED"]
NOT_FOUND = (404, {"message": "task not found"})


# Runs until cancelled (840 s is the longest sleep; the module takes far less) and notices a cancel at its next
# progress report, 8.4 s apart, so its worker is free soon after the module ends.
UNTIL_CANCELLED = {"seconds": 840, "steps": 100}
TERMINAL_EXECUTION = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
SITUATION_STATUS = {
    "queued": "QUEUED",
    "in-progress": "RUNNING",
    "succeeded": "SUCCEEDED",
    "rejected": "REJECTED",
    "failed": "FAILED",
    "cancelled": "CANCELLED",
}


def queued_task(stack: LocalStack, owner: str) -> str:
    """A task that stays QUEUED: stored as the API stores it, but never claimed.

    Written first as CANCELLED (the start pipe's execution then ends at TaskAlreadyClaimed), then set to QUEUED
    (a MODIFY, which no pipe starts), with a createdAt in the future so the reconciler never finds it stuck."""
    assert stack.info is not None
    dynamodb, sfn, table = stack.clients("dynamodb"), stack.clients("stepfunctions"), stack.info.tasks_table
    task_id = f"isolation-queued-{uuid.uuid4()}"
    tomorrow_ms = int((time.time() + 86_400) * 1000)
    item = {**api_task_item(task_id, "text.stats", {"text": "q"}, user=owner, created_at_ms=tomorrow_ms)}
    dynamodb.put_item(TableName=table, Item={**item, "status": {"S": "CANCELLED"}})

    def quiet_execution_ended() -> bool:
        listed = sfn.list_executions(stateMachineArn=stack.info.state_machine_arn, maxResults=50)["executions"]
        for execution in listed:
            described = sfn.describe_execution(executionArn=execution["executionArn"])
            if json.loads(described.get("input") or "null") == [task_id]:
                return described["status"] in TERMINAL_EXECUTION
        return False

    wait_for(quiet_execution_ended, timeout=60, what=f"the start pipe's execution for {task_id} to end")
    dynamodb.update_item(
        TableName=table,
        Key={"taskId": {"S": task_id}},
        UpdateExpression="SET #s = :queued",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":queued": {"S": "QUEUED"}},
    )
    return task_id


@pytest.fixture(scope="module")
def alice_tasks(stack: LocalStack, alice: TaskrailClient) -> Iterator[dict[str, str]]:
    """One of alice's tasks in every status (so that a leak of any of them would show)."""
    tasks = {
        "queued": queued_task(stack, ALICE.principal_id),
        "in-progress": alice.submit("diagnostic.sleep", UNTIL_CANCELLED)["taskId"],
        "succeeded": alice.submit("text.stats", {"text": "a b a"})["taskId"],
        "rejected": alice.submit("text.stats", {"text": "x", "top": 1000})["taskId"],
        "failed": alice.submit("diagnostic.flaky", {"failures": 10})["taskId"],
        "cancelled": alice.submit("diagnostic.sleep", UNTIL_CANCELLED)["taskId"],
    }
    wait_for(lambda: alice.get(tasks["cancelled"])["status"] == "RUNNING", what="the task to cancel to run")
    assert alice.cancel(tasks["cancelled"])["status"] == "CANCELLED"
    alice.wait([tasks[s] for s in ("succeeded", "rejected", "failed", "cancelled")], timeout=120)
    wait_for(lambda: alice.get(tasks["in-progress"])["status"] == "RUNNING", what="the long task to run")
    assert {situation: alice.get(task_id)["status"] for situation, task_id in tasks.items()} == SITUATION_STATUS
    # the failed task's DLQ message leaves through the outbox pipe just after it is FAILED: have it before the tests
    wait_for(lambda: any(tasks["failed"] in body for body in dlq_task_ids(stack)), timeout=30, what="the DLQ message")
    yield tasks
    with contextlib.suppress(ApiError):  # already over
        alice.cancel(tasks["in-progress"])
    drop_dlq_messages(stack, tasks["failed"])
    stack.clients("dynamodb").delete_item(TableName=stack.info.tasks_table, Key={"taskId": {"S": tasks["queued"]}})


def drop_dlq_messages(stack: LocalStack, task_id: str) -> None:
    """This module's failure must not stay in the DLQ that other tests peek at."""
    assert stack.info is not None
    sqs, url = stack.clients("sqs"), stack.info.dead_letter_queue_url
    for _ in range(5):
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get(
            "Messages", []
        ):
            if task_id in message["Body"]:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def dlq_task_ids(stack: LocalStack) -> list[str]:
    """The bodies of up to 50 DLQ messages (a receive returns at most 10, and the DLQ is shared by the module)."""
    assert stack.info is not None
    sqs, bodies = stack.clients("sqs"), []
    for _ in range(5):
        messages = sqs.receive_message(
            QueueUrl=stack.info.dead_letter_queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0
        ).get("Messages", [])
        bodies.extend(message["Body"] for message in messages)
    return bodies


def ids(tasks: list[dict[str, Any]]) -> set[str]:
    return {task["taskId"] for task in tasks}


# --------------------------------------------------------------------------------------------------
# Read
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("situation", list(SITUATION_STATUS))
def test_another_users_task_reads_exactly_like_a_missing_one(bob: TaskrailClient, alice_tasks, situation):
    missing = bob.request("GET", f"/tasks/{uuid.uuid4()}")

    answer = bob.request("GET", f"/tasks/{alice_tasks[situation]}")

    assert answer == missing == NOT_FOUND


def test_the_owner_reads_the_same_tasks(alice: TaskrailClient, alice_tasks):
    for task_id in alice_tasks.values():
        assert alice.get(task_id)["taskId"] == task_id


def test_another_user_cannot_follow_a_task_through_the_client(bob: TaskrailClient, bob_operator: Operator, alice_tasks):
    task_id = alice_tasks["in-progress"]
    for follow in (
        bob.get,
        bob_operator.progress,
        lambda i: bob.wait([i], timeout=5),
        lambda i: bob_operator.watch([i], timeout=5),
    ):
        with pytest.raises(ApiError) as refused:
            follow(task_id)
        assert (refused.value.status, refused.value.message) == (404, "task not found")


# --------------------------------------------------------------------------------------------------
# List
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", STATUSES, ids=[s or "any" for s in STATUSES])
def test_another_users_tasks_never_appear_in_a_listing(alice: TaskrailClient, bob: TaskrailClient, alice_tasks, status):
    mine = set(alice_tasks.values())

    listed = bob.list_tasks(status, limit=100)

    assert not ids(listed) & mine
    assert all(task["taskId"] not in mine for task in bob.find_tasks(status, limit=100))
    # Not vacuous: alice has a task in this status, and she lists it.
    expected = {alice_tasks[s] for s, st in SITUATION_STATUS.items() if status in (None, st)}
    assert expected and expected <= ids(alice.find_tasks(status, limit=100)), "the owner lists them"


@pytest.mark.parametrize(
    "query",
    [
        f"userId={ALICE.principal_id}",
        f"user={ALICE.principal_id}",
        "IndexName=pendingShard-createdAt",
        f"status=SUCCEEDED&userId={ALICE.principal_id}",
        "limit=100&ExclusiveStartKey=x",
    ],
)
def test_listing_query_cannot_name_another_user(bob: TaskrailClient, alice_tasks, query):
    status, body = bob.request("GET", f"/tasks?{query}")

    assert status == 200, body
    assert not ids(body["tasks"]) & set(alice_tasks.values())


# --------------------------------------------------------------------------------------------------
# Cancel
# --------------------------------------------------------------------------------------------------


def test_another_user_cannot_cancel_a_task_in_progress(alice: TaskrailClient, bob: TaskrailClient, alice_tasks):
    task_id = alice_tasks["in-progress"]

    assert bob.request("DELETE", f"/tasks/{task_id}") == NOT_FOUND
    with pytest.raises(ApiError) as refused:
        bob.cancel(task_id)

    assert refused.value.status == 404
    assert alice.get(task_id)["status"] == "RUNNING"


@pytest.mark.parametrize("situation", ["succeeded", "rejected", "failed", "cancelled"])
def test_cancelling_another_users_finished_task_does_not_reveal_its_status(bob: TaskrailClient, alice_tasks, situation):
    missing = bob.request("DELETE", f"/tasks/{uuid.uuid4()}")

    answer = bob.request("DELETE", f"/tasks/{alice_tasks[situation]}")

    assert answer == missing == NOT_FOUND  # never 409 "task is already SUCCEEDED"


# --------------------------------------------------------------------------------------------------
# Replay
# --------------------------------------------------------------------------------------------------


def test_another_user_cannot_replay_a_failed_task(stack, alice: TaskrailClient, bob_operator: Operator, alice_tasks):
    task_id = alice_tasks["failed"]
    before = alice.get(task_id)

    outcomes = bob_operator.replay_tasks([task_id])

    assert [(o.task_id, o.action, o.started) for o in outcomes] == [(task_id, "refused", False)]
    after = alice.get(task_id)
    assert (after["status"], after["attempt"]) == ("FAILED", before["attempt"])
    assert any(task_id in body for body in dlq_task_ids(stack)), "the DLQ message is still there"
    executions = stack.clients("stepfunctions").list_executions(stateMachineArn=stack.info.state_machine_arn)
    replayed = replay_execution_name(task_id, int(before["attempt"]))
    assert replayed not in {e["name"] for e in executions["executions"]}


def test_the_owner_may_replay_the_same_task(alice_operator: Operator, alice_tasks):
    task_id = alice_tasks["failed"]

    outcomes = alice_operator.replay_tasks([task_id], dry_run=True)

    # the task failed at ProcessTask (issue 19), so its own execution is redriven rather than a new one started
    assert [(o.task_id, o.action) for o in outcomes] == [(task_id, "would-redrive")]


def test_another_users_idempotency_key_gives_a_separate_task(alice: TaskrailClient, bob: TaskrailClient):
    key = f"shared-key-{uuid.uuid4()}"
    alices = alice.submit("text.stats", {"text": "alice's"}, idempotency_key=key)

    bobs = bob.submit("text.stats", {"text": "bob's"}, idempotency_key=key)

    assert bobs["taskId"] != alices["taskId"]
    assert "duplicate" not in bobs
    assert bob.get(bobs["taskId"])["params"] == {"text": "bob's"}
    assert alice.get(alices["taskId"])["params"] == {"text": "alice's"}
    alice.wait([alices["taskId"]], timeout=60)
    bob.wait([bobs["taskId"]], timeout=60)


# --------------------------------------------------------------------------------------------------
# Identity
# --------------------------------------------------------------------------------------------------


def test_claiming_another_users_access_key_without_their_secret_is_refused(bob: TaskrailClient, alice_tasks):
    impostor = TaskrailClient(bob.endpoints, Credentials(ALICE.access_key_id, BOB.secret_access_key))

    status, body = impostor.request("GET", f"/tasks/{alice_tasks['succeeded']}")

    assert status == 403
    assert body["message"].startswith("The request signature we calculated does not match")


def test_every_task_a_user_lists_is_stored_as_theirs(alice: TaskrailClient, stack: LocalStack, alice_tasks):
    assert stack.info is not None
    dynamodb = stack.clients("dynamodb")
    for task in alice.list_tasks(limit=100):
        item = dynamodb.get_item(TableName=stack.info.tasks_table, Key={"taskId": {"S": task["taskId"]}})["Item"]
        assert item["userId"] == {"S": ALICE.principal_id}
