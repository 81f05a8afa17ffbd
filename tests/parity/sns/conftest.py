"""SNS parity cases run against the local AWS endpoint over HTTP (tests/parity/endpoint.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.parity.endpoint import client, local_endpoint


@pytest.fixture(scope="package")
def sns() -> Iterator[Any]:
    with local_endpoint() as url:
        yield client(url, "sns")


@pytest.fixture(scope="package")
def topic(sns: Any) -> str:
    return str(sns.create_topic(Name="parity-outcomes")["TopicArn"])
