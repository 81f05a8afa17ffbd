"""The local policy evaluator against AWS's documented evaluation rules (taskrail/local/iam/evaluate.py).

Cases from the IAM User Guide: "Policy evaluation for requests within a single account"
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-basics.html),
"The difference between explicit and implicit denies"
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_AccessPolicyLanguage_Interplay.html),
"Condition operators" (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html)
and the KMS "Default key policy" page (https://docs.aws.amazon.com/kms/latest/developerguide/key-policies-default.html).
"""

from __future__ import annotations

from typing import Any

import pytest

from taskrail.local.iam.evaluate import (
    Outcome,
    Policy,
    PolicyKind,
    Principal,
    Request,
    UnsupportedPolicy,
    denial_message,
    evaluate,
)

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/carlos"
CARLOS = Principal(f"arn:aws:sts::{ACCOUNT}:assumed-role/carlos/session", ACCOUNT, role_arn=ROLE)
BUCKET = "arn:aws:s3:::amzn-s3-demo-bucket-carlossalazar-logs"


def identity(*statements: dict[str, Any], name: str = "CarlosPolicy") -> Policy:
    return Policy(name, {"Version": "2012-10-17", "Statement": list(statements)})


def resource(*statements: dict[str, Any], name: str = "BucketPolicy", key: bool = False) -> Policy:
    return Policy(name, {"Version": "2012-10-17", "Statement": list(statements)}, PolicyKind.RESOURCE, key)


def request(action: str, arn: str, principal: Principal = CARLOS, **context: Any) -> Request:
    return Request(principal, action, arn, context)


def test_nothing_allows_it_is_an_implicit_deny() -> None:
    decision = evaluate(request("s3:PutObject", f"{BUCKET}/a"))
    assert decision.outcome is Outcome.IMPLICIT_DENY
    assert decision.policy is None


