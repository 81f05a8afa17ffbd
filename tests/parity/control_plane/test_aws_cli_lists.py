"""The control plane with the AWS CLI as the client: every pipe, schedule, REST API, log group and alarm the
synthesized template defines is listed by ``aws --endpoint-url`` (tests/parity/aws_cli.py: the real CLI, or the
CLI's operation through botocore where no CLI is installed) against the local AWS endpoint (moto server mode
behind the local guard, every patch installed), provisioned from the template as ``taskrail local up`` does.

Evidence: CloudFormation creates each resource of the template, and AWS's list APIs return them: ListPipes
(https://docs.aws.amazon.com/eventbridge/latest/pipes-reference/API_ListPipes.html), ListSchedules (Scheduler API),
GetRestApis / GetResources (API Gateway), DescribeLogGroups (CloudWatch Logs), DescribeAlarms (CloudWatch),
ListRules / ListTargetsByRule (EventBridge). A name the template gives (``LogGroupName``, the REST API's ``Name``) is
the resource's name; without one, CloudFormation generates it from the stack name and the logical id ("Name
type", CloudFormation User Guide, https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-name.html:
"AWS CloudFormation generates a unique physical ID to name a resource", e.g. ``stackName-logicalId-randomString``).
Locally that name is ``<stack>-<construct>`` (the logical id without its CDK path prefix and hash, no random
suffix; docs/LOCAL-FIDELITY.md), so the cases match each listed name to exactly one template resource.
The running stack is covered by tests/e2e/test_control_plane.py (boto3, and stop-pipe pausing the local pipe).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from taskrail.local.provision import provision
from taskrail.local.stack import LOCAL_CREDENTIALS
from tests.parity import aws_cli
from tests.parity.endpoint import REGION, local_endpoint


@pytest.fixture(scope="module")
def provisioned(template: dict[str, Any], template_path: Path) -> Iterator[str]:
    with local_endpoint() as url:
        session = boto3.Session(region_name=REGION, **LOCAL_CREDENTIALS)
        provision(
            template,
            lambda service: session.client(service, endpoint_url=url),
            stack_name="taskrail",
            cdk_out=str(template_path.parent),
        )
        yield url


def defined(template: dict[str, Any], resource_type: str) -> int:
    return sum(1 for r in template["Resources"].values() if r["Type"] == resource_type)


LISTINGS = [
    # (what, AWS CLI command, key of the listed items, template resource type)
    ("pipes", ("pipes", "list-pipes"), "Pipes", "AWS::Pipes::Pipe"),
    ("schedules", ("scheduler", "list-schedules"), "Schedules", "AWS::Scheduler::Schedule"),
    ("REST APIs", ("apigateway", "get-rest-apis"), "items", "AWS::ApiGateway::RestApi"),
    ("log groups", ("logs", "describe-log-groups"), "logGroups", "AWS::Logs::LogGroup"),
    ("alarms", ("cloudwatch", "describe-alarms"), "MetricAlarms", "AWS::CloudWatch::Alarm"),
]


@pytest.mark.parametrize(("what", "command", "key", "resource_type"), LISTINGS, ids=[c[0] for c in LISTINGS])
def test_the_aws_cli_lists_what_the_template_defines(
    provisioned: str, template: dict[str, Any], what: str, command: tuple[str, ...], key: str, resource_type: str
) -> None:
    listed = aws_cli.run(provisioned, *command)[key]
    expected = defined(template, resource_type)
    aws = f"aws {' '.join(command)} ({aws_cli.describe()})"
    print(f"PARITY control plane {aws}: {len(listed)} {what}, template {expected}")
    assert len(listed) == expected > 0


def test_the_aws_cli_shows_the_rest_apis_methods(provisioned: str, template: dict[str, Any]) -> None:
    [api] = aws_cli.run(provisioned, "apigateway", "get-rest-apis")["items"]
    resources = aws_cli.run(provisioned, "apigateway", "get-resources", rest_api_id=api["id"])["items"]
    methods = sorted(m for r in resources for m in r.get("resourceMethods", {}))
    expected = sorted(
        r["Properties"]["HttpMethod"] for r in template["Resources"].values() if r["Type"] == "AWS::ApiGateway::Method"
    )
    print(f"PARITY control plane aws apigateway get-resources: {sorted(r['path'] for r in resources)} {methods}")
    assert methods == expected


def test_without_a_cli_botocore_sends_the_same_operations(provisioned: str) -> None:
    """The fallback of tests/parity/aws_cli.py (no CLI installed) answers as the CLI does."""
    listings = (("pipes", "list-pipes", "Pipes", "Name"), ("logs", "describe-log-groups", "logGroups", "logGroupName"))
    for service, command, key, name in listings:
        through_botocore = sorted(item[name] for item in aws_cli._botocore(provisioned, service, command, {})[key])
        assert through_botocore == sorted(item[name] for item in aws_cli.run(provisioned, service, command)[key])
    [api] = aws_cli._botocore(provisioned, "apigateway", "get-rest-apis", {})["items"]
    resources = aws_cli._botocore(provisioned, "apigateway", "get-resources", {"rest_api_id": api["id"]})["items"]
    assert {r["path"] for r in resources} >= {"/", "/tasks", "/tasks/{taskId}"}


NAMES = [
    # (what, AWS CLI command, key of the listed items, the item's name, template resource type, its name property)
    ("pipes", ("pipes", "list-pipes"), "Pipes", "Name", "AWS::Pipes::Pipe", "Name"),
    ("schedules", ("scheduler", "list-schedules"), "Schedules", "Name", "AWS::Scheduler::Schedule", "Name"),
    ("REST APIs", ("apigateway", "get-rest-apis"), "items", "name", "AWS::ApiGateway::RestApi", "Name"),
    ("log groups", ("logs", "describe-log-groups"), "logGroups", "logGroupName", "AWS::Logs::LogGroup", "LogGroupName"),
    ("alarms", ("cloudwatch", "describe-alarms"), "MetricAlarms", "AlarmName", "AWS::CloudWatch::Alarm", "AlarmName"),
]
STACK = "taskrail"


def _generated_from(logical_id: str) -> str:
    """The logical id without CDK's 8-character hash: a generated name is made from it."""
    return re.sub(r"[0-9A-F]{8}$", "", logical_id)


