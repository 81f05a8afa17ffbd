"""The Pipes parity suite: moto in server mode behind the local guard (what `taskrail local up` serves), a table
with a stream, and the local PipeRunner reading that stream over HTTP and starting a state machine."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from taskrail.local.pipes import PipeRunner, PipeSpec
from taskrail.local.services import registry, server
from taskrail.local.stack import LOCAL_CREDENTIALS

REGION = "us-east-1"
DEADLINE_SECONDS = 15.0
PASS_MACHINE = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})


@pytest.fixture(scope="package")
def endpoint() -> Iterator[str]:
    with registry.aws_semantics(), server.threaded_server("127.0.0.1", 0) as url:
        yield url


@pytest.fixture
def clients(endpoint: str) -> Callable[[str], Any]:
    session = boto3.Session(region_name=REGION, **LOCAL_CREDENTIALS)
    cache: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in cache:
            cache[service] = session.client(service, endpoint_url=endpoint)  # type: ignore[call-overload]
        return cache[service]

    return client


class PipeUnderTest:
    """A table (NEW_AND_OLD_IMAGES stream) piped into a Pass state machine; ``deliveries()`` = the targets' inputs."""

    def __init__(
        self, clients: Callable[[str], Any], filters: list[dict[str, Any]], input_template: str | None
    ) -> None:
        self.clients = clients
        self.table = f"parity-{uuid.uuid4().hex[:10]}"
        created = clients("dynamodb").create_table(
            TableName=self.table,
            KeySchema=[{"AttributeName": "Id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "Id", "AttributeType": "N"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        self.stream_arn = created["TableDescription"]["LatestStreamArn"]
        self.machine_arn = clients("stepfunctions").create_state_machine(
            name=self.table, definition=PASS_MACHINE, roleArn="arn:aws:iam::123456789012:role/parity-pipe"
        )["stateMachineArn"]
        self.spec = PipeSpec(
            logical_id="ParityPipe",
            name=self.table,
            source_stream_arn=self.stream_arn,
            filters=filters,
            target_arn=self.machine_arn,
            target_kind="stepfunctions",
            input_template=input_template,
            batch_size=1,
            dead_letter_queue_arn=None,
            maximum_retry_attempts=0,
        )
        self.runner = PipeRunner({self.spec.name: self.spec}, clients)

    def deliveries(self, count: int) -> list[Any]:
        """The inputs of the first ``count`` executions the pipe started, oldest first (polled with a deadline)."""
        sfn = self.clients("stepfunctions")
        deadline = time.monotonic() + DEADLINE_SECONDS
        while time.monotonic() < deadline:
            executions = sfn.list_executions(stateMachineArn=self.machine_arn)["executions"]
            if len(executions) >= count:
                ordered = sorted(executions, key=lambda e: e["startDate"])
                return [json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"]) for e in ordered]
            time.sleep(0.02)
        raise AssertionError(f"pipe {self.spec.name}: fewer than {count} deliveries after {DEADLINE_SECONDS}s")

    def delivered(self) -> int:
        return self.runner.delivered[self.spec.name]


@pytest.fixture
def make_pipe(clients: Callable[[str], Any]) -> Iterator[Callable[..., PipeUnderTest]]:
    pipes: list[PipeUnderTest] = []

    def make(filters: list[dict[str, Any]] | None = None, input_template: str | None = None) -> PipeUnderTest:
        pipe = PipeUnderTest(clients, filters or [], input_template)
        pipe.runner.start()
        pipes.append(pipe)
        return pipe

    yield make
    for pipe in pipes:
        pipe.runner.stop()
