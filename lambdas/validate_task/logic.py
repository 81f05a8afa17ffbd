"""Validate: the task's type exists and its parameters satisfy that type's model."""

from __future__ import annotations

from functools import partial
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from task_common.claim_check import byte_size, load_params, parse_params_json, to_json
from task_common.contract import input_key
from task_common.errors import PermanentTaskError, ValidationFailed
from task_common.models import TaskRecord, ValidatedTask, ValidateRequest
from task_common.observability import logger, metrics, tracer
from task_common.ports import BlobStore, TaskNotFound, TaskStore
from task_types import get_task_type
from validate_task.limits import LifecycleLimits


@tracer.capture_method
def validate_task(
    request: ValidateRequest,
    *,
    tasks: TaskStore,
    blobs: BlobStore,
    claim_check_threshold_bytes: int,
    limits: LifecycleLimits | None = None,
) -> ValidatedTask:
    """Raise ValidationFailed when the task cannot run; otherwise return what Process needs, with the
    parameters inline or — past the threshold — claim-checked to S3."""
    try:
        task = tasks.get_task(request.task_id)
    except TaskNotFound as error:
        raise PermanentTaskError(str(error)) from error
    try:
        task_type = get_task_type(task.type)
        if limits is not None and (refusal := limits.refusal(task_type)):
            raise ValidationFailed(refusal)
        params = task_type.parse_params(_raw_params(task, blobs), user_id=task.user_id)
    except ValidationFailed:
        metrics.add_metric(name="TasksRejected", unit=MetricUnit.Count, value=1)
        raise
    metrics.add_metric(name="TasksValidated", unit=MetricUnit.Count, value=1)
    validated = partial(
        ValidatedTask, task_id=task.task_id, user_id=task.user_id, type=task.type, attempt=request.attempt
    )
    if task.params_location:
        return validated(params_location=task.params_location)
    text = to_json(params.normalized())
    if byte_size(text) <= claim_check_threshold_bytes:
        return validated(params=params.normalized())
    key = input_key(task.task_id)
    blobs.put_text(key, text)
    logger.info("params claim-checked", extra={"bytes": byte_size(text), "location": blobs.uri(key)})
    return validated(params_location=blobs.uri(key))


def _raw_params(task: TaskRecord, blobs: BlobStore) -> Any:
    if task.params_location:
        return load_params(blobs, task.params_location, task_id=task.task_id, user_id=task.user_id)
    # A type without parameters may be submitted without any.
    return parse_params_json(task.params) if task.params is not None else {}
