"""The reconciler's schedule, workflow, permissions and alarms, as synthesized."""

import json
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.infra.test_alarms import alarm_metrics
from tests.infra.test_template import as_list, policy_statements, resources_of


@pytest.fixture(scope="module")
def reconciler_asl() -> dict[str, Any]:
    return json.loads((ROOT / "asl" / "reconciler.asl.json").read_text())


def logical_id_of(template: dict[str, Any], resource_type: str, construct_path_part: str) -> str:
    (found,) = [
        k
        for k, v in resources_of(template, resource_type).items()
        if construct_path_part in v.get("Metadata", {}).get("aws:cdk:path", "")
    ]
    return found


def actions_of_role(template: dict[str, Any], role_id: str) -> dict[str, list[Any]]:
    """Action → the resources granted it, over every policy attached to the role."""
    granted: dict[str, list[Any]] = {}
    for policy_id, statement in policy_statements(template):
        roles = template["Resources"][policy_id]["Properties"]["Roles"]
        if {"Ref": role_id} in roles:
            for action in as_list(statement["Action"]):
                granted.setdefault(action, []).extend(as_list(statement["Resource"]))
    return granted


def schedule(template: dict[str, Any]) -> dict[str, Any]:
    (props,) = [s["Properties"] for s in resources_of(template, "AWS::Scheduler::Schedule").values()]
    return props


def test_the_reconciler_is_scheduled_every_five_minutes_without_a_flexible_window(template):
    props = schedule(template)

    assert props["ScheduleExpression"] == "rate(5 minutes)"
    assert props["State"] == "ENABLED"
    assert props["FlexibleTimeWindow"] == {"Mode": "OFF"}


def test_the_schedule_starts_the_reconciler_state_machine_with_the_scheduled_time(template):
    target = schedule(template)["Target"]
    reconciler = logical_id_of(template, "AWS::StepFunctions::StateMachine", "/ReconcilerStateMachine/")

    assert target["Arn"] == {"Ref": reconciler}
    assert json.loads(target["Input"]) == {"scheduledTime": "<aws.scheduler.scheduled-time>"}


def test_undeliverable_runs_are_retried_then_dead_lettered(template):
    target = schedule(template)["Target"]
    queue = logical_id_of(template, "AWS::SQS::Queue", "/ScheduleDeadLetterQueue/")

    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue, "Arn"]}}
    assert 0 < target["RetryPolicy"]["MaximumRetryAttempts"] <= 5
    # Older than the next run, a delivery is worth nothing: that run does the same work.
    assert 60 <= target["RetryPolicy"]["MaximumEventAgeInSeconds"] < 300


def test_the_schedule_role_may_only_start_the_reconciler_and_dead_letter_to_its_queue(template):
    target = schedule(template)["Target"]
    role = target["RoleArn"]["Fn::GetAtt"][0]
    reconciler = logical_id_of(template, "AWS::StepFunctions::StateMachine", "/ReconcilerStateMachine/")
    queue = logical_id_of(template, "AWS::SQS::Queue", "/ScheduleDeadLetterQueue/")

    assert actions_of_role(template, role) == {
        "states:StartExecution": [{"Ref": reconciler}],
        "sqs:SendMessage": [{"Fn::GetAtt": [queue, "Arn"]}],
    }
    trust = template["Resources"][role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "scheduler.amazonaws.com"}]
    assert all("aws:SourceAccount" in s["Condition"]["StringEquals"] for s in trust)


def test_only_schedules_of_this_accounts_default_group_may_assume_the_schedule_role(template):
    # Both confused-deputy keys, as "Set up the execution role" (EventBridge Scheduler User Guide) shows them: the
    # account alone would let any schedule of the account, in any group, start the reconciler with this role.
    role = schedule(template)["Target"]["RoleArn"]["Fn::GetAtt"][0]
    (trust,) = template["Resources"][role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    group_arn = trust["Condition"]["StringEquals"]["aws:SourceArn"]

    assert trust["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert group_arn == {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":scheduler:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                ":schedule-group/default",
            ],
        ]
    }
    assert "ScheduleGroupName" not in schedule(template), "the schedule lives in the default group"


