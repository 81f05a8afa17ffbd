"""Users and profiles on the local stack (issue 16 §1): GET /me creates the caller's record once, PUT /me/profile
round-trips and refuses another user's avatar prefix, nobody reads or writes another user's profile, and a
notification preference puts the caller's own task outcomes, and nobody else's, in the caller's mailbox.

Alice and bob are the local stack's two IAM users (taskrail/local/users.py): the API derives each one's owner id
from the SigV4 signature, as for tasks (tests/e2e/test_isolation.py)."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
import requests

from taskrail.client import ApiError, TaskrailClient
from taskrail.console import ACTION_HEADER
from taskrail.local.services.mailbox import CONFIRMATION, MAILBOX, NOTIFICATION
from taskrail.local.stack import LocalStack
from taskrail.local.users import ALICE, BOB
from tests.e2e.browser import browser, chromium, console_url, page  # noqa: F401 -- fixtures (page, and what it uses)
from tests.e2e.polling import wait_for

pytestmark = pytest.mark.e2e


def forget_user(stack: LocalStack, user_id: str) -> None:
    """The caller as if never seen: no user record, no profile (the profile's REMOVE unsubscribes, if subscribed)."""
    dynamodb = stack.clients("dynamodb")
    for table in ("UsersTable", "ProfilesTable"):
        dynamodb.delete_item(TableName=stack.resources.ref(table), Key={"userId": {"S": user_id}})


def stored_user(stack: LocalStack, user_id: str) -> dict[str, Any]:
    return (
        stack.clients("dynamodb")
        .get_item(TableName=stack.resources.ref("UsersTable"), Key={"userId": {"S": user_id}}, ConsistentRead=True)
        .get("Item", {})
    )


def test_two_first_requests_at_once_make_one_record(stack: LocalStack, alice: TaskrailClient) -> None:
    forget_user(stack, ALICE.principal_id)
    answers: list[dict[str, Any]] = []
    start = threading.Barrier(2)

    def first_request() -> None:
        start.wait(timeout=30)
        answers.append(alice.me())

    threads = [threading.Thread(target=first_request) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    print([a["user"] for a in answers])
    assert len(answers) == 2
    first, second = (a["user"] for a in answers)
    assert first["userId"] == second["userId"] == ALICE.principal_id
    assert first["username"] == "alice" and first["status"] == "ACTIVE"
    assert first["createdAt"] == second["createdAt"]
    later = alice.me()
    assert later["user"]["createdAt"] == first["createdAt"]
    assert stored_user(stack, ALICE.principal_id)["createdAt"]["S"] == first["createdAt"]
    assert later["profile"]["lastLogin"] == answers[0]["profile"]["lastLogin"]  # within the hour: not written again


def test_put_profile_round_trips(alice: TaskrailClient) -> None:
    alice.me()
    avatar = f"users/{ALICE.principal_id}/avatar.png"
    preferences = {"timezone": "Europe/Paris", "theme": "dark"}
    stored = alice.update_profile({"fullName": 'Alice O\'Hara "A"', "avatar": avatar, "preferences": preferences})
    print(stored)
    assert stored["fullName"] == 'Alice O\'Hara "A"' and stored["avatar"] == avatar
    assert stored["preferences"] == preferences
    profile = alice.me()["profile"]
    assert {k: profile[k] for k in ("fullName", "avatar", "preferences")} == {
        "fullName": 'Alice O\'Hara "A"',
        "avatar": avatar,
        "preferences": preferences,
    }
    kept = alice.update_profile({"fullName": "Alice"})
    assert kept["avatar"] == avatar and kept["preferences"] == preferences  # fields left out are kept


@pytest.mark.parametrize(
    "avatar",
    [
        f"users/{BOB.principal_id}/avatar.png",
        f"users/{ALICE.principal_id}/../{BOB.principal_id}/avatar.png",
        f"users/{ALICE.principal_id}/",
        f"users/{ALICE.principal_id}x/avatar.png",
        "tasks/t-1/result.json",
    ],
    ids=["bobs-prefix", "dot-dot", "the-prefix-itself", "a-longer-id", "not-under-users"],
)
def test_an_avatar_outside_the_callers_own_prefix_is_refused(alice: TaskrailClient, avatar: str) -> None:
    before = alice.me()["profile"].get("avatar")
    with pytest.raises(ApiError) as refused:
        alice.update_profile({"avatar": avatar})
    print(avatar, refused.value.status, refused.value)
    assert refused.value.status == 400
    assert alice.me()["profile"].get("avatar") == before


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"fullName": ""},
        {"fullName": "x" * 201},
        {"userId": BOB.principal_id, "fullName": "Bob?"},
        {"preferences": {"notifications": {"email": "not-an-address", "onFailed": True}}},
        {"preferences": {"notifications": {"email": "a@example.com", "onFailed": "yes"}}},
        {"preferences": {"unknown": 1}},
        {"preferences": "dark"},
        ["fullName"],
    ],
)
def test_malformed_profiles_are_a_400_with_a_message(alice: TaskrailClient, body: Any) -> None:
    status, payload = alice.request("PUT", "/me/profile", body)
    print(json.dumps(body)[:60], status, payload)
    assert status == 400
    assert payload.get("message")


