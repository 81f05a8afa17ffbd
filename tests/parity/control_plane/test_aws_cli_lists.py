"""The control plane with the AWS CLI as the client: every pipe, schedule, REST API, log group and alarm the
synthesized template defines is listed by ``aws --endpoint-url`` against the local AWS endpoint (moto server mode
behind the local guard, every patch installed), provisioned from the template as ``taskrail local up`` does.

Evidence: CloudFormation creates each resource of the template, and AWS's list APIs return them: ListPipes
(https://docs.aws.amazon.com/eventbridge/latest/pipes-reference/API_ListPipes.html), ListSchedules (Scheduler API),
GetRestApis / GetResources (API Gateway), DescribeLogGroups (CloudWatch Logs), DescribeAlarms (CloudWatch).
The running stack is covered by tests/e2e/test_control_plane.py (boto3, and stop-pipe pausing the local pipe).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from taskrail.local.provision import provision
from taskrail.local.stack import LOCAL_CREDENTIALS
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


def aws_cli(endpoint: str, *command: str) -> Any:
    executable = shutil.which("aws")
    assert executable is not None, "the AWS CLI (aws) is needed for these cases"
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": REGION,
        "AWS_PAGER": "",
    }
    if LOCAL_CREDENTIALS.get("aws_session_token"):
        env["AWS_SESSION_TOKEN"] = LOCAL_CREDENTIALS["aws_session_token"]
    done = subprocess.run(
        [executable, *command, "--endpoint-url", endpoint, "--output", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-500:]
    return json.loads(done.stdout)


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
    listed = aws_cli(provisioned, *command)[key]
    expected = defined(template, resource_type)
    print(f"PARITY control plane aws {' '.join(command)}: {len(listed)} {what}, template {expected}")
    assert len(listed) == expected > 0


def test_the_aws_cli_shows_the_rest_apis_methods(provisioned: str, template: dict[str, Any]) -> None:
    [api] = aws_cli(provisioned, "apigateway", "get-rest-apis")["items"]
    resources = aws_cli(provisioned, "apigateway", "get-resources", "--rest-api-id", api["id"])["items"]
    methods = sorted(m for r in resources for m in r.get("resourceMethods", {}))
    expected = sorted(
        r["Properties"]["HttpMethod"] for r in template["Resources"].values() if r["Type"] == "AWS::ApiGateway::Method"
    )
    print(f"PARITY control plane aws apigateway get-resources: {sorted(r['path'] for r in resources)} {methods}")
    assert methods == expected
