"""Canary deploys (docs/DEPLOY.md): every function behind a ``live`` alias that CodeDeploy shifts by a canary and rolls
back on the function's alarms; the lifecycle state machine published as versions behind a ``live`` alias whose
deployment preference is a canary with the lifecycle's alarms; and every caller names an alias, never an unqualified
function or the unqualified lifecycle.

AWS: "AWS::CodeDeploy::DeploymentGroup" (AlarmConfiguration, AutoRollbackConfiguration with DEPLOYMENT_STOP_ON_ALARM,
DeploymentConfigName ``CodeDeployDefault.LambdaCanary10Percent5Minutes``); "AWS::StepFunctions::StateMachineAlias"
(DeploymentPreference: Type CANARY, Percentage, Interval in minutes, Alarms); "Types of metrics for Lambda
functions" (dimension Resource = ``function:alias``); "Authorization for versions and aliases in Step Functions
workflows" (a start through an alias is authorized on the state machine's ARN with ``states:StateMachineQualifier``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from infra.constructs.functions import LIVE_ALIAS
from infra.constructs.workflow import CANARY_INTERVAL_MINUTES, CANARY_PERCENTAGE

CANARY_CONFIG_NAME = "CodeDeployDefault.LambdaCanary10Percent5Minutes"


def of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == resource_type}


def referenced(token: Any) -> str | None:
    if isinstance(token, dict) and "Ref" in token:
        return str(token["Ref"])
    if isinstance(token, dict) and "Fn::GetAtt" in token:
        return str(token["Fn::GetAtt"][0])
    return None


def tokens(value: Any) -> Iterator[str]:
    """Every logical id a value names (Ref / Fn::GetAtt anywhere inside it)."""
    if isinstance(value, list):
        for item in value:
            yield from tokens(item)
    elif isinstance(value, dict):
        name = referenced(value)
        if name is not None:
            yield name
        else:
            for item in value.values():
                yield from tokens(item)


def lifecycle_machine(template: dict[str, Any]) -> str:
    (logical_id,) = [k for k in of_type(template, "AWS::StepFunctions::StateMachine") if "TaskLifecycle" in k]
    return logical_id


def test_every_function_is_behind_a_live_alias_on_its_published_version(template: dict[str, Any]) -> None:
    functions = of_type(template, "AWS::Lambda::Function")
    versions = of_type(template, "AWS::Lambda::Version")
    aliases = of_type(template, "AWS::Lambda::Alias")

    aliased = {}
    for alias in aliases.values():
        props = alias["Properties"]
        version = versions[props["FunctionVersion"]["Fn::GetAtt"][0]]
        assert props["Name"] == LIVE_ALIAS
        assert referenced(version["Properties"]["FunctionName"]) == referenced(props["FunctionName"])
        aliased[referenced(props["FunctionName"])] = alias
    print("functions behind a live alias:", sorted(aliased))
    assert set(aliased) == set(functions)


def test_each_alias_is_shifted_by_a_canary_and_rolled_back_on_its_functions_alarms(template: dict[str, Any]) -> None:
    groups = of_type(template, "AWS::CodeDeploy::DeploymentGroup")
    aliases = of_type(template, "AWS::Lambda::Alias")
    alarms = of_type(template, "AWS::CloudWatch::Alarm")
    assert len(groups) == len(aliases)

    for logical_id, group in groups.items():
        props = group["Properties"]
        assert props["DeploymentConfigName"] == CANARY_CONFIG_NAME
        assert props["DeploymentStyle"] == {"DeploymentOption": "WITH_TRAFFIC_CONTROL", "DeploymentType": "BLUE_GREEN"}
        assert "DEPLOYMENT_STOP_ON_ALARM" in props["AutoRollbackConfiguration"]["Events"]
        assert props["AutoRollbackConfiguration"]["Enabled"] is True
        assert props["AlarmConfiguration"]["Enabled"] is True
        wired = [alarms[a["Name"]["Ref"]] for a in props["AlarmConfiguration"]["Alarms"]]
        # The alias this group shifts: CDK marks it with the group's UpdatePolicy.
        (alias_id,) = [
            k
            for k, a in aliases.items()
            if a.get("UpdatePolicy", {}).get("CodeDeployLambdaAliasUpdate", {}).get("DeploymentGroupName", {})
            == {"Ref": logical_id}
        ]
        function = referenced(aliases[alias_id]["Properties"]["FunctionName"])
        watched = set()
        for alarm in wired:
            metrics = [alarm["Properties"]] + [
                q["MetricStat"]["Metric"] for q in alarm["Properties"].get("Metrics", []) if "MetricStat" in q
            ]
            for metric in metrics:
                if metric.get("Namespace") != "AWS/Lambda":
                    continue
                dimensions = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
                assert referenced(dimensions["FunctionName"]) == function
                # the alias's metrics: all traffic, the canary's version included
                assert dimensions["Resource"] == {"Fn::Join": ["", [{"Ref": function}, f":{LIVE_ALIAS}"]]}
                watched.add(metric["MetricName"])
        print(logical_id, "rolls back on", sorted(watched))
        assert watched == {"Errors", "Throttles"}


def test_the_lifecycle_is_published_behind_a_live_alias_with_a_canary_that_rolls_back_on_its_alarms(
    template: dict[str, Any],
) -> None:
    machine = lifecycle_machine(template)
    (version_id, version) = next(iter(of_type(template, "AWS::StepFunctions::StateMachineVersion").items()))
    (alias,) = of_type(template, "AWS::StepFunctions::StateMachineAlias").values()
    alarms = of_type(template, "AWS::CloudWatch::Alarm")

    assert version["Properties"]["StateMachineArn"] == {"Ref": machine}
    # a new revision (a changed definition) replaces the version: a new one is published by every such deploy
    assert version["Properties"]["StateMachineRevisionId"] == {"Fn::GetAtt": [machine, "StateMachineRevisionId"]}
    props = alias["Properties"]
    preference = props["DeploymentPreference"]
    print("lifecycle alias:", props["Name"], {k: v for k, v in preference.items() if k != "Alarms"})
    assert props["Name"] == LIVE_ALIAS
    assert preference["StateMachineVersionArn"] == {"Fn::GetAtt": [version_id, "Arn"]}
    assert (preference["Type"], preference["Percentage"], preference["Interval"]) == (
        "CANARY",
        CANARY_PERCENTAGE,
        CANARY_INTERVAL_MINUTES,
    )
    watched = {alarms[a["Ref"]]["Properties"]["MetricName"] for a in preference["Alarms"]}
    assert watched == {"ExecutionsFailed", "ExecutionThrottled", "ExecutionsTimedOut"}  # CloudWatch's names
    for alarm in preference["Alarms"]:
        dimensions = alarms[alarm["Ref"]]["Properties"]["Dimensions"]
        assert dimensions == [{"Name": "StateMachineArn", "Value": {"Ref": machine}}]


def caller_sites(template: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(where, what it names) for everything that invokes a function or starts a state machine."""
    for logical_id, machine in of_type(template, "AWS::StepFunctions::StateMachine").items():
        yield f"{logical_id} definition", machine["Properties"]["DefinitionString"]
    for logical_id, pipe in of_type(template, "AWS::Pipes::Pipe").items():
        yield f"{logical_id} target", pipe["Properties"]["Target"]
    for logical_id, mapping in of_type(template, "AWS::Lambda::EventSourceMapping").items():
        yield f"{logical_id} function", mapping["Properties"]["FunctionName"]
    for logical_id, method in of_type(template, "AWS::ApiGateway::Method").items():
        uri = method["Properties"].get("Integration", {}).get("Uri")
        if ":lambda:path/" in json.dumps(uri):
            yield f"{logical_id} integration", uri
    for logical_id, schedule in of_type(template, "AWS::Scheduler::Schedule").items():
        yield f"{logical_id} target", schedule["Properties"]["Target"]["Arn"]
    for logical_id, rule in of_type(template, "AWS::Events::Rule").items():
        for target in rule["Properties"].get("Targets", []):
            yield f"{logical_id} target", target["Arn"]
    for logical_id, permission in of_type(template, "AWS::Lambda::Permission").items():
        yield f"{logical_id} permission", permission["Properties"]["FunctionName"]