def match_names(listed: list[str], resources: dict[str, dict[str, Any]], name_property: str) -> dict[str, str]:
    """Each template resource's listed name: its own name property, or the one generated from its logical id (the
    longest ``<stack>-<suffix>`` whose suffix ends the logical id). Fails unless each name is used exactly once."""
    matched: dict[str, str] = {}
    for logical_id, resource in resources.items():
        given = resource.get("Properties", {}).get(name_property)
        if isinstance(given, str):
            matched[logical_id] = given
            continue
        stem = _generated_from(logical_id)
        candidates = [n for n in listed if n.startswith(f"{STACK}-") and stem.endswith(n.removeprefix(f"{STACK}-"))]
        assert candidates, f"{logical_id}: no listed name is generated from it ({sorted(listed)})"
        matched[logical_id] = max(candidates, key=len)
    assert sorted(matched.values()) == sorted(listed), (matched, listed)
    return matched


@pytest.mark.parametrize(
    ("what", "command", "key", "name", "resource_type", "name_property"), NAMES, ids=[c[0] for c in NAMES]
)
def test_the_aws_cli_lists_each_template_resource_by_its_name(
    provisioned: str,
    template: dict[str, Any],
    what: str,
    command: tuple[str, ...],
    key: str,
    name: str,
    resource_type: str,
    name_property: str,
) -> None:
    listed = [item[name] for item in aws_cli.run(provisioned, *command)[key]]
    resources = {k: v for k, v in template["Resources"].items() if v["Type"] == resource_type}
    matched = match_names(listed, resources, name_property)
    print(f"PARITY control plane {what} by name ({aws_cli.describe()}): {sorted(matched.values())}")
    assert len(matched) == len(resources) == len(set(listed))


def test_the_aws_cli_lists_the_rules_and_their_targets(provisioned: str, template: dict[str, Any]) -> None:
    """Every ``AWS::Events::Rule`` of the template on its bus (``list-rules --event-bus-name``), with the targets it
    defines (``list-targets-by-rule``): the same target ids, each to the ARN of the resource the template names."""
    buses = [bus["Name"] for bus in aws_cli.run(provisioned, "events", "list-event-buses")["EventBuses"]]
    listed = {
        rule["Name"]: rule
        for bus in buses
        for rule in aws_cli.run(provisioned, "events", "list-rules", event_bus_name=bus)["Rules"]
    }
    rules = {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::Events::Rule"}
    matched = match_names(list(listed), rules, "Name")
    for logical_id, rule_name in matched.items():
        rule = listed[rule_name]
        targets = aws_cli.run(
            provisioned, "events", "list-targets-by-rule", rule=rule_name, event_bus_name=rule["EventBusName"]
        )["Targets"]
        defined = {t["Id"]: _referenced(t["Arn"]) for t in rules[logical_id]["Properties"].get("Targets", [])}
        arns = {t["Id"]: t["Arn"] for t in targets}
        print(f"PARITY control plane rule {rule_name} on {rule['EventBusName']}: {arns}")
        assert sorted(arns) == sorted(defined) != []
        for target_id, arn in arns.items():  # the resource the template names, by its (generated) name
            resource_name = re.split(r"[:/]", arn)[-1].removeprefix(f"{STACK}-")
            assert _generated_from(defined[target_id]).endswith(resource_name), (target_id, arn, defined[target_id])


def _referenced(value: Any) -> str:
    """The logical id a target's ``Arn`` refers to (``Ref`` or ``Fn::GetAtt``)."""
    if "Ref" in value:
        return str(value["Ref"])
    return str(value["Fn::GetAtt"][0])
