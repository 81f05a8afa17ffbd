"""`taskrail logs` and `taskrail history` without a stack: reading function log files as the local workers write
them, a Logs Insights answer, and finding every execution of a task (fakes of the Step Functions and Logs APIs)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from task_common.contract import execution_arn_of, reconciler_execution_name, replay_execution_name
from taskrail.task_executions import choose, task_executions
from taskrail.task_logs import INSIGHTS_QUERY, LocalTaskLogs, function_of, in_order, insights_lines

TASK = "0b7e7f3c-4d7e-4a51-9c84-2f4a3c1d9e10"
OTHER = "9f1c2b3a-0000-4000-8000-000000000000"
SM = "arn:aws:states:us-east-1:123456789012:stateMachine:taskrail-TaskLifecycle"


def powertools(message: str, request: str, correlation: str, at: str = "2026-12-01 10:00:00,000+0000") -> str:
    return json.dumps(
        {
            "level": "INFO",
            "message": message,
            "timestamp": at,
            "function_request_id": request,
            "correlation_id": correlation,
        }
    )


def test_a_tasks_invocations_are_found_whole_and_another_tasks_are_left_out(tmp_path: Path):
    # Given ProcessTask's log as two workers write it: two invocations open at once, the task's failing with an
    # awslambdaric [ERROR] line (no request id, traceback joined by \r) while the other's is still open
    (tmp_path / "taskrail-ProcessTaskFunction.log").write_text(
        "\n".join(
            [
                "START RequestId: aaaaaaaa-0000-4000-8000-000000000001 Version: $LATEST",
                powertools("try started", "aaaaaaaa-0000-4000-8000-000000000001", TASK),
                "START RequestId: bbbbbbbb-0000-4000-8000-000000000002 Version: $LATEST",
                powertools("try started", "bbbbbbbb-0000-4000-8000-000000000002", OTHER),
                "END RequestId: bbbbbbbb-0000-4000-8000-000000000002",
                "REPORT RequestId: bbbbbbbb-0000-4000-8000-000000000002\tDuration: 1 ms",
                "[ERROR] TransientTaskError: flaky\rTraceback (most recent call last):\r  File x",
                "END RequestId: aaaaaaaa-0000-4000-8000-000000000001",
                "REPORT RequestId: aaaaaaaa-0000-4000-8000-000000000001\tDuration: 2 ms\tStatus: error",
                "",
            ]
        )
    )
    (tmp_path / "iam-decisions-1.jsonl").write_text(f'{{"task": "{TASK}"}}\n')  # not a function's log

    lines = LocalTaskLogs(tmp_path, TASK).read()

    assert [line.text.split(" RequestId")[0][:20] for line in lines] == [
        "START",
        powertools("try started", "aaaaaaaa-0000-4000-8000-000000000001", TASK)[:20],
        "[ERROR] TransientTas",
        "END",
        "REPORT",
    ]
    assert {line.request_id for line in lines} == {"aaaaaaaa-0000-4000-8000-000000000001"}
    assert {line.function for line in lines} == {"ProcessTask"}
    assert "\r" in lines[2].text  # the traceback stays one event


def test_follow_reads_only_the_new_lines_and_waits_for_a_line_to_be_complete(tmp_path: Path):
    log = tmp_path / "taskrail-ValidateTaskFunction.log"
    log.write_text("START RequestId: cccccccc-0000-4000-8000-000000000003 Version: $LATEST\n")
    reader = LocalTaskLogs(tmp_path, TASK)
    assert reader.read() == []  # nothing names the task yet

    with log.open("a") as file:
        file.write(powertools("try started", "cccccccc-0000-4000-8000-000000000003", TASK) + "\nEND RequestId: ccc")
    first = reader.read()
    with log.open("a") as file:
        file.write("ccccc-0000-4000-8000-000000000003\n")
    second = reader.read()

    assert [line.text[:5] for line in first] == ["START", '{"lev']  # the START kept until the task was named
    assert [line.text for line in second] == ["END RequestId: cccccccc-0000-4000-8000-000000000003"]


def test_invocations_are_ordered_by_their_first_timestamp_across_functions():
    from taskrail.task_logs import LogLine

    late = [LogLine("ProcessTask", "p", "START"), LogLine("ProcessTask", "p", "{}", "2026-12-01 10:00:02,000+0000")]
    early = [LogLine("ValidateTask", "v", "START"), LogLine("ValidateTask", "v", "{}", "2026-12-01 10:00:01,000+0000")]

    assert [line.function for line in in_order(late + early)] == ["ValidateTask"] * 2 + ["ProcessTask"] * 2


def test_function_names_read_as_people_name_them():
    assert function_of("taskrail-ProcessTaskFunction.log") == "ProcessTask"
    assert function_of("/aws/lambda/taskrail-ValidateTaskFunction") == "ValidateTask"


class FakeLogs:
    """CloudWatch Logs' StartQuery/GetQueryResults: Running once, then Complete with the recorded rows."""

    def __init__(self, rows: list[list[dict[str, str]]]) -> None:
        self.rows, self.queries, self.polls = rows, [], 0

    def start_query(self, **query: Any) -> dict[str, str]:
        self.queries.append(query)
        return {"queryId": "q-1"}

    def get_query_results(self, queryId: str) -> dict[str, Any]:
        self.polls += 1
        return {"status": "Running", "results": []} if self.polls == 1 else {"status": "Complete", "results": self.rows}


