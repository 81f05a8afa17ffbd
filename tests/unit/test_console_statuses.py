"""What the console's execution list shows for each execution (taskrail/console.py, shown_status): the task's own
end when the execution holds the ended task, else the execution's status; and which execution statuses each
shown status is listed from."""

from __future__ import annotations

import pytest

from task_common.contract import ALL_STATUSES
from taskrail.console import SHOWN_FROM, shown_status

ARN = "arn:aws:states:us-east-1:123456789012:execution:lifecycle:e-1"


@pytest.mark.parametrize(
    ("execution_status", "task", "shown"),
    [
        ("SUCCEEDED", {"status": "REJECTED", "executionArn": ARN}, "REJECTED"),  # ended quietly in TaskRejected
        ("SUCCEEDED", {"status": "CANCELLED", "executionArn": ARN}, "CANCELLED"),  # TaskWasCancelled
        ("ABORTED", {"status": "CANCELLED", "executionArn": ARN}, "CANCELLED"),  # stopped by the cancel pipe
        ("TIMED_OUT", {"status": "FAILED", "executionArn": ARN}, "FAILED"),  # the failure recorded
        ("SUCCEEDED", {"status": "SUCCEEDED", "executionArn": ARN}, "SUCCEEDED"),
        ("FAILED", {"status": "RUNNING", "executionArn": ARN}, "FAILED"),  # not recorded yet: the execution's
        ("RUNNING", {"status": "FAILED", "executionArn": ARN}, "RUNNING"),  # redriven, not resumed yet
        ("FAILED", {"status": "SUCCEEDED", "executionArn": f"{ARN}-r1"}, "FAILED"),  # a replay holds the task
        ("SUCCEEDED", {}, "SUCCEEDED"),  # no task (a duplicate delivery's TaskAlreadyClaimed)
    ],
)
def test_a_row_shows_the_tasks_end_only_where_the_execution_holds_it(execution_status, task, shown):
    assert shown_status(ARN, execution_status, task) == shown


def test_every_shown_status_is_listed_from_the_execution_statuses_it_can_come_from():
    assert {"REJECTED", "CANCELLED", "FAILED", "SUCCEEDED", "RUNNING"} <= set(SHOWN_FROM)
    assert set(SHOWN_FROM) - {"TIMED_OUT", "ABORTED", "PENDING_REDRIVE"} <= set(ALL_STATUSES)
    for execution_status in ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "RUNNING"):
        for task_status in ("SUCCEEDED", "REJECTED", "FAILED", "CANCELLED", "RUNNING"):
            shown = shown_status(ARN, execution_status, {"status": task_status, "executionArn": ARN})
            assert execution_status in SHOWN_FROM[shown], (execution_status, task_status, shown)
