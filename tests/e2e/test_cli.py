"""`taskrail` commands against the session's local stack, through typer's CliRunner: `--json` output is asserted
on its stable fields, and each command's human output once."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from task_common.contract import TIMESTAMP_PATTERN
from taskrail.cli import app
from taskrail.client import LISTED_FIELDS, TASK_FIELDS, TaskrailClient
from taskrail.local.stack import LocalStack
from taskrail.operator import DLQ_MESSAGE_FIELDS, Operator
from tests.e2e.polling import wait_for

pytestmark = pytest.mark.e2e

POISON_FIX_MARKER = "diagnostics/poison-fixed"
WATCH_FIELDS = {*TASK_FIELDS, "state", "retries", "elapsedSeconds"}
REPLAY_FIELDS = {"taskId", "action", "executionName", "detail"}
EVENT_FIELDS = {"id", "timestamp", "elapsedSeconds", "type", "state", "detail"}
# Wide enough that tables never fold a task id or a word the tests look for.
RUNNER = CliRunner(env={"COLUMNS": "250"})


@pytest.fixture(scope="module")
def state_file(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "local.json"
    stack.write_state(path)
    return path


@pytest.fixture(scope="module")
def taskrail(state_file: Path) -> Any:
    def invoke(*args: str) -> Result:
        return RUNNER.invoke(app, [*args, "--local-state", str(state_file)])

    return invoke


def as_json(result: Result, exit_code: int = 0) -> Any:
    assert result.exit_code == exit_code, result.output
    return json.loads(result.stdout)


def executions_named_after(stack: LocalStack, task_id: str) -> list[str]:
    assert stack.info is not None
    executions = stack.clients("stepfunctions").list_executions(stateMachineArn=stack.info.state_machine_arn)
    return [e["name"] for e in executions["executions"] if e["name"].startswith(task_id)]


@pytest.fixture
def poison_marker_absent(stack: LocalStack) -> Iterator[Any]:
    """The fix marker is global to the bucket: absent while this test's poison task fails, absent again after."""
    assert stack.info is not None
    s3, bucket = stack.clients("s3"), stack.info.results_bucket
    s3.delete_object(Bucket=bucket, Key=POISON_FIX_MARKER)
    yield lambda: s3.put_object(Bucket=bucket, Key=POISON_FIX_MARKER, Body=b"fixed")
    s3.delete_object(Bucket=bucket, Key=POISON_FIX_MARKER)


# -- submit, status, list, result -----------------------------------------------------------------------------


def test_submit_from_a_file_waits_and_an_idempotency_key_returns_the_same_task(taskrail: Any, tmp_path: Path):
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"text": "the cat sat on the mat"}))
    key = f"cli-{uuid.uuid4()}"

    task = as_json(
        taskrail("submit", "text.stats", "--file", str(params), "--idempotency-key", key, "--wait", "--json")
    )
    again = as_json(taskrail("submit", "text.stats", "--file", str(params), "--idempotency-key", key, "--json"))

    assert set(task) == WATCH_FIELDS
    assert task["status"] == "SUCCEEDED"
    assert task["progress"] == 100
    assert task["idempotencyKey"] == key
    assert task["resultLocation"].endswith(f"tasks/{task['taskId']}/result.json")
    assert task["elapsedSeconds"] > 0
    assert again == {"taskId": task["taskId"], "status": "SUCCEEDED", "duplicate": True}
    human = taskrail("submit", "text.stats", "--file", str(params), "--idempotency-key", key)
    assert f"already submitted with this idempotency key: {task['taskId']}" in human.output


def test_status_list_and_result_of_a_finished_task(taskrail: Any):
    task_id = as_json(taskrail("submit", "text.stats", "-p", "text=a b a", "--wait", "--json"))["taskId"]

    status = as_json(taskrail("status", task_id, "--json"))
    assert set(status) == {*TASK_FIELDS, "elapsedSeconds"}
    assert (status["taskId"], status["status"], status["params"]) == (task_id, "SUCCEEDED", {"text": "a b a"})
    assert "SUCCEEDED" in taskrail("status", task_id).output

    recent = as_json(taskrail("list", "--status", "succeeded", "--since", "1h", "--limit", "100", "--json"))
    assert recent["count"] == len(recent["tasks"])
    # listed without params (GET /tasks/{id}, i.e. status, has them)
    assert all(set(t) == set(LISTED_FIELDS) and t["status"] == "SUCCEEDED" for t in recent["tasks"])
    assert task_id in [t["taskId"] for t in recent["tasks"]]
    assert as_json(taskrail("list", "--limit", "1", "--json"))["count"] == 1
    just_after = (datetime.fromisoformat(status["createdAt"]) + timedelta(milliseconds=1)).isoformat()
    later = as_json(taskrail("list", "--since", just_after, "--limit", "100", "--json"))["tasks"]
    assert task_id not in [t["taskId"] for t in later]
    assert task_id in taskrail("list", "--since", "2d").output

    result = as_json(taskrail("result", task_id, "--json"))
    assert result == {
        "taskId": task_id,
        "type": "text.stats",
        "result": result["result"],
    }
    assert result["result"]["words"] == 3
    # stdout is not a terminal here: `taskrail result X > out.json` writes the result document alone
    assert json.loads(taskrail("result", task_id).stdout) == result["result"]


