"""``diagnostic.poison``: fails permanently until an operator creates the fix marker — to exercise the
dead-letter queue and replay."""

from __future__ import annotations

from typing import Any

from task_common.errors import PermanentTaskError
from task_types.base import TaskContext, TaskParams, TaskType

FIX_MARKER_KEY = "diagnostics/poison-fixed"


class PoisonParams(TaskParams):
    pass


def run(params: PoisonParams, ctx: TaskContext) -> dict[str, Any]:
    if not ctx.blobs.exists(FIX_MARKER_KEY):
        raise PermanentTaskError(f"poison task: the fix marker {FIX_MARKER_KEY} does not exist")
    return {"fixed": True}


TASK_TYPE = TaskType(name="diagnostic.poison", params_model=PoisonParams, run=run, max_duration_seconds=10)
