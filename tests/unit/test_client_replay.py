"""The operator's replay (taskrail/operator) against moto: the DLQ message goes only once the new execution started."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from reconcile_tasks.logic import start_execution_name
from task_common.contract import MAX_EXECUTION_NAME, replay_execution_name
from taskrail.client import Endpoints, TaskrailClient
from taskrail.operator import Operator as StackOperator

REGION = "us-east-1"
LONG_ID = "k-" + "A" * 100  # idempotency-key ids are this long
START_EXECUTION = "before-parameter-build.sfn.StartExecution"
FAULT_ID = "injected-start-execution-fault"


@dataclass
class Operator:
    client: StackOperator
    clients: dict[str, Any]
    endpoints: Endpoints

    def put_failed_task(self, task_id: str, attempt: int) -> None:
        self.clients["dynamodb"].put_item(
            TableName=self.endpoints.tasks_table,
            Item={"taskId": {"S": task_id}, "status": {"S": "FAILED"}, "attempt": {"N": str(attempt)}},
        )
        body = {
            "taskId": task_id,
            "executionArn": f"arn:aws:states:{REGION}:123456789012:execution:task-lifecycle:{task_id[:60]}",
            "input": [task_id],
            "error": "PermanentTaskError",
            "cause": "boom",
            "attempt": attempt,
        }
        self.clients["sqs"].send_message(QueueUrl=self.endpoints.dead_letter_queue_url, MessageBody=json.dumps(body))

    def dlq_task_ids(self) -> list[str]:
        """Every message in the DLQ (received, then made visible again)."""
        sqs, url = self.clients["sqs"], self.endpoints.dead_letter_queue_url
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
        return [json.loads(m["Body"])["taskId"] for m in messages]

    def execution_names(self) -> list[str]:
        listed = self.clients["stepfunctions"].list_executions(stateMachineArn=self.endpoints.state_machine_arn)
        return [e["name"] for e in listed["executions"]]

    def status(self, task_id: str) -> str:
        key = {"taskId": {"S": task_id}}
        return self.clients["dynamodb"].get_item(TableName=self.endpoints.tasks_table, Key=key)["Item"]["status"]["S"]


@pytest.fixture
def operator(monkeypatch: pytest.MonkeyPatch) -> Iterator[Operator]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        clients = {s: boto3.client(s, region_name=REGION) for s in ("dynamodb", "sqs", "stepfunctions", "s3")}
        clients["dynamodb"].create_table(
            TableName="Tasks",
            KeySchema=[{"AttributeName": "taskId", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "taskId", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        queue_url = clients["sqs"].create_queue(QueueName="TaskDeadLetterQueue")["QueueUrl"]
        state_machine_arn = clients["stepfunctions"].create_state_machine(
            name="task-lifecycle",
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}),
            roleArn="arn:aws:iam::123456789012:role/task-lifecycle",
        )["stateMachineArn"]
        endpoints = Endpoints("http://api.invalid", REGION, "Tasks", "results", state_machine_arn, queue_url)
        api = TaskrailClient(endpoints, None, is_local=True)  # type: ignore[arg-type]
        client = StackOperator.over_aws(api, clients.__getitem__)
        yield Operator(client, clients, endpoints)


def fail_start_execution(clients: dict[str, Any], code: str = "ServiceUnavailable") -> list[str]:
    """StartExecution answers ``code`` (as AWS does under an outage); returns the names it refused."""
    refused: list[str] = []

    def refuse(params: dict[str, Any], **_: Any) -> None:
        refused.append(params["name"])
        raise ClientError({"Error": {"Code": code, "Message": "injected"}}, "StartExecution")

    clients["stepfunctions"].meta.events.register(START_EXECUTION, refuse, unique_id=FAULT_ID)
    return refused


def test_a_replay_whose_start_fails_keeps_the_dlq_message(operator):
    # Given a failed task in the DLQ, and Step Functions refusing StartExecution
    operator.put_failed_task("task-1", attempt=1)
    refused = fail_start_execution(operator.clients)

    # When the operator replays it
    with pytest.raises(ClientError, match="ServiceUnavailable"):
        operator.client.replay_dlq()

    # Then the start was tried, no execution exists, and the message is still there to replay later
    assert refused == ["task-1-r1"]
    assert operator.execution_names() == []
    assert operator.dlq_task_ids() == ["task-1"]


def test_a_replay_after_a_failed_start_starts_once_and_then_deletes_the_message(operator):
    # Given a replay that failed at StartExecution (the task is QUEUED again, the message kept)
    operator.put_failed_task("task-1", attempt=1)
    refuse = fail_start_execution(operator.clients)
    with pytest.raises(ClientError):
        operator.client.replay_dlq()
    assert refuse and operator.status("task-1") == "QUEUED"
    operator.clients["stepfunctions"].meta.events.unregister(START_EXECUTION, unique_id=FAULT_ID)

    # When it is replayed again
    outcomes = operator.client.replay_dlq()

    # Then one execution started and the message is gone
    assert [(o.task_id, o.action, o.execution_name) for o in outcomes] == [("task-1", "started", "task-1-r1")]
    assert operator.execution_names() == ["task-1-r1"]
    assert operator.dlq_task_ids() == []


def test_replay_names_are_deterministic_and_fit_the_80_character_limit():
    assert replay_execution_name("t-1", 3) == "t-1-r3"
    assert replay_execution_name(LONG_ID, 1) == replay_execution_name(LONG_ID, 1)
    assert replay_execution_name(LONG_ID, 1) != replay_execution_name(LONG_ID + "B", 1)
    assert len(replay_execution_name(LONG_ID, 12)) <= MAX_EXECUTION_NAME == 80
    assert replay_execution_name(LONG_ID, 1).endswith("-r1")
    # The longest id that still fits keeps its name; one character more is hashed.
    fits = "x" * (MAX_EXECUTION_NAME - len("-r9"))
    assert replay_execution_name(fits, 9) == f"{fits}-r9"
    assert replay_execution_name(fits + "x", 9) != f"{fits}x-r9"


def test_replay_and_reconciler_hash_long_ids_alike():
    # DECISIONS: the reconciler's -q names are hashed "like replay's -r names".
    assert replay_execution_name(LONG_ID, 4).removesuffix("-r4") == start_execution_name(LONG_ID, 4).removesuffix("-q4")


def test_replaying_a_long_task_id_starts_the_hashed_name(operator):
    operator.put_failed_task(LONG_ID, attempt=2)

    outcomes = operator.client.replay_dlq()

    assert [o.action for o in outcomes] == ["started"]
    assert operator.execution_names() == [replay_execution_name(LONG_ID, 2)]
    assert len(operator.execution_names()[0]) <= 80
    assert operator.dlq_task_ids() == []