def test_list_refuses_an_unknown_status_with_the_known_ones(taskrail: Any):
    refused = taskrail("list", "--status", "DONE")

    assert refused.exit_code == 2
    assert "not a task status" in refused.stderr
    assert "SUCCEEDED" in refused.stderr


# -- watch, history -----------------------------------------------------------------------------------------------


def test_watch_shows_state_retries_and_elapsed_then_the_result(taskrail: Any, alice: TaskrailClient):
    flaky = alice.submit("diagnostic.flaky", {"failures": 1})["taskId"]
    quick = alice.submit("text.stats", {"text": "quick"})["taskId"]

    watched = as_json(taskrail("watch", flaky, quick, "--json"))

    assert [t["taskId"] for t in watched["tasks"]] == [flaky, quick]
    assert all(set(t) == WATCH_FIELDS for t in watched["tasks"])
    flaky_view = watched["tasks"][0]
    assert flaky_view["status"] == "SUCCEEDED"
    assert flaky_view["retries"] == 1
    assert flaky_view["state"] in {"MarkSucceeded", "TaskSucceeded"}
    human = taskrail("watch", quick)
    assert human.exit_code == 0, human.output
    assert f"{quick} SUCCEEDED in" in human.output
    assert f"tasks/{quick}/result.json" in human.output


def test_watch_ends_with_the_error_and_its_cause(taskrail: Any, alice: TaskrailClient):
    rejected = alice.submit("text.stats", {"nope": 1})["taskId"]

    human = taskrail("watch", rejected)

    assert human.exit_code == 1
    assert f"{rejected} REJECTED" in human.output
    assert "ValidationFailed" in human.output


def test_history_is_the_execution_as_a_timeline(taskrail: Any, alice: TaskrailClient, stack: LocalStack):
    task_id = alice.submit("diagnostic.flaky", {"failures": 1})["taskId"]
    arn = alice.wait([task_id], timeout=60)[task_id]["executionArn"]
    # The task is SUCCEEDED from MarkSucceeded on; its execution ends after the notifications.
    sfn = stack.clients("stepfunctions")
    wait_for(lambda: sfn.describe_execution(executionArn=arn)["status"] != "RUNNING")

    history = as_json(taskrail("history", task_id, "--json"))

    assert (history["taskId"], history["status"]) == (task_id, "SUCCEEDED")
    events = history["events"]
    assert all(set(e) == EVENT_FIELDS for e in events)
    assert events[0]["type"] == "ExecutionStarted"
    assert events[-1]["type"] == "ExecutionSucceeded"
    failure = next(e for e in events if e["type"] == "TaskFailed")
    assert failure["state"] == "ProcessTask"
    assert failure["detail"].startswith("TransientTaskError: ")
    assert [e["elapsedSeconds"] for e in events] == sorted(e["elapsedSeconds"] for e in events)
    human = taskrail("history", task_id)
    assert "ClaimTask" in human.output
    assert "ExecutionSucceeded" in human.output


# -- cancel ---------------------------------------------------------------------------------------------------------


def test_cancel_stops_a_task_and_a_second_cancel_says_why_not(taskrail: Any, alice: TaskrailClient):
    first = alice.submit("diagnostic.sleep", {"seconds": 2, "steps": 4})["taskId"]
    second = alice.submit("diagnostic.sleep", {"seconds": 2, "steps": 4})["taskId"]

    assert as_json(taskrail("cancel", first, "--json")) == {"taskId": first, "status": "CANCELLED"}
    assert f"cancelled {second}" in taskrail("cancel", second).output

    again = taskrail("cancel", first)
    assert again.exit_code == 1
    assert "already CANCELLED" in again.stderr
    assert alice.get(first)["status"] == "CANCELLED"


# -- dlq, replay ----------------------------------------------------------------------------------------------------


