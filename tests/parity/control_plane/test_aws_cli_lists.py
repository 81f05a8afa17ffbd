"""The control plane with the AWS CLI as the client: every pipe, schedule, REST API, log group and alarm the
synthesized template defines is listed by ``aws --endpoint-url`` (tests/parity/aws_cli.py: the real CLI, or the
CLI's operation through botocore where no CLI is installed) against the local AWS endpoint (moto server mode
behind the local guard, every patch installed), provisioned from the template as ``taskrail local up`` does.

Evidence: CloudFormation creates each resource of the template, and AWS's list APIs return them: ListPipes
(https://docs.aws.amazon.com/eventbridge/latest/pipes-reference/API_ListPipes.html), ListSchedules (Scheduler API),
GetRestApis / GetResources (API Gateway), DescribeLogGroups (CloudWatch Logs), DescribeAlarms (CloudWatch).
The running stack is covered by tests/e2e/test_control_plane.py (boto3, and stop-pipe pausing the local pipe).
"""

from __future__ import annotations

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
    client = aws_cli.executable() or "botocore"
    print(f"PARITY control plane aws {' '.join(command)} ({client}): {len(listed)} {what}, template {expected}")
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
