"""One local stack for the e2e package (starting one costs seconds; it stops before other packages run, since
moto and its hooks are process-wide). Tests use their own tasks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from taskrail.client import TaskrailClient
from taskrail.local.accounts import user_client
from taskrail.local.stack import LocalStack, StackOptions
from taskrail.operator import Operator

E2E_TIME_SCALE = 0.02


@pytest.fixture(scope="package")
def stack(request: pytest.FixtureRequest) -> Iterator[LocalStack]:
    local = LocalStack(StackOptions(time_scale=E2E_TIME_SCALE, with_console=True))
    local.start()
    try:
        yield local
        if whole_package_passed(request.session):
            assert_every_grant_used_or_kept_for_a_reason(local)
    finally:
        local.stop()


def whole_package_passed(session: pytest.Session) -> bool:
    """Every test module of this package ran (no selection by -k, -m or node id), and none failed."""
    here = Path(__file__).parent
    ran = {Path(str(item.path)) for item in session.items if Path(str(item.path)).parent == here}
    selected = bool(session.config.option.keyword or session.config.option.markexpr)
    return ran == set(here.glob("test_*.py")) and not selected and session.testsfailed == 0


def assert_every_grant_used_or_kept_for_a_reason(stack: LocalStack) -> None:
    """Issue 12: after the whole e2e package ran with IAM enforcement on, every grant of the template was used by
    a call, or is kept for the reason taskrail/local/iam/unexercised_grants.json gives (the stale reasons fail too)."""
    assert stack.iam is not None
    coverage = stack.iam.coverage()
    print("\n" + coverage.report())
    assert coverage.ok, coverage.report()


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
