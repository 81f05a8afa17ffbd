"""bench.mutation.aimed: each asl mutant is sent to the tests aimed at its state and definition."""

from __future__ import annotations

from bench.mutation.aimed import aimed


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
