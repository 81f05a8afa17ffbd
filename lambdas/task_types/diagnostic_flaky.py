"""``diagnostic.flaky``: fails transiently ``failures`` times, then succeeds — to watch retries work."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from task_common.errors import TransientTaskError
from task_types.base import TaskContext, TaskParams, TaskType

COUNTER = "diagnosticFailures"


class FlakyParams(TaskParams):
    failures: int = Field(default=2, ge=0, le=10)


def run(params: FlakyParams, ctx: TaskContext) -> dict[str, Any]:
    invocation = ctx.counters.increment(COUNTER)
    if invocation <= params.failures:
        raise TransientTaskError(f"diagnostic.flaky failure {invocation} of {params.failures}")
    return {"failuresBeforeSuccess": params.failures}


TASK_TYPE = TaskType(name="diagnostic.flaky", params_model=FlakyParams, run=run, max_duration_seconds=10)
