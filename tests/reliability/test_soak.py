"""A small soak: ~100 tasks through the local stack with every fault switched on; nothing may be lost.

Runs `python -m taskrail.soak` in its own process (moto and its hooks are process-wide), the same entry point
as `make soak`, and asserts the invariants on its JSON report.
"""

import json
import subprocess
import sys

import pytest

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


def test_no_side_effect_happens_twice(report: dict):
    assert report["duplicated_side_effects"] == 0


def test_dlq_messages_match_failed_tasks_one_to_one_and_replay_heals_them(report: dict):
    assert report["dlq_matches_failed"] is True
    assert report["dlq_messages"] == report["failed_to_dlq"] >= 1
    assert report["replayed"] == report["failed_to_dlq"]
    assert report["succeeded_after_replay"] == report["replayed"]


def test_every_kind_of_fault_was_injected(report: dict):
    kinds = {key.split(":")[0] for key in report["faults_injected"]}
    assert kinds >= {"transient", "throttled", "duplicate_delivery", "killed", "poller_outage"}
