"""``diagnostic.sleep``: a long task with steady progress — to watch progress and cancellation."""

from __future__ import annotations

import time
from typing import Any

from pydantic import Field

from task_types.base import TaskContext, TaskParams, TaskType


class SleepParams(TaskParams):
    # Below the process function's 15-minute timeout, so a long sleep ends on its own.
    seconds: float = Field(gt=0, le=840)
    steps: int = Field(default=10, ge=1, le=100)


def run(params: SleepParams, ctx: TaskContext) -> dict[str, Any]:
    for step in range(1, params.steps + 1):
        time.sleep(params.seconds / params.steps)
        ctx.report_progress(step * 100 / params.steps)
    return {"slept": params.seconds}


# Its longest sleep: refused on an EXPRESS lifecycle, whose executions end after 5 minutes.
TASK_TYPE = TaskType(name="diagnostic.sleep", params_model=SleepParams, run=run, max_duration_seconds=840)
