import time
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from read_result.aws import DynamoDBResultTasks, S3ResultObjects
from read_result.config import ReadResultConfig
from read_result.logic import read_result
from read_result.models import ResultRequest
from task_common.observability import logger, metrics, tracer

CONFIG = ReadResultConfig.from_environ()
TASKS = DynamoDBResultTasks(CONFIG.tasks_table_name)
OBJECTS = S3ResultObjects(CONFIG.results_bucket_name)


def _now_ms() -> int:
    return int(time.time() * 1000)


@logger.inject_lambda_context(correlation_id_path="taskId")
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = ResultRequest.model_validate(event)
    answer = read_result(request, tasks=TASKS, objects=OBJECTS, url_seconds=CONFIG.result_url_seconds, now_ms=_now_ms)
    return answer.model_dump(mode="json")