def test_on_aws_one_insights_query_on_the_correlation_id_over_the_stacks_log_groups():
    row = [
        {"field": "@timestamp", "value": "2026-12-01 10:00:00.000"},
        {"field": "@log", "value": "123456789012:/aws/lambda/taskrail-ProcessTaskFunction"},
        {"field": "@message", "value": powertools("try started", "r-1", TASK) + "\n"},
        {"field": "function_request_id", "value": "r-1"},
    ]
    logs = FakeLogs([row])

    lines = insights_lines(logs, ["/aws/lambda/taskrail-ProcessTaskFunction"], TASK, start_s=100, sleep=lambda _: None)

    assert logs.queries[0]["logGroupNames"] == ["/aws/lambda/taskrail-ProcessTaskFunction"]
    assert logs.queries[0]["startTime"] == 100
    assert logs.queries[0]["queryString"] == INSIGHTS_QUERY.format(task_id=TASK)
    assert f'correlation_id = "{TASK}"' in logs.queries[0]["queryString"]
    assert [(line.function, line.request_id) for line in lines] == [("ProcessTask", "r-1")]


# -- history: every execution of a task -------------------------------------------------------------------


class NotFound(Exception):
    response = {"Error": {"Code": "ExecutionDoesNotExist"}}


class FakeStepFunctions:
    """DescribeExecution and ListExecutions (newest first) over a few executions."""

    def __init__(self, executions: list[dict[str, Any]]) -> None:
        self.executions = {e["executionArn"]: e for e in executions}
        self.described: list[str] = []

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        self.described.append(executionArn)
        if executionArn not in self.executions:
            raise NotFound(executionArn)
        return self.executions[executionArn]

    def get_paginator(self, name: str) -> Any:
        assert name == "list_executions"
        newest_first = sorted(self.executions.values(), key=lambda e: e["startDate"], reverse=True)
        pages = [{"executions": [{k: e[k] for k in ("executionArn", "startDate")} for e in newest_first]}]
        return type("Paginator", (), {"paginate": lambda self, **_: pages})()


def execution(name: str, started: datetime, task_id: str, status: str, redrives: int = 0) -> dict[str, Any]:
    arn = execution_arn_of(SM, name)
    return {
        "executionArn": arn,
        "name": name,
        "status": status,
        "startDate": started,
        "redriveCount": redrives,
        "input": json.dumps([{"dynamodb": {"Keys": {"taskId": {"S": task_id}}}}]),
    }


CREATED = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def test_a_replayed_task_shows_the_pipes_failed_execution_then_its_replay():
    # Given a task whose pipe execution failed (redriven once), then a DLQ replay -r2 ran: the item names -r2
    sfn = FakeStepFunctions(
        [
            execution("pipe-name-1", CREATED + timedelta(seconds=1), TASK, "FAILED", redrives=1),
            execution("unrelated", CREATED + timedelta(seconds=2), OTHER, "SUCCEEDED"),
            execution(replay_execution_name(TASK, 2), CREATED + timedelta(minutes=5), TASK, "SUCCEEDED"),
        ]
    )
    task = {
        "taskId": TASK,
        "attempt": 2,
        "createdAt": CREATED.isoformat(),
        "executionArn": execution_arn_of(SM, replay_execution_name(TASK, 2)),
    }

    runs = task_executions(sfn, SM, task)

    assert [(r.name, r.origin, r.status, r.redrive_count) for r in runs] == [
        ("pipe-name-1", "pipe", "FAILED", 1),
        (replay_execution_name(TASK, 2), "replay", "SUCCEEDED", 0),
    ]
    assert choose(runs, None).origin == "replay"  # the latest by default
    assert choose(runs, "1").name == "pipe-name-1"
    assert choose(runs, "r2").origin == "replay"
    assert choose(runs, "pipe-name-1").status == "FAILED"


def test_a_reconciler_start_is_found_by_its_name_and_a_missing_choice_names_the_executions():
    name = reconciler_execution_name(TASK, 1)
    sfn = FakeStepFunctions([execution(name, CREATED + timedelta(minutes=20), TASK, "SUCCEEDED")])
    task = {"taskId": TASK, "attempt": 1, "createdAt": CREATED.isoformat(), "executionArn": execution_arn_of(SM, name)}

    runs = task_executions(sfn, SM, task)

    assert [(r.name, r.origin) for r in runs] == [(name, "reconciler")]
    with pytest.raises(LookupError, match=r"its executions: 1 \("):
        choose(runs, "7")


