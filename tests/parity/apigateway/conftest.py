"""API Gateway parity cases run against the local API Gateway over HTTP (requests), serving the REST APIs of
``parity_api.template.json``: the documented request-validation sample API, the gateway-response walkthrough's
customisation, MOCK integrations (no backend involved), and a second API whose DEFAULT_4XX/DEFAULT_5XX are customised.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from taskrail.local.apigw import LocalApiGateway

TEMPLATE = json.loads((Path(__file__).parent / "parity_api.template.json").read_text())
NO_BACKEND = "http://127.0.0.1:9"  # MOCK integrations only: nothing is called


def _identity(value: Any) -> Any:
    return value


@pytest.fixture(scope="package")
def api() -> Iterator[LocalApiGateway]:
    with LocalApiGateway(TEMPLATE, _identity, NO_BACKEND, rest_api_id="Api") as gateway:
        yield gateway
    assert gateway.internal_errors == [], "a case reached an emulator failure (500) it did not expect"


@pytest.fixture(scope="package")
def fallback_api() -> Iterator[LocalApiGateway]:
    with LocalApiGateway(TEMPLATE, _identity, NO_BACKEND, rest_api_id="Fallback") as gateway:
        yield gateway
