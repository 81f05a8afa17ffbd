"""Alarms page a person only for what needs one, and can reach them (issue 9, defects 1 and 6)."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from infra.constructs.notifications import ALARM_EMAIL_CONTEXT
from infra.stack import TaskrailStack
from tests.infra.test_template import as_list, resources_of

ACCOUNT, REGION, PARTITION = "111122223333", "eu-west-1", "aws"


def alarm_metrics(alarm: dict[str, Any]) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """(namespace, metric name, dimensions) of every metric an alarm reads, whether single or in a math
    expression."""
    props = alarm["Properties"]
    if "MetricName" in props:
        return [(props["Namespace"], props["MetricName"], props.get("Dimensions", []))]
    found = []
    for query in props.get("Metrics", []):
        metric = query.get("MetricStat", {}).get("Metric")
        if metric:
            found.append((metric["Namespace"], metric["MetricName"], metric.get("Dimensions", [])))
    return found


def resolve(value: Any, refs: dict[str, str]) -> Any:
    """Enough of CloudFormation's intrinsics to read ARNs in policies: Ref (pseudo parameters and the resources
    named in ``refs``), Fn::GetAtt X.Arn, Fn::Join."""
    pseudo = {"AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::Partition": PARTITION}
    if isinstance(value, list):
        return [resolve(v, refs) for v in value]
    if isinstance(value, dict) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref":
            return pseudo.get(arg) or refs.get(arg, f"<{arg}>")
        if key == "Fn::GetAtt":
            return refs.get(arg[0], f"<{arg[0]}.{arg[1]}>")
        if key == "Fn::Join":
            return arg[0].join(str(resolve(p, refs)) for p in arg[1])
    return value


def _glob(pattern: str, value: str) -> bool:
    import fnmatch

    return fnmatch.fnmatchcase(value, pattern)


def _conditions_hold(conditions: dict[str, Any], context: dict[str, str], refs: dict[str, str]) -> bool:
    """The operators the template uses (IAM's condition operators reference)."""
    for operator, tests in conditions.items():
        for key, expected in tests.items():
            actual, wanted = context.get(key), [str(v) for v in as_list(resolve(expected, refs))]
            if actual is None:
                return False
            if operator in ("StringEquals", "ArnEquals") and actual not in wanted:
                return False
            if operator in ("ArnLike", "StringLike") and not any(_glob(w, actual) for w in wanted):
                return False
            if operator == "Bool" and actual.lower() not in [w.lower() for w in wanted]:
                return False
            if operator not in ("StringEquals", "ArnEquals", "ArnLike", "StringLike", "Bool"):
                raise AssertionError(f"condition operator {operator} is not evaluated by this test")
    return True


def publish_allowed(policy: dict[str, Any], *, service: str, topic: str, context: dict[str, str], refs) -> bool:
    """A resource policy's decision for ``service`` calling sns:Publish on ``topic``: an explicit Deny wins,
    otherwise an Allow is needed (IAM policy evaluation logic)."""
    allowed = False
    for statement in as_list(policy["Statement"]):
        principal = statement.get("Principal")
        principals = (
            ["*"] if principal == "*" else as_list(principal.get("Service", [])) + as_list(principal.get("AWS", []))
        )
        if "*" not in principals and service not in principals:
            continue
        if "sns:Publish" not in as_list(statement["Action"]) and "sns:*" not in as_list(statement["Action"]):
            continue
        if topic not in [str(r) for r in as_list(resolve(statement["Resource"], refs))]:
            continue
        if not _conditions_hold(statement.get("Condition", {}), context, refs):
            continue
        if statement["Effect"] == "Deny":
            return False
        allowed = True
    return allowed


def test_every_alarm_action_is_allowed_by_its_topics_policy(template):
    # Given the alarms and the topic policies of the template (a topic with a policy loses SNS's default one)
    topics = {
        logical_id: f"arn:aws:sns:{REGION}:{ACCOUNT}:{logical_id}"
        for logical_id in resources_of(template, "AWS::SNS::Topic")
    }
    policies = {
        topic_id: policy["Properties"]["PolicyDocument"]
        for policy in resources_of(template, "AWS::SNS::TopicPolicy").values()
        for topic_ref in policy["Properties"]["Topics"]
        for topic_id in [topic_ref["Ref"]]
    }
    alarms = resources_of(template, "AWS::CloudWatch::Alarm")
    assert alarms
    for alarm_id, alarm in alarms.items():
        actions = alarm["Properties"]["AlarmActions"]
        assert actions, f"{alarm_id} notifies nobody"
        for action in actions:
            topic_id = action["Ref"]
            # When CloudWatch publishes the alarm's state change over TLS, as this account's alarm
            context = {
                "aws:SourceAccount": ACCOUNT,
                "aws:SourceArn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{alarm_id}",
                "aws:SecureTransport": "true",
            }
            # Then the topic's policy allows it
            assert topic_id in policies, f"{topic_id} has no policy"
            assert publish_allowed(
                policies[topic_id],
                service="cloudwatch.amazonaws.com",
                topic=topics[topic_id],
                context=context,
                refs=topics,
            ), f"{alarm_id}: cloudwatch.amazonaws.com may not publish to {topic_id}"
            # And another account's alarm may not (the confused deputy)
            foreign = context | {
                "aws:SourceAccount": "999988887777",
                "aws:SourceArn": "arn:aws:cloudwatch:eu-west-1:999988887777:alarm:x",
            }
            assert not publish_allowed(
                policies[topic_id],
                service="cloudwatch.amazonaws.com",
                topic=topics[topic_id],
                context=foreign,
                refs=topics,
            )


def test_the_alarm_topic_key_lets_cloudwatch_encrypt(template):
    topic = next(t for k, t in resources_of(template, "AWS::SNS::Topic").items() if "AlarmTopic" in k)
    key_id = topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    statements = resources_of(template, "AWS::KMS::Key")[key_id]["Properties"]["KeyPolicy"]["Statement"]
    granted = {
        action
        for s in statements
        if s["Effect"] == "Allow" and s.get("Principal", {}).get("Service") == "cloudwatch.amazonaws.com"
        for action in as_list(s["Action"])
    }
    assert {"kms:Decrypt", "kms:GenerateDataKey*"} <= granted


def synth_with_context(context: dict[str, str]) -> Template:
    app = cdk.App(context={"aws:cdk:enable-path-metadata": True, **context})
    return Template.from_stack(TaskrailStack(app, "taskrail"))


@pytest.fixture(scope="module")
def subscribed() -> Template:
    return synth_with_context({ALARM_EMAIL_CONTEXT: "ops@example.com"})


def test_the_deployer_subscribes_an_email_to_the_alarms(subscribed: Template):
    subscribed.has_resource_properties("AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"})


