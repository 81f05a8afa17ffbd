"""Running a task type in a test: its minimal params from a fixture, in-memory stores, no network.

Every type has ``fixtures/task_types/<module>.params.json``, the smallest params it accepts (``taskrail new-type``
writes one); the registry tests run every type on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fakes import InMemoryBlobStore, InMemoryTaskStore, a_task
from scenarios import FIXTURES, read_json_fixture

from task_common.errors import ValidationFailed
from task_types import TaskContext, get_task_type
from task_types.registry import module_name

PARAMS_FIXTURES = FIXTURES / "task_types"


def params_fixture(type_name: str) -> Path:
    return PARAMS_FIXTURES / f"{module_name(type_name)}.params.json"


def minimal_params(type_name: str) -> dict[str, Any]:
    """The smallest params ``type_name`` accepts (its fixture file)."""
    params: dict[str, Any] = read_json_fixture(str(params_fixture(type_name).relative_to(FIXTURES)))
    return params


def run_task(
    type_name: str,
    params: dict[str, Any],
    *,
    tasks: InMemoryTaskStore | None = None,
    blobs: InMemoryBlobStore | None = None,
) -> dict[str, Any]:
    """Validate ``params`` as Validate does, then run the type as Process does; the type's result."""
    task = a_task(type=type_name)
    tasks = tasks or InMemoryTaskStore(task)
    task_type = get_task_type(type_name)
    parsed = task_type.parse_params(params, user_id=task.user_id)
    context = TaskContext(
        task_id=task.task_id,
        user_id=task.user_id,
        attempt=task.attempt,
        store=tasks,
        blobs=blobs or InMemoryBlobStore(),
    )
    return task_type.run(parsed, context)


def rejection(type_name: str, params: Any, user_id: str = "alice") -> str:
    """The ValidationFailed message ``params`` get from ``type_name``'s model."""
    with pytest.raises(ValidationFailed) as raised:
        get_task_type(type_name).parse_params(params, user_id=user_id)
    return str(raised.value)
