"""DynamoDB throttling is a retryable 503 on every route (issue 9, defect 4), through the whole local path.

DynamoDB answers a throttled request with HTTP 400 and ``__type`` ProvisionedThroughputExceededException,
ThrottlingException or RequestLimitExceeded, so the integration's ``4\\d{2}`` selection pattern picks the 4xx
template. Here moto answers exactly that (``taskrail.local.services.dynamodb``) to the requests a test marks,
and the request travels client → local API Gateway (SigV4, VTL) → HTTP → moto and back.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from taskrail.cli import app
from taskrail.client import ApiError, TaskrailClient
from taskrail.local.services.dynamodb import THROTTLING_ERRORS, ThrottleRule, throttling
from taskrail.local.services.registry import assert_supported_moto
from taskrail.local.stack import LocalStack
from tests.e2e.conftest import client_for

pytestmark = pytest.mark.e2e

ERRORS = sorted(THROTTLING_ERRORS)
RUNNER = CliRunner()


@pytest.fixture(scope="module")
def ci(stack: LocalStack) -> TaskrailClient:
    return client_for(stack, "ci")


@pytest.fixture
def task_id(ci: TaskrailClient) -> Iterator[str]:
    """A task of this test's own, cancellable while it runs (a cancel by another test would change what this one
    sees; its workflow writes it too: cancel rules also match "cancelledAt", which only the API's cancel writes)."""
    task = ci.submit("diagnostic.sleep", {"seconds": 600, "steps": 100})["taskId"]
    yield task
    # cancelled when the test is over: a 600-second sleep left running holds a ProcessTask worker for ten minutes.
    # It learns of the cancel at its next progress report (every 6 s: a single 600 s step would not notice, and
    # held the worker anyway; test_isolation's tasks once waited behind such sleeps past their 120 s deadline)
    with contextlib.suppress(ApiError):
        ci.cancel(task)


@pytest.fixture(scope="module")
def finished_task(ci: TaskrailClient) -> str:
    """A task nothing but the API reads any more (its workflow is over)."""
    task = ci.submit("text.stats", {"text": "a b"})["taskId"]
    ci.wait([task], timeout=120)
    return task


# Only the API's submission (an UpdateItem filling absent attributes: submit_task.request.vtl) carries this.
SUBMIT_UPDATE = "if_not_exists(userId"


def test_the_throttle_hook_still_fits_moto():
    assert_supported_moto()


@pytest.mark.parametrize("error", ERRORS)
def test_submit_answers_503_when_dynamodb_throttles(ci: TaskrailClient, error: str):
    marker = f"throttle-{uuid.uuid4()}"

    with throttling(ThrottleRule("UpdateItem", error, (marker, SUBMIT_UPDATE))) as rules:
        status, body = ci.request("POST", "/tasks", {"type": "text.stats", "params": {"text": marker}})

    assert (status, rules[0].refused) == (503, 1), body
    assert "retry" in body["message"]


@pytest.mark.parametrize("error", ERRORS)
def test_get_answers_503_when_dynamodb_throttles(ci: TaskrailClient, finished_task: str, error: str):
    with throttling(ThrottleRule("GetItem", error, finished_task)) as rules:
        status, body = ci.request("GET", f"/tasks/{finished_task}")

    assert (status, rules[0].refused) == (503, 1), body
    assert "retry" in body["message"]


@pytest.mark.parametrize("error", ERRORS)
def test_list_answers_503_when_dynamodb_throttles(ci: TaskrailClient, error: str):
    marker = f"S{uuid.uuid4().hex}"  # a status value: it travels in the Query's FilterExpression values

    with throttling(ThrottleRule("Query", error, marker)) as rules:
        status, body = ci.request("GET", f"/tasks?status={marker}")

    assert (status, rules[0].refused) == (503, 1), body
    assert "retry" in body["message"]


@pytest.mark.parametrize("error", ERRORS)
def test_cancel_answers_503_when_dynamodb_throttles(ci: TaskrailClient, task_id: str, error: str):
    with throttling(ThrottleRule("UpdateItem", error, (task_id, "cancelledAt"))) as rules:
        status, body = ci.request("DELETE", f"/tasks/{task_id}")

    assert (status, rules[0].refused) == (503, 1), body
    assert ci.get(task_id)["status"] != "CANCELLED"  # nothing changed


def test_requests_the_rule_does_not_mark_are_served(ci: TaskrailClient, finished_task: str):
    with throttling(ThrottleRule("GetItem", "ThrottlingException", f"not-{finished_task}")) as rules:
        assert ci.get(finished_task)["taskId"] == finished_task

    assert rules[0].refused == 0


def test_the_client_retries_a_throttled_read_and_cancel(ci: TaskrailClient, task_id: str, finished_task: str):
    # Given DynamoDB throttles the next two reads of a task and the next two cancels of another
    rules = [ThrottleRule("GetItem", "ProvisionedThroughputExceededException", finished_task, times=2)]
    rules.append(ThrottleRule("UpdateItem", "RequestLimitExceeded", (task_id, "cancelledAt"), times=2))
    with throttling(*rules):
        # Then the client backs off and gets the answer
        assert ci.get(finished_task)["taskId"] == finished_task
        assert ci.cancel(task_id) == {"taskId": task_id, "status": "CANCELLED"}

    assert [rule.refused for rule in rules] == [2, 2]


def test_the_client_retries_a_throttled_submission_with_an_idempotency_key(ci: TaskrailClient):
    key = f"throttle-{uuid.uuid4()}"

    with throttling(ThrottleRule("UpdateItem", "ThrottlingException", (key, SUBMIT_UPDATE), times=3)) as rules:
        accepted = ci.submit("text.stats", {"text": "x"}, idempotency_key=key)

    assert rules[0].refused == 3
    assert ci.get(accepted["taskId"])["idempotencyKey"] == key


def test_the_client_does_not_resubmit_without_an_idempotency_key(ci: TaskrailClient):
    marker = f"throttle-{uuid.uuid4()}"

    rule = ThrottleRule("UpdateItem", "ThrottlingException", (marker, SUBMIT_UPDATE))
    with throttling(rule) as rules, pytest.raises(ApiError) as raised:
        ci.submit("text.stats", {"text": marker})

    assert raised.value.status == 503 and raised.value.retryable
    assert rules[0].refused == 1


@pytest.fixture(scope="module")
def taskrail(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Any:
    state = tmp_path_factory.mktemp("throttle-cli") / "local.json"
    stack.write_state(state)

    def invoke(*args: str) -> Any:
        return RUNNER.invoke(app, [*args, "--user", "ci", "--local-state", str(state)])

    return invoke


def test_the_cli_rides_out_throttling(taskrail, finished_task: str):
    with throttling(ThrottleRule("GetItem", "ThrottlingException", finished_task, times=2)) as rules:
        result = taskrail("status", finished_task, "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["taskId"] == finished_task
    assert rules[0].refused == 2


def test_the_cli_says_to_try_again_when_throttling_persists(taskrail, finished_task: str):
    with throttling(ThrottleRule("GetItem", "ThrottlingException", finished_task)) as rules:
        result = taskrail("status", finished_task)

    assert result.exit_code == 1
    assert "try again" in result.output
    assert rules[0].refused > 1  # retried before giving up