def test_expected_outcomes_never_reach_an_alarm(template):
    # Lambda counts every raised error; the functions raise ValidationFailed, TaskCancelled and the task errors on
    # purpose. No alarm may read Lambda's Errors except net of the handlers' ExpectedErrors.
    for alarm_id, alarm in resources_of(template, "AWS::CloudWatch::Alarm").items():
        metrics = alarm_metrics(alarm)
        names = {(namespace, name) for namespace, name, _ in metrics}
        if ("AWS/Lambda", "Errors") in names:
            assert ("taskrail", "ExpectedErrors") in names, f"{alarm_id} alarms on expected errors"
            expression = next(q["Expression"] for q in alarm["Properties"]["Metrics"] if "Expression" in q)
            assert " - FILL(" in expression, expression
        # Rejections and cancels are not failed executions; an aborted execution is a cancel
        assert ("AWS/States", "ExecutionsAborted") not in names


def test_every_function_has_an_unexpected_errors_alarm_and_stuck_tasks_are_alarmed(template):
    functions = set(resources_of(template, "AWS::Lambda::Function"))
    watched = {
        dimension["Value"]["Ref"]
        for alarm in resources_of(template, "AWS::CloudWatch::Alarm").values()
        for namespace, name, dimensions in alarm_metrics(alarm)
        if (namespace, name) == ("AWS/Lambda", "Errors")
        for dimension in dimensions
        if dimension["Name"] == "FunctionName"  # beside Resource = function:live (the alias every caller invokes)
    }
    assert watched == functions
    stuck = [a for k, a in resources_of(template, "AWS::CloudWatch::Alarm").items() if "StuckTasks" in k]
    assert len(stuck) == 1
    assert {name for _, name, _ in alarm_metrics(stuck[0])} >= {"StuckTasksStarted", "EndedTasksMarkedFailed"}
