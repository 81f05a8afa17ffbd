from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from task_common.aws import DynamoDBTaskStore, S3BlobStore
from task_common.config import TaskFunctionConfig
from task_common.models import ValidateRequest
from task_common.observability import counts_expected_errors, logger, logs_each_try, metrics, tracer
from validate_task.limits import LifecycleLimits
from validate_task.logic import validate_task

CONFIG = TaskFunctionConfig.from_environ()
TASKS = DynamoDBTaskStore(CONFIG.tasks_table_name)
BLOBS = S3BlobStore(CONFIG.results_bucket_name)
LIMITS = LifecycleLimits.from_environ()


@logger.inject_lambda_context(correlation_id_path="taskId")
@tracer.capture_lambda_handler
@metrics.log_metrics
@counts_expected_errors
@logs_each_try
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = ValidateRequest.model_validate(event)
    validated = validate_task(
        request,
        tasks=TASKS,
        blobs=BLOBS,
        claim_check_threshold_bytes=CONFIG.claim_check_threshold_bytes,
        limits=LIMITS,
    )
    return validated.to_work_order()
