"""The local stack is provisioned from the synthesized template: change infra/, re-synth, and it follows."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.synth import synth
from taskrail.local.accounts import user_client
from taskrail.local.inprocess import api_task_item
from taskrail.local.provision import provision
from taskrail.local.region import REGION
from taskrail.local.services.server import LOCAL_MOTO_CONFIG
from taskrail.local.stack import LocalStack, StackInfo, StackOptions
from taskrail.local.users import ALICE


def test_a_changed_gsi_in_infra_reaches_the_local_table_with_no_other_edit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    # Given the storage construct declares the reconciler's pending index under another name
    from infra.constructs import storage

    monkeypatch.setattr(storage, "PENDING_INDEX", "pendingShard-createdAt-v2")

    # When the app is re-synthesized and the local services provisioned from that template
    template_path = synth(tmp_path, force=True)
    template = json.loads(template_path.read_text())
    with mock_aws(config=LOCAL_MOTO_CONFIG):
        resources, _ = provision(
            template, lambda s: boto3.client(s, region_name=REGION), stack_name="taskrail", cdk_out=str(tmp_path)
        )
        table = boto3.client("dynamodb", region_name=REGION).describe_table(TableName=resources.ref("TasksTable"))

    # Then the local table has exactly the indexes the template declares
    names = {index["IndexName"] for index in table["Table"]["GlobalSecondaryIndexes"]}
    assert names == {"userId-createdAt-v2", "pendingShard-createdAt-v2", "outcomePending-createdAt"}


def test_synth_is_skipped_when_no_source_changed(template_path: Path):
    before = template_path.stat().st_mtime_ns

    again = synth()

    assert again == template_path
    assert again.stat().st_mtime_ns == before


@pytest.mark.e2e
def test_both_indexes_renamed_in_infra_reach_the_reconcilers_query_and_the_list_route(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    # Given the storage construct declares both its indexes under other names (no other edit anywhere)
    from infra import synth as synth_module
    from infra.constructs import storage

    monkeypatch.setattr(storage, "USER_INDEX", "by-owner-v2")
    monkeypatch.setattr(storage, "PENDING_INDEX", "by-pending-v2")

    # When the app is re-synthesized and the local stack starts from that template
    template_text = synth(tmp_path, force=True).read_text()
    monkeypatch.setattr(synth_module, "CDK_OUT", tmp_path)
    stack = LocalStack(StackOptions(with_console=False, log_dir=tmp_path / "logs"))
    info = stack.start()
    try:
        reconciled, listed, by_status = reconcile_and_list(stack, info)
    finally:
        stack.stop()

    # Then the template names the indexes only by their new names (the old ones are copied nowhere)...
    assert "userId-createdAt" not in template_text and "pendingShard-createdAt" not in template_text
    # ...the reconciler's Query found the stuck task on the renamed pending index and started it...
    stuck_id, submitted_id = reconciled["taskId"], listed["submitted"]
    assert reconciled["runs"] == ["SUCCEEDED"]
    assert reconciled["status"] == "SUCCEEDED" and reconciled["executionArn"].endswith(f":{stuck_id}-q0")
    # ...and GET /tasks queried the renamed owner index: both of alice's tasks, newest first, and by status
    assert listed["ids"] == [submitted_id, stuck_id]
    assert by_status == [submitted_id, stuck_id]


def reconcile_and_list(stack: LocalStack, info: StackInfo) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """A stuck QUEUED task (stored ten minutes ago while the pipe was paused) through one reconciler run, then a
    task submitted through the API, then alice's list of tasks, all of it and SUCCEEDED only."""
    assert stack.pipes is not None and stack.scheduler is not None
    alice = user_client(info, "alice")
    stuck_id = f"stuck-{time.time_ns()}"
    stack.pipes.pause()
    try:
        stack.clients("dynamodb").put_item(
            TableName=info.tasks_table,
            Item=api_task_item(
                stuck_id,
                "text.stats",
                {"text": "found on the renamed index"},
                ALICE.principal_id,
                created_at_ms=int(time.time() * 1000) - 600_000,
            ),
        )
        sfn = stack.clients("stepfunctions")
        runs = [wait_for_end(sfn, arn) for arn in stack.scheduler.run_once()]
    finally:
        stack.pipes.resume()
    stuck = alice.wait([stuck_id], timeout=60)[stuck_id]
    submitted_id = alice.submit("text.stats", {"text": "listed through the renamed index"})["taskId"]
    alice.wait([submitted_id], timeout=60)
    ids = [task["taskId"] for task in alice.list_page().tasks]
    by_status = [task["taskId"] for task in alice.list_page(status="SUCCEEDED").tasks]
    return {**stuck, "runs": runs}, {"submitted": submitted_id, "ids": ids}, by_status


def wait_for_end(sfn: Any, execution_arn: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while (status := sfn.describe_execution(executionArn=execution_arn)["status"]) == "RUNNING":
        assert time.monotonic() < deadline, f"{execution_arn} still RUNNING after {timeout} s"
        time.sleep(0.1)
    return str(status)
