"""Issue 13: one timestamp format in the API. Every timestamp of every answer (GET, list, cancel) and of the CLI's
``--json`` is RFC 3339 UTC with milliseconds (``task_common.contract.TIMESTAMP_PATTERN``), whichever writer stored it:
the API (createdAt, cancelledAt as epoch ms), the workflow (startedAt, finishedAt from $$.State.EnteredTime) and the
functions (updatedAt of a progress report)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from task_common.contract import TIMESTAMP_FIELDS, TIMESTAMP_PATTERN
from taskrail.cli import app
from taskrail.client import TaskrailClient
from taskrail.local.stack import LocalStack
from tests.e2e.polling import wait_for

pytestmark = pytest.mark.e2e

RUNNER = CliRunner(env={"COLUMNS": "250"})


def timestamps_of(task: dict[str, Any]) -> dict[str, Any]:
    return {name: task[name] for name in TIMESTAMP_FIELDS if task.get(name) is not None}


def assert_documented_format(task: dict[str, Any], expected: set[str]) -> None:
    stamps = timestamps_of(task)
    assert set(stamps) == expected, task
    for name, value in stamps.items():
        assert isinstance(value, str) and re.fullmatch(TIMESTAMP_PATTERN, value), f"{name}={value!r}"


def moment(value: str) -> datetime:
    return datetime.fromisoformat(value)


@pytest.fixture(scope="module")
def finished(alice: TaskrailClient) -> dict[str, Any]:
    task_id = alice.submit("text.stats", {"text": "the cat sat on the mat"})["taskId"]
    return alice.wait([task_id], timeout=120)[task_id]


@pytest.fixture(scope="module")
def cancelled(alice: TaskrailClient) -> dict[str, Any]:
    # a step a second: the function reports progress (its updatedAt) and notices the cancel within a second
    task_id = alice.submit("diagnostic.sleep", {"seconds": 100, "steps": 100})["taskId"]
    wait_for(lambda: alice.get(task_id)["progress"] > 0, timeout=60, what="the sleeping task reports progress")
    answer = alice.cancel(task_id)
    assert answer == {"taskId": task_id, "status": "CANCELLED"}  # the cancel's answer carries no timestamp
    return alice.get(task_id)


def test_a_finished_task_answers_every_timestamp_in_the_documented_format(finished: dict[str, Any]):
    assert finished["status"] == "SUCCEEDED"
    assert_documented_format(finished, {"createdAt", "startedAt", "updatedAt", "finishedAt"})
    # written by three writers, they still read as one timeline
    created, started, finished_at = (moment(finished[n]) for n in ("createdAt", "startedAt", "finishedAt"))
    assert created <= started <= finished_at <= datetime.now(UTC)


def test_a_cancelled_task_answers_cancelled_at_in_the_documented_format(cancelled: dict[str, Any]):
    assert cancelled["status"] == "CANCELLED"
    assert_documented_format(cancelled, {"createdAt", "startedAt", "updatedAt", "cancelledAt"})
    assert moment(cancelled["createdAt"]) <= moment(cancelled["startedAt"]) <= moment(cancelled["cancelledAt"])


def test_the_list_answers_the_same_timestamps_as_get(
    alice: TaskrailClient, finished: dict[str, Any], cancelled: dict[str, Any]
):
    listed = {t["taskId"]: t for t in alice.list_tasks(limit=100)}

    for task in (finished, cancelled):
        assert timestamps_of(listed[task["taskId"]]) == timestamps_of(task)


def test_the_cli_json_carries_the_api_timestamps(stack: LocalStack, tmp_path: Path, finished: dict[str, Any]):
    state = tmp_path / "local.json"
    stack.write_state(state)

    def cli_json(*args: str) -> Any:
        result = RUNNER.invoke(app, [*args, "--json", "--local-state", str(state)])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    status = cli_json("status", finished["taskId"])
    listed = {t["taskId"]: t for t in cli_json("list", "--limit", "100")["tasks"]}

    assert timestamps_of(status) == timestamps_of(finished)
    assert timestamps_of(listed[finished["taskId"]]) == timestamps_of(finished)
    assert status["cancelledAt"] is None  # every field present, null when the task has none


def test_the_cli_history_json_writes_its_times_in_the_same_format(
    stack: LocalStack, tmp_path: Path, finished: dict[str, Any]
):
    state = tmp_path / "local.json"
    stack.write_state(state)
    arn = finished["executionArn"]
    sfn = stack.clients("stepfunctions")
    wait_for(lambda: sfn.describe_execution(executionArn=arn)["status"] != "RUNNING", what="the execution ends")

    result = RUNNER.invoke(app, ["history", finished["taskId"], "--json", "--local-state", str(state)])

    assert result.exit_code == 0, result.output
    history = json.loads(result.stdout)
    times = [e["timestamp"] for e in history["events"]]
    times += [e[k] for e in history["executions"] for k in ("startDate", "stopDate")]
    assert times and all(re.fullmatch(TIMESTAMP_PATTERN, t) for t in times), times
    assert moment(finished["createdAt"]) <= moment(history["events"][0]["timestamp"])
