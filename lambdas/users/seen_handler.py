from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from task_common.observability import logger, metrics, tracer
from users.aws import DynamoDBUserDirectory
from users.config import MeConfig
from users.models import LogsSubscriptionEvent
from users.seen import SeenMemo, callers_of, record_callers

CONFIG = MeConfig.from_environ()
DIRECTORY = DynamoDBUserDirectory(CONFIG.users_table_name, CONFIG.profiles_table_name)
MEMO = SeenMemo()


def _now() -> datetime:
    return datetime.now(UTC)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    data = LogsSubscriptionEvent.model_validate(event).data()
    callers = callers_of(data.message_type, (e.message for e in data.log_events))
    return record_callers(callers, directory=DIRECTORY, memo=MEMO, now=_now).as_dict()