def test_a_task_not_yet_claimed_has_no_execution():
    sfn = FakeStepFunctions([])

    assert task_executions(sfn, SM, {"taskId": TASK, "attempt": 0, "createdAt": CREATED.isoformat()}) == []
    with pytest.raises(LookupError, match="no execution yet"):
        choose([], None)


def test_logs_follow_prints_each_new_line_once_until_ctrl_c(monkeypatch: pytest.MonkeyPatch):
    from typer.testing import CliRunner

    from taskrail import cli
    from taskrail.task_logs import LogLine

    class Client:
        def get(self, task_id: str) -> dict[str, Any]:
            return {"taskId": task_id, "status": "RUNNING", "createdAt": CREATED.isoformat()}

    batches = [
        [LogLine("ValidateTask", "v-1", powertools("try started", "v-1", TASK))],
        [],
        [LogLine("ProcessTask", "p-1", powertools("try started", "p-1", TASK, "2026-12-01 10:00:01,000+0000"))],
    ]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 3:
            raise KeyboardInterrupt  # Ctrl-C while waiting for more

    monkeypatch.setattr(cli, "reach", lambda target: (Client(), None))
    monkeypatch.setattr(cli, "_log_reader", lambda target, task, aws: lambda: batches.pop(0) if batches else [])
    monkeypatch.setattr(cli.time, "sleep", sleep)

    result = CliRunner().invoke(cli.app, ["logs", TASK, "--follow", "--interval", "0.5"])

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "ValidateTask v-1      INFO try started",
        "ProcessTask  p-1      INFO try started",
    ]
    assert sleeps == [0.5, 0.5, 0.5]


def test_on_aws_the_log_groups_are_the_stacks_own():
    pages = [
        {
            "StackResourceSummaries": [
                {"ResourceType": "AWS::Logs::LogGroup", "PhysicalResourceId": "taskrail-ProcessTaskLogs-1"},
                {"ResourceType": "AWS::Lambda::Function", "PhysicalResourceId": "taskrail-ProcessTaskFunction"},
            ]
        },
        {"StackResourceSummaries": [{"ResourceType": "AWS::Logs::LogGroup", "PhysicalResourceId": "a-ValidateLogs"}]},
    ]
    paginator = type("Paginator", (), {"paginate": lambda self, StackName: pages})()
    cloudformation = type("CloudFormation", (), {"get_paginator": lambda self, name: paginator})()

    from taskrail.task_logs import stack_log_groups

    assert stack_log_groups(cloudformation, "taskrail") == ["a-ValidateLogs", "taskrail-ProcessTaskLogs-1"]


def test_a_traceback_is_shown_below_its_error_piped_and_counted_in_a_terminal():
    from taskrail.task_logs import LogLine, readable

    text = "[ERROR] PermanentTaskError: poison\rTraceback (most recent call last):\r  File x\r"
    error = LogLine("ProcessTask", "r", text)

    assert readable(error) == "[ERROR] PermanentTaskError: poison\n    Traceback (most recent call last):\n      File x"
    assert readable(error, tracebacks=False) == (
        "[ERROR] PermanentTaskError: poison (a traceback of 2 lines: `--json`, or piped, prints it)"
    )
    assert readable(LogLine("P", "r", powertools("try failed", "r", TASK))) == "INFO try failed"


def test_a_long_log_is_read_from_shortly_before_the_tasks_first_line(tmp_path: Path):
    other = "bbbbbbbb-0000-4000-8000-000000000009"
    noise = [f"START RequestId: {other} Version: $LATEST", powertools("try started", other, OTHER)]
    noise += [f"END RequestId: {other}", f"REPORT RequestId: {other}\tDuration: 1 ms"]
    mine = "aaaaaaaa-0000-4000-8000-000000000008"
    task_lines = [f"START RequestId: {mine} Version: $LATEST", powertools("try started", mine, TASK)]
    task_lines += [f"END RequestId: {mine}", f"REPORT RequestId: {mine}\tDuration: 2 ms"]
    log = tmp_path / "taskrail-ProcessTaskFunction.log"
    log.write_text("\n".join(noise * 2000 + task_lines) + "\n")  # about 700 KB of another task's invocations
    reader = LocalTaskLogs(tmp_path, TASK)

    assert [line.text for line in reader.read()] == task_lines
    with log.open("a") as file:  # a later try: its START comes before the line that names the task
        later = "cccccccc-0000-4000-8000-00000000000c"
        file.write("\n".join([line.replace(mine, later) for line in task_lines]) + "\n")
    assert len(reader.read()) == 4
