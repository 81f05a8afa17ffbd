"""``diagnostic.echo``: returns its parameters as its result — the worst case of the payload limits, where the
result is as large as the parameters (tests and demos of the claim check)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from task_types.base import TaskContext, TaskParams, TaskType


class EchoParams(TaskParams):
    payload: Any = Field(description="any JSON value; the result is {'echo': payload}")


def run(params: EchoParams, ctx: TaskContext) -> dict[str, Any]:
    ctx.report_progress(50)
    return {"echo": params.payload}


TASK_TYPE = TaskType(name="diagnostic.echo", params_model=EchoParams, run=run, max_duration_seconds=10)
