"""The deploy-time choice of the lifecycle's workflow type: STANDARD by default, EXPRESS with `-c lifecycleType=EXPRESS`
(the CDK CLI's synth of it, nag- and lint-clean, is in test_cdk_cli.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.synth import asl_drift
from tests.infra.test_template import resources_of
from workflows import lifecycle_type
from workflows.asl import asl_file
from workflows.task_lifecycle import RECORD_FAILURE, TASK_FAILED, process_time_budget


def lifecycle(template: dict[str, Any]) -> dict[str, Any]:
    [machine] = [
        m["Properties"]
        for k, m in resources_of(template, "AWS::StepFunctions::StateMachine").items()
        if k.startswith("WorkflowTaskLifecycleStateMachine")
    ]
    return machine


def validate_environment(template: dict[str, Any]) -> dict[str, Any]:
    [function] = [
        f["Properties"]
        for k, f in resources_of(template, "AWS::Lambda::Function").items()
        if k.startswith("FunctionsValidateTaskFunction")
    ]
    return dict(function["Environment"]["Variables"])


def test_both_variants_asl_files_are_in_step_with_the_workflow_code(template, express_template):
    assert asl_drift(template, express_template) == [], "asl/ is stale: run `make asl`"
    assert asl_file("task_lifecycle", "EXPRESS").name == "task_lifecycle.express.asl.json"


def test_the_express_lifecycle_is_an_express_machine_of_five_minutes(template, express_template):
    standard, express = lifecycle(template), lifecycle(express_template)
    definition = json.loads(asl_file("task_lifecycle", "EXPRESS").read_text())
    print(
        f"STANDARD {standard['StateMachineType']}, EXPRESS {express['StateMachineType']}, "
        f"{definition['TimeoutSeconds']} s"
    )
    assert (standard["StateMachineType"], express["StateMachineType"]) == ("STANDARD", "EXPRESS")
    assert definition["TimeoutSeconds"] == lifecycle_type.EXPRESS_MAX_EXECUTION_SECONDS == 300
    assert express["LoggingConfiguration"]["Level"] == "ALL"  # its only history, read by the console
    assert express["TracingConfiguration"]["Enabled"] is True


def test_express_records_its_failures_itself_without_a_recorder_or_a_status_change_rule(template, express_template):
    # Express executions send no status-change events to EventBridge: the recorder would never start
    def recorders(source: dict[str, Any]) -> list[str]:
        machines = resources_of(source, "AWS::StepFunctions::StateMachine")
        return [k for k in machines if "FailureRecorder" in k]

    def status_rules(source: dict[str, Any]) -> list[str]:
        return [k for k in resources_of(source, "AWS::Events::Rule") if "LifecycleFailed" in k]

    assert (len(recorders(template)), len(status_rules(template))) == (1, 1)
    assert (recorders(express_template), status_rules(express_template)) == ([], [])
    states = json.loads(asl_file("task_lifecycle", "EXPRESS").read_text())["States"]
    catching = sorted(n for n, s in states.items() if any(c["Next"] == RECORD_FAILURE for c in s.get("Catch", [])))
    assert catching == ["MarkRejected", "MarkSucceeded", "ProcessTask", "StoreResult", "ValidateParameters"]
    for name in catching:
        assert states[name]["Catch"][-1]["ErrorEquals"] == ["States.ALL"], name
    assert states[RECORD_FAILURE]["Next"] == TASK_FAILED and states[TASK_FAILED]["Type"] == "Fail"
    assert "$$.Execution.RedriveCount" not in json.dumps(states)  # never redriven


@pytest.mark.parametrize("kind", lifecycle_type.LIFECYCLE_TYPES)
def test_validate_is_told_the_lifecycle_time_budget(kind, template, express_template):
    environment = validate_environment(template if kind == "STANDARD" else express_template)
    budget = process_time_budget(kind)
    print(kind, {k: v for k, v in environment.items() if k.startswith(("LIFECYCLE", "PROCESS"))})
    assert environment["LIFECYCLE_TYPE"] == kind
    assert environment["PROCESS_TIME_BUDGET_SECONDS"] == str(budget.budget_seconds)
    assert environment["PROCESS_TRIES"] == "5"  # ProcessTask's TRANSIENT retry: 4 retries
    # 300 s less 30 s for the other states and 15 s of retry waits (1 + 2 + 4 + 8, FULL jitter's worst)
    assert budget.budget_seconds == (255 if kind == "EXPRESS" else 7155)


def test_an_unknown_lifecycle_type_is_refused_at_synth():
    with pytest.raises(ValueError, match="expected one of STANDARD, EXPRESS"):
        lifecycle_type.parse("FAST")
    assert lifecycle_type.parse(None) == "STANDARD"
    assert lifecycle_type.parse("express") == "EXPRESS"


def test_only_the_express_reconciler_settles_running_tasks_by_the_express_limit(template, express_template):
    def reconciler_environment(source: dict[str, Any]) -> dict[str, Any]:
        [function] = [
            f["Properties"]
            for k, f in resources_of(source, "AWS::Lambda::Function").items()
            if "ReconcileTasksFunction" in k
        ]
        return dict(function["Environment"]["Variables"])

    assert "LIFECYCLE_MAX_EXECUTION_SECONDS" not in reconciler_environment(template)
    assert reconciler_environment(express_template)["LIFECYCLE_MAX_EXECUTION_SECONDS"] == "300"


def test_the_express_task_changes_function_may_not_and_does_not_stop_executions(template, express_template):
    def changes(source: dict[str, Any]) -> tuple[dict[str, Any], str]:
        functions = resources_of(source, "AWS::Lambda::Function")
        [function] = [f for k, f in functions.items() if "TaskChangesFunction" in k]
        policies = json.dumps(
            [p for p in resources_of(source, "AWS::IAM::Policy").values() if "TaskChanges" in json.dumps(p)]
        )
        return dict(function["Properties"]["Environment"]["Variables"]), policies

    standard_env, standard_policies = changes(template)
    express_env, express_policies = changes(express_template)
    assert "STOP_EXECUTIONS" not in standard_env and "states:StopExecution" in standard_policies
    assert express_env["STOP_EXECUTIONS"] == "false" and "states:StopExecution" not in express_policies
