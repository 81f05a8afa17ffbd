"""The one failure path as the template declares it (issue 19): the lifecycle catches only rejections and cancels,
a rule on its own status changes starts the failure recorder, whose role may do one thing: UpdateItem the Tasks
table."""

from __future__ import annotations

import json
from typing import Any

from task_common.contract import EXECUTION_STATUS_DETAIL_TYPE, EXECUTION_STATUS_EVENT_SOURCE
from workflows.asl import asl_file


def _resources(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == resource_type}


def _one(template: dict[str, Any], resource_type: str, name_part: str) -> tuple[str, dict[str, Any]]:
    (found,) = [(k, v) for k, v in _resources(template, resource_type).items() if name_part in k]
    return found


def test_the_lifecycle_catches_only_rejections_cancels_and_duplicate_claims():
    definition = json.loads(asl_file("task_lifecycle").read_text())
    caught = {
        (name, error)
        for name, state in definition["States"].items()
        for catcher in state.get("Catch", [])
        for error in catcher["ErrorEquals"]
    }
    print(sorted(caught))
    assert {error for _, error in caught} == {
        "ValidationFailed",
        "TaskCancelled",
        "DynamoDB.ConditionalCheckFailedException",
    }
    assert not [s for s in definition["States"].values() if s["Type"] == "Fail"], "no Fail state: Redrive resumes"


def test_a_rule_on_the_lifecycles_failed_timed_out_and_aborted_events_starts_the_recorder(template: dict[str, Any]):
    lifecycle_id, _ = _one(template, "AWS::StepFunctions::StateMachine", "TaskLifecycleStateMachine")
    recorder_id, _ = _one(template, "AWS::StepFunctions::StateMachine", "FailureRecorderStateMachine")
    _, rule = _one(template, "AWS::Events::Rule", "LifecycleFailedRule")
    pattern = rule["Properties"]["EventPattern"]
    assert "EventBusName" not in rule["Properties"], "Step Functions sends its events to the default bus"
    assert pattern == {
        "source": [EXECUTION_STATUS_EVENT_SOURCE],
        "detail-type": [EXECUTION_STATUS_DETAIL_TYPE],
        "detail": {"stateMachineArn": [{"Ref": lifecycle_id}], "status": ["ABORTED", "FAILED", "TIMED_OUT"]},
    }
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Ref": recorder_id}
    assert "DeadLetterConfig" in target and target["RetryPolicy"]["MaximumRetryAttempts"] == 185
    role_id = target["RoleArn"]["Fn::GetAtt"][0]
    trust = template["Resources"][role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "events.amazonaws.com"}]
    assert "aws:SourceAccount" in trust[0]["Condition"]["StringEquals"]


def test_the_recorders_role_may_only_update_the_tasks_table(template: dict[str, Any]):
    _, recorder = _one(template, "AWS::StepFunctions::StateMachine", "FailureRecorderStateMachine")
    role_id = recorder["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    actions = set()
    for policy in _resources(template, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                for action in [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]:
                    actions.add(action)
    assert {a for a in actions if not a.startswith(("xray:", "logs:"))} == {"dynamodb:UpdateItem"}


def test_the_recorders_write_is_conditional_on_the_running_task_of_this_execution_and_redrive():
    definition = json.loads(asl_file("failure_recorder").read_text())
    (record,) = [s for s in definition["States"].values() if s.get("Resource", "").endswith("dynamodb:updateItem")]
    condition = record["Parameters"]["ConditionExpression"]
    assert condition == (
        "#status = :running AND executionArn = :arn "
        "AND (attribute_not_exists(redriveCount) OR redriveCount <= :redrive)"
    )
    assert "outcomePending = :failed" in record["Parameters"]["UpdateExpression"]
    assert record["Catch"][0]["ErrorEquals"] == ["DynamoDB.ConditionalCheckFailedException"]