def test_a_body_that_is_not_json_is_a_400(alice: TaskrailClient) -> None:
    status, payload = alice.request("PUT", "/me/profile", None, {"Content-Type": "application/json"})
    assert status == 400, payload


def test_nobody_reads_or_writes_another_users_profile(alice: TaskrailClient, bob: TaskrailClient) -> None:
    alice.update_profile({"fullName": "Alice Only"})
    bob.update_profile({"fullName": "Bob Only"})
    assert alice.me()["profile"]["fullName"] == "Alice Only"
    bobs = bob.me()
    print(bobs)
    assert bobs["user"]["userId"] == BOB.principal_id and bobs["profile"]["userId"] == BOB.principal_id
    assert bobs["profile"]["fullName"] == "Bob Only"
    assert "Alice" not in json.dumps(bobs)


def _confirmations(email: str) -> list[Any]:
    return [m for m in MAILBOX.messages(email) if m.kind == CONFIRMATION]


def _subscribe_and_confirm(
    stack: LocalStack, client: TaskrailClient, email: str, *, in_console: bool = False, **flags: bool
) -> None:
    """The preference set, then its new subscription confirmed with the token of its confirmation message (by the
    SNS API, or by the console's Confirm: POST /api/mail/confirm)."""
    client.update_profile({"preferences": {"theme": "none"}})  # no notifications: any earlier subscription ends
    before = len(_confirmations(email))
    client.update_profile({"preferences": {"notifications": {"email": email, **flags}}})
    confirmation = wait_for(
        lambda: _confirmations(email)[before:], timeout=60, what=f"a new confirmation message to {email}"
    )[0]
    if in_console:
        listed = requests.get(f"{console_url(stack)}/api/mail", timeout=10).json()["messages"]
        assert any(m["token"] == confirmation.token for m in listed if m["to"] == email)
        confirmed = requests.post(
            f"{console_url(stack)}/api/mail/confirm",
            json={"token": confirmation.token},
            headers={ACTION_HEADER: "1"},
            timeout=10,
        )
        assert confirmed.status_code == 200, confirmed.text
        return
    # What the link in AWS's confirmation email does.
    stack.clients("sns").confirm_subscription(TopicArn=confirmation.topic_arn, Token=confirmation.token)


def _outcome_delivered(stack: LocalStack, task_id: str) -> bool:
    item = stack.clients("dynamodb").get_item(
        TableName=stack.info.tasks_table,
        Key={"taskId": {"S": task_id}},
        ConsistentRead=True,  # type: ignore[union-attr]
    )["Item"]
    return "outcomeDelivered" in item


def _notifications(email: str) -> list[dict[str, Any]]:
    return [json.loads(m.body) for m in MAILBOX.messages(email) if m.kind == NOTIFICATION]


