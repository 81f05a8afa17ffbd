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
from task_common import contract
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
def test_the_three_indexes_renamed_in_infra_reach_the_reconcilers_queries_and_the_list_route(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    # Given the storage construct declares the Tasks table's three indexes under other names (no other edit anywhere)
    from infra import synth as synth_module
    from infra.constructs import storage

    monkeypatch.setattr(storage, "USER_INDEX", "by-owner-v2")
    monkeypatch.setattr(storage, "PENDING_INDEX", "by-pending-v2")
    monkeypatch.setattr(storage, "OUTCOME_PENDING_INDEX", "by-outcome-pending-v2")

    # When the app is re-synthesized and the local stack starts from that template
    template_text = synth(tmp_path, force=True).read_text()
    monkeypatch.setattr(synth_module, "CDK_OUT", tmp_path)
    stack = LocalStack(StackOptions(with_console=False, log_dir=tmp_path / "logs"))
    info = stack.start()
    try:
        reconciled, listed, by_status = reconcile_and_list(stack, info)
        retriggered = retrigger_an_undelivered_outcome(stack, info, after=[reconciled["taskId"], listed["submitted"]])
    finally:
        stack.stop()

    # Then the template names the indexes only by their new names (the old ones are copied nowhere)...
    for old in (contract.USER_INDEX, contract.PENDING_INDEX, contract.OUTCOME_PENDING_INDEX):
        assert old.removesuffix("-v2") not in template_text, old
    # ...the reconciler's Query found the stuck task on the renamed pending index and started it...
    stuck_id, submitted_id = reconciled["taskId"], listed["submitted"]
    assert reconciled["runs"] == ["SUCCEEDED"]
    assert reconciled["status"] == "SUCCEEDED" and reconciled["executionArn"].endswith(f":{stuck_id}-q0")
    # ...and GET /tasks queried the renamed owner index: both of alice's tasks, newest first, and by status
    assert listed["ids"] == [submitted_id, stuck_id]
    assert by_status == [submitted_id, stuck_id]
    # ...and the reconciler's outbox pass found the undelivered outcome on the renamed outcomePending index: it
    # touched that task alone, and the task-changes function then delivered it
    assert retriggered["counts"]["outcomesRetriggered"] == 1
    assert retriggered["task"]["outcomeRetriggers"] == {"N": "1"}
    assert retriggered["task"]["outcomeDelivered"]["S"].endswith("#SUCCEEDED")


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


def retrigger_an_undelivered_outcome(stack: LocalStack, info: StackInfo, *, after: list[str]) -> dict[str, Any]:
    """Once the outcomes of ``after`` are delivered: a task of alice's that SUCCEEDED ten minutes ago with its outcome
    still pending (stored while the pipes were paused, so no record reaches the task-changes function), one
    reconciler run, then the pipes again until the outcome is delivered. The run's counts and the task as it ends."""
    assert stack.pipes is not None and stack.scheduler is not None
    dynamodb = stack.clients("dynamodb")

    def task(task_id: str) -> dict[str, Any]:
        item: dict[str, Any] = dynamodb.get_item(TableName=info.tasks_table, Key={"taskId": {"S": task_id}})["Item"]
        return item

    for task_id in after:  # else the run would re-trigger theirs too
        wait_until(lambda task_id=task_id: "outcomePending" not in task(task_id), f"{task_id}'s outcome delivered")
    undelivered = f"undelivered-{time.time_ns()}"
    item = api_task_item(undelivered, "text.stats", {"text": "its outcome record was lost"}, ALICE.principal_id)
    del item[contract.PENDING_SHARD_ATTRIBUTE]  # a terminal write takes the task out of the pending index
    item |= {
        "status": {"S": contract.Status.SUCCEEDED.value},
        "outcomePending": {"S": contract.Status.SUCCEEDED.value},
        "attempt": {"N": "1"},
        "createdAt": {"N": str(int(time.time() * 1000) - 600_000)},
        "executionArn": {"S": contract.execution_arn_of(info.state_machine_arn, f"{undelivered}-lost")},
        "resultLocation": {"S": f"s3://{info.results_bucket}/tasks/{undelivered}/result.json"},
    }
    sfn = stack.clients("stepfunctions")
    stack.pipes.pause()
    try:
        dynamodb.put_item(TableName=info.tasks_table, Item=item)
        (arn,) = stack.scheduler.run_once()
        assert wait_for_end(sfn, arn) == "SUCCEEDED"
        counts = json.loads(sfn.describe_execution(executionArn=arn)["output"])["reconciled"]["counts"]
    finally:
        stack.pipes.resume()
    wait_until(lambda: "outcomePending" not in task(undelivered), f"{undelivered}'s outcome delivered")
    return {"counts": counts, "task": task(undelivered)}


def wait_until(condition: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up after {timeout} s waiting for {what}"
        time.sleep(0.1)


def wait_for_end(sfn: Any, execution_arn: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while (status := sfn.describe_execution(executionArn=execution_arn)["status"]) == "RUNNING":
        assert time.monotonic() < deadline, f"{execution_arn} still RUNNING after {timeout} s"
        time.sleep(0.1)
    return str(status)
