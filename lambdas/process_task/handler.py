from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from process_task.logic import process_task
from process_task.resume import DynamoDBTaskResumer, RedrivableProcessRequest
from task_common.aws import DynamoDBTaskStore, S3BlobStore, client
from task_common.config import ProcessConfig
from task_common.observability import counts_expected_errors, logger, logs_each_try, metrics, tracer

CONFIG = ProcessConfig.from_environ()
TASKS = DynamoDBTaskStore(CONFIG.tasks_table_name)
BLOBS = S3BlobStore(CONFIG.results_bucket_name)
RESUMER = DynamoDBTaskResumer(CONFIG.tasks_table_name, client("dynamodb"))
# One run per try (task, attempt, redrive, workflow retry): a redelivered invocation gets the stored response; a
# raised exception deletes the record, so the workflow's retries (and a redrive's) run again.
IDEMPOTENCY_STORE = DynamoDBPersistenceLayer(table_name=CONFIG.idempotency_table_name, boto3_client=client("dynamodb"))
IDEMPOTENCY = IdempotencyConfig(
    event_key_jmespath="[taskId, attempt, redriveCount, retry]", raise_on_no_idempotency_key=True
)


@logger.inject_lambda_context(correlation_id_path="taskId")
@tracer.capture_lambda_handler
@metrics.log_metrics
@counts_expected_errors
@logs_each_try
@idempotent(config=IDEMPOTENCY, persistence_store=IDEMPOTENCY_STORE)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = RedrivableProcessRequest.model_validate(event)
    processed = process_task(
        request,
        tasks=TASKS,
        blobs=BLOBS,
        claim_check_threshold_bytes=CONFIG.claim_check_threshold_bytes,
        resumer=RESUMER,
    )
    return processed.model_dump(mode="json", exclude_none=True)
