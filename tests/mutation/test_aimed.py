"""bench.mutation.aimed: each asl mutant is sent to the tests aimed at its state and definition."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.mutation import asl
from bench.mutation.aimed import aimed
from bench.mutation.common import TestRun as Run


def test_an_express_handler_edit_runs_the_express_error_path_rows_of_its_state():
    args = aimed("task_lifecycle.express/MarkSucceeded.Retry[0]: error-equals drops DynamoDB.ThrottlingException")
    assert args[0] == "tests/workflows/test_error_paths_express.py"
    assert "tests/workflows/test_lifecycle_types.py" in args
    assert args[-2:] == ("-k", "MarkSucceeded or timeouts or lifecycle_types")


def test_an_express_process_task_edit_also_runs_the_real_timeout():
    args = aimed("task_lifecycle.express/ProcessTask.Retry[0]: error-equals drops States.Timeout")
    assert "tests/workflows/test_state_timeouts_express.py" in args


def test_the_express_recorder_state_runs_the_recording_rows():
    args = aimed("task_lifecycle.express/RecordTaskFailed.Retry[0]: error-equals drops DynamoDB.RequestLimitExceeded")
    assert args[-1] == "recording or timeouts or lifecycle_types"


def test_a_condition_edit_also_runs_the_tests_that_reach_the_condition():
    args = aimed("task_lifecycle/MarkRejected: flip-condition '#status = :running' → '#status <> :running'")
    assert "tests/workflows/test_cancellation.py" in args and "tests/workflows/test_task_lifecycle.py" in args
    assert args[-1] == "MarkRejected or cancel or lifecycle"


def test_the_reconciler_and_the_recorder_run_their_own_files_and_anything_else_the_whole_area():
    assert aimed("reconciler/ReconcileTasks.Retry[0]: delete-retry")[0] == "tests/workflows/test_state_timeouts.py"
    recorder = aimed("failure_recorder/RecordTaskFailed.Catch[0]: delete-catch")
    assert recorder == ("tests/workflows/test_error_paths_recorder.py", "tests/workflows/test_failure_path.py")
    assert aimed("something else") == ("tests/workflows",)


def test_a_validation_edit_on_the_standard_lifecycle_also_runs_the_lifecycle_type_tables():
    args = aimed("task_lifecycle/ValidateParameters.Catch[0]: delete-catch")
    assert "tests/workflows/test_lifecycle_types.py" in args
    assert args[-1] == "ValidateParameters or lifecycle_types"


def _one_state_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    (tree / "asl").mkdir(parents=True)
    definition = {
        "StartAt": "ClaimTask",
        "States": {
            "ClaimTask": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:dynamodb:updateItem", "End": True,
                          "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Failed"}]},
            "Failed": {"Type": "Fail"},
        },
    }  # fmt: skip
    (tree / "asl" / "task_lifecycle.asl.json").write_text(json.dumps(definition))
    return tree


@pytest.mark.parametrize(("passes_alone", "killed"), [(True, True), (False, False)])
def test_an_aimed_failure_is_a_kill_only_when_the_failing_test_passes_without_the_mutant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, passes_alone: bool, killed: bool
) -> None:
    tree = _one_state_tree(tmp_path)
    runs: list[tuple[str, ...]] = []
    failing = "tests/workflows/test_error_paths.py::test_x[ClaimTask]"
    monkeypatch.setattr(asl, "synth_in", lambda _tree, _env: tree / "template.json")

    def with_the_mutant(_tree: Path, tests: tuple[str, ...], *_args: object) -> Run:
        runs.append(tests)
        return Run(False, failing, 1, "")

    def alone_without_it(_tree: Path, tests: tuple[str, ...], *_args: object) -> Run:
        runs.append(tests)
        return Run(passes_alone, "", 1, "")

    monkeypatch.setattr(asl, "confirmed_run", with_the_mutant)
    monkeypatch.setattr(asl, "run_pytest", alone_without_it)
    result = asl.run(tree, tmp_path / "work", lambda every: every[:1], 60)
    (outcome,) = result.outcomes
    assert runs[0] == aimed(outcome.mutant.ident), "the mutant ran its aimed tests, not the whole area"
    assert runs[1] == (failing,), "the failing test was run alone without the mutant"
    assert (outcome.killed, bool(outcome.killed_by)) == (killed, killed)
    assert not result.baseline_error
