from task_common import errors


def test_error_class_names_the_workflow_matches_on_are_pinned():
    # Given the names the workflow's Retry and Catch match on
    expected = {"ValidationFailed", "TransientTaskError", "PermanentTaskError", "TaskCancelled"}

    # When the error module is read
    # Then each class still exists under that name, and ERROR_NAMES lists exactly them
    assert expected == errors.ERROR_NAMES
    for name in expected:
        assert getattr(errors, name).__name__ == name


def test_every_task_error_shares_one_base_class():
    for name in errors.ERROR_NAMES:
        assert issubclass(getattr(errors, name), errors.TaskError)
