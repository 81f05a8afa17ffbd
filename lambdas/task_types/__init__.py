"""The registry of task types: each type is one module with a params model and a ``run`` function."""

from task_types.base import TaskContext, TaskParams, TaskType
from task_types.registry import get_task_type, known_types

__all__ = ["TaskContext", "TaskParams", "TaskType", "get_task_type", "known_types"]
