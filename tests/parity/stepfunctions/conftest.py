"""The Step Functions parity suite runs against moto in server mode behind the local guard, over HTTP, with every
patch of the local stack installed (what `taskrail local up` serves): boto3 signs as the stack's service key."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from taskrail.local.services import lambda_, registry, server, stepfunctions
from taskrail.local.stack import LOCAL_CREDENTIALS

REGION = "us-east-1"


@pytest.fixture(scope="package")
def endpoint() -> Iterator[str]:
    with registry.aws_semantics(), stepfunctions.time_scale(0), server.threaded_server("127.0.0.1", 0) as url:
        session = boto3.Session(region_name=REGION, **LOCAL_CREDENTIALS)
        # the Lambda function "worker" the cases' Task states invoke (answered by each case's invoker)
        lambda_.create_stub_function(
            session.client("lambda", endpoint_url=url), session.client("iam", endpoint_url=url), "worker"
        )
        yield url


@pytest.fixture
def aws(endpoint: str) -> Iterator[dict[str, Any]]:
    session = boto3.Session(region_name=REGION, **LOCAL_CREDENTIALS)
    clients = {n: session.client(n, endpoint_url=endpoint) for n in ("stepfunctions", "lambda", "iam", "events", "sqs")}
    yield clients
    lambda_.uninstall_lambda_invoker()
