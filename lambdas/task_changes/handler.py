from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import TypeAdapter

from task_changes.logic import handle_changes
from task_changes.outbox import Delivery, Outcome, OutcomePorts
from task_common.aws import DynamoDBTaskStore, StepFunctionsExecutions, client
from task_common.config import TaskChangesConfig
from task_common.errors import DeliveryFailed
from task_common.models import StreamRecord
from task_common.observability import counts_expected_errors, logger, metrics, tracer
from task_common.ports import ExpressExecutions

CONFIG = TaskChangesConfig.from_environ()
EXECUTIONS = StepFunctionsExecutions() if CONFIG.stop_executions else ExpressExecutions()
TASKS = DynamoDBTaskStore(CONFIG.tasks_table_name)
STREAM_RECORDS = TypeAdapter(list[StreamRecord])
# One record per delivery key (task, attempt, redrive, outcome, effect): a retry after a later step failed does not
# repeat an effect that completed; a raised exception deletes the record, so a failed effect is tried again.
IDEMPOTENCY_STORE = DynamoDBPersistenceLayer(table_name=CONFIG.idempotency_table_name, boto3_client=client("dynamodb"))
IDEMPOTENCY = IdempotencyConfig(event_key_jmespath="key", raise_on_no_idempotency_key=True)


@idempotent_function(data_keyword_argument="delivery", config=IDEMPOTENCY, persistence_store=IDEMPOTENCY_STORE)
def _deliver(delivery: dict[str, Any]) -> dict[str, Any]:
    if delivery["kind"] == "dlq":
        client("sqs").send_message(QueueUrl=CONFIG.dead_letter_queue_url, MessageBody=delivery["body"])
        return {"delivered": delivery["key"]}
    entry = {
        "Source": delivery["source"],
        "DetailType": delivery["detailType"],
        "Detail": delivery["body"],
        "EventBusName": CONFIG.event_bus_name,
    }
    response = client("events").put_events(Entries=[entry])
    if response.get("FailedEntryCount"):
        raise DeliveryFailed(f"PutEvents refused the outcome event: {response.get('Entries')}")
    return {"delivered": delivery["key"]}


def _deliver_once(delivery: Delivery) -> None:
    _deliver(delivery=delivery.as_dict())


def _mark_delivered(outcome: Outcome) -> bool:
    return TASKS.mark_outcome_delivered(
        outcome.task_id, status=outcome.status, execution_arn=outcome.execution_arn, key=outcome.key
    )


OUTCOMES = OutcomePorts(deliver_once=_deliver_once, mark_delivered=_mark_delivered)


@logger.inject_lambda_context(correlation_id_path="[0].dynamodb.Keys.taskId.S")
@tracer.capture_lambda_handler
@metrics.log_metrics
@counts_expected_errors
def handler(event: list[dict[str, Any]], context: LambdaContext) -> dict[str, Any]:
    IDEMPOTENCY.register_lambda_context(context)
    records = STREAM_RECORDS.validate_python(event)
    return handle_changes(records, executions=EXECUTIONS, outcomes=OUTCOMES).model_dump(mode="json", exclude_none=True)
