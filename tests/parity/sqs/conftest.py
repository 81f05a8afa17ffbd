"""SQS parity cases run against the local AWS endpoint over HTTP (tests/parity/endpoint.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.parity.endpoint import client, local_endpoint


@pytest.fixture(scope="package")
def sqs() -> Iterator[Any]:
    with local_endpoint() as url:
        yield client(url, "sqs")


@pytest.fixture(scope="package")
def small_queue(sqs: Any) -> str:
    """MaximumMessageSize 1,024 bytes, the smallest SQS allows."""
    return str(sqs.create_queue(QueueName="parity-small", Attributes={"MaximumMessageSize": "1024"})["QueueUrl"])


@pytest.fixture(scope="package")
def large_queue(sqs: Any) -> str:
    """MaximumMessageSize 1,048,576 bytes (1 MiB), the largest SQS allows."""
    return str(sqs.create_queue(QueueName="parity-large", Attributes={"MaximumMessageSize": "1048576"})["QueueUrl"])
