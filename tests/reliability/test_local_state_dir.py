"""`taskrail local up --state-dir DIR`, stopped and started again: a finished task, its result and the DLQ are
still there, readable through the API as before, and the restarted stack takes new tasks; the executions' records
are kept in DIR/executions.json across both runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
