"""The user record on any first authenticated request (issue 16 §1), on the local stack: a caller whose first
request is POST /tasks or GET /tasks (never GET /me) gets a record, with username, createdAt and a lastLogin,
through the stage's access log, the template's subscription filter and UserSeenFunction's live alias
(docs/DECISIONS.md "Users and profiles: the record on any first request"); another user's request never creates
or touches it. Both identity kinds: an IAM user (alice, bob) and an assumed role's session (ci).

UserSeenFunction's containers remember whom they signed in within the hour; a forgotten caller is new only to new
containers, so each test starts from fresh ones (the workers killed, as Lambda retires containers)."""

from __future__ import annotations

from typing import Any

import pytest

from taskrail.client import TaskrailClient
from taskrail.local.stack import LocalStack
from taskrail.local.users import ALICE, BOB, CI_ROLE
from tests.e2e.conftest import client_for
from tests.e2e.polling import wait_for

pytestmark = pytest.mark.e2e

DEADLINE_SECONDS = 60


def item(stack: LocalStack, table: str, user_id: str) -> dict[str, str]:
    found = (
        stack.clients("dynamodb")
        .get_item(TableName=stack.resources.ref(table), Key={"userId": {"S": user_id}}, ConsistentRead=True)
        .get("Item", {})
    )
    return {name: value.get("S", "") for name, value in found.items()}


def signed_in(stack: LocalStack, user_id: str) -> tuple[dict[str, str], dict[str, str]] | None:
    """The caller's record and profile once both are written (the record has createdAt, the profile lastLogin)."""
    user, profile = item(stack, "UsersTable", user_id), item(stack, "ProfilesTable", user_id)
    return (user, profile) if user.get("createdAt") and profile.get("lastLogin") else None


def as_new(stack: LocalStack, *user_ids: str) -> None:
    """The callers as if never seen: fresh UserSeenFunction containers (no memo), then no record and no profile."""
    pool = stack.functions
    [name] = [n for n in pool.worker_pids() if "UserSeen" in n]
    for _ in pool.worker_pids(name)[name]:
        pool.kill_worker(name)
    dynamodb = stack.clients("dynamodb")
    for user_id in user_ids:
        for table in ("UsersTable", "ProfilesTable"):
            dynamodb.delete_item(TableName=stack.resources.ref(table), Key={"userId": {"S": user_id}})


def test_a_first_get_tasks_or_post_tasks_creates_the_record_and_never_anothers(
    stack: LocalStack, alice: TaskrailClient, bob: TaskrailClient
) -> None:
    as_new(stack, ALICE.principal_id, BOB.principal_id)

    # bob's first request is a list: his record appears, alice's does not
    bob.list_tasks(limit=1)
    bob_user, bob_profile = wait_for(
        lambda: signed_in(stack, BOB.principal_id), DEADLINE_SECONDS, "bob's user record from GET /tasks"
    )
    print("bob:", bob_user, bob_profile)
    assert (bob_user["username"], bob_user["status"]) == ("bob", "ACTIVE")
    assert bob_profile["lastLogin"] >= bob_user["createdAt"]
    assert item(stack, "UsersTable", ALICE.principal_id) == {}
    assert item(stack, "ProfilesTable", ALICE.principal_id) == {}

    # alice's first request is a submission: her record appears, bob's stays as it was
    alice.submit("text.stats", {"text": "first request"})
    alice_user, alice_profile = wait_for(
        lambda: signed_in(stack, ALICE.principal_id), DEADLINE_SECONDS, "alice's user record from POST /tasks"
    )
    print("alice:", alice_user, alice_profile)
    assert (alice_user["userId"], alice_user["username"], alice_user["status"]) == (
        ALICE.principal_id,
        "alice",
        "ACTIVE",
    )
    assert alice_profile["lastLogin"] >= alice_user["createdAt"]
    assert (item(stack, "UsersTable", BOB.principal_id), item(stack, "ProfilesTable", BOB.principal_id)) == (
        bob_user,
        bob_profile,
    )

    # delivered as logs.amazonaws.com, allowed by the subscription's Lambda permission on the alias (local IAM)
    assert stack.iam is not None
    [permission] = [g for g in stack.iam.policies.grants() if g.policy.startswith("UsersUserSeenSubscriptionCanInvoke")]
    assert stack.iam.use.actions(permission) == {"lambda:InvokeFunction"}
    # and the function used both of its DynamoDB actions (issue 12's grant coverage: no grant left unexercised)
    [tables] = [
        g
        for g in stack.iam.policies.grants()
        if g.policy.startswith("FunctionsUserSeenFunctionRole") and any(a.startswith("dynamodb:") for a in g.actions)
    ]
    assert stack.iam.use.actions(tables) == {"dynamodb:GetItem", "dynamodb:UpdateItem"}

    # and GET /me answers the record the log's subscriber made, not a second one
    me: dict[str, Any] = alice.me()
    assert me["user"]["createdAt"] == alice_user["createdAt"]
    assert me["profile"]["lastLogin"] == alice_profile["lastLogin"]


def test_an_assumed_roles_sessions_sign_in_the_role_once(stack: LocalStack) -> None:
    as_new(stack, CI_ROLE.role_id)
    first, second = client_for(stack, "ci"), client_for(stack, "ci")

    first.list_tasks(limit=1)
    user, profile = wait_for(lambda: signed_in(stack, CI_ROLE.role_id), DEADLINE_SECONDS, "the ci role's record")
    second.list_tasks(limit=1)  # another session of the role: the same owner, no second record
    print("ci:", user, profile)
    assert (user["userId"], user["username"]) == (CI_ROLE.role_id, "ci")
    assert item(stack, "UsersTable", CI_ROLE.role_id)["createdAt"] == user["createdAt"]
