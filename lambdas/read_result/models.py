"""What crosses the function's boundary: the API's request (rendered by read_result.request.vtl) and the answer
the response template turns into the method's status and body."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from task_common.models import CamelModel, TaskStatus


class ResultRequest(CamelModel):
    """``owner`` is the caller's stable principal, computed by the API's owner.vtl (the same rule as every route)."""

    task_id: str = Field(min_length=1, max_length=1500)
    owner: str = Field(min_length=1)


class TaskSummary(CamelModel):
    """The few attributes of a Tasks item the answer needs."""

    task_id: str
    user_id: str
    type: str
    status: TaskStatus
    error: str | None = None


class StoredResult(CamelModel):
    """``tasks/{id}/result.json`` as StoreResult writes it: the result inline, or its claim-check reference."""

    task_id: str | None = None
    result: Any = None
    result_ref: str | None = None
    result_bytes: int | None = None


class ResultAnswer(CamelModel):
    """The method's status (200, 404, 409) and its JSON body."""

    status_code: int
    body: dict[str, Any]
