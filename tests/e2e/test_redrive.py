"""Issue 19: Redrive is a first-class replay. A poison task fails at ProcessTask (the execution ends there, FAILED);
the fix marker is set; the execution is redriven — through the Step Functions API as `aws stepfunctions
redrive-execution` calls it, through `taskrail replay`, and through the local console's Redrive button in Chromium.
Each ends SUCCEEDED in the same execution (same ARN, same attempt), with one result object, one success
notification, and nothing replayable left in the DLQ. A rejected or succeeded task's execution is not redrivable,
with AWS's error."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from botocore.exceptions import ClientError
from typer.testing import CliRunner

from task_common.contract import TASKS_PREFIX, result_key
from taskrail import history
from taskrail.cli import app
from taskrail.client import TaskrailClient
from taskrail.console import ACTION_HEADER
from taskrail.local.stack import LocalStack
from taskrail.operator import Operator
from tests.e2e.browser import browser, chromium, console_url, page  # noqa: F401 -- fixtures (page, and what it uses)
from tests.e2e.polling import wait_for
from tests.e2e.test_local_stack import notifications_of

pytestmark = pytest.mark.e2e

FIX_MARKER = "diagnostics/poison-fixed"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
RUNNER = CliRunner(env={"COLUMNS": "250"})


@pytest.fixture
def fix(stack: LocalStack) -> Iterator[Any]:
    """The fix marker is global to the bucket: absent while the poison task fails, absent again after."""
    assert stack.info is not None
    s3, bucket = stack.clients("s3"), stack.info.results_bucket
    s3.delete_object(Bucket=bucket, Key=FIX_MARKER)
    yield lambda: s3.put_object(Bucket=bucket, Key=FIX_MARKER, Body=b"fixed")
    s3.delete_object(Bucket=bucket, Key=FIX_MARKER)


@dataclass(frozen=True)
class Failed:
    task_id: str
    arn: str


def dlq_messages_of(operator: Operator, task_id: str) -> list[dict[str, Any]]:
    return [m for m in operator.dlq_messages(max_messages=1000) if m["taskId"] == task_id]


def a_poison_task_failed_at_process_task(stack: LocalStack, alice: TaskrailClient, operator: Operator) -> Failed:
    task_id = alice.submit("diagnostic.poison", {})["taskId"]
    task = alice.wait([task_id], timeout=60)[task_id]
    assert (task["status"], task["attempt"], task["error"]) == ("FAILED", 1, "PermanentTaskError")
    arn = task["executionArn"]
    sfn = stack.clients("stepfunctions")
    execution = wait_for(
        lambda: (e := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and e, 30, "the execution to end"
    )
    # It ended at the step that failed, so that is where a redrive resumes
    assert (execution["status"], execution["redriveStatus"]) == ("FAILED", "REDRIVABLE")
    events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    assert history.execution_summary(events)[0] == "ProcessTask"
    # The failure recorder's FAILED reaches the outbox: one DLQ message and one FAILED notification
    messages = wait_for(lambda: dlq_messages_of(operator, task_id), 30, "the outbox's DLQ message")
    assert [(m["executionArn"], m["attempt"]) for m in messages] == [(arn, 1)]
    assert notifications_of(stack, task_id, Counter(FAILED=1)) == Counter(FAILED=1)
    return Failed(task_id, arn)


def assert_resumed_in_the_same_execution(stack: LocalStack, alice: TaskrailClient, failed: Failed) -> None:
    assert stack.info is not None
    sfn = stack.clients("stepfunctions")
    # (the task reads FAILED until the redriven ProcessTask resumes it: wait for the execution, not the task)
    execution = wait_for(
        lambda: (e := sfn.describe_execution(executionArn=failed.arn))["status"] != "RUNNING" and e, 60,
        "the redriven execution to end",
    )  # fmt: skip
    assert (execution["status"], execution["redriveCount"]) == ("SUCCEEDED", 1)
    task = alice.get(failed.task_id)
    assert (task["status"], task["executionArn"], task["attempt"]) == ("SUCCEEDED", failed.arn, 1)
    listed = sfn.list_executions(stateMachineArn=stack.info.state_machine_arn)["executions"]
    assert [e["name"] for e in listed if e["name"].startswith(f"{failed.task_id}-")] == [], "no new execution"
    keys = stack.clients("s3").list_objects_v2(
        Bucket=stack.info.results_bucket, Prefix=f"{TASKS_PREFIX}{failed.task_id}/"
    )
    assert [o["Key"] for o in keys.get("Contents", [])] == [result_key(failed.task_id)]
    assert notifications_of(stack, failed.task_id, Counter(SUCCEEDED=1)) == Counter(SUCCEEDED=1)


def assert_nothing_replayable_in_the_dlq(stack: LocalStack, operator: Operator, failed: Failed) -> None:
    """What is left of the failure in the DLQ replays nothing: a dry run would drop it, and replaying it does."""
    assert stack.info is not None
    dry = operator.replay_dlq({failed.task_id}, dry_run=True)
    assert {o.action for o in dry} <= {"dropped"}, dry
    assert {o.action for o in operator.replay_dlq({failed.task_id})} <= {"dropped"}
    assert dlq_messages_of(operator, failed.task_id) == []
    listed = stack.clients("stepfunctions").list_executions(stateMachineArn=stack.info.state_machine_arn)
    assert [e["name"] for e in listed["executions"] if e["name"].startswith(f"{failed.task_id}-r")] == []


# -- three ways to redrive --------------------------------------------------------------------------------------


@pytest.mark.timeout(300)
def test_redrive_execution_through_the_step_functions_api_resumes_the_task_in_the_same_execution(
    stack: LocalStack, alice: TaskrailClient, alice_operator: Operator, fix: Any
):
    # Given a poison task that failed at ProcessTask, then the fix
    failed = a_poison_task_failed_at_process_task(stack, alice, alice_operator)
    fix()

    # When it is redriven as `aws stepfunctions redrive-execution --execution-arn ARN` does it
    answer = stack.clients("stepfunctions").redrive_execution(executionArn=failed.arn)

    # Then the same execution resumes at ProcessTask and succeeds; its DLQ message replays nothing
    assert answer["redriveDate"]
    assert_resumed_in_the_same_execution(stack, alice, failed)
    assert_nothing_replayable_in_the_dlq(stack, alice_operator, failed)


@pytest.mark.timeout(300)
def test_taskrail_replay_redrives_a_task_that_failed_at_process_task_and_retires_its_dlq_message(
    stack: LocalStack, alice: TaskrailClient, alice_operator: Operator, fix: Any, tmp_path: Path
):
    state = tmp_path / "local.json"
    stack.write_state(state)
    failed = a_poison_task_failed_at_process_task(stack, alice, alice_operator)
    fix()

    # When its owner asks what a replay would do, then replays it
    dry = RUNNER.invoke(app, ["replay", failed.task_id, "--dry-run", "--json", "--local-state", str(state)])
    result = RUNNER.invoke(app, ["replay", failed.task_id, "--local-state", str(state)])
    print(result.output)

    # Then it says it would redrive, then that it redrove the execution (not a new one); the DLQ message is gone
    assert dry.exit_code == 0, dry.output
    assert [r["action"] for r in json.loads(dry.stdout)["replays"]] == ["would-redrive"]
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "redriven" in text and "same execution" in text and "started" not in text
    assert dlq_messages_of(alice_operator, failed.task_id) == []
    assert_resumed_in_the_same_execution(stack, alice, failed)
    assert_nothing_replayable_in_the_dlq(stack, alice_operator, failed)

    # And replaying it again does nothing (--json: nothing-to-replay)
    again = RUNNER.invoke(app, ["replay", failed.task_id, "--json", "--local-state", str(state)])
    assert again.exit_code == 0, again.output
    assert [r["action"] for r in json.loads(again.stdout)["replays"]] == ["nothing-to-replay"]


@pytest.mark.timeout(600)
def test_the_consoles_redrive_button_resumes_the_failed_execution(
    stack: LocalStack,
    alice: TaskrailClient,
    alice_operator: Operator,
    fix: Any,
    page: Any,  # noqa: F811 -- the fixture
):
    from playwright.sync_api import expect

    failed = a_poison_task_failed_at_process_task(stack, alice, alice_operator)
    fix()

    # When the operator opens the failed execution in the console and presses Redrive
    page.goto(f"{console_url(stack)}/#{quote(failed.arn, safe='')}")
    expect(page.get_by_test_id("execution-status")).to_have_text("FAILED", timeout=15_000)
    redrive = page.get_by_test_id("redrive-button")
    expect(redrive).to_be_enabled()
    redrive.click()

    # Then the same execution runs again and succeeds: the page follows it, and Redrive is no longer offered
    expect(page.get_by_test_id("execution-status")).to_have_text("SUCCEEDED", timeout=60_000)
    row = page.locator(f'[data-testid="execution-row"][data-arn="{failed.arn}"]')
    expect(row).to_have_attribute("data-status", "SUCCEEDED", timeout=10_000)
    expect(page.locator(f'[data-testid="execution-row"][data-task-id="{failed.task_id}"]')).to_have_count(1)
    expect(page.locator('[data-testid="event-row"][data-type="ExecutionRedriven"]')).to_have_count(1)
    expect(page.locator('[data-testid="state-node"][data-state="TaskSucceeded"]')).to_have_attribute(
        "data-outcome", "succeeded"
    )
    expect(page.get_by_test_id("redrive-button")).to_have_count(0)
    expect(page.get_by_test_id("redrive-count")).to_have_text("1 time")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "console-redriven.png"), full_page=True)
    assert_resumed_in_the_same_execution(stack, alice, failed)
    assert_nothing_replayable_in_the_dlq(stack, alice_operator, failed)


# -- what is not redrivable ---------------------------------------------------------------------------------------


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("task_type", "params", "status"),
    [("text.stats", {"text": "x", "top": 0}, "REJECTED"), ("text.stats", {"text": "fine"}, "SUCCEEDED")],
)
def test_a_rejected_or_succeeded_tasks_execution_is_not_redrivable_with_aws_error(
    stack: LocalStack, alice: TaskrailClient, tmp_path: Path, task_type: str, params: dict[str, Any], status: str
):
    task_id = alice.submit(task_type, params)["taskId"]
    task = alice.wait([task_id], timeout=60)[task_id]
    assert task["status"] == status
    sfn = stack.clients("stepfunctions")
    arn = task["executionArn"]
    wait_for(lambda: sfn.describe_execution(executionArn=arn)["status"] == "SUCCEEDED", 30, "the execution to end")

    # Step Functions refuses (a rejected task's execution ended in the Succeed state TaskRejected)
    with pytest.raises(ClientError) as refused:
        sfn.redrive_execution(executionArn=arn)
    assert refused.value.response["Error"]["Code"] == "ExecutionNotRedrivable"
    # The console answers with that refusal, 409
    answer = requests.post(
        f"{console_url(stack)}/api/executions/{quote(arn, safe='')}/redrive", headers={ACTION_HEADER: "1"}, timeout=10
    )
    assert answer.status_code == 409, answer.text
    assert answer.json()["message"] == refused.value.response["Error"]["Message"]
    # `taskrail replay`: a rejected task has invalid input, not replayable (exit 1); a succeeded one has nothing
    state = tmp_path / "local.json"
    stack.write_state(state)
    result = RUNNER.invoke(app, ["replay", task_id, "--json", "--local-state", str(state)])
    [replayed] = json.loads(result.stdout)["replays"]
    if status == "REJECTED":
        assert (result.exit_code, replayed["action"]) == (1, "not-replayable")
        assert "input is invalid" in replayed["detail"] and "not replayable" in replayed["detail"]
    else:
        assert (result.exit_code, replayed["action"]) == (0, "nothing-to-replay")
    assert alice.get(task_id)["status"] == status
    assert sfn.describe_execution(executionArn=arn).get("redriveCount", 0) == 0
