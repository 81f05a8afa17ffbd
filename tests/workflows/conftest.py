"""Runs asl/task_lifecycle.asl.json in moto's interpreter with the template's resources provisioned locally."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from taskrail.local.inprocess import InProcessFunctions, api_task_item
from taskrail.local.moto_hooks import (
    LOCAL_MOTO_CONFIG,
    SleepLog,
    install_aws_semantics,
    lambda_invoker,
    record_sleeps,
    time_scale,
)
from taskrail.local.provision import REGION, LocalResources, provision

TERMINAL = {"SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT"}


@dataclass
class Lifecycle:
    """Given/When/Then helpers over one provisioned, in-process platform (no HTTP, no subprocesses)."""

    resources: LocalResources
    functions: InProcessFunctions
    sleeps: SleepLog

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)

    @property
    def state_machine_arn(self) -> str:
        return self.resources.state_machines["TaskLifecycleStateMachine"]

    def store_task(self, task_id: str, task_type: str, params: dict[str, Any], user: str = "alice") -> None:
        """The item exactly as the POST /tasks mapping template writes it."""
        self.client("dynamodb").put_item(
            TableName=self.resources.ref("TasksTable"), Item=api_task_item(task_id, task_type, params, user)
        )

    def start(self, task_id: str, name: str | None = None, state_machine_arn: str | None = None) -> str:
        return self.client("stepfunctions").start_execution(
            stateMachineArn=state_machine_arn or self.state_machine_arn,
            name=name or f"{task_id}-{time.monotonic_ns()}",
            input=json.dumps([task_id]),
        )["executionArn"]

    def run(self, task_id: str, task_type: str, params: dict[str, Any]) -> dict[str, Any]:
        self.store_task(task_id, task_type, params)
        return self.wait(self.start(task_id))

    def wait(self, execution_arn: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        sfn = self.client("stepfunctions")
        while time.monotonic() < deadline:
            execution = sfn.describe_execution(executionArn=execution_arn)
            if execution["status"] in TERMINAL:
                return execution
            time.sleep(0.02)
        raise AssertionError(f"execution did not finish within {timeout} s: {execution_arn}")

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        return self.client("stepfunctions").get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]

    def states_entered(self, execution_arn: str) -> list[str]:
        return [
            e["stateEnteredEventDetails"]["name"]
            for e in self.history(execution_arn)
            if "stateEnteredEventDetails" in e
        ]

    def task(self, task_id: str) -> dict[str, Any]:
        item = self.client("dynamodb").get_item(
            TableName=self.resources.ref("TasksTable"), Key={"taskId": {"S": task_id}}
        )
        return {k: next(iter(v.values())) for k, v in item["Item"].items()}

    def drain(self, queue_construct: str) -> list[dict[str, Any]]:
        sqs, url = self.client("sqs"), self.resources.ref(queue_construct)
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]

    def result_versions(self, task_id: str) -> list[dict[str, Any]]:
        s3 = self.client("s3")
        listing = s3.list_object_versions(
            Bucket=self.resources.ref("ResultsBucket"), Prefix=f"tasks/{task_id}/result.json"
        )
        return listing.get("Versions", [])

    def result(self, task_id: str) -> dict[str, Any]:
        body = self.client("s3").get_object(
            Bucket=self.resources.ref("ResultsBucket"), Key=f"tasks/{task_id}/result.json"
        )
        return json.loads(body["Body"].read())


@pytest.fixture
def lifecycle(template: dict[str, Any], template_path: Path) -> Iterator[Lifecycle]:
    with mock_aws(config=LOCAL_MOTO_CONFIG), time_scale(0), record_sleeps() as sleeps:
        resources, _ = provision(
            template,
            lambda s: boto3.client(s, region_name=REGION),
            stack_name="taskrail",
            cdk_out=str(template_path.parent),
        )
        functions = InProcessFunctions(resources.functions)
        install_aws_semantics()
        with lambda_invoker(functions):
            yield Lifecycle(resources=resources, functions=functions, sleeps=sleeps)


def describe_failure(lifecycle: Lifecycle, execution_arn: str) -> str:
    """The first failure in an execution's history, for assertion messages."""
    for event in lifecycle.history(execution_arn):
        for key, details in event.items():
            if key.endswith("FailedEventDetails"):
                return f"{event['type']}: {details}"
    return "no failure"
