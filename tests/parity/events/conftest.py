"""EventBridge parity cases run against the local AWS endpoint over HTTP (tests/parity/endpoint.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.parity.endpoint import client, local_endpoint


@pytest.fixture(scope="package")
def events() -> Iterator[Any]:
    with local_endpoint() as url:
        yield client(url, "events")
