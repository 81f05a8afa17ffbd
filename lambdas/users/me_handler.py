from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from task_common.observability import logger, metrics, tracer
from users.aws import DynamoDBUserDirectory
from users.config import MeConfig
from users.me import read_me
from users.models import MeRequest

CONFIG = MeConfig.from_environ()
DIRECTORY = DynamoDBUserDirectory(CONFIG.users_table_name, CONFIG.profiles_table_name)


def _now() -> datetime:
    return datetime.now(UTC)


@logger.inject_lambda_context(correlation_id_path="owner")
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = MeRequest.model_validate(event)
    return read_me(request, directory=DIRECTORY, now=_now).model_dump(mode="json")
