"""Process: run the task's type with its parameters, reporting progress, and hand back the result."""

from __future__ import annotations

from functools import partial
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from process_task.resume import RedrivableProcessRequest, TaskResumer, resume_if_redriven
from task_common.claim_check import as_string_bytes, byte_size, load_params, to_json
from task_common.contract import result_body_key
from task_common.models import ProcessedTask, ProcessRequest
from task_common.observability import logger, metrics, tracer
from task_common.ports import BlobStore, TaskStore
from task_types import TaskContext, get_task_type


@tracer.capture_method
def process_task(
    request: ProcessRequest,
    *,
    tasks: TaskStore,
    blobs: BlobStore,
    claim_check_threshold_bytes: int,
    resumer: TaskResumer | None = None,
) -> ProcessedTask:
    """Run the task (a redrive resumes it first). Its errors (ValidationFailed, TransientTaskError,
    PermanentTaskError, TaskCancelled) and any unexpected exception propagate for the workflow to retry or catch,
    or to fail the execution at ProcessTask."""
    if resumer is not None and isinstance(request, RedrivableProcessRequest):
        resume_if_redriven(request, resumer)
    task_type = get_task_type(request.type)
    params = task_type.parse_params(_raw_params(request, blobs), user_id=request.user_id)
    context = TaskContext(
        task_id=request.task_id, user_id=request.user_id, attempt=request.attempt, store=tasks, blobs=blobs
    )
    context.report_progress(0)
    result = task_type.run(params, context)
    context.report_progress(100)
    metrics.add_dimension(name="TaskType", value=task_type.name)
    metrics.add_metric(name="TasksProcessed", unit=MetricUnit.Count, value=1)
    body = to_json(result)
    processed = partial(ProcessedTask, task_id=request.task_id, type=request.type, attempt=request.attempt)
    if as_string_bytes(body) <= claim_check_threshold_bytes:
        return processed(result=result)
    key = result_body_key(request.task_id)
    blobs.put_text(key, body)
    logger.info("result claim-checked", extra={"bytes": byte_size(body), "location": blobs.uri(key)})
    return processed(result_ref=blobs.uri(key), result_bytes=byte_size(body))


def _raw_params(request: ProcessRequest, blobs: BlobStore) -> Any:
    if request.params_location:
        return load_params(blobs, request.params_location, task_id=request.task_id, user_id=request.user_id)
    return request.params
