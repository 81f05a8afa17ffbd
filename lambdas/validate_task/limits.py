"""The lifecycle's time limit as Validate sees it: a task type whose declared maximum duration, over all the tries
ProcessTask may give it, does not fit in what the lifecycle's execution limit leaves for processing is refused
(REJECTED, never retried). The figures come from the template (``workflows/task_lifecycle.py``,
``process_time_budget``): on EXPRESS an execution ends after 5 minutes, on STANDARD after the lifecycle's timeout."""

from __future__ import annotations

from pydantic import Field

from task_common.config import EnvironmentModel
from task_types.base import TaskType


class LifecycleLimits(EnvironmentModel):
    """Unset (a function environment without them), nothing is refused."""

    lifecycle_type: str = Field(default="", alias="LIFECYCLE_TYPE")
    limit_seconds: int | None = Field(default=None, alias="LIFECYCLE_TIME_LIMIT_SECONDS", gt=0)
    tries: int = Field(default=1, alias="PROCESS_TRIES", gt=0)
    budget_seconds: int | None = Field(default=None, alias="PROCESS_TIME_BUDGET_SECONDS", gt=0)

    def refusal(self, task_type: TaskType) -> str | None:
        """Why ``task_type`` cannot run on this lifecycle, or None when its tries fit."""
        if self.budget_seconds is None:
            return None
        longest = task_type.max_duration_seconds * self.tries
        if longest <= self.budget_seconds:
            return None
        return (
            f"task type {task_type.name} may run {task_type.max_duration_seconds:g} s a try, {longest:g} s over its "
            f"{self.tries} tries, more than the {self.budget_seconds} s this {self.lifecycle_type} lifecycle leaves "
            f"for processing (its executions end after {self.limit_seconds} s); run it on a STANDARD lifecycle"
        )
