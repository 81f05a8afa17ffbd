import pytest
from pydantic import ValidationError

from task_common.config import DEFAULT_CLAIM_CHECK_THRESHOLD_BYTES, ProcessConfig, TaskFunctionConfig

BASE = {"TASKS_TABLE_NAME": "Tasks", "RESULTS_BUCKET_NAME": "results"}


def test_claim_check_threshold_defaults_when_unset():
    config = TaskFunctionConfig.from_environ(BASE)

    assert config.claim_check_threshold_bytes == DEFAULT_CLAIM_CHECK_THRESHOLD_BYTES
    assert config.idempotency_table_name is None


def test_claim_check_threshold_is_read_from_the_environment():
    config = TaskFunctionConfig.from_environ({**BASE, "CLAIM_CHECK_THRESHOLD_BYTES": "1024"})

    assert config.claim_check_threshold_bytes == 1024


def test_process_function_refuses_to_start_without_an_idempotency_table():
    with pytest.raises(ValidationError, match="IDEMPOTENCY_TABLE_NAME"):
        ProcessConfig.from_environ(BASE)


def test_a_missing_table_name_fails_at_cold_start():
    with pytest.raises(ValidationError, match="TASKS_TABLE_NAME"):
        TaskFunctionConfig.from_environ({"RESULTS_BUCKET_NAME": "results"})