def test_poison_task_is_peeked_in_the_dlq_and_replayed_once(
    taskrail: Any, alice: TaskrailClient, alice_operator: Operator, stack: LocalStack, poison_marker_absent: Any
):
    task_id = alice.submit("diagnostic.poison", {})["taskId"]
    assert alice.wait([task_id], timeout=60)[task_id]["status"] == "FAILED"
    wait_for(lambda: any(m["taskId"] == task_id for m in alice_operator.dlq_messages(max_messages=1000)))

    # dlq: counted, grouped by error, peeked; peeking leaves the message in the queue
    summary = as_json(taskrail("dlq", "--peek", "1000", "--json"))
    assert set(summary) == {"count", "inFlight", "groups", "messages"}
    assert summary["count"] >= 1
    group = next(g for g in summary["groups"] if g["error"] == "PermanentTaskError")
    assert task_id in group["taskIds"]
    message = next(m for m in summary["messages"] if m["taskId"] == task_id)
    assert set(message) == set(DLQ_MESSAGE_FIELDS)
    assert message["attempt"] == 1
    assert re.fullmatch(TIMESTAMP_PATTERN, message["sentAt"]), message["sentAt"]  # the API's one timestamp format
    human = taskrail("dlq")
    assert "dead-letter queue:" in human.output
    assert "PermanentTaskError" in human.output

    # a failed task has no result, and says what to do
    no_result = taskrail("result", task_id)
    assert no_result.exit_code == 1
    assert "has no result" in no_result.stderr
    assert f"taskrail replay {task_id}" in no_result.stderr

    # filters and --dry-run start nothing
    dry = as_json(taskrail("replay", "--dlq", "--error", "PermanentTaskError", "--since", "1h", "--dry-run", "--json"))
    assert dry["dryRun"] is True
    mine = next(r for r in dry["replays"] if r["taskId"] == task_id)
    assert set(mine) == REPLAY_FIELDS
    assert (mine["action"], mine["executionName"]) == ("would-start", f"{task_id}-r1")
    assert as_json(taskrail("replay", "--dlq", "--error", "NoSuchError", "--json"))["replays"] == []
    future = datetime.fromtimestamp(time.time() + 3600).isoformat()
    assert as_json(taskrail("replay", "--dlq", "--since", future, "--json"))["replays"] == []
    assert executions_named_after(stack, f"{task_id}-r") == []
    assert any(m["taskId"] == task_id for m in alice_operator.dlq_messages(max_messages=1000))

    # another user cannot replay it
    refused = taskrail("replay", task_id, "--user", "bob", "--json")
    assert as_json(refused, exit_code=1)["replays"] == [
        {"taskId": task_id, "action": "refused", "executionName": None, "detail": "task not found (or not yours)"}
    ]

    # fixed, replayed once: its execution (failed at ProcessTask) is redriven, the same ARN; the message gone
    poison_marker_absent()
    arn = alice.get(task_id)["executionArn"]
    replayed = as_json(taskrail("replay", task_id, "--json"))["replays"]
    assert [(r["action"], r["executionName"]) for r in replayed] == [("redriven", arn.rsplit(":", 1)[-1])]
    sfn = stack.clients("stepfunctions")
    wait_for(lambda: sfn.describe_execution(executionArn=arn)["status"] == "SUCCEEDED", 60, "the redrive to end")
    assert (alice.get(task_id)["status"], alice.get(task_id)["executionArn"]) == ("SUCCEEDED", arn)
    assert all(m["taskId"] != task_id for m in alice_operator.dlq_messages(max_messages=1000))

    # running it again starts nothing
    second = as_json(taskrail("replay", task_id, "--json"))["replays"]
    assert [r["action"] for r in second] == ["nothing-to-replay"]
    assert executions_named_after(stack, f"{task_id}-r") == []
    assert "nothing-to-replay" in taskrail("replay", task_id).output


@pytest.fixture
def failed_outside_the_catch_path(stack: LocalStack, alice: TaskrailClient) -> Iterator[tuple[str, str]]:
    """One of alice's tasks whose execution failed outside the Catch path, as a timed-out execution leaves it:
    RUNNING, no DLQ message. (The execution's input names no task, so ClaimTask fails uncaught.) Restored after."""
    assert stack.info is not None
    task_id = alice.submit("diagnostic.sleep", {"seconds": 0.1, "steps": 1})["taskId"]
    finished = alice.wait([task_id], timeout=60)[task_id]
    sfn = stack.clients("stepfunctions")
    arn = sfn.start_execution(
        stateMachineArn=stack.info.state_machine_arn, name=f"cli-uncaught-{uuid.uuid4()}", input="[]"
    )["executionArn"]
    wait_for(lambda: sfn.describe_execution(executionArn=arn)["status"] == "FAILED")
    dynamodb, table, key = stack.clients("dynamodb"), stack.info.tasks_table, {"taskId": {"S": task_id}}

    def record(status: str, execution_arn: str) -> None:
        dynamodb.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="SET #s = :status, executionArn = :arn",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":status": {"S": status}, ":arn": {"S": execution_arn}},
        )

    record("RUNNING", arn)
    yield task_id, arn
    record(finished["status"], finished["executionArn"])


