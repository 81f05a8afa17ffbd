from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import TypeAdapter

from cancel_task.logic import cancel_executions
from task_common.aws import StepFunctionsExecutions
from task_common.models import StreamRecord
from task_common.observability import counts_expected_errors, logger, metrics, tracer

EXECUTIONS = StepFunctionsExecutions()
STREAM_RECORDS = TypeAdapter(list[StreamRecord])


@logger.inject_lambda_context(correlation_id_path="[0].dynamodb.Keys.taskId.S")
@tracer.capture_lambda_handler
@metrics.log_metrics
@counts_expected_errors
def handler(event: list[dict[str, Any]], context: LambdaContext) -> dict[str, Any]:
    records = STREAM_RECORDS.validate_python(event)
    return cancel_executions(records, executions=EXECUTIONS).model_dump(mode="json", exclude_none=True)
