from __future__ import annotations

import importlib
import socket
import sys
from collections.abc import Callable, Iterator
from types import ModuleType

import boto3
import pytest
from moto import mock_aws
from moto_aws import IDEMPOTENCY_TABLE, REGION, RESULTS_BUCKET, TASKS_TABLE, Aws

from task_common import aws


def pytest_configure(config: pytest.Config) -> None:
    # A function that raised, or an idempotent replay, flushes no metrics; Powertools warns, as intended.
    config.addinivalue_line("filterwarnings", "ignore:No application metrics to publish:UserWarning")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("unit tests must not use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


@pytest.fixture
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    """Moto-backed Tasks table, idempotency table and results bucket, and the functions' environment."""
    for name, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "POWERTOOLS_SERVICE_NAME": "taskrail",
        "POWERTOOLS_METRICS_NAMESPACE": "taskrail",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "TASKS_TABLE_NAME": TASKS_TABLE,
        "RESULTS_BUCKET_NAME": RESULTS_BUCKET,
        "IDEMPOTENCY_TABLE_NAME": IDEMPOTENCY_TABLE,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "CLAIM_CHECK_THRESHOLD_BYTES"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        aws.client.cache_clear()
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        for table, key in ((TASKS_TABLE, "taskId"), (IDEMPOTENCY_TABLE, "id")):
            dynamodb.create_table(
                TableName=table,
                KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=RESULTS_BUCKET)
        yield Aws(dynamodb=dynamodb, s3=s3, sfn=boto3.client("stepfunctions", region_name=REGION))
    aws.client.cache_clear()


@pytest.fixture
def load_handler() -> Callable[[str], ModuleType]:
    """Import a handler module afresh, so it reads the environment the test has just set."""

    def load(module_name: str) -> ModuleType:
        sys.modules.pop(module_name, None)
        return importlib.import_module(module_name)

    return load
