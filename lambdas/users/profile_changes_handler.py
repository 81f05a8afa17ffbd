from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from task_common.contract import api_time
from task_common.observability import logger, metrics, tracer
from users.aws import DynamoDBSubscriptionRecords, SnsEmailSubscriptions
from users.config import ProfileChangesConfig
from users.notifications import apply_changes

CONFIG = ProfileChangesConfig.from_environ()
SUBSCRIPTIONS = SnsEmailSubscriptions(CONFIG.notifications_topic_arn)
RECORDS = DynamoDBSubscriptionRecords(CONFIG.users_table_name)


def _now() -> str:
    return api_time(datetime.now(UTC))


@logger.inject_lambda_context(correlation_id_path="[0].dynamodb.Keys.userId.S")
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: list[dict[str, Any]], context: LambdaContext) -> dict[str, Any]:
    return apply_changes(event, subscriptions=SUBSCRIPTIONS, stored=RECORDS, now=_now)
