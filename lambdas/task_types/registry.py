"""Task types by name. Adding a type: write its module, then add it to ``_TASK_TYPES``."""

from __future__ import annotations

from task_common.errors import ValidationFailed
from task_types import (
    csv_summary,
    diagnostic_echo,
    diagnostic_flaky,
    diagnostic_poison,
    diagnostic_sleep,
    text_stats,
)
from task_types.base import TaskType

_TASK_TYPES: dict[str, TaskType] = {
    task_type.name: task_type
    for task_type in (
        csv_summary.TASK_TYPE,
        text_stats.TASK_TYPE,
        diagnostic_echo.TASK_TYPE,
        diagnostic_flaky.TASK_TYPE,
        diagnostic_poison.TASK_TYPE,
        diagnostic_sleep.TASK_TYPE,
    )
}


def known_types() -> list[str]:
    return sorted(_TASK_TYPES)


def get_task_type(name: str) -> TaskType:
    try:
        return _TASK_TYPES[name]
    except KeyError:
        raise ValidationFailed(f"unknown task type {name[:100]!r}; known types: {', '.join(known_types())}") from None
