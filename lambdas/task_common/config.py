"""The functions' environment, parsed once at cold start; logic gets these values, never ``os.environ``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Self

from pydantic import BaseModel, ConfigDict, Field

from task_common.contract import PENDING_INDEX_ENV

DEFAULT_CLAIM_CHECK_THRESHOLD_BYTES = 200_000


class EnvironmentModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Self:
        return cls.model_validate(dict(os.environ if environ is None else environ))


class TaskFunctionConfig(EnvironmentModel):
    """Validate and Process: the Tasks table, the results bucket and the claim-check threshold."""

    tasks_table_name: str = Field(alias="TASKS_TABLE_NAME", min_length=1)
    results_bucket_name: str = Field(alias="RESULTS_BUCKET_NAME", min_length=1)
    idempotency_table_name: str | None = Field(default=None, alias="IDEMPOTENCY_TABLE_NAME")
    # Below Step Functions' 256 KB payload limit, with room for the rest of the state's input.
    claim_check_threshold_bytes: int = Field(
        default=DEFAULT_CLAIM_CHECK_THRESHOLD_BYTES, alias="CLAIM_CHECK_THRESHOLD_BYTES", gt=0
    )


class ProcessConfig(TaskFunctionConfig):
    idempotency_table_name: str = Field(alias="IDEMPOTENCY_TABLE_NAME", min_length=1)


DEFAULT_STUCK_QUEUED_AFTER_SECONDS = 300
DEFAULT_MAX_TASKS_PER_RUN = 500


class ReconcilerConfig(EnvironmentModel):
    """Reconcile: the Tasks table and its sparse index of QUEUED and RUNNING tasks, when a QUEUED task counts as
    stuck, and how many tasks of each status one run looks at (oldest first; the next run picks up the rest)."""

    tasks_table_name: str = Field(alias="TASKS_TABLE_NAME", min_length=1)
    tasks_pending_index_name: str = Field(alias=PENDING_INDEX_ENV, min_length=1)
    stuck_queued_after_seconds: int = Field(
        default=DEFAULT_STUCK_QUEUED_AFTER_SECONDS, alias="STUCK_QUEUED_AFTER_SECONDS", ge=0
    )
    max_tasks_per_run: int = Field(default=DEFAULT_MAX_TASKS_PER_RUN, alias="MAX_TASKS_PER_RUN", gt=0)
    # Set for an EXPRESS lifecycle only (its executions cannot be described): a RUNNING task claimed longer ago than
    # this has outlived its execution.
    lifecycle_max_execution_seconds: int | None = Field(default=None, alias="LIFECYCLE_MAX_EXECUTION_SECONDS", gt=0)


class TaskChangesConfig(EnvironmentModel):
    """Task changes: the Tasks table (the outbox), the idempotency table, where outcomes go."""

    tasks_table_name: str = Field(alias="TASKS_TABLE_NAME", min_length=1)
    idempotency_table_name: str = Field(alias="IDEMPOTENCY_TABLE_NAME", min_length=1)
    dead_letter_queue_url: str = Field(alias="DEAD_LETTER_QUEUE_URL", min_length=1)
    event_bus_name: str = Field(alias="EVENT_BUS_NAME", min_length=1)
    # False for an EXPRESS lifecycle: its executions cannot be stopped, a cancel is the task's status alone.
    stop_executions: bool = Field(default=True, alias="STOP_EXECUTIONS")
