"""The reconciler on the local stack: the scheduler drives it, and a task the pipe never delivered still runs."""

from __future__ import annotations

import time

from taskrail.client import TaskrailClient
from taskrail.local.inprocess import api_task_item
from taskrail.local.stack import LocalStack
from taskrail.local.users import ALICE


def test_a_task_stuck_in_queued_is_started_by_the_reconciler_exactly_once(stack: LocalStack, alice: TaskrailClient):
    assert stack.info is not None and stack.scheduler is not None
    dynamodb = stack.clients("dynamodb")
    # Given a task stored ten minutes ago while the stream poller was down (the pipe never delivered it)
    stack.pipes.pause()
    try:
        task_id = "stuck-" + str(time.time_ns())
        dynamodb.put_item(
            TableName=stack.info.tasks_table,
            Item=api_task_item(
                task_id,
                "text.stats",
                {"text": "found by the reconciler"},
                ALICE.principal_id,
                created_at_ms=int(time.time() * 1000) - 600_000,
            ),
        )

        # When the reconciler runs (twice: it must be idempotent)
        first = stack.scheduler.run_once()
        second = stack.scheduler.run_once()
        sfn = stack.clients("stepfunctions")
        deadline = time.monotonic() + 60
        for arn in first + second:
            while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
                assert time.monotonic() < deadline, "the reconciler run did not finish"
                time.sleep(0.1)
            assert sfn.describe_execution(executionArn=arn)["status"] == "SUCCEEDED"
        # (the pipe stays down until the task is done: resumed, it reads the stored record at once, and its own
        # execution could claim the task before the reconciler's; then the reconciler would not have been needed)
        task = alice.wait([task_id], timeout=60)[task_id]
    finally:
        stack.pipes.resume()

    # Then the task ran once, through an execution the reconciler named
    assert task["status"] == "SUCCEEDED"
    assert task["attempt"] == 1
    assert task["executionArn"].endswith(f":{task_id}-q0")
