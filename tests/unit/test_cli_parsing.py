"""The CLI's own logic without a stack: argument parsing, reading an execution's history, and finding a deployed
stack from its CloudFormation outputs (moto's CloudFormation, in process)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.credentials import Credentials
from moto import mock_aws
from typer.testing import CliRunner

from taskrail.cli import CliError, app, aws_client, parse_params, parse_since, readable_cause
from taskrail.client import Endpoints, TaskrailClient, elapsed_seconds
from taskrail.history import execution_summary, timeline
from taskrail.operator import Operator

NOW = 1_750_000_000.0
REGION = "eu-west-1"
RUNNER = CliRunner(env={"COLUMNS": "250"})
TASKRAIL_OUTPUTS = {
    "ApiUrl": "https://abc123.execute-api.eu-west-1.amazonaws.com/v1/",
    "TasksTableName": "taskrail-TasksTable-1",
    "ResultsBucketName": "taskrail-resultsbucket-1",
    "StateMachineArn": "arn:aws:states:eu-west-1:123456789012:stateMachine:TaskLifecycle",
    "DeadLetterQueueUrl": "https://sqs.eu-west-1.amazonaws.com/123456789012/taskrail-dlq",
}


# -- --since, --param, --file ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds_ago"), [("45s", 45), ("30m", 1800), ("1h", 3600), ("1.5h", 5400), ("2d", 172800), ("1w", 604800)]
)
def test_since_durations_count_back_from_now_in_epoch_milliseconds(text: str, seconds_ago: int):
    assert parse_since(text, now=NOW) == int((NOW - seconds_ago) * 1000)


def test_since_accepts_an_iso_time():
    moment = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)

    assert parse_since("2025-06-01T09:00:00+00:00") == int(moment.timestamp() * 1000)


def test_since_that_is_neither_says_what_it_takes():
    with pytest.raises(CliError) as refused:
        parse_since("yesterday")

    assert "30m, 1h, 2d" in refused.value.hint
    assert refused.value.exit_code == 2


def test_params_from_a_file_then_p_pairs_as_strings_then_param_json_pairs_as_json(tmp_path: Path):
    file = tmp_path / "params.json"
    file.write_text(json.dumps({"text": "from the file", "top": 3}))

    params = parse_params(
        ["text=the cat", 'doc={"a": 1}', "n=5", "top=1"], file, ["top=5", "flags=[1, 2]", 'quoted="7"']
    )

    # -p never parses: a JSON-looking string stays the string the user typed (issue 13: it was REJECTED)
    assert params == {"text": "the cat", "doc": '{"a": 1}', "n": "5", "top": 5, "flags": [1, 2], "quoted": "7"}


def test_a_param_json_value_that_is_not_json_is_refused_with_the_p_alternative():
    with pytest.raises(CliError, match="is not JSON") as refused:
        parse_params([], None, ["text=hello"])

    assert "-p text=" in refused.value.hint
    assert refused.value.exit_code == 2


def test_submit_sends_p_values_as_strings_and_param_json_values_parsed(monkeypatch: pytest.MonkeyPatch):
    sent: dict[str, Any] = {}

    class Client:
        def submit(self, task_type: str, params: dict[str, Any], key: str | None) -> dict[str, Any]:
            sent.update(type=task_type, params=params)
            return {"taskId": "t-1", "status": "QUEUED"}

    monkeypatch.setattr("taskrail.cli.reach", lambda target: (Client(), None))
    result = RUNNER.invoke(app, ["submit", "text.stats", "-p", 'text={"a": 1}', "--param-json", "top=3", "--json"])

    assert result.exit_code == 0, result.output
    assert sent == {"type": "text.stats", "params": {"text": '{"a": 1}', "top": 3}}


@pytest.mark.parametrize("pair", ["novalue", "=value"])
def test_a_param_that_is_not_key_value_is_refused(pair: str):
    with pytest.raises(CliError, match="is not key=value"):
        parse_params([pair], None)


def test_a_params_file_must_hold_a_json_object(tmp_path: Path):
    file = tmp_path / "params.json"
    file.write_text("[1, 2]")

    with pytest.raises(CliError, match="must hold a JSON object"):
        parse_params([], file)


# -- reading executions ---------------------------------------------------------------------------------------


def event(number: int, event_type: str, **details: Any) -> dict[str, Any]:
    at = datetime(2025, 6, 1, 9, 0, tzinfo=UTC) + timedelta(seconds=number)
    return {"id": number, "type": event_type, "timestamp": at, **details}


def entered(number: int, name: str) -> dict[str, Any]:
    return event(number, "TaskStateEntered", stateEnteredEventDetails={"name": name})


def failed(number: int) -> dict[str, Any]:
    details = {"resourceType": "lambda", "resource": "invoke", "error": "TransientTaskError", "cause": "flaky"}
    return event(number, "TaskFailed", taskFailedEventDetails=details)


def scheduled(number: int) -> dict[str, Any]:
    return event(number, "TaskScheduled", taskScheduledEventDetails={"resourceType": "lambda", "resource": "invoke"})


def exited(number: int, name: str) -> dict[str, Any]:
    return event(number, "TaskStateExited", stateExitedEventDetails={"name": name})


def test_a_retry_is_a_failed_task_scheduled_again_and_a_caught_failure_is_not():
    events = [
        event(1, "ExecutionStarted"),
        entered(2, "ProcessTask"),
        scheduled(3),
        failed(4),
        scheduled(5),
        failed(6),
        scheduled(7),
        failed(8),
        exited(9, "ProcessTask"),
        entered(10, "RecordFailure"),
    ]

    assert execution_summary(events) == ("RecordFailure", 2)


def test_the_timeline_names_the_state_of_each_event_and_the_time_since_the_start():
    rows = timeline([event(1, "ExecutionStarted"), entered(2, "ProcessTask"), scheduled(3), failed(4)])

    assert [(r["elapsedSeconds"], r["state"], r["type"]) for r in rows] == [
        (0.0, None, "ExecutionStarted"),
        (1.0, "ProcessTask", "TaskStateEntered"),
        (2.0, "ProcessTask", "TaskScheduled"),
        (3.0, "ProcessTask", "TaskFailed"),
    ]
    assert [r["detail"] for r in rows[2:]] == ["lambda:invoke", "TransientTaskError: flaky"]


def test_elapsed_runs_from_submission_to_the_end_or_to_now():
    created = {"createdAt": int(NOW * 1000), "status": "RUNNING"}
    finished = {**created, "status": "SUCCEEDED", "finishedAt": datetime.fromtimestamp(NOW + 2.5, UTC).isoformat()}

    assert elapsed_seconds(created, now=NOW + 4) == 4.0
    assert elapsed_seconds(finished, now=NOW + 60) == 2.5


def test_a_lambda_error_document_reads_as_its_message():
    document = json.dumps({"errorMessage": "poison task", "errorType": "PermanentTaskError", "stackTrace": ["..."]})

    assert readable_cause(document) == "poison task"
    assert readable_cause("plain cause") == "plain cause"


# -- a deployed stack, found by its outputs ---------------------------------------------------------------------


@pytest.fixture
def cloudformation(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        yield boto3.client("cloudformation", region_name=REGION)


def deploy(cloudformation: Any, name: str, outputs: dict[str, str]) -> None:
    template = {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))


def test_a_deployed_stack_is_reached_through_its_outputs(cloudformation: Any):
    deploy(cloudformation, "taskrail", TASKRAIL_OUTPUTS)

    client = aws_client("taskrail", region=REGION)

    assert client.endpoints.api_url == TASKRAIL_OUTPUTS["ApiUrl"].rstrip("/")
    assert client.endpoints.region == REGION
    assert client.endpoints.state_machine_arn == TASKRAIL_OUTPUTS["StateMachineArn"]
    assert client.endpoints.dead_letter_queue_url == TASKRAIL_OUTPUTS["DeadLetterQueueUrl"]
    assert client.is_local is False


def test_an_unknown_stack_names_the_deployed_ones(cloudformation: Any):
    deploy(cloudformation, "taskrail-prod", TASKRAIL_OUTPUTS)
    deploy(cloudformation, "something-else", {})

    with pytest.raises(CliError) as refused:
        aws_client("taskrail-dev", region=REGION)

    assert refused.value.message == (
        "no stack named taskrail-dev in eu-west-1; deployed stacks are something-else, taskrail-prod"
    )
    assert "--stack NAME" in refused.value.hint


def test_a_stack_without_the_outputs_is_not_a_taskrail_stack(cloudformation: Any):
    deploy(cloudformation, "something-else", {"ApiUrl": "https://x/v1"})

    with pytest.raises(CliError, match="is not a taskrail stack: it has no output TasksTableName"):
        aws_client("something-else", region=REGION)


def test_the_cli_says_which_stacks_exist_and_exits_2(cloudformation: Any):
    deploy(cloudformation, "taskrail", TASKRAIL_OUTPUTS)

    result = RUNNER.invoke(app, ["status", "t-1", "--stack", "nope", "--region", REGION, "--json"])

    assert result.exit_code == 2
    assert "no stack named nope in eu-west-1; deployed stacks are taskrail" in result.stderr
    assert json.loads(result.stdout)["error"]["message"].startswith("no stack named nope")


def test_a_local_user_cannot_be_picked_on_aws():
    result = RUNNER.invoke(app, ["list", "--stack", "taskrail", "--user", "bob"])

    assert result.exit_code == 2
    assert "--user picks a local user" in result.stderr


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["replay"], "name task ids or pass --dlq"),
        (["replay", "t-1", "--dlq"], "name task ids or pass --dlq"),
        (["replay", "t-1", "--error", "PermanentTaskError"], "use them with --dlq"),
    ],
)
def test_replay_says_how_it_is_used(arguments: list[str], message: str):
    result = RUNNER.invoke(app, arguments)

    assert result.exit_code == 2
    assert message in result.stderr


# -- what replay does with an execution that has no DLQ message --------------------------------------------------


class FakeStepFunctions:
    """An execution that ended after ``last_state``; records redrives."""

    def __init__(self, status: str, last_state: str) -> None:
        self.execution = {"executionArn": "arn:execution:t-1", "status": status, "redriveCount": 0}
        kind = "FailStateEntered" if last_state == "TaskFailed" else "TaskStateEntered"  # an earlier definition's
        self.events = [
            event(1, "ExecutionStarted"),
            entered(2, "ProcessTask"),
            event(3, kind, stateEnteredEventDetails={"name": last_state}),
        ]
        self.redriven: list[dict[str, Any]] = []

    def describe_state_machine(self, stateMachineArn: str) -> dict[str, Any]:
        return {"stateMachineArn": stateMachineArn, "type": "STANDARD"}  # redrive is for STANDARD executions

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        return self.execution

    def get_execution_history(self, **_: Any) -> dict[str, Any]:
        return {"events": self.events}

    def redrive_execution(self, **request: Any) -> dict[str, Any]:
        self.redriven.append(request)
        return {}


def aws_client_with(sfn: FakeStepFunctions) -> Operator:
    endpoints = Endpoints("https://api", REGION, "Tasks", "bucket", "arn:state-machine", "https://dlq")
    return Operator.over_aws(TaskrailClient(endpoints, Credentials("key", "secret"), is_local=False), lambda _: sfn)


def test_an_execution_that_timed_out_outside_the_catch_path_is_redriven_once_per_redrive_count():
    sfn = FakeStepFunctions("TIMED_OUT", last_state="ProcessTask")

    # (FAILED: the failure recorder recorded the timeout; a redrive is asked for a FAILED task only)
    outcome = aws_client_with(sfn).redrive({"taskId": "t-1", "status": "FAILED", "executionArn": "arn:execution:t-1"})

    assert outcome.action == "redriven"
    assert [r["executionArn"] for r in sfn.redriven] == ["arn:execution:t-1"]
    again = aws_client_with(sfn).redrive({"taskId": "t-1", "status": "FAILED", "executionArn": "arn:execution:t-1"})
    assert sfn.redriven[1]["clientToken"] == sfn.redriven[0]["clientToken"], "the same redrive is asked for once"
    assert again.action == "redriven"


@pytest.mark.parametrize("fail_state", ["TaskFailed", "TaskRejected"])
def test_a_failure_caught_into_a_fail_state_is_never_redriven(fail_state: str):
    sfn = FakeStepFunctions("FAILED", last_state=fail_state)

    outcome = aws_client_with(sfn).redrive({"taskId": "t-1", "status": "FAILED", "executionArn": "arn:execution:t-1"})

    assert outcome.action == "nothing-to-replay"
    assert "caught" in outcome.detail
    assert sfn.redriven == []


def test_a_cancelled_task_is_never_redriven():
    sfn = FakeStepFunctions("ABORTED", last_state="ProcessTask")

    outcome = aws_client_with(sfn).redrive(
        {"taskId": "t-1", "status": "CANCELLED", "executionArn": "arn:execution:t-1"}
    )

    assert (outcome.action, sfn.redriven) == ("nothing-to-replay", [])
