"""`taskrail logs ID --stack NAME` (the AWS path) reads a task's lines from CloudWatch Logs, against moto's.

The stack is a CloudFormation stack in moto with the outputs and the log groups the CLI looks up; the functions'
log groups hold lines as Lambda writes them (Powertools JSON with the task id as correlation_id, and the runtime's
START/END/REPORT lines), for the task and for another one. Logs Insights answers the CLI's query as CloudWatch does
(taskrail/local/services/logs.py: filter and discovered fields; moto alone would answer every task's lines). The
task API's owner check (GET /tasks/{id}) is a small HTTP server: on AWS it is API Gateway, here it is not the
subject.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from task_common.contract import Output
from taskrail.cli import app
from taskrail.local.services import logs

REGION = "us-east-1"
STACK = "taskrail-logs-test"
TASK = "0b7e7f3c-4d7e-4a51-9c84-2f4a3c1d9e10"
OTHER = "9f1c2b3a-0000-4000-8000-000000000000"
GROUPS = {
    "ProcessTask": "/aws/lambda/taskrail-ProcessTaskFunction",
    "ValidateTask": "/aws/lambda/taskrail-ValidateTaskFunction",
}


class TaskApi(BaseHTTPRequestHandler):
    """GET /v1/tasks/{id}: the task for TASK, 404 for any other id."""

    created_ms = 0

    def do_GET(self) -> None:
        found = self.path == f"/v1/tasks/{TASK}"
        body = {"taskId": TASK, "status": "SUCCEEDED", "createdAt": self.created_ms} if found else {"message": "no"}
        data = json.dumps(body).encode()
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        return None


def powertools(message: str, request: str, correlation: str, at: str) -> str:
    return json.dumps(
        {
            "level": "INFO",
            "location": "handler:12",
            "message": message,
            "timestamp": at,
            "service": "taskrail",
            "function_request_id": request,
            "correlation_id": correlation,
        }
    )


def template(api_url: str) -> str:
    outputs = {
        name.value: {"Value": f"{name.value}-value"}
        for name in (
            Output.TASKS_TABLE_NAME,
            Output.RESULTS_BUCKET_NAME,
            Output.STATE_MACHINE_ARN,
            Output.DEAD_LETTER_QUEUE_URL,
        )
    }
    outputs[Output.API_URL.value] = {"Value": api_url}
    resources = {
        f"{function}Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": group}}
        for function, group in GROUPS.items()
    }
    return json.dumps({"Resources": resources, "Outputs": outputs})


def put_lines(client: Any, group: str, lines: list[str]) -> None:
    client.create_log_stream(logGroupName=group, logStreamName="2026/12/01/[$LATEST]0")
    now = int(time.time() * 1000)
    client.put_log_events(
        logGroupName=group,
        logStreamName="2026/12/01/[$LATEST]0",
        logEvents=[{"timestamp": now + i, "message": line + "\n"} for i, line in enumerate(lines)],
    )


@pytest.fixture
def deployed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    api = ThreadingHTTPServer(("127.0.0.1", 0), TaskApi)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    TaskApi.created_ms = int(time.time() * 1000) - 5_000
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    try:
        with mock_aws():
            logs.install_insights_filters()
            try:
                boto3.client("cloudformation", region_name=REGION).create_stack(
                    StackName=STACK, TemplateBody=template(f"http://127.0.0.1:{api.server_port}/v1")
                )
                client = boto3.client("logs", region_name=REGION)
                put_lines(
                    client,
                    GROUPS["ValidateTask"],
                    [
                        "START RequestId: v-1 Version: $LATEST",
                        powertools("parameters valid", "v-1", TASK, "2026-12-01 10:00:00,100+0000"),
                        "END RequestId: v-1",
                    ],
                )
                put_lines(
                    client,
                    GROUPS["ProcessTask"],
                    [
                        powertools("try started", "p-9", OTHER, "2026-12-01 10:00:00,150+0000"),
                        powertools("try started", "p-1", TASK, "2026-12-01 10:00:00,200+0000"),
                        powertools("try ended", "p-1", TASK, "2026-12-01 10:00:00,300+0000"),
                    ],
                )
                yield
            finally:
                logs.uninstall_insights_filters()
    finally:
        api.shutdown()


def test_logs_on_aws_shows_the_tasks_lines_from_cloudwatch_logs_and_no_other_tasks(deployed: None) -> None:
    # When the task's logs are asked for on the AWS path (the deployed stack's name)
    shown = CliRunner().invoke(app, ["logs", TASK, "--stack", STACK, "--region", REGION])

    # Then its lines from both functions, oldest first, and none of the other task's
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert [line.split()[0] for line in lines] == ["ValidateTask", "ProcessTask", "ProcessTask"], shown.output
    assert "parameters valid" in lines[0] and "try started" in lines[1] and "try ended" in lines[2]
    assert "p-9" not in shown.output and OTHER not in shown.output


def test_logs_on_aws_as_json_gives_each_line_its_function_request_and_message(deployed: None) -> None:
    shown = CliRunner().invoke(app, ["logs", TASK, "--stack", STACK, "--region", REGION, "--json"])

    assert shown.exit_code == 0, shown.output
    rows = [json.loads(line) for line in shown.output.splitlines()]
    assert [(row["function"], row["requestId"]) for row in rows] == [
        ("ValidateTask", "v-1"),
        ("ProcessTask", "p-1"),
        ("ProcessTask", "p-1"),
    ]
    assert [json.loads(row["message"])["correlation_id"] for row in rows] == [TASK] * 3
    assert all(row["timestamp"] for row in rows)
