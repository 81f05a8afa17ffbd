"""A small soak: ~100 tasks through the local stack with every fault switched on; nothing may be lost.

Runs `python -m taskrail.soak` in its own process (moto and its hooks are process-wide), the same entry point
as `make soak`, and asserts the invariants on its JSON report.
"""

import json
import subprocess
import sys
from collections import Counter

import pytest

from taskrail.soak import account

SMALL_SOAK_TASKS = 100


@pytest.fixture(scope="module")
def report() -> dict:
    completed = subprocess.run(
        [sys.executable, "-m", "taskrail.soak", "--tasks", str(SMALL_SOAK_TASKS), "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no report (exit {completed.returncode}):\n{completed.stderr[-3000:]}"
    return json.loads(lines[-1])


def test_every_accepted_task_is_accounted_for(report: dict):
    assert report["accepted"] == SMALL_SOAK_TASKS
    assert report["lost"] == 0
    assert sum(report["final_statuses"].values()) == SMALL_SOAK_TASKS


def test_every_call_was_evaluated_and_none_was_denied(report: dict):
    # issue 12: the soak runs with IAM enforced; a denial on a path that retries or dead-letters (the outbox, a DLQ
    # write) would leave the other invariants intact
    print(f"IAM decisions: {report['iam_decisions']}, denials: {report['iam_denials']} {report['iam_denied']}")
    assert report["iam_enforced"] is True
    assert report["iam_decisions"] > SMALL_SOAK_TASKS
    assert report["iam_denials"] == 0, report["iam_denied"]


def test_no_side_effect_happens_twice(report: dict):
    assert report["duplicated_side_effects"] == 0


def test_every_task_had_each_of_its_side_effects(report: dict):
    # a notification per outcome reached (first run and replay), a result per succeeded task
    assert report["missing"] == []
    assert report["missing_notifications"] == report["missing_results"] == 0
    assert report["unexpected_notifications"] == []
    assert report["final_statuses"].get("SUCCEEDED", 0) >= 1


# The accounting itself, on hand-made runs: each kind of shortfall is reported, per task.


def test_accounting_reports_missing_notifications_and_results_per_task():
    first = {"a": "SUCCEEDED", "b": "FAILED", "c": "REJECTED"}
    after = {"b": "SUCCEEDED"}
    notifications = Counter({("a", "SUCCEEDED"): 1, ("b", "FAILED"): 1})  # b's SUCCEEDED and c's REJECTED missing
    results = Counter({"a": 1})  # b succeeded after its replay but has no result

    accounting = account(["a", "b", "c"], first, after, notifications, results)

    assert accounting.missing_notifications == ["b SUCCEEDED", "c REJECTED"]
    assert accounting.missing_results == ["b"]
    assert accounting.lost == [] and accounting.duplicates == []


def test_accounting_reports_lost_duplicated_and_unexpected():
    first = {"a": "SUCCEEDED", "b": "RUNNING"}  # c was accepted but never seen
    notifications = Counter({("a", "SUCCEEDED"): 2, ("b", "FAILED"): 1})
    results = Counter({"a": 2})

    accounting = account(["a", "b", "c"], first, {}, notifications, results)

    assert accounting.lost == ["b RUNNING", "c UNKNOWN"]
    assert accounting.duplicates == ["notification a SUCCEEDED x2", "result a x2"]
    assert accounting.duplicated == 2
    assert accounting.unexpected_notifications == ["b FAILED x1"]


def test_a_complete_run_accounts_clean():
    first = {"a": "SUCCEEDED", "b": "FAILED", "c": "REJECTED"}
    after = {"b": "SUCCEEDED"}
    notifications = Counter({("a", "SUCCEEDED"): 1, ("b", "FAILED"): 1, ("b", "SUCCEEDED"): 1, ("c", "REJECTED"): 1})

    accounting = account(["a", "b", "c"], first, after, notifications, Counter({"a": 1, "b": 1}))

    assert accounting.model_dump() == {
        "lost": [],
        "missing_notifications": [],
        "missing_results": [],
        "unexpected_notifications": [],
        "duplicates": [],
    }


def test_dlq_messages_match_failed_tasks_one_to_one_and_replay_heals_them(report: dict):
    assert report["dlq_matches_failed"] is True
    assert report["dlq_messages"] == report["failed_to_dlq"] >= 1
    assert report["replayed"] == report["failed_to_dlq"]
    assert report["succeeded_after_replay"] == report["replayed"]


def test_every_kind_of_fault_was_injected(report: dict):
    kinds = {key.split(":")[0] for key in report["faults_injected"]}
    assert kinds >= {"transient", "throttled", "duplicate_delivery", "killed", "poller_outage"}
