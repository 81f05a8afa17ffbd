"""GET /tasks/{taskId}/result: the owner's result inline when it is small, a time-limited link when it is large.

"Small" and "large" are the workflow's own line (the claim check): a result up to the threshold is inline in
``tasks/{id}/result.json``, a larger one is ``tasks/{id}/result-body.json`` with a reference in ``result.json``.
Another owner's task answers 404 exactly like a missing one (as GET /tasks/{id}).
"""

from __future__ import annotations

from collections.abc import Callable

from aws_lambda_powertools.metrics import MetricUnit

from read_result.models import ResultAnswer, ResultRequest, StoredResult, TaskSummary
from read_result.ports import ResultObjects, ResultTasks
from task_common.contract import TERMINAL_STATUSES, Status, api_timestamp, result_body_key, result_key
from task_common.observability import logger, metrics, tracer
from task_common.ports import parse_s3_uri

NOT_FOUND = ResultAnswer(status_code=404, body={"message": "task not found"})


class ForgedResultReference(ValueError):
    """``result.json`` names an object that is not this task's result body: never presign it."""


@tracer.capture_method
def read_result(
    request: ResultRequest,
    *,
    tasks: ResultTasks,
    objects: ResultObjects,
    url_seconds: int,
    now_ms: Callable[[], int],
) -> ResultAnswer:
    task = tasks.find(request.task_id)
    if task is None or task.user_id != request.owner:
        metrics.add_metric(name="ResultsRefused", unit=MetricUnit.Count, value=1)
        return NOT_FOUND
    if task.status != Status.SUCCEEDED:
        metrics.add_metric(name="ResultsRefused", unit=MetricUnit.Count, value=1)
        return ResultAnswer(status_code=409, body={"message": _no_result(task)})
    document = objects.read_json(result_key(task.task_id))
    if document is None:
        logger.error("a SUCCEEDED task has no result object", extra={"key": result_key(task.task_id)})
        return ResultAnswer(status_code=404, body={"message": f"the result object of task {task.task_id} is missing"})
    stored = StoredResult.model_validate(document)
    if stored.result_ref is None:
        metrics.add_metric(name="ResultsReadInline", unit=MetricUnit.Count, value=1)
        return ResultAnswer(status_code=200, body={"taskId": task.task_id, "type": task.type, "result": stored.result})
    key = _own_result_body(task.task_id, stored.result_ref, objects.bucket)
    issued_ms = now_ms()
    url = objects.presigned_get(key, expires_in=url_seconds)
    metrics.add_metric(name="ResultsReadByLink", unit=MetricUnit.Count, value=1)
    body = {
        "taskId": task.task_id,
        "type": task.type,
        "resultUrl": url,
        "expiresAt": api_timestamp(issued_ms + url_seconds * 1000),
        "resultBytes": stored.result_bytes,
    }
    return ResultAnswer(status_code=200, body={k: v for k, v in body.items() if v is not None})


def _no_result(task: TaskSummary) -> str:
    if task.status not in TERMINAL_STATUSES:
        return (
            f"task {task.task_id} is {task.status.value}: no result yet; "
            f"GET /tasks/{task.task_id} until its status is SUCCEEDED"
        )
    reason = f" (error {task.error})" if task.error else ""
    return f"task {task.task_id} is {task.status.value}: it has no result{reason}"


def _own_result_body(task_id: str, reference: str, bucket: str) -> str:
    """The key a reference names, if it is this task's result body in the results bucket."""
    referenced_bucket, key = parse_s3_uri(reference)
    if referenced_bucket != bucket or key != result_body_key(task_id):
        raise ForgedResultReference(f"task {task_id}'s result reference {reference} is not its result body")
    return key
