"""The local stack is found from the stack's Outputs, as a deployed one is (taskrail/local/outputs.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from task_common.contract import CLIENT_OUTPUTS, Output
from taskrail.local.outputs import stack_outputs
from taskrail.local.provision import provision
from taskrail.local.region import REGION
from taskrail.local.services.server import LOCAL_MOTO_CONFIG

LOCAL_API_URL = "http://127.0.0.1:4010/v1"


def aws(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


# How to ask moto whether the resource an output names exists (each call raises if it does not).
EXISTS: dict[Output, Callable[[str], Any]] = {
    Output.TASKS_TABLE_NAME: lambda name: aws("dynamodb").describe_table(TableName=name),
    Output.RESULTS_BUCKET_NAME: lambda name: aws("s3").head_bucket(Bucket=name),
    Output.STATE_MACHINE_ARN: lambda arn: aws("stepfunctions").describe_state_machine(stateMachineArn=arn),
    Output.RECONCILER_STATE_MACHINE_ARN: lambda arn: aws("stepfunctions").describe_state_machine(stateMachineArn=arn),
    Output.DEAD_LETTER_QUEUE_URL: lambda url: aws("sqs").get_queue_attributes(QueueUrl=url),
    Output.PIPE_DEAD_LETTER_QUEUE_URL: lambda url: aws("sqs").get_queue_attributes(QueueUrl=url),
    Output.NOTIFICATIONS_TOPIC_ARN: lambda arn: aws("sns").get_topic_attributes(TopicArn=arn),
    Output.NOTIFICATIONS_ARCHIVE_QUEUE_URL: lambda url: aws("sqs").get_queue_attributes(QueueUrl=url),
    Output.EVENT_BUS_NAME: lambda name: aws("events").describe_event_bus(Name=name),
}


@pytest.fixture
def provisioned(template: dict[str, Any], template_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws(config=LOCAL_MOTO_CONFIG):
        _, resolve = provision(template, aws, stack_name="taskrail", cdk_out=str(template_path.parent))
        yield resolve


def test_the_template_declares_every_output_of_the_contract(template: dict[str, Any]):
    assert {output.value for output in Output} <= set(template["Outputs"])
    assert set(CLIENT_OUTPUTS) <= {output.value for output in Output}


def test_every_output_resolves_to_a_resource_the_local_stack_provisioned(template: dict[str, Any], provisioned: Any):
    # When the template's Outputs are resolved against the provisioned resources
    outputs = stack_outputs(template, provisioned, api_url=LOCAL_API_URL)

    # Then there is one value per declared output, the API's is the local gateway's URL, and each of the others
    # names a resource that exists locally
    assert set(outputs) == set(template["Outputs"])
    assert outputs[Output.API_URL] == LOCAL_API_URL
    for output, exists in EXISTS.items():
        exists(outputs[output])


def test_an_output_the_local_stack_cannot_resolve_is_an_error(template: dict[str, Any], provisioned: Any):
    broken = {**template, "Outputs": {"Missing": {"Value": {"Ref": "NoSuchResource"}}}}

    with pytest.raises(KeyError, match="NoSuchResource"):
        stack_outputs(broken, provisioned, api_url=LOCAL_API_URL)