def test_every_caller_names_an_alias_never_an_unqualified_function_or_the_unqualified_lifecycle(
    template: dict[str, Any],
) -> None:
    functions = set(of_type(template, "AWS::Lambda::Function"))
    lambda_aliases = set(of_type(template, "AWS::Lambda::Alias"))
    lifecycle, lifecycle_alias = (
        lifecycle_machine(template),
        next(iter(of_type(template, "AWS::StepFunctions::StateMachineAlias"))),
    )

    sites = list(caller_sites(template))
    unqualified = [(where, name) for where, value in sites for name in tokens(value) if name in functions]
    lifecycle_starts = [
        where for where, value in sites if lifecycle in set(tokens(value)) and "TaskLifecycleStateMachine" not in where
    ]
    through_aliases = sorted(
        {f"{where} -> {name}" for where, value in sites for name in tokens(value) if name in lambda_aliases}
        | {f"{where} -> {lifecycle_alias}" for where, value in sites if lifecycle_alias in set(tokens(value))}
    )
    print("callers through an alias:", *through_aliases, sep="\n  ")

    assert unqualified == []
    # The failure rule matches the lifecycle's status-change events (their detail's stateMachineArn is unqualified);
    # it starts the recorder, never the lifecycle.
    assert [where for where in lifecycle_starts if "LifecycleFailedRule" not in where] == []
    starters = {where for where, value in sites if lifecycle_alias in set(tokens(value))}
    assert any("StartWorkflowPipe" in where for where in starters)  # the pipe
    assert any("Reconciler" in where for where in starters)  # the reconciler's payload: the lifecycle alias
    assert len(through_aliases) >= len(lambda_aliases)


def statements(template: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for policy in of_type(template, "AWS::IAM::Policy").values():
        statement = policy["Properties"]["PolicyDocument"]["Statement"]
        yield from statement if isinstance(statement, list) else [statement]


def test_grants_name_the_aliases_and_a_lifecycle_start_only_through_its_alias(template: dict[str, Any]) -> None:
    functions = set(of_type(template, "AWS::Lambda::Function"))
    lambda_aliases = set(of_type(template, "AWS::Lambda::Alias"))
    lifecycle = lifecycle_machine(template)
    invokes, starts = [], []
    for statement in statements(template):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if "lambda:InvokeFunction" in actions:
            invokes += [name for resource in resources for name in tokens(resource)]
        if "states:StartExecution" in actions and any(lifecycle in set(tokens(r)) for r in resources):
            starts.append(statement)

    print("invoke grants on:", sorted(set(invokes)))
    assert invokes and set(invokes) <= lambda_aliases
    assert not set(invokes) & functions
    assert len(starts) == 2  # the start pipe and the reconciler function
    for statement in starts:
        assert statement["Condition"] == {"StringEquals": {"states:StateMachineQualifier": LIVE_ALIAS}}
