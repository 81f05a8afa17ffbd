from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from push_progress.aws import DynamoDBConnections, ManagementApiPoster
from push_progress.config import PushProgressConfig
from push_progress.logic import push_changes
from push_progress.models import StreamRecord
from task_common.observability import logger, metrics, tracer

CONFIG = PushProgressConfig.from_environ()
CONNECTIONS = DynamoDBConnections(CONFIG.connections_table_name, CONFIG.connections_owner_index_name)
POSTER = ManagementApiPoster(CONFIG.websocket_callback_url, timeout_seconds=CONFIG.post_timeout_seconds)
POOL = ThreadPoolExecutor(max_workers=CONFIG.max_parallel_posts)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: list[dict[str, Any]], context: LambdaContext) -> dict[str, Any]:
    records = [StreamRecord.model_validate(record) for record in event]
    return push_changes(records, connections=CONNECTIONS, poster=POSTER, pool=POOL).model_dump(by_alias=True)