def test_replay_of_a_task_whose_failure_is_not_recorded_yet_waits_for_it(
    taskrail: Any, failed_outside_the_catch_path: tuple[str, str]
):
    # Given a RUNNING task whose execution already failed (the failure recorder has not written FAILED yet)
    task_id, _ = failed_outside_the_catch_path

    outcome = as_json(taskrail("replay", task_id, "--json"))["replays"]

    # Then nothing is redriven or started: a redrive resumes only a FAILED task
    assert [r["action"] for r in outcome] == ["nothing-to-replay"]
    assert "still being recorded" in outcome[0]["detail"]


def test_on_aws_replay_redrives_an_execution_that_failed_outside_the_catch_path(
    alice: TaskrailClient, stack: LocalStack, failed_outside_the_catch_path: tuple[str, str]
):
    task_id, arn = failed_outside_the_catch_path
    sfn = stack.clients("stepfunctions")
    redriven: list[dict[str, Any]] = []

    class StepFunctionsWithRedrive:
        """The local stack's Step Functions, with RedriveExecution recorded instead of run (the test checks what
        the operator asks for on AWS, not the redrive itself, which tests/e2e/test_redrive.py runs)."""

        def __getattr__(self, name: str) -> Any:
            return getattr(sfn, name)

        def redrive_execution(self, **request: Any) -> dict[str, Any]:
            redriven.append(request)
            return {}

    def aws(service: str) -> Any:
        return StepFunctionsWithRedrive() if service == "stepfunctions" else stack.clients(service)

    on_aws = Operator.over_aws(TaskrailClient(alice.endpoints, alice._signer.credentials, is_local=False), aws)
    assert stack.info is not None
    stack.clients("dynamodb").update_item(  # the failure recorded (FAILED), as the failure recorder writes it
        TableName=stack.info.tasks_table,
        Key={"taskId": {"S": task_id}},
        UpdateExpression="SET #s = :failed",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":failed": {"S": "FAILED"}},
    )

    assert [o.action for o in on_aws.replay_tasks([task_id], dry_run=True)] == ["would-redrive"]
    assert redriven == []
    assert [o.action for o in on_aws.replay_tasks([task_id])] == ["redriven"]
    assert [r["executionArn"] for r in redriven] == [arn]
    assert redriven[0]["clientToken"]


# -- errors that say what to do --------------------------------------------------------------------------------------


def test_an_unknown_task_is_a_404_that_says_how_to_list_yours(taskrail: Any, alice: TaskrailClient):
    missing = taskrail("status", "no-such-task", "--json")
    bobs_view = taskrail("history", alice.submit("text.stats", {"text": "mine"})["taskId"], "--user", "bob")

    error = as_json(missing, exit_code=1)["error"]
    assert error["status"] == 404
    assert "task no-such-task not found" in error["message"]
    assert "taskrail list" in missing.stderr
    assert bobs_view.exit_code == 1
    assert "belongs to another user" in bobs_view.stderr


def test_without_a_running_local_stack_every_command_says_how_to_start_one(tmp_path: Path):
    missing_state = str(tmp_path / "nothing.json")

    for command in (["status", "x"], ["list"], ["dlq"], ["replay", "--dlq"], ["submit", "text.stats"]):
        result = RUNNER.invoke(app, [*command, "--local-state", missing_state])
        assert result.exit_code == 2, command
        assert "no local stack is running" in result.stderr
        assert "taskrail local up" in result.stderr


# -- issue 13: logs, every execution in history, whole values when piped, replay refusals ------------------------------


