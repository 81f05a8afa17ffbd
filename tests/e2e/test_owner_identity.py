"""The owner of a task is a stable principal (issue 9, defect 3), on the local stack over HTTP.

An assumed-role caller (SSO, CI, Lambda) signs each session with its own temporary credentials and its own
session name, and API Gateway reports ``$context.identity.user`` = ``ROLEID:session-name``. Every session of
the role must see, cancel and idempotently resubmit the role's tasks; another role or user sees none of them.
"""

from __future__ import annotations

import uuid

import pytest
from botocore.credentials import Credentials

from taskrail.client import ApiError, TaskrailClient
from taskrail.local.stack import LocalStack
from taskrail.local.users import CI_ROLE
from tests.e2e.conftest import client_for

pytestmark = pytest.mark.e2e

NOT_FOUND = (404, {"message": "task not found"})


@pytest.fixture
def sessions(stack: LocalStack) -> tuple[TaskrailClient, TaskrailClient]:
    """Two sessions of the role ``ci``, each with its own session name and temporary credentials."""
    return client_for(stack, "ci"), client_for(stack, "ci")


def session_name(client: TaskrailClient) -> str:
    return client._signer.credentials.access_key  # the ASIA key is derived from role and session name


def test_two_sessions_of_a_role_have_different_session_names(sessions):
    first, second = sessions

    assert session_name(first) != session_name(second)
    assert session_name(first).startswith("ASIA")


def test_every_session_of_a_role_sees_and_cancels_the_roles_tasks(sessions):
    first, second = sessions
    # Given a long task submitted from the first session
    task_id = first.submit("diagnostic.sleep", {"seconds": 30, "steps": 1})["taskId"]

    # Then the second session reads it and finds it in the role's list
    assert second.get(task_id)["taskId"] == task_id
    assert task_id in {task["taskId"] for task in second.list_tasks(limit=100)}

    # And cancels it
    assert second.cancel(task_id) == {"taskId": task_id, "status": "CANCELLED"}
    assert first.get(task_id)["status"] == "CANCELLED"


def test_an_idempotency_key_retry_from_a_new_session_returns_the_same_task(sessions):
    first, second = sessions
    key = f"order-{uuid.uuid4()}"

    accepted = first.submit("text.stats", {"text": "a b"}, idempotency_key=key)
    retried = second.submit("text.stats", {"text": "a b"}, idempotency_key=key)

    assert retried["taskId"] == accepted["taskId"]
    assert retried.get("duplicate") is True


@pytest.mark.parametrize("other", ["batch", "alice"])
def test_another_role_or_user_sees_nothing_of_the_roles_tasks(stack: LocalStack, sessions, other: str):
    first, _ = sessions
    stranger = client_for(stack, other)
    key = f"order-{uuid.uuid4()}"
    task_id = first.submit("diagnostic.sleep", {"seconds": 30, "steps": 1}, idempotency_key=key)["taskId"]
    try:
        # Then the stranger cannot read it, list it or cancel it, and the same key is a task of their own
        assert stranger.request("GET", f"/tasks/{task_id}") == NOT_FOUND
        assert stranger.request("DELETE", f"/tasks/{task_id}") == NOT_FOUND
        assert task_id not in {task["taskId"] for task in stranger.list_tasks(limit=100)}
        own = stranger.submit("text.stats", {"text": "x"}, idempotency_key=key)
        assert own["taskId"] != task_id and "duplicate" not in own
    finally:
        first.cancel(task_id)


def test_a_role_session_without_its_session_token_is_refused(stack: LocalStack):
    # Temporary credentials are nothing without their token: AWS answers 403 (UnrecognizedClientException)
    session = CI_ROLE.session()
    base = client_for(stack, "alice")
    tokenless = TaskrailClient(
        base.endpoints, Credentials(session.access_key_id, session.secret_access_key), is_local=True
    )

    status, body = tokenless.request("GET", "/tasks")

    assert status == 403
    assert body == {"message": "The security token included in the request is invalid."}
    with pytest.raises(ApiError):
        tokenless.list_tasks()
