"""The history reader (taskrail/history.py) on execution histories recorded from the in-process platform.

The fixtures under tests/unit/fixtures/histories/ are recorded with ``python -m tests.record_histories`` (see that
module for how each path is produced): happy, retried, timed out then retried, rejected, failed, cancelled.
``test_every_state_a_fixture_names_is_a_state_of_the_lifecycle`` fails when the workflow changes under them: then
re-record.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from task_common.contract import EndState
from taskrail import history
from taskrail.history import Outcome

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "histories"
LIFECYCLE_ASL = Path(__file__).resolve().parents[2] / "asl" / "task_lifecycle.asl.json"
RECORDINGS = ("happy", "retried", "timed_out_then_retried", "rejected", "failed", "cancelled")
MAIN_PATH = ["ClaimTask", "ValidateParameters", "ProcessTask", "StoreResult", "MarkSucceeded", EndState.SUCCEEDED]
REJECTION_PATH = ["ClaimTask", "ValidateParameters", "MarkRejected", EndState.REJECTED]


def recorded(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return document


def events(name: str) -> list[dict[str, Any]]:
    return list(recorded(name)["events"])


def _state_names(recorded_events: list[dict[str, Any]]) -> set[str]:
    return {
        details["name"]
        for event in recorded_events
        for key, details in event.items()
        if key in {"stateEnteredEventDetails", "stateExitedEventDetails"}
    }


def test_every_fixture_is_a_recorded_history_whose_end_is_its_recorded_status():
    assert sorted(p.stem for p in FIXTURES.glob("*.json")) == sorted(RECORDINGS)
    for name in RECORDINGS:
        document = recorded(name)
        assert document["events"][0]["type"] == "ExecutionStarted", name
        assert history.read(document["events"]).status == document["status"], name


@pytest.mark.parametrize("name", RECORDINGS)
def test_every_state_a_fixture_names_is_a_state_of_the_lifecycle(name: str):
    # Given the workflow as synthesized now (asl/ is drift-checked against the code)
    states = set(json.loads(LIFECYCLE_ASL.read_text())["States"])
    # Then the recorded history names none that it no longer has (else: python -m tests.record_histories)
    named = _state_names(events(name))
    assert named, name
    assert named <= states, f"{name}.json names {sorted(named - states)}, not in {LIFECYCLE_ASL.name}: re-record"


def test_a_happy_execution_visits_the_main_path_once_without_retries():
    read = history.read(events("happy"))

    assert read.status == "SUCCEEDED"
    assert read.states_entered == MAIN_PATH
    assert read.current_state == "TaskSucceeded"
    assert read.retries == 0
    assert read.failures == []
    assert read.billable_transitions == len(MAIN_PATH)
    assert {v.name: v.outcome(read.status) for v in read.visits} == dict.fromkeys(MAIN_PATH, Outcome.SUCCEEDED)
    assert [v.task_attempts for v in read.visits] == [1, 1, 1, 1, 1, 0]  # the Succeed state calls nothing
    assert all(v.attempts == 1 for v in read.visits)
    assert history.execution_summary(events("happy")) == ("TaskSucceeded", 0)


def test_a_transient_failure_retried_twice_is_two_retries_of_one_visit():
    read = history.read(events("retried"))
    (process,) = read.visits_of("ProcessTask")

    assert read.states_entered == MAIN_PATH
    assert (process.task_attempts, process.retries) == (3, 2)
    assert process.errors == ("TransientTaskError", "TransientTaskError")
    assert process.outcome(read.status) == Outcome.RETRIED
    assert read.retries == 2
    assert read.billable_transitions == len(MAIN_PATH) + 2
    assert history.execution_summary(events("retried")) == ("TaskSucceeded", 2)


def test_an_attempt_that_times_out_and_is_retried_is_a_retry_everywhere():
    recorded_events = events("timed_out_then_retried")
    read = history.read(recorded_events)
    (process,) = read.visits_of("ProcessTask")

    # Given ProcessTask's first attempt timed out (States.Timeout is in its transient Retry) and the second succeeded
    assert [(f.error, f.timed_out) for f in process.failures] == [("States.Timeout", True)]
    # Then it is one retry: for the client's watch, the console's outcome and the cost model's transitions alike
    assert process.retries == 1
    assert history.execution_summary(recorded_events) == ("TaskSucceeded", 1)
    assert process.outcome(read.status) == Outcome.RETRIED
    assert history.billable_transitions(history.state_visits(recorded_events)) == len(MAIN_PATH) + 1


def test_the_late_answer_of_a_timed_out_attempt_is_not_its_outcome():
    # moto records the answer a timed-out invocation gives later (a TaskSucceeded after the TaskTimedOut; AWS does
    # not report it): the reader takes only the first outcome of each attempt.
    recorded_events = events("timed_out_then_retried")
    types = [e["type"] for e in recorded_events]
    timed_out = types.index("TaskTimedOut")
    late = {**recorded_events[timed_out], "type": "TaskSucceeded", "taskSucceededEventDetails": {"output": "{}"}}
    del late["taskTimedOutEventDetails"]
    cut = [*recorded_events[: timed_out + 1], late]  # the history right after the late answer

    (process,) = history.read(cut).visits_of("ProcessTask")
    assert process.last_attempt_failed
    assert process.errors == ("States.Timeout",)
    assert history.read([*cut, *recorded_events[timed_out + 1 :]]).retries == 1


def test_a_rejection_is_caught_at_validation_and_ends_in_the_rejected_succeed_state():
    read = history.read(events("rejected"))
    (validate,) = read.visits_of("ValidateParameters")
    end = read.visits[-1]

    # Given ValidateParameters raised ValidationFailed, which its Catch sends to MarkRejected
    assert read.status == "SUCCEEDED"  # a rejection ends the execution in a Succeed state
    assert read.states_entered == REJECTION_PATH
    assert validate.errors == ("ValidationFailed",)
    # Then the failure is caught, not retried, and nothing ran the work
    assert (validate.retries, validate.outcome(read.status)) == (0, Outcome.CAUGHT)
    assert read.visits_of("ProcessTask") == []
    assert (end.name, end.is_fail_state, end.outcome(read.status)) == (EndState.REJECTED, False, Outcome.SUCCEEDED)
    assert read.current_state == EndState.REJECTED
    assert read.retries == 0
    assert read.billable_transitions == len(REJECTION_PATH)
    assert [name for name, _ in read.failures] == ["ValidateParameters"]
    assert read.error is None  # the execution did not fail
    assert history.execution_summary(events("rejected")) == (EndState.REJECTED, 0)


def test_a_permanent_failure_is_not_caught_and_ends_the_execution_failed_inside_process_task():
    read = history.read(events("failed"))
    process = read.visits[-1]

    # Given ProcessTask raised PermanentTaskError, which no Retry and no Catch of the lifecycle matches
    assert read.status == "FAILED"
    assert read.states_entered == MAIN_PATH[:3]
    assert (process.name, process.errors) == ("ProcessTask", ("PermanentTaskError",))
    # Then the execution ended inside ProcessTask: no Fail state, no retry
    assert not process.exited
    assert not any(v.is_fail_state for v in read.visits)
    assert (process.retries, process.outcome(read.status)) == (0, Outcome.FAILED)
    assert read.current_state == "ProcessTask"
    assert read.retries == 0
    assert read.billable_transitions == len(MAIN_PATH[:3])
    assert [name for name, _ in read.failures] == ["ProcessTask"]
    assert read.error == "PermanentTaskError"
    assert read.first_failure.startswith("TaskFailed: ")
    assert history.execution_summary(events("failed")) == ("ProcessTask", 0)


def test_a_cancelled_execution_ends_aborted_inside_the_state_it_was_in():
    read = history.read(events("cancelled"))
    process = read.visits[-1]

    assert read.status == "ABORTED"
    assert read.current_state == "ProcessTask"
    assert read.states_entered == MAIN_PATH[:3]
    assert not process.exited
    assert process.outcome(read.status) == Outcome.FAILED  # the execution ended inside it
    assert process.outcome("RUNNING") == Outcome.RUNNING
    assert read.retries == 0


@pytest.mark.parametrize("name", RECORDINGS)
def test_the_timeline_has_a_row_per_event_naming_the_state_it_happened_in(name: str):
    recorded_events = events(name)
    rows = history.timeline(recorded_events)

    assert [r["id"] for r in rows] == [e["id"] for e in recorded_events]
    assert rows[0]["elapsedSeconds"] == 0.0
    assert all(a["elapsedSeconds"] <= b["elapsedSeconds"] for a, b in itertools.pairwise(rows))
    entered = [r for r in rows if r["type"].endswith("StateEntered")]
    assert [r["state"] for r in entered] == history.read(recorded_events).states_entered
    scheduled = [r for r in rows if r["type"] == "TaskScheduled"]
    assert all(r["state"] and ":" in r["detail"] for r in scheduled)  # resourceType:resource


def test_visit_seconds_run_from_entering_to_leaving_the_state():
    read = history.read(events("timed_out_then_retried"))
    (process,) = read.visits_of("ProcessTask")

    assert process.seconds >= 1.0  # its first attempt waited out the 1 s timeout
    assert all(v.seconds >= 0 for v in read.visits)
    assert process.as_dict()["attempts"] == 2
    assert [f["error"] for f in process.as_dict()["failures"]] == ["States.Timeout"]


def test_transitions_are_the_moves_between_consecutive_visits():
    read = history.read(events("rejected"))

    assert read.transitions() == list(itertools.pairwise(REJECTION_PATH))
