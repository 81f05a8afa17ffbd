"""`taskrail local up --state-dir DIR`, stopped and started again: a finished task, its result and the DLQ are
still there, readable through the API as before, and the restarted stack takes new tasks; the executions' records
are kept in DIR/executions.json across both runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from taskrail.client import ApiError
from taskrail.local.accounts import user_client
from taskrail.local.state import StackInfo, local_client
from tests.local_up import start_local_up, stop_local_up


def result_of(info: StackInfo, task_id: str) -> object:
    s3 = local_client("s3", info.aws_endpoint_url)
    return json.loads(s3.get_object(Bucket=info.results_bucket, Key=f"tasks/{task_id}/result.json")["Body"].read())[
        "result"
    ]


def test_a_restart_with_a_state_dir_keeps_a_finished_task_readable_through_the_api(tmp_path: Path):
    state, state_dir = tmp_path / "local.json", tmp_path / "state"
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"

    # Given a stack with a state dir that ran a task
    with first_log.open("w") as log:
        up = start_local_up(state, log, args=["--state-dir", str(state_dir)])
        try:
            first = StackInfo.load(state)
            alice = user_client(first, "alice")
            task_id = alice.submit("diagnostic.echo", {"payload": {"kept": True}})["taskId"]
            assert alice.wait([task_id], timeout=120)[task_id]["status"] == "SUCCEEDED"
        finally:
            # When it stops (as `taskrail local down` stops it) and starts again on the same state dir
            assert stop_local_up(up) == 0
    assert "saved to" in first_log.read_text()
    archive = state_dir / "executions.json"
    first_archive = json.loads(archive.read_text())
    ran = [e for e in first_archive if task_id in json.dumps(e["execution"].get("input", ""))]
    assert ran and ran[0]["execution"]["status"] == "SUCCEEDED" and ran[0]["events"], "its execution's record is kept"
    assert (state_dir / "moto-state.pickle").stat().st_mode & 0o777 == 0o600
    with second_log.open("w") as log:
        up = start_local_up(state, log, args=["--state-dir", str(state_dir)])
        try:
            second = StackInfo.load(state)
            assert second.pid != first.pid
            alice = user_client(second, "alice")

            # Then the task is there, through the API (as its owner, IAM enforced), with its result
            task = alice.get(task_id)
            print(f"after the restart: {task['status']} {task.get('resultLocation')}")
            assert task["status"] == "SUCCEEDED"
            assert result_of(second, task_id) == {"echo": {"kept": True}}
            with pytest.raises(ApiError) as denied:  # and still only its owner's
                user_client(second, "bob").get(task_id)
            assert denied.value.status == 404
            # and the restarted stack runs new tasks (the restored table's stream feeds the pipe)
            new_id = alice.submit("diagnostic.echo", {"payload": "new"})["taskId"]
            assert alice.wait([new_id], timeout=120)[new_id]["status"] == "SUCCEEDED"
        finally:
            assert stop_local_up(up) == 0
    arns = {e["execution"]["executionArn"] for e in json.loads(archive.read_text())}
    assert ran[0]["execution"]["executionArn"] in arns and len(arns) > len(first_archive), "kept across restarts"
    restored = [line for line in second_log.read_text().splitlines() if line.startswith("restored from")]
    print(restored)
    assert restored and "0 items" not in restored[0]


def test_a_restart_with_a_state_dir_gives_the_finished_executions_back(tmp_path: Path):
    """DescribeExecution, GetExecutionHistory, ListExecutions, `taskrail history` and the console answer for an
    execution of before the restart as they did before it (persistence.restore_executions); it cannot be redriven
    locally."""
    state, state_dir = tmp_path / "local.json", tmp_path / "state"
    with (tmp_path / "first.log").open("w") as log:
        up = start_local_up(state, log, args=["--state-dir", str(state_dir)])
        try:
            # Given a task that failed (a FAILED execution: redrivable on AWS) and one that succeeded
            first = StackInfo.load(state)
            alice = user_client(first, "alice")
            done = alice.submit("diagnostic.echo", {"payload": "before"})["taskId"]
            failed = alice.submit("diagnostic.poison", {})["taskId"]
            ended = alice.wait([done, failed], timeout=120)
            assert (ended[done]["status"], ended[failed]["status"]) == ("SUCCEEDED", "FAILED")
            sfn = local_client("stepfunctions", first.aws_endpoint_url)
            arn = alice.get(done)["executionArn"]
            before = sfn.describe_execution(executionArn=arn)
            history_before = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        finally:
            assert stop_local_up(up) == 0
    with (tmp_path / "second.log").open("w") as log:
        up = start_local_up(state, log, args=["--state-dir", str(state_dir)])
        try:
            second = StackInfo.load(state)
            sfn = local_client("stepfunctions", second.aws_endpoint_url)

            # When its execution is read after the restart
            after = sfn.describe_execution(executionArn=arn)
            history_after = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
            listed = sfn.list_executions(stateMachineArn=second.state_machine_arn)["executions"]

            # Then it answers as before the restart
            kept = ("executionArn", "name", "status", "startDate", "stopDate", "input", "output", "redriveCount")
            assert {k: after.get(k) for k in kept} == {k: before.get(k) for k in kept}
            assert [(e["id"], e["type"], e["timestamp"]) for e in history_after] == [
                (e["id"], e["type"], e["timestamp"]) for e in history_before
            ]
            assert arn in {e["executionArn"] for e in listed}
            print(f"after the restart: {after['status']}, {len(history_after)} events, {len(listed)} listed")
            # and `taskrail history` shows it, as a user runs it
            shown = subprocess.run(
                [sys.executable, "-m", "taskrail.cli", "history", done, "--local-state", str(state), "--json"],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert shown.returncode == 0, shown.stderr
            timeline = json.loads(shown.stdout)
            assert timeline["executionArn"] == arn and timeline["events"], timeline
            assert timeline["events"][-1]["type"] == history_before[-1]["type"]
            # and the console (its API, which its page draws)
            seen = requests.get(f"{second.console_url.rstrip('/')}/api/executions/{quote(arn, safe='')}", timeout=30)
            assert seen.status_code == 200, seen.text
            detail = seen.json()
            assert detail["execution"]["taskId"] == done and len(detail["events"]) == len(history_before)
            assert detail["states"]["MarkSucceeded"]["outcome"] == "succeeded"
            # A FAILED one is a record, not a run: not redrivable locally, and says why
            failed_arn = user_client(second, "alice").get(failed)["executionArn"]
            described = sfn.describe_execution(executionArn=failed_arn)
            assert (described["status"], described["redriveStatus"]) == ("FAILED", "NOT_REDRIVABLE")
            assert "restored from a snapshot" in described["redriveStatusReason"]
            with pytest.raises(sfn.exceptions.ExecutionNotRedrivable):
                sfn.redrive_execution(executionArn=failed_arn)
        finally:
            assert stop_local_up(up) == 0