def test_the_reconciler_function_gets_least_privilege_on_the_table_the_lifecycle_and_the_dlq(template):
    function_id = logical_id_of(template, "AWS::Lambda::Function", "/ReconcileTasksFunction/")
    function = template["Resources"][function_id]["Properties"]
    role = function["Role"]["Fn::GetAtt"][0]
    table = logical_id_of(template, "AWS::DynamoDB::Table", "/TasksTable/")
    lifecycle = logical_id_of(template, "AWS::StepFunctions::StateMachine", "/TaskLifecycleStateMachine/")
    dlq = logical_id_of(template, "AWS::SQS::Queue", "/TaskDeadLetterQueue/")

    granted = actions_of_role(template, role)

    indexes = [
        {"Fn::Join": ["", [{"Fn::GetAtt": [table, "Arn"]}, f"/index/{name}"]]}
        for name in ("pendingShard-createdAt", "outcomePending-createdAt")
    ]
    assert granted["dynamodb:Query"] == indexes
    assert function["Environment"]["Variables"]["TASKS_OUTCOME_PENDING_INDEX_NAME"] == "outcomePending-createdAt"
    assert function["Environment"]["Variables"]["TASKS_PENDING_INDEX_NAME"] == "pendingShard-createdAt"
    assert granted["dynamodb:GetItem"] == granted["dynamodb:UpdateItem"] == [{"Fn::GetAtt": [table, "Arn"]}]
    assert granted["states:StartExecution"] == [{"Ref": lifecycle}]
    (executions,) = granted["states:DescribeExecution"]
    assert ":execution:" in json.dumps(executions) and lifecycle in json.dumps(executions)
    # The DLQ message of a task it fails leaves from the table (the task-changes function's outbox), not from here.
    assert "sqs:SendMessage" not in granted
    assert function["Handler"] == "reconcile_tasks.handler.handler"
    assert function["Environment"]["Variables"]["STUCK_QUEUED_AFTER_SECONDS"] == "300"
    assert "DEAD_LETTER_QUEUE_URL" not in function["Environment"]["Variables"]
    assert dlq


def test_the_reconciler_is_a_standard_logged_traced_time_limited_workflow(template, reconciler_asl):
    reconciler = logical_id_of(template, "AWS::StepFunctions::StateMachine", "/ReconcilerStateMachine/")
    props = template["Resources"][reconciler]["Properties"]

    assert props["StateMachineType"] == "STANDARD"
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["TracingConfiguration"]["Enabled"] is True
    assert 0 < reconciler_asl["TimeoutSeconds"] <= 900


def test_a_failed_run_is_retried_then_caught_into_a_fail_state(reconciler_asl):
    reconcile = reconciler_asl["States"]["ReconcileTasks"]

    # both through their aliases (docs/DEPLOY.md)
    assert reconcile["Parameters"]["Payload"] == {"lifecycleStateMachineArn": "${TaskLifecycleLiveArn}"}
    assert reconcile["Parameters"]["FunctionName"] == "${ReconcileTasksFunctionLiveArn}"
    assert any("States.TaskFailed" in r["ErrorEquals"] for r in reconcile["Retry"])
    assert [c["ErrorEquals"] for c in reconcile["Catch"]] == [["States.ALL"]]
    failed = reconciler_asl["States"][reconcile["Catch"][0]["Next"]]
    assert failed["Type"] == "Fail"


def test_failed_and_timed_out_runs_and_dead_lettered_schedules_are_alarmed(template):
    reconciler = logical_id_of(template, "AWS::StepFunctions::StateMachine", "/ReconcilerStateMachine/")
    queue = logical_id_of(template, "AWS::SQS::Queue", "/ScheduleDeadLetterQueue/")
    function = logical_id_of(template, "AWS::Lambda::Function", "/ReconcileTasksFunction/")
    alarms = list(resources_of(template, "AWS::CloudWatch::Alarm").values())

    def alarmed(metric: str, dimension_value: dict[str, Any]) -> bool:
        return any(
            name == metric
            and any(d["Value"] == dimension_value for d in dimensions)
            and a["Properties"]["AlarmActions"]
            for a in alarms
            for _, name, dimensions in alarm_metrics(a)
        )

    assert alarmed("ExecutionsFailed", {"Ref": reconciler})
    assert alarmed("ExecutionsTimedOut", {"Ref": reconciler})
    assert alarmed("ApproximateNumberOfMessagesVisible", {"Fn::GetAtt": [queue, "QueueName"]})
    assert alarmed("Errors", {"Ref": function})
