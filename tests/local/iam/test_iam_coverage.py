"""Grant coverage: which template grants a run exercised, action by action, and the reasons the others are kept."""

from __future__ import annotations

import json

from taskrail.local.iam.coverage import (
    REASONS_FILE,
    GrantUse,
    Reason,
    Unexercised,
    explain,
    load_reasons,
    statement_of,
    unexercised,
    unexercised_in_every,
)
from taskrail.local.iam.policies import Grant

QUEUE = "arn:aws:sqs:us-east-1:123456789012:taskrail-TaskDeadLetterQueue"
KEY = Grant("TopicKeyA1B2C3D4", 1, "Allow", ("kms:Decrypt", "kms:GenerateDataKey*"), ("*",))
SEND = Grant("FnRoleDefaultPolicy9341E278", 5, "Allow", ("sqs:SendMessage",), (QUEUE,))
DENY = Grant("BucketPolicy0A1B2C3D", 0, "Deny", ("s3:*",), ("*",))


def test_a_grant_is_each_action_pattern_of_an_allow_statement_and_a_matching_call_exercises_it() -> None:
    use = GrantUse()
    use.note(KEY, "kms:GenerateDataKey")  # matches the pattern kms:GenerateDataKey*
    left = unexercised([KEY, SEND, DENY], use.actions)
    assert [(g.policy, g.statement, g.action) for g in left] == [
        ("TopicKeyA1B2C3D4", 1, "kms:Decrypt"),
        ("FnRoleDefaultPolicy9341E278", 5, "sqs:SendMessage"),
    ]  # the Deny statement grants nothing, so it is never "unused"
    use.note(SEND, "SQS:SendMessage")  # IAM actions are case-insensitive
    assert [g.action for g in unexercised([KEY, SEND], use.actions)] == ["kms:Decrypt"]


def test_use_is_noted_against_the_statements_content_so_a_mutated_copy_does_not_mark_the_original() -> None:
    # test_iam_enforcement loads a copy of the template without one action: what the copy's statement allows
    # must not count for the original statement, whose other action was removed
    original = Grant(
        "FnRoleDefaultPolicy9341E278", 6, "Allow", ("states:DescribeExecution", "states:StopExecution"), ()
    )
    mutated = Grant("FnRoleDefaultPolicy9341E278", 6, "Allow", ("states:DescribeExecution",), ())
    shifted = Grant("FnRoleDefaultPolicy9341E278", 4, "Allow", ("sqs:SendMessage",), (QUEUE,))  # SEND, one index up
    use = GrantUse()
    use.note(mutated, "states:DescribeExecution")
    use.note(shifted, "sqs:SendMessage")
    assert [g.action for g in unexercised([original], use.actions)] == [
        "states:DescribeExecution",
        "states:StopExecution",
    ]
    assert unexercised([SEND], use.actions) == []  # same content, other index: the same grant


def test_a_reason_covers_grants_by_construct_without_the_cdk_hash_and_by_action_pattern() -> None:
    left = unexercised([KEY, SEND], GrantUse().actions)
    no_kms = Reason("TopicKey", ("kms:Decrypt",), "the local stack encrypts nothing")
    failure_path = Reason("Fn*Policy", ("sqs:*",), "only on the failure path")
    coverage = explain(left, [no_kms, failure_path])
    assert [(g.action, r) for g, r in coverage.explained] == [
        ("kms:Decrypt", no_kms),
        ("sqs:SendMessage", failure_path),
    ]
    assert [g.action for g in coverage.unexplained] == ["kms:GenerateDataKey*"]  # "kms:Decrypt" is not a pattern
    assert coverage.stale == [] and not coverage.ok


def test_a_grant_no_reason_covers_and_a_reason_that_covers_nothing_both_fail() -> None:
    left = unexercised([KEY, SEND], GrantUse().actions)
    stale = Reason("ReconcilerRole*", ("states:StartExecution",), "no longer granted")
    coverage = explain(left, [Reason("TopicKey", ("kms:*",), "no KMS locally"), stale])
    assert not coverage.ok
    assert [g.describe() for g in coverage.unexplained] == [
        f"FnRoleDefaultPolicy9341E278[5]: sqs:SendMessage on {QUEUE}"
    ]
    assert coverage.stale == [stale]
    text = coverage.report()
    print(text)
    assert "NO REASON" in text and "stale reason" in text and "kept: no KMS locally" in text