def test_logs_show_every_try_of_a_task_across_its_functions(taskrail: Any, alice: TaskrailClient):
    # Given a task whose work failed twice before its third try succeeded
    task_id = alice.submit("diagnostic.flaky", {"failures": 2})["taskId"]
    assert alice.wait([task_id], timeout=60)[task_id]["status"] == "SUCCEEDED"

    def lines() -> list[dict[str, Any]]:
        result = taskrail("logs", task_id, "--json")
        assert result.exit_code == 0, result.output
        return [json.loads(line) for line in result.stdout.splitlines()]

    def tries(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [line for line in found if '"try started"' in line["message"] and line["function"] == "ProcessTask"]

    # When its logs are read (the REPORT of the last try may be written just after the task ended)
    def all_three() -> list[dict[str, Any]] | None:
        read = lines()
        return read if len(tries(read)) == 3 else None

    found = wait_for(all_three, 30, "three ProcessTask tries")

    # Then each try is there, with its retry number and the task id as correlation id, in ValidateTask too
    assert [json.loads(line["message"])["retry"] for line in tries(found)] == [0, 1, 2]
    assert {json.loads(line["message"])["correlation_id"] for line in tries(found)} == {task_id}
    assert {"ValidateTask", "ProcessTask"} <= {line["function"] for line in found}
    failures = [line for line in found if '"try failed"' in line["message"]]
    assert [json.loads(line["message"])["error"] for line in failures] == ["TransientTaskError"] * 2
    assert all(line["requestId"] for line in found)
    human = taskrail("logs", task_id).output
    assert "WARNING try failed" in human
    assert "No application metrics to publish" not in human


def test_history_lists_every_execution_and_shows_the_one_chosen(
    taskrail: Any, alice: TaskrailClient, stack: LocalStack, poison_marker_absent: Any
):
    # Given a task that failed, then was fixed and replayed
    task_id = alice.submit("diagnostic.poison", {})["taskId"]
    assert alice.wait([task_id], timeout=60)[task_id]["status"] == "FAILED"
    poison_marker_absent()
    assert taskrail("replay", task_id).exit_code == 0
    # (FAILED is terminal: until the redriven ProcessTask resumes the task, a wait would return at once)
    wait_for(lambda: alice.get(task_id)["status"] == "SUCCEEDED", 60, "the replayed task to succeed")
    sfn = stack.clients("stepfunctions")
    arn = alice.get(task_id)["executionArn"]
    wait_for(lambda: sfn.describe_execution(executionArn=arn)["status"] != "RUNNING", 60, "the execution to end")

    # When its history is asked for
    history = as_json(taskrail("history", task_id, "--json"))

    # Then every execution is listed (the pipe's first), the latest is shown, and the first can be chosen
    executions = history["executions"]
    assert executions[0]["origin"] == "pipe"
    # (a redrive resumes the pipe's execution; a DLQ replay adds {taskId}-rN)
    assert len(executions) == 1 + len(executions_named_after(stack, f"{task_id}-"))
    assert history["executionArn"] == executions[-1]["executionArn"] == arn
    first = as_json(taskrail("history", task_id, "--execution", "1", "--json"))
    assert first["executionArn"] == executions[0]["executionArn"]
    assert any(e["detail"].startswith("PermanentTaskError") for e in first["events"])
    human = taskrail("history", task_id).output
    assert "executions" in human and "pipe" in human
    unknown = taskrail("history", task_id, "--execution", "99")
    assert unknown.exit_code == 2
    assert "its executions: 1 (" in unknown.stderr


def test_piped_tables_print_whole_values(taskrail: Any, alice: TaskrailClient):
    # A REJECTED task's error is longer than a terminal's table cell; piped, it is printed whole, on one line
    task_id = alice.submit("text.stats", {"text": "x", "top": 1000})["taskId"]
    task = alice.wait([task_id], timeout=60)[task_id]
    assert task["status"] == "REJECTED"

    listed = taskrail("list", "--status", "REJECTED", "--limit", "100")
    row = next(line for line in listed.stdout.splitlines() if task_id in line)
    assert task["error"] in row
    whole = f"{task['error']}: {json.loads(task['cause'])['errorMessage']}"
    assert len(whole) > 80  # a terminal's table cuts it at 80 characters and folds it at 60
    assert whole in row


def test_replaying_a_rejected_task_exits_1_saying_its_input_is_invalid(taskrail: Any, alice: TaskrailClient):
    task_id = alice.submit("text.stats", {"text": "x", "top": 1000})["taskId"]
    assert alice.wait([task_id], timeout=60)[task_id]["status"] == "REJECTED"

    refused = taskrail("replay", task_id, "--json")
    human = taskrail("replay", task_id)

    assert [r["action"] for r in as_json(refused, exit_code=1)["replays"]] == ["not-replayable"]
    assert human.exit_code == 1
    assert "invalid" in human.output.lower()


def test_replay_with_nothing_to_replay_says_so_and_exits_0(taskrail: Any):
    nothing = taskrail("replay", "--dlq", "--error", "NoSuchError")

    assert nothing.exit_code == 0
    assert "nothing to replay" in nothing.output
