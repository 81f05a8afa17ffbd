"""The template's control-plane resources, created in moto so the AWS CLI and boto3 see the stack that runs.

On AWS, ``aws pipes list-pipes``, ``aws scheduler get-schedule``, ``aws apigateway get-resources``, ``aws logs
describe-log-groups`` and ``aws cloudwatch describe-alarms`` show what the template created. Locally the pipes,
schedules and REST API are run by our emulators (``pipes.py``, ``scheduler.py``, ``apigw.py``), so without this
module those resources existed only inside the emulators. Each function here is one line of
``provision.PROVISIONERS``; it creates the resource in moto from its (resolved) template properties. The pipe and
schedule runners then read their configuration back from moto (``PipeSpec.from_description``,
``ScheduleSpec.from_description``), and the pipe runner honours ``aws pipes stop-pipe`` / ``start-pipe``.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from taskrail.local.region import ACCOUNT_ID, PARTITION, REGION


class Provisioner(Protocol):
    """What of ``provision.Provisioner`` these functions use (provision imports this module, not the reverse)."""

    resources: Any
    resolve: Any
    clients: Any

    @property
    def template(self) -> dict[str, Any]: ...

    def name(self, logical_id: str, *, lower: bool = False) -> str: ...


#: the create_pipe / create_schedule / put_metric_alarm parameters a template's properties map to unchanged
PIPE_FIELDS = ("Description", "DesiredState", "SourceParameters", "TargetParameters", "LogConfiguration")
SCHEDULE_FIELDS = (
    "Description",
    "FlexibleTimeWindow",
    "ScheduleExpressionTimezone",
    "StartDate",
    "EndDate",
    "State",
    "KmsKeyArn",
)
ALARM_FIELDS = (
    "AlarmDescription",
    "ActionsEnabled",
    "OKActions",
    "AlarmActions",
    "InsufficientDataActions",
    "MetricName",
    "Namespace",
    "Statistic",
    "ExtendedStatistic",
    "Dimensions",
    "Period",
    "Unit",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
    "EvaluateLowSampleCountPercentile",
    "Metrics",
    "ThresholdMetricId",
)


#: AWS::ApiGateway::Method Integration property -> put_integration parameter
INTEGRATION_FIELDS = {
    "IntegrationHttpMethod": "integrationHttpMethod",
    "Uri": "uri",
    "Credentials": "credentials",
    "RequestTemplates": "requestTemplates",
    "PassthroughBehavior": "passthroughBehavior",
}


def _pick_as(props: dict[str, Any], fields: dict[str, str]) -> dict[str, Any]:
    return {parameter: props[field] for field, parameter in fields.items() if field in props}


def _pick(props: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {field: props[field] for field in fields if field in props}


def pipe(provisioner: Provisioner, logical_id: str, resource: dict[str, Any]) -> None:
    """``AWS::Pipes::Pipe``: created in moto as ``<stack>-<construct>``; the local pipe runner reads it back."""
    props = provisioner.resolve(resource["Properties"])
    name = provisioner.name(logical_id)
    created = provisioner.clients("pipes").create_pipe(
        Name=name, Source=props["Source"], Target=props["Target"], RoleArn=props["RoleArn"], **_pick(props, PIPE_FIELDS)
    )
    provisioner.resources.attributes[logical_id] = {"Ref": name, "Arn": created["Arn"]}


def schedule(provisioner: Provisioner, logical_id: str, resource: dict[str, Any]) -> None:
    """``AWS::Scheduler::Schedule``: created in moto; the local scheduler fires what ``get-schedule`` shows."""
    props = provisioner.resolve(resource["Properties"])
    name = props.get("Name") or provisioner.name(logical_id)
    group = props.get("GroupName", "default")
    created = provisioner.clients("scheduler").create_schedule(
        Name=name,
        GroupName=group,
        ScheduleExpression=props["ScheduleExpression"],
        Target=props["Target"],
        **_pick(props, SCHEDULE_FIELDS),
    )
    provisioner.resources.attributes[logical_id] = {"Ref": name, "Arn": created["ScheduleArn"]}


def log_group(provisioner: Provisioner, logical_id: str, resource: dict[str, Any]) -> None:
    """``AWS::Logs::LogGroup``: created in moto (nothing is written to it locally: logs go to .taskrail/logs)."""
    props = provisioner.resolve(resource.get("Properties", {}))
    name = props.get("LogGroupName") or provisioner.name(logical_id)
    logs = provisioner.clients("logs")
    logs.create_log_group(logGroupName=name, **({"kmsKeyId": props["KmsKeyId"]} if "KmsKeyId" in props else {}))
    if "RetentionInDays" in props:
        logs.put_retention_policy(logGroupName=name, retentionInDays=int(props["RetentionInDays"]))
    # CloudFormation's Arn attribute of a log group ends in ":*".
    provisioner.resources.attributes[logical_id] = {"Ref": name, "Arn": f"{_log_group_arn(provisioner, name)}:*"}


def _log_group_arn(_provisioner: Provisioner, name: str) -> str:
    return f"arn:{PARTITION}:logs:{REGION}:{ACCOUNT_ID}:log-group:{name}"


def alarm(provisioner: Provisioner, logical_id: str, resource: dict[str, Any]) -> None:
    """``AWS::CloudWatch::Alarm``: created in moto with its metric (or metric math) and actions."""
    props = provisioner.resolve(resource["Properties"])
    name = props.get("AlarmName") or provisioner.name(logical_id)
    provisioner.clients("cloudwatch").put_metric_alarm(AlarmName=name, **_pick(props, ALARM_FIELDS))
    described = provisioner.clients("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"]
    provisioner.resources.attributes[logical_id] = {"Ref": name, "Arn": described[0]["AlarmArn"]}


def dashboard(provisioner: Provisioner, logical_id: str, resource: dict[str, Any]) -> None:
    props = provisioner.resolve(resource["Properties"])
    name = props.get("DashboardName") or provisioner.name(logical_id)
    body = props["DashboardBody"]
    provisioner.clients("cloudwatch").put_dashboard(
        DashboardName=name, DashboardBody=body if isinstance(body, str) else json.dumps(body)
    )
    provisioner.resources.attributes.setdefault(logical_id, {"Ref": name})


def rest_api(provisioner: Provisioner, logical_id: str, resource: dict[str, Any]) -> None:
    """``AWS::ApiGateway::RestApi`` with its resources, methods and stage, created in moto (served by apigw.py).

    Nothing is recorded as an attribute: the local gateway (``apigw.py``) reads the API from the template itself
    and the stack's outputs name its local URL. The API in moto is what ``aws apigateway get-rest-apis`` and
    ``get-resources`` list.
    """
    template = provisioner.template
    props = provisioner.resolve(resource.get("Properties", {}))
    client = provisioner.clients("apigateway")
    api = client.create_rest_api(
        name=props.get("Name") or provisioner.name(logical_id), description=props.get("Description", "")
    )
    api_id = api["id"]
    ids = {"root": api["rootResourceId"]}
    parts = {
        lid: r["Properties"]
        for lid, r in template["Resources"].items()
        if r["Type"] == "AWS::ApiGateway::Resource" and r["Properties"].get("RestApiId") == {"Ref": logical_id}
    }

    def parent_of(part: dict[str, Any]) -> str:
        parent = part["ParentId"]
        if isinstance(parent, dict) and "Ref" in parent:
            return resource_id(parent["Ref"])
        return ids["root"]  # Fn::GetAtt [api, RootResourceId]

    def resource_id(lid: str) -> str:
        if lid not in ids:
            part = parts[lid]
            ids[lid] = client.create_resource(restApiId=api_id, parentId=parent_of(part), pathPart=part["PathPart"])[
                "id"
            ]
        return ids[lid]

    for lid in parts:
        resource_id(lid)
    for r in template["Resources"].values():
        method = r.get("Properties", {})
        if r["Type"] != "AWS::ApiGateway::Method" or method.get("RestApiId") != {"Ref": logical_id}:
            continue
        target = method["ResourceId"]
        on = resource_id(target["Ref"]) if isinstance(target, dict) and "Ref" in target else ids["root"]
        client.put_method(
            restApiId=api_id,
            resourceId=on,
            httpMethod=method["HttpMethod"],
            authorizationType=method.get("AuthorizationType", "NONE"),
            apiKeyRequired=bool(method.get("ApiKeyRequired", False)),
        )
        integration = provisioner.resolve(method.get("Integration", {"Type": "MOCK"}))
        client.put_integration(
            restApiId=api_id,
            resourceId=on,
            httpMethod=method["HttpMethod"],
            type=integration["Type"],
            **_pick_as(integration, INTEGRATION_FIELDS),
        )
    for r in template["Resources"].values():
        stage = r.get("Properties", {})
        if r["Type"] == "AWS::ApiGateway::Stage" and stage.get("RestApiId") == {"Ref": logical_id}:
            client.create_deployment(restApiId=api_id, stageName=stage["StageName"])
