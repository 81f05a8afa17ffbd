"""The functions' environment: documented defaults and the names AWS allows (docs/TEST-STRENGTH.md, area lambdas)."""

from __future__ import annotations

import pydantic
import pytest

from task_common.config import ReconcilerConfig, TaskChangesConfig

# The index's variable has had two names (the status index, then the sparse pending one); unknown names are ignored
RECONCILER_ENVIRON = {
    "TASKS_TABLE_NAME": "tasks",
    "TASKS_STATUS_INDEX_NAME": "status-createdAt",
    "TASKS_PENDING_INDEX_NAME": "pending-createdAt",
}
TASK_CHANGES_ENVIRON = {
    "TASKS_TABLE_NAME": "tasks",
    "IDEMPOTENCY_TABLE_NAME": "idempotency",
    "DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
}


def test_the_reconciler_counts_a_queued_task_stuck_after_300_seconds_and_looks_at_500_per_status_by_default():
    # docs/DECISIONS.md: stuck QUEUED is "created more than STUCK_QUEUED_AFTER_SECONDS, 300, ago", and a run looks
    # at "most MAX_TASKS_PER_RUN (500) per status per run"
    config = ReconcilerConfig.from_environ(RECONCILER_ENVIRON)
    assert (config.stuck_queued_after_seconds, config.max_tasks_per_run) == (300, 500)

    overridden = ReconcilerConfig.from_environ(
        {**RECONCILER_ENVIRON, "STUCK_QUEUED_AFTER_SECONDS": "60", "MAX_TASKS_PER_RUN": "7"}
    )
    assert (overridden.stuck_queued_after_seconds, overridden.max_tasks_per_run) == (60, 7)


def test_an_event_bus_name_of_one_character_is_accepted_and_an_empty_one_refused():
    # AWS: an event bus Name has "Length Constraints: Minimum length of 1. Maximum length of 256" (CreateEventBus,
    # Amazon EventBridge API Reference), so a one-character bus is a real bus
    assert TaskChangesConfig.from_environ({**TASK_CHANGES_ENVIRON, "EVENT_BUS_NAME": "b"}).event_bus_name == "b"

    with pytest.raises(pydantic.ValidationError, match="EVENT_BUS_NAME"):
        TaskChangesConfig.from_environ({**TASK_CHANGES_ENVIRON, "EVENT_BUS_NAME": ""})
