"""One local stack for the e2e package (starting one costs seconds; it stops before other packages run, since
moto and its hooks are process-wide). Tests use their own tasks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from taskrail.client import TaskrailClient
from taskrail.local.accounts import user_client
from taskrail.local.stack import LocalStack, StackOptions
from taskrail.operator import Operator

E2E_TIME_SCALE = 0.02


@pytest.fixture(scope="package")
def stack() -> Iterator[LocalStack]:
    local = LocalStack(StackOptions(time_scale=E2E_TIME_SCALE, with_console=True))
    local.start()
    try:
        yield local
    finally:
        local.stop()


def client_for(stack: LocalStack, user: str) -> TaskrailClient:
    info = stack.info
    assert info is not None
    return user_client(info, user)


@pytest.fixture(scope="package")
def alice(stack: LocalStack) -> TaskrailClient:
    return client_for(stack, "alice")


@pytest.fixture(scope="package")
def bob(stack: LocalStack) -> TaskrailClient:
    return client_for(stack, "bob")


@pytest.fixture(scope="package")
def alice_operator(stack: LocalStack, alice: TaskrailClient) -> Operator:
    """The operator's functions, owner checks as alice (taskrail/operator)."""
    return Operator.over_aws(alice, stack.clients)


@pytest.fixture(scope="package")
def bob_operator(stack: LocalStack, bob: TaskrailClient) -> Operator:
    return Operator.over_aws(bob, stack.clients)
