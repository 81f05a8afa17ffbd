"""Fixtures of the tests of taskrail.local.services: moto in-process, and no real waiting."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from taskrail.local.services import lambda_, server, stepfunctions
from tests.local.services.harness import (
    REGION,
)


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws(config=server.LOCAL_MOTO_CONFIG):
        session = boto3.Session(region_name=REGION)
        clients = {name: session.client(name) for name in ("stepfunctions", "lambda", "iam", "dynamodb")}
        lambda_.create_stub_function(clients["lambda"], clients["iam"], "worker")
        yield clients


@pytest.fixture
def no_waiting() -> Iterator[stepfunctions.SleepLog]:
    with stepfunctions.time_scale(0), stepfunctions.record_sleeps() as log:
        yield log
