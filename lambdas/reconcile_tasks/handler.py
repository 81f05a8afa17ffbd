import time
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from reconcile_tasks.logic import reconcile_tasks
from reconcile_tasks.outbox import DynamoDBPendingOutcomes, ReconcilerOutboxConfig
from task_common.aws import DynamoDBTaskStore, StepFunctionsExecutions, client
from task_common.models import ReconcileRequest
from task_common.observability import logger, metrics, tracer

CONFIG = ReconcilerOutboxConfig.from_environ()
TASKS = DynamoDBTaskStore(CONFIG.tasks_table_name, pending_index=CONFIG.tasks_pending_index_name)
EXECUTIONS = StepFunctionsExecutions()
PENDING_OUTCOMES = DynamoDBPendingOutcomes(
    CONFIG.tasks_table_name, CONFIG.tasks_outcome_pending_index_name, client("dynamodb")
)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = ReconcileRequest.model_validate(event)
    result = reconcile_tasks(
        request,
        tasks=TASKS,
        executions=EXECUTIONS,
        now_ms=int(time.time() * 1000),
        stuck_queued_after_seconds=CONFIG.stuck_queued_after_seconds,
        max_tasks_per_run=CONFIG.max_tasks_per_run,
        pending_outcomes=PENDING_OUTCOMES,
        max_execution_seconds=CONFIG.lifecycle_max_execution_seconds,
    )
    return result.model_dump(mode="json")
