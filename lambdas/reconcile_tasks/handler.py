import time
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from reconcile_tasks.logic import reconcile_tasks
from task_common.aws import DynamoDBTaskStore, StepFunctionsExecutions
from task_common.config import ReconcilerConfig
from task_common.models import ReconcileRequest
from task_common.observability import logger, metrics, tracer

CONFIG = ReconcilerConfig.from_environ()
TASKS = DynamoDBTaskStore(CONFIG.tasks_table_name, status_index=CONFIG.tasks_status_index_name)
EXECUTIONS = StepFunctionsExecutions()


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
    )
    return result.model_dump(mode="json")
