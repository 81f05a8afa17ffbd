"""One local stack for the e2e package (starting one costs seconds; it stops before other packages run, since
moto and its hooks are process-wide). Tests use their own tasks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from taskrail.client import TaskrailClient
from taskrail.local.accounts import user_client
from taskrail.local.iam.coverage import Unexercised, explain, load_reasons, unexercised, unexercised_in_every
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
        if local.iam is not None:  # what this stack's calls never used, for the package's grant coverage
            GRANT_COVERAGE.add(unexercised(local.iam.policies.grants(), local.iam.use.actions))
        local.stop()


class GrantCoverage:
    """What the e2e package's stacks left unexercised. pytest-randomly interleaves the packages' modules, so the
    package fixture above may start several stacks in one session, and their use adds up: a grant counts as
    unexercised only if every stack left it so (unexercised_in_every; CI at 0c415ad failed when the live-progress
    tests ran in an earlier stack than the last, whose WebSocket API had another id)."""

    def __init__(self) -> None:
        self.runs: list[list[Unexercised]] = []
        self.last_item: str | None = None

    def add(self, unused: list[Unexercised]) -> None:
        self.runs.append(unused)

    def remaining(self) -> list[Unexercised]:
        assert self.runs, "no e2e stack recorded its IAM decisions"
        return unexercised_in_every(self.runs)


GRANT_COVERAGE = GrantCoverage()
HERE = Path(__file__).parent
ARTIFACTS = HERE.parents[1] / "artifacts"


def _in_package(item: pytest.Item) -> bool:
    return Path(str(item.path)).parent == HERE


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """After the package's last test has been torn down (its stack with it): issue 12's grant coverage."""
    yield
    if not _in_package(item):
        return
    if GRANT_COVERAGE.last_item is None:
        GRANT_COVERAGE.last_item = next(i.nodeid for i in reversed(item.session.items) if _in_package(i))
    if item.nodeid == GRANT_COVERAGE.last_item and whole_package_passed(item.session):
        assert_every_grant_used_or_kept_for_a_reason()


def whole_package_passed(session: pytest.Session) -> bool:
    """Every test module of this package ran (no selection by -k, -m or node id), and none failed."""
    ran = {Path(str(item.path)) for item in session.items if _in_package(item)}
    selected = bool(session.config.option.keyword or session.config.option.markexpr)
    return ran == set(HERE.glob("test_*.py")) and not selected and session.testsfailed == 0


def assert_every_grant_used_or_kept_for_a_reason() -> None:
    """Issue 12: after the whole e2e package ran with IAM enforcement on, every grant of the template was used by
    a call, or is kept for the reason taskrail/local/iam/unexercised_grants.json gives (the stale reasons fail too)."""
    coverage = explain(GRANT_COVERAGE.remaining(), load_reasons())
    report = coverage.report()
    print("\n" + report)
    # pytest shows a passing test's output only with -s: the run also leaves the report where it can be read.
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "grant-coverage.txt").write_text(report + "\n", encoding="utf-8")
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