def test_an_allowed_decision_names_its_statement() -> None:
    assert statement_of("FnRoleDefaultPolicy9341E278[5]") == ("FnRoleDefaultPolicy9341E278", 5)
    assert statement_of("NotificationsTopicPolicy3B9626A5[1] (Sid 1)") == ("NotificationsTopicPolicy3B9626A5", 1)
    assert statement_of("no statement allows it") is None
    assert statement_of("unsupported policy: NotPrincipal") is None


def test_every_kept_grant_has_a_reason_and_patterns_that_can_match() -> None:
    raw = json.loads(REASONS_FILE.read_text())
    reasons = load_reasons()
    assert len(reasons) == len(raw) >= 1
    for reason in reasons:
        assert len(reason.reason) >= 20, reason  # a reason, not a label
        assert reason.actions and all(":" in a for a in reason.actions), reason
        assert reason.policy.strip(), reason


def test_a_reason_may_name_the_resources_it_covers() -> None:
    left = unexercised([SEND], GrantUse().actions)
    other_queue = Reason("Fn*", ("sqs:SendMessage",), "the other queue's DLQ path", ("*:other-queue",))
    this_queue = Reason("Fn*", ("sqs:SendMessage",), "the task DLQ's failure path", ("*:taskrail-TaskDeadLetterQueue",))
    assert explain(left, [other_queue]).unexplained == left
    assert [r for _, r in explain(left, [other_queue, this_queue]).explained] == [this_queue]


def test_the_use_of_several_runs_adds_up() -> None:
    first, second = GrantUse(), GrantUse()
    first.note(KEY, "kms:GenerateDataKey")
    second.note(KEY, "kms:Decrypt")
    second.note(SEND, "sqs:SendMessage")
    first.merge(second)
    assert unexercised([KEY, SEND], first.actions) == []
    assert second.actions(SEND) == {"sqs:SendMessage"}  # merging leaves the other as it was


def test_several_stacks_leave_a_grant_unexercised_only_if_every_one_did_whatever_their_physical_names() -> None:
    # Two stacks of one template: the WebSocket API id (in the grant's resource) differs, the statement does not
    first = Grant("PushRoleDefaultPolicyE5B38595", 4, "Allow", ("execute-api:ManageConnections",), ("arn:...:abc/*",))
    second = Grant("PushRoleDefaultPolicyE5B38595", 4, "Allow", ("execute-api:ManageConnections",), ("arn:...:xyz/*",))
    used_in_first = GrantUse()
    used_in_first.note(first, "execute-api:ManageConnections")
    runs = [unexercised([first, KEY], used_in_first.actions), unexercised([second, KEY], GrantUse().actions)]
    assert [(u.policy, u.action) for u in unexercised_in_every(runs)] == [
        ("TopicKeyA1B2C3D4", "kms:Decrypt"),
        ("TopicKeyA1B2C3D4", "kms:GenerateDataKey*"),
    ]
    assert unexercised_in_every([]) == []


def test_the_key_root_reason_covers_only_the_root_statements_kms_star() -> None:
    # The reason written for the key policy's root-admin statement ("kms:*") must not also explain the service
    # statements' kms:GenerateDataKey* (the alarm's and the rule's): fnmatch reads "kms:*" as a wildcard
    reasons = load_reasons()
    [root] = [r for r in reasons if r.reason.startswith("The key policy's first statement")]
    key, resources = "NotificationsTopicKey847416DA", ("*",)
    admin = Unexercised(key, 0, "kms:*", resources)
    data_key = Unexercised(key, 1, "kms:GenerateDataKey*", resources)
    decrypt = Unexercised(key, 2, "kms:Decrypt", resources)
    assert root.covers(admin)
    assert not root.covers(data_key) and not root.covers(decrypt)
    coverage = explain([admin, data_key, decrypt], reasons)
    assert [(g.action, r.reason[:30]) for g, r in coverage.explained] == [
        ("kms:*", root.reason[:30]),
        ("kms:Decrypt", "SNS's documented pair for a se"),
    ]
    assert coverage.unexplained == [data_key]  # no reason hides an unused service grant
