"""The control plane is real: what the template defines is listed by boto3 against the local endpoint, and the
pipe and schedule that run are the ones moto holds (`aws pipes stop-pipe` pauses the local pipe).

Evidence for the listed shapes: the Pipes API DescribePipe/StopPipe (https://docs.aws.amazon.com/eventbridge/latest/
pipes-reference/API_StopPipe.html: a stopped pipe's DesiredState is STOPPED and it stops reading its source),
Scheduler GetSchedule, API Gateway GetResources, Logs DescribeLogGroups and CloudWatch DescribeAlarms."""

from __future__ import annotations

import time
from typing import Any

import boto3

from taskrail.client import TaskrailClient
from taskrail.local.inprocess import api_task_item
from taskrail.local.stack import LOCAL_CREDENTIALS, LocalStack
from taskrail.local.users import ALICE


def wait_for(condition: Any, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def of_type(stack: LocalStack, resource_type: str) -> list[dict[str, Any]]:
    return [r for r in stack.template["Resources"].values() if r["Type"] == resource_type]


def aws(stack: LocalStack, service: str) -> Any:
    assert stack.info is not None
    session = boto3.Session(region_name="us-east-1", **LOCAL_CREDENTIALS)
    return session.client(service, endpoint_url=stack.info.aws_endpoint_url)  # type: ignore[call-overload]


def test_boto3_lists_every_pipe_schedule_api_log_group_and_alarm_of_the_template(stack: LocalStack) -> None:
    pipes = aws(stack, "pipes").list_pipes()["Pipes"]
    schedules = aws(stack, "scheduler").list_schedules()["Schedules"]
    apis = aws(stack, "apigateway").get_rest_apis()["items"]
    groups = aws(stack, "logs").describe_log_groups()["logGroups"]
    alarms = aws(stack, "cloudwatch").describe_alarms(MaxRecords=100)["MetricAlarms"]
    counts = {
        "pipes": (len(pipes), len(of_type(stack, "AWS::Pipes::Pipe"))),
        "schedules": (len(schedules), len(of_type(stack, "AWS::Scheduler::Schedule"))),
        "rest apis": (len(apis), len(of_type(stack, "AWS::ApiGateway::RestApi"))),
        "log groups": (len(groups), len(of_type(stack, "AWS::Logs::LogGroup"))),
        "alarms": (len(alarms), len(of_type(stack, "AWS::CloudWatch::Alarm"))),
    }
    print("listed / in the template:", counts)
    assert all(listed == defined and defined > 0 for listed, defined in counts.values()), counts

    # the REST API with its resources and methods, as the template defines them
    [api] = apis
    resources = aws(stack, "apigateway").get_resources(restApiId=api["id"])["items"]
    methods = sorted(m for r in resources for m in r.get("resourceMethods", {}))
    defined = sorted(r["Properties"]["HttpMethod"] for r in of_type(stack, "AWS::ApiGateway::Method"))
    print("API paths", sorted(r["path"] for r in resources), "methods", methods)
    assert methods == defined
    assert len(resources) == 1 + len(of_type(stack, "AWS::ApiGateway::Resource"))


def test_the_schedule_that_fires_is_the_one_get_schedule_shows(stack: LocalStack) -> None:
    [listed] = aws(stack, "scheduler").list_schedules()["Schedules"]
    shown = aws(stack, "scheduler").get_schedule(Name=listed["Name"], GroupName=listed["GroupName"])
    [spec] = stack.scheduler._schedules.values()
    print("get-schedule", shown["Name"], shown["ScheduleExpression"], "runs", spec.name, spec.expression)
    assert (spec.name, spec.arn, spec.expression) == (shown["Name"], shown["Arn"], shown["ScheduleExpression"])
    assert spec.target_arn == shown["Target"]["Arn"] and spec.role_arn == shown["Target"]["RoleArn"]


def test_stop_pipe_pauses_the_local_pipe_and_start_pipe_resumes_it(stack: LocalStack, alice: TaskrailClient) -> None:
    assert stack.info is not None
    pipes = aws(stack, "pipes")
    [start_pipe] = [p for p in pipes.list_pipes()["Pipes"] if p["Name"].endswith("StartWorkflowPipe")]
    pipes.stop_pipe(Name=start_pipe["Name"])
    assert pipes.describe_pipe(Name=start_pipe["Name"])["DesiredState"] == "STOPPED"
    task_id = "stopped-pipe-" + str(time.time_ns())
    try:
        # once the runner has seen the pipe STOPPED in the control plane, it reads nothing
        wait_for(lambda: "StartWorkflowPipe" in stack.pipes.stopped, "the runner to see the pipe stopped")
        stack.clients("dynamodb").put_item(
            TableName=stack.info.tasks_table,
            Item=api_task_item(task_id, "text.stats", {"text": "held by a stopped pipe"}, ALICE.principal_id),
        )
        # While stopped, no execution starts for the task (an absence, watched for a while)
        delivered = stack.pipes.delivered["StartWorkflowPipe"]
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            assert alice.get(task_id)["status"] == "QUEUED"
            time.sleep(0.1)
        assert stack.pipes.delivered["StartWorkflowPipe"] == delivered
    finally:
        pipes.start_pipe(Name=start_pipe["Name"])
    wait_for(lambda: "StartWorkflowPipe" not in stack.pipes.stopped, "the runner to see the pipe started")

    # Then, started again, the pipe reads on from where it stopped and the task runs
    task = alice.wait([task_id], timeout=60)[task_id]
    print("after start-pipe:", task["status"])
    assert task["status"] == "SUCCEEDED"