def test_the_single_account_example_identity_policy_alone_is_enough() -> None:
    # The guide's example: Carlos's identity policy allows s3:ListBucket etc.; the bucket policy does not name him.
    carlos = identity({"Sid": "AllowS3ListRead", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": BUCKET})
    bucket = resource({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/other"},
                       "Action": "s3:*", "Resource": f"{BUCKET}/*"})  # fmt: skip
    decision = evaluate(request("s3:ListBucket", BUCKET), [carlos], [bucket])
    assert decision.allowed and decision.policy == "CarlosPolicy" and decision.sid == "AllowS3ListRead"


def test_a_resource_policy_that_names_the_principal_is_enough_within_one_account() -> None:
    # "If either the identity-based policy or the resource-based policy within the same account allows the request
    # and the other doesn't, the request is still allowed."
    bucket = resource(
        {"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "s3:PutObject", "Resource": f"{BUCKET}/*"}
    )
    decision = evaluate(request("s3:PutObject", f"{BUCKET}/logs/1"), [], [bucket])
    assert decision.allowed and decision.policy_kind is PolicyKind.RESOURCE


def test_a_resource_policy_naming_the_account_delegates_to_identity_policies() -> None:
    bucket = resource({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                       "Action": "s3:*", "Resource": f"{BUCKET}/*"})  # fmt: skip
    assert evaluate(request("s3:PutObject", f"{BUCKET}/a"), [], [bucket]).outcome is Outcome.IMPLICIT_DENY
    carlos = identity({"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"{BUCKET}/*"})
    assert evaluate(request("s3:PutObject", f"{BUCKET}/a"), [carlos], [bucket]).allowed


def test_an_explicit_deny_in_either_policy_wins_over_any_allow() -> None:
    allow = identity({"Effect": "Allow", "Action": "s3:*", "Resource": "*"})
    deny_in_identity = identity({"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"}, name="Deny")
    decision = evaluate(request("s3:DeleteObject", f"{BUCKET}/a"), [allow, deny_in_identity])
    assert decision.outcome is Outcome.EXPLICIT_DENY and decision.policy == "Deny"
    deny_in_bucket = resource({"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": f"{BUCKET}/*"})
    decision = evaluate(request("s3:GetObject", f"{BUCKET}/a"), [allow], [deny_in_bucket])
    assert decision.outcome is Outcome.EXPLICIT_DENY and decision.policy_kind is PolicyKind.RESOURCE


def test_the_tls_only_deny_applies_exactly_when_the_transport_is_not_secure() -> None:
    # The template's S3/SQS/SNS resource policies: Deny everything when aws:SecureTransport is false.
    objects = [BUCKET, f"{BUCKET}/*"]
    tls_only = resource({"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "s3:*", "Resource": objects,
                         "Condition": {"Bool": {"aws:SecureTransport": "false"}}})  # fmt: skip
    allow = identity({"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{BUCKET}/*"})
    over_tls = request("s3:GetObject", f"{BUCKET}/a", **{"aws:SecureTransport": True})
    in_clear = request("s3:GetObject", f"{BUCKET}/a", **{"aws:SecureTransport": False})
    assert evaluate(over_tls, [allow], [tls_only]).allowed
    assert evaluate(in_clear, [allow], [tls_only]).outcome is Outcome.EXPLICIT_DENY


def test_action_wildcards_match_case_insensitively_and_resources_case_sensitively() -> None:
    policy = identity(
        {
            "Effect": "Allow",
            "Action": ["kms:ReEncrypt*", "dynamodb:Get?tem"],
            "Resource": "arn:aws:dynamodb:*:*:table/T",
        }
    )
    assert evaluate(request("KMS:reencryptfrom", "arn:aws:dynamodb:us-east-1:1:table/T"), [policy]).allowed
    assert evaluate(request("dynamodb:GetItem", "arn:aws:dynamodb:us-east-1:1:table/T"), [policy]).allowed
    assert not evaluate(request("dynamodb:GetItem", "arn:aws:dynamodb:us-east-1:1:table/t"), [policy]).allowed
    assert not evaluate(request("dynamodb:GetItems", "arn:aws:dynamodb:us-east-1:1:table/T"), [policy]).allowed


def test_a_table_grant_does_not_cover_its_indexes() -> None:
    # A Query on an index addresses table/T/index/I: the table's ARN alone does not grant it.
    table = "arn:aws:dynamodb:us-east-1:123456789012:table/Tasks"
    policy = identity({"Effect": "Allow", "Action": "dynamodb:Query", "Resource": table})
    assert evaluate(request("dynamodb:Query", table), [policy]).allowed
    assert not evaluate(request("dynamodb:Query", f"{table}/index/pendingShard-createdAt"), [policy]).allowed


def test_star_in_a_resource_spans_slashes_and_colons() -> None:
    policy = identity(
        {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": "arn:aws:lambda:us-east-1:1:function:f:*"},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{BUCKET}/tasks/*"},
    )
    assert evaluate(request("lambda:InvokeFunction", "arn:aws:lambda:us-east-1:1:function:f:live"), [policy]).allowed
    assert not evaluate(request("lambda:InvokeFunction", "arn:aws:lambda:us-east-1:1:function:f"), [policy]).allowed
    assert evaluate(request("s3:GetObject", f"{BUCKET}/tasks/t1/result.json"), [policy]).allowed
    assert not evaluate(request("s3:GetObject", f"{BUCKET}/users/u/x"), [policy]).allowed


def test_not_action_and_not_resource_match_everything_else() -> None:
    # The "explicit and implicit denies" page's pattern: allow all but some actions / resources.
    policy = identity(
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:*", "NotResource": [f"{BUCKET}/public/*"]},
    )
    assert evaluate(request("sqs:SendMessage", "arn:aws:sqs:us-east-1:1:q"), [policy]).allowed
    assert not evaluate(request("iam:CreateRole", "*"), [policy]).allowed
    assert evaluate(request("s3:GetObject", f"{BUCKET}/public/a"), [policy]).allowed
    assert evaluate(request("s3:GetObject", f"{BUCKET}/private/a"), [policy]).outcome is Outcome.EXPLICIT_DENY


def test_string_like_on_s3_prefix_and_a_missing_key() -> None:
    policy = identity(
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": BUCKET,
         "Condition": {"StringLike": {"s3:prefix": ["diagnostics/*"]}}}
    )  # fmt: skip
    assert evaluate(request("s3:ListBucket", BUCKET, **{"s3:prefix": "diagnostics/a"}), [policy]).allowed
    assert not evaluate(request("s3:ListBucket", BUCKET, **{"s3:prefix": "tasks/"}), [policy]).allowed
    assert not evaluate(request("s3:ListBucket", BUCKET), [policy]).allowed  # no prefix: the key is absent


def test_a_service_principal_needs_the_resource_policy_and_its_source_conditions() -> None:
    # The alarm topic's policy: cloudwatch.amazonaws.com may publish for alarms of this account only.
    topic = "arn:aws:sns:us-east-1:123456789012:alarms"
    policy = resource(
        {"Sid": "AllowCloudWatchAlarmsOfThisAccount", "Effect": "Allow",
         "Principal": {"Service": "cloudwatch.amazonaws.com"}, "Action": "sns:Publish", "Resource": topic,
         "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT},
                       "ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:*"}}},
    )  # fmt: skip
    cloudwatch = Principal.for_service("cloudwatch.amazonaws.com", ACCOUNT)
    events = Principal.for_service("events.amazonaws.com", ACCOUNT)
    ours = {"aws:SourceAccount": ACCOUNT, "aws:SourceArn": f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:DlqAlarm"}
    other = {**ours, "aws:SourceAccount": "999999999999"}
    assert evaluate(Request(cloudwatch, "sns:Publish", topic, ours), [], [policy]).sid == (
        "AllowCloudWatchAlarmsOfThisAccount"
    )
    assert not evaluate(Request(cloudwatch, "sns:Publish", topic, other), [], [policy]).allowed
    assert not evaluate(Request(cloudwatch, "sns:Publish", topic, {}), [], [policy]).allowed
    assert not evaluate(Request(events, "sns:Publish", topic, ours), [], [policy]).allowed
    # an identity policy never stands in for a service principal's grant
    everything = identity({"Effect": "Allow", "Action": "*", "Resource": "*"})
    assert not evaluate(Request(events, "sns:Publish", topic, ours), [everything], []).allowed


def test_arn_like_compares_each_arn_part() -> None:
    policy = resource(
        {"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage",
         "Resource": "*", "Condition": {"ArnEquals": {"aws:SourceArn": "arn:aws:events:us-east-1:1:rule/r"}}}
    )  # fmt: skip
    events = Principal.for_service("events.amazonaws.com", ACCOUNT)
    ok = Request(
        events, "sqs:SendMessage", "arn:aws:sqs:us-east-1:1:q", {"aws:SourceArn": "arn:aws:events:us-east-1:1:rule/r"}
    )
    other = Request(
        events, "sqs:SendMessage", "arn:aws:sqs:us-east-1:1:q", {"aws:SourceArn": "arn:aws:events:us-east-1:1:rule/s"}
    )
    assert evaluate(ok, [], [policy]).allowed
    assert not evaluate(other, [], [policy]).allowed


def test_negated_operators_hold_when_the_key_is_missing_and_if_exists_skips_it() -> None:
    deny = identity(
        {
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {"StringNotEquals": {"aws:PrincipalOrgID": "o-1"}},
        }
    )
    allow = identity({"Effect": "Allow", "Action": "*", "Resource": "*"}, name="All")
    assert evaluate(request("sqs:SendMessage", "*"), [allow, deny]).outcome is Outcome.EXPLICIT_DENY
    if_exists = identity(
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*",
         "Condition": {"StringEqualsIfExists": {"aws:SourceAccount": ACCOUNT}}}
    )  # fmt: skip
    assert evaluate(request("sqs:SendMessage", "*"), [if_exists]).allowed
    assert not evaluate(request("sqs:SendMessage", "*", **{"aws:SourceAccount": "1"}), [if_exists]).allowed


def test_every_condition_of_a_statement_must_hold_and_any_value_of_a_key() -> None:
    policy = identity(
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*",
         "Condition": {"StringLike": {"s3:prefix": ["a/*", "b/*"]}, "Bool": {"aws:SecureTransport": "true"}}}
    )  # fmt: skip
    assert evaluate(
        request("s3:ListBucket", BUCKET, **{"s3:prefix": "b/x", "aws:SecureTransport": True}), [policy]
    ).allowed
    assert not evaluate(
        request("s3:ListBucket", BUCKET, **{"s3:prefix": "b/x", "aws:SecureTransport": False}), [policy]
    ).allowed
    assert not evaluate(
        request("s3:ListBucket", BUCKET, **{"s3:prefix": "c/x", "aws:SecureTransport": True}), [policy]
    ).allowed


def test_a_kms_key_policy_must_allow_the_principal_or_enable_iam_policies() -> None:
    key = "arn:aws:kms:us-east-1:123456789012:key/k"
    use = identity({"Effect": "Allow", "Action": "kms:GenerateDataKey*", "Resource": "*"})
    services_only = resource(
        {"Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "kms:*", "Resource": "*"},
        name="KeyPolicy",
        key=True,
    )
    enabling = resource(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"},
        name="KeyPolicy",
        key=True,
    )
    assert not evaluate(request("kms:GenerateDataKey", key), [use], [services_only]).allowed
    assert evaluate(request("kms:GenerateDataKey", key), [use], [enabling]).allowed
    assert not evaluate(request("kms:GenerateDataKey", key), [], [enabling]).allowed
    sns = Principal.for_service("sns.amazonaws.com", ACCOUNT)
    assert evaluate(Request(sns, "kms:Decrypt", key), [], [services_only]).allowed


def test_an_operator_the_evaluator_does_not_know_fails_loudly() -> None:
    policy = identity(
        {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}
    )
    with pytest.raises(UnsupportedPolicy, match="IpAddress"):
        evaluate(request("s3:GetObject", BUCKET), [policy])


def test_denial_messages_name_principal_action_resource_and_reason() -> None:
    # "Troubleshoot access denied error messages" (IAM User Guide): the implicit and explicit forms.
    req = request("dynamodb:GetItem", "arn:aws:dynamodb:us-east-1:123456789012:table/T")
    assert denial_message(req, evaluate(req)) == (
        "User: arn:aws:sts::123456789012:assumed-role/carlos/session is not authorized to perform: dynamodb:GetItem "
        "on resource: arn:aws:dynamodb:us-east-1:123456789012:table/T because no identity-based policy allows the "
        "dynamodb:GetItem action"
    )
    deny = resource({"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*"})
    assert denial_message(req, evaluate(req, [], [deny])).endswith("with an explicit deny in a resource-based policy")
    deny_identity = identity({"Effect": "Deny", "Action": "*", "Resource": "*"})
    assert denial_message(req, evaluate(req, [deny_identity])).endswith(
        "with an explicit deny in an identity-based policy"
    )
