"""The Profiles stream's function (lambdas/users/notifications.py): a notification preference subscribes an email
with a body filter policy on owner and outcome, a change updates or replaces it, switching off unsubscribes, and a
redelivered record changes nothing more. Fakes model SNS's idempotent Subscribe."""

from __future__ import annotations

import json
from typing import Any

import pytest

from users.models import notification_choice
from users.notifications import Action, apply_changes

NOW = "2026-12-01T12:00:00.000Z"


class FakeSns:
    """Subscriptions by ARN; Subscribe with the same endpoint and policy returns the existing one, as SNS does."""

    def __init__(self) -> None:
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []

    def subscribe(self, email: str, filter_policy: dict[str, list[str]]) -> str:
        self.calls.append("subscribe")
        for arn, existing in self.subscriptions.items():
            if existing["email"] == email and existing["policy"] == filter_policy:
                return arn
        arn = f"arn:aws:sns:us-east-1:123456789012:notifications:{len(self.calls)}"
        self.subscriptions[arn] = {"email": email, "policy": filter_policy}
        return arn

    def set_filter_policy(self, subscription_arn: str, filter_policy: dict[str, list[str]]) -> None:
        self.calls.append("set")
        self.subscriptions[subscription_arn]["policy"] = filter_policy

    def unsubscribe(self, subscription_arn: str) -> None:
        self.calls.append("unsubscribe")
        self.subscriptions.pop(subscription_arn, None)


class FakeRecords:
    def __init__(self) -> None:
        self.by_user: dict[str, tuple[str, str]] = {}

    def subscription_of(self, user_id: str) -> tuple[str, str] | None:
        return self.by_user.get(user_id)

    def remember(self, user_id: str, email: str, subscription_arn: str, *, at: str) -> None:
        self.by_user[user_id] = (email, subscription_arn)

    def forget(self, user_id: str, *, at: str) -> None:
        self.by_user.pop(user_id, None)


def preferences(email: str | None = "alice@example.com", **flags: bool) -> str:
    return json.dumps({"notifications": {"email": email, **flags}, "theme": "dark"})


def record(user: str, old: str | None, new: str | None, event: str = "MODIFY") -> dict[str, Any]:
    change: dict[str, Any] = {"Keys": {"userId": {"S": user}}}
    if old is not None:
        change["OldImage"] = {"userId": {"S": user}, "preferences": {"S": old}}
    if new is not None:
        change["NewImage"] = {"userId": {"S": user}, "preferences": {"S": new}}
    return {"eventName": event, "dynamodb": change}


def run(sns: FakeSns, records: FakeRecords, *batch: dict[str, Any]) -> dict[str, list[str]]:
    return apply_changes(list(batch), subscriptions=sns, stored=records, now=lambda: NOW)


def test_asking_for_failures_subscribes_the_email_filtered_on_owner_and_failed_outcomes() -> None:
    sns, records = FakeSns(), FakeRecords()
    done = run(sns, records, record("alice", None, preferences(onFailed=True), "INSERT"))
    print(done, sns.subscriptions)
    assert done == {Action.SUBSCRIBED.value: ["alice"]}
    assert list(sns.subscriptions.values()) == [
        {"email": "alice@example.com", "policy": {"owner": ["alice"], "outcome": ["FAILED", "REJECTED"]}}
    ]
    assert records.by_user["alice"][0] == "alice@example.com"


def test_adding_successes_updates_the_policy_of_the_same_subscription() -> None:
    sns, records = FakeSns(), FakeRecords()
    run(sns, records, record("alice", None, preferences(onFailed=True)))
    (arn,) = sns.subscriptions
    run(sns, records, record("alice", preferences(onFailed=True), preferences(onFailed=True, onSucceeded=True)))
    assert list(sns.subscriptions) == [arn]
    assert sns.subscriptions[arn]["policy"] == {"owner": ["alice"], "outcome": ["FAILED", "REJECTED", "SUCCEEDED"]}


def test_a_new_address_replaces_the_subscription() -> None:
    sns, records = FakeSns(), FakeRecords()
    run(sns, records, record("alice", None, preferences(onSucceeded=True)))
    run(sns, records, record("alice", preferences(onSucceeded=True), preferences("a2@example.com", onSucceeded=True)))
    assert [s["email"] for s in sns.subscriptions.values()] == ["a2@example.com"]


@pytest.mark.parametrize(
    "switched_off",
    [preferences(onFailed=False, onSucceeded=False), json.dumps({"theme": "dark"}), None],
    ids=["both-false", "no-notifications", "profile-removed"],
)
def test_switching_notifications_off_unsubscribes(switched_off: str | None) -> None:
    sns, records = FakeSns(), FakeRecords()
    run(sns, records, record("alice", None, preferences(onFailed=True)))
    done = run(sns, records, record("alice", preferences(onFailed=True), switched_off, "REMOVE"))
    assert done == {Action.UNSUBSCRIBED.value: ["alice"]}
    assert sns.subscriptions == {}
    assert "alice" not in records.by_user


def test_a_change_that_leaves_the_choice_alone_calls_nothing() -> None:
    sns, records = FakeSns(), FakeRecords()
    run(sns, records, record("alice", None, preferences(onFailed=True)))
    calls = list(sns.calls)
    done = run(sns, records, record("alice", preferences(onFailed=True), preferences(onFailed=True)))  # lastLogin
    assert done == {Action.UNCHANGED.value: ["alice"]}
    assert sns.calls == calls


def test_a_redelivered_record_makes_no_second_subscription() -> None:
    sns, records = FakeSns(), FakeRecords()
    change = record("alice", None, preferences(onFailed=True))
    run(sns, records, change)
    run(sns, records, change)
    assert len(sns.subscriptions) == 1


def test_each_user_gets_a_policy_on_their_own_owner_id() -> None:
    sns, records = FakeSns(), FakeRecords()
    run(
        sns,
        records,
        record("alice", None, preferences(onFailed=True)),
        record("bob", None, preferences("bob@example.com", onSucceeded=True)),
    )
    assert sorted((s["email"], s["policy"]["owner"]) for s in sns.subscriptions.values()) == [
        ("alice@example.com", ["alice"]),
        ("bob@example.com", ["bob"]),
    ]


@pytest.mark.parametrize(
    "text",
    ["not json", "[]", json.dumps({"notifications": {"onFailed": True}}), json.dumps({"notifications": "yes"})],
)
def test_preferences_that_ask_for_nothing_usable_subscribe_nothing(text: str) -> None:
    assert notification_choice(text) is None