def test_alice_is_told_of_her_failed_task_and_of_nothing_of_bobs(
    stack: LocalStack, alice: TaskrailClient, bob: TaskrailClient
) -> None:
    alice_email, bob_email = "alice@example.com", "bob@example.com"
    _subscribe_and_confirm(stack, alice, alice_email, in_console=True, onFailed=True)
    _subscribe_and_confirm(stack, bob, bob_email, onFailed=True, onSucceeded=True)
    alice_ok = alice.submit("text.stats", {"text": "fine"})["taskId"]
    bob_failed = bob.submit("diagnostic.poison", {})["taskId"]
    alice_failed = alice.submit("diagnostic.poison", {})["taskId"]
    statuses = {**alice.wait([alice_ok, alice_failed], timeout=120), **bob.wait([bob_failed], timeout=120)}
    assert {t: v["status"] for t, v in statuses.items()} == {
        alice_ok: "SUCCEEDED",
        alice_failed: "FAILED",
        bob_failed: "FAILED",
    }
    for task_id in (alice_ok, alice_failed, bob_failed):  # every outcome has been published by now
        wait_for(lambda task_id=task_id: _outcome_delivered(stack, task_id), timeout=60, what=f"{task_id} delivered")
    wait_for(lambda: _notifications(alice_email), timeout=30, what="alice's email")
    alices = _notifications(alice_email)
    print("alice's mailbox:", [(n["taskId"], n["outcome"]) for n in alices])
    assert [(n["taskId"], n["owner"], n["outcome"]) for n in alices] == [(alice_failed, ALICE.principal_id, "FAILED")]
    bobs = _notifications(bob_email)
    print("bob's mailbox:", [(n["taskId"], n["outcome"]) for n in bobs])
    assert [(n["taskId"], n["outcome"]) for n in bobs] == [(bob_failed, "FAILED")]
    assert stored_user(stack, ALICE.principal_id)["email"]["S"] == alice_email


def _policy(stack: LocalStack, subscription_arn: str) -> dict[str, Any]:
    attributes = stack.clients("sns").get_subscription_attributes(SubscriptionArn=subscription_arn)["Attributes"]
    return json.loads(attributes["FilterPolicy"])


def test_adding_successes_updates_the_policy_and_switching_off_unsubscribes(
    stack: LocalStack, alice: TaskrailClient
) -> None:
    email = "alice-off@example.com"
    _subscribe_and_confirm(stack, alice, email, onFailed=True)
    arn = wait_for(lambda: stored_user(stack, ALICE.principal_id).get("notificationSubscriptionArn"), timeout=60)["S"]
    alice.update_profile({"preferences": {"notifications": {"email": email, "onFailed": True, "onSucceeded": True}}})
    wait_for(lambda: "SUCCEEDED" in _policy(stack, arn)["outcome"], timeout=60, what="the policy updated")
    assert _policy(stack, arn) == {"owner": [ALICE.principal_id], "outcome": ["FAILED", "REJECTED", "SUCCEEDED"]}
    alice.update_profile({"preferences": {"notifications": {"email": email, "onFailed": False}}})
    wait_for(
        lambda: "notificationSubscriptionArn" not in stored_user(stack, ALICE.principal_id),
        timeout=60,
        what="the subscription forgotten",
    )
    topic = stack.resources.ref("NotificationsTopic")
    endpoints = [
        s["Endpoint"] for s in stack.clients("sns").list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    ]
    assert email not in endpoints


def test_the_console_mail_panel_shows_the_confirmation_and_its_button_confirms(
    stack: LocalStack,
    alice: TaskrailClient,
    page: Any,  # noqa: F811 -- the fixture
) -> None:
    from playwright.sync_api import expect

    email = "alice-console@example.com"
    alice.update_profile({"preferences": {"theme": "none"}})
    before = len(_confirmations(email))
    alice.update_profile({"preferences": {"notifications": {"email": email, "onSucceeded": True}}})
    confirmation = wait_for(lambda: _confirmations(email)[before:], timeout=60, what="the confirmation")[0]
    page.goto(console_url(stack))
    page.get_by_test_id("mail").locator("summary").click()
    item = page.get_by_test_id("mail-item").filter(has_text=email).first
    expect(item).to_be_visible(timeout=15_000)
    item.get_by_test_id("mail-confirm").click()
    expect(page.get_by_test_id("toast")).to_contain_text("Confirmed", timeout=15_000)
    attributes = stack.clients("sns").get_subscription_attributes(SubscriptionArn=confirmation.subscription_arn)
    assert attributes["Attributes"]["PendingConfirmation"] == "false"
