"""The boto3 adapters of the operator's ports (:mod:`taskrail.operator.ports`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from task_common.contract import PENDING_SHARD_ATTRIBUTE, Status, pending_shard
from taskrail import execution_logs

AwsClients = Callable[[str], Any]  # a service name -> its boto3 client


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class DynamoTaskRecords:
    def __init__(self, aws: AwsClients, table: str) -> None:
        self._aws, self._table = aws, table

    def get(self, task_id: str) -> dict[str, Any] | None:
        key = {"taskId": {"S": task_id}}
        item = self._aws("dynamodb").get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item")
        if item is None:
            return None
        return {name: _plain(value) for name, value in item.items()}

    def requeue_failed(self, task_id: str, execution_arn: str | None = None) -> bool:
        names = {"#s": "status", "#e": "error", "#c": "cause", "#p": PENDING_SHARD_ATTRIBUTE}
        values = {
            ":queued": {"S": Status.QUEUED.value},
            ":failed": {"S": Status.FAILED.value},
            # QUEUED again: back in the reconciler's pending index, should the replay's start be lost.
            ":shard": {"S": pending_shard(task_id)},
        }
        condition = "#s = :failed"
        if execution_arn:
            condition += " AND executionArn = :arn"
            values[":arn"] = {"S": execution_arn}
        try:
            self._aws("dynamodb").update_item(
                TableName=self._table,
                Key={"taskId": {"S": task_id}},
                UpdateExpression="SET #s = :queued, #p = :shard REMOVE #e, #c",
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if _error_code(error) != "ConditionalCheckFailedException":
                raise
            return False
        return True


def _plain(value: dict[str, Any]) -> Any:
    if "N" in value:
        number = float(value["N"])
        return int(number) if number.is_integer() else number
    return next(iter(value.values()))


class StepFunctionsExecutions:
    def __init__(self, aws: AwsClients, state_machine_arn: str, *, start_arn: str = "") -> None:
        """``start_arn``: what a start names, the lifecycle's alias (a replay follows the canary as the pipe's
        starts do; docs/DEPLOY.md); the state machine itself when the stack has no alias."""
        self._aws, self._state_machine_arn = aws, state_machine_arn
        self._start_arn = start_arn or state_machine_arn
        self._described: dict[str, Any] | None = None

    def start(self, name: str, execution_input: Any) -> bool:
        try:
            self._aws("stepfunctions").start_execution(
                stateMachineArn=self._start_arn, name=name, input=json.dumps(execution_input)
            )
        except ClientError as error:
            if _error_code(error) != "ExecutionAlreadyExists":
                raise
            return False
        return True

    def describe(self, execution_arn: str) -> dict[str, Any]:
        return dict(self._aws("stepfunctions").describe_execution(executionArn=execution_arn))

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        if execution_logs.is_express_arn(execution_arn):
            # GetExecutionHistory does not serve an Express execution: its events are in the lifecycle's log group
            group = execution_logs.log_group_name(self._machine())
            return execution_logs.history(self._aws("logs"), group, execution_arn) if group else []
        sfn = self._aws("stepfunctions")
        events: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = sfn.get_execution_history(
                executionArn=execution_arn, maxResults=1000, **({"nextToken": token} if token else {})
            )
            events.extend(page["events"])
            token = page.get("nextToken")
            if not token:
                return events

    def supports_redrive(self) -> bool:
        # DescribeStateMachine serves both types; DescribeExecution, GetExecutionHistory and RedriveExecution do not
        # serve EXPRESS executions (their API reference), so an EXPRESS lifecycle is never asked them.
        return str(self._machine().get("type", "STANDARD")) == "STANDARD"

    def _machine(self) -> dict[str, Any]:
        if self._described is None:
            sfn = self._aws("stepfunctions")
            self._described = dict(sfn.describe_state_machine(stateMachineArn=self._state_machine_arn))
        return self._described

    def redrive(self, execution_arn: str, client_token: str) -> str | None:
        try:
            self._aws("stepfunctions").redrive_execution(executionArn=execution_arn, clientToken=client_token)
        except ClientError as error:
            if _error_code(error) != "ExecutionNotRedrivable":
                raise
            return f"ExecutionNotRedrivable: {error.response.get('Error', {}).get('Message', '')}"
        return None


class SqsDeadLetters:
    def __init__(self, aws: AwsClients, queue_url: str, *, wait_seconds: int) -> None:
        # SQS short polls sample a subset of servers and may answer empty while messages exist; on AWS a scan
        # long-polls for a second (wait_seconds=1) so that "empty" means empty. Moto has one server.
        self._aws, self._url, self._wait_seconds = aws, queue_url, wait_seconds

    def receive(self, hide_seconds: int) -> list[dict[str, Any]]:
        return list(
            self._aws("sqs")
            .receive_message(
                QueueUrl=self._url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=hide_seconds,
                WaitTimeSeconds=self._wait_seconds,
                MessageSystemAttributeNames=["SentTimestamp"],
            )
            .get("Messages", [])
        )

    def release(self, messages: list[dict[str, Any]]) -> None:
        sqs = self._aws("sqs")
        for start in range(0, len(messages), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, m in enumerate(messages[start : start + 10])
            ]
            sqs.change_message_visibility_batch(QueueUrl=self._url, Entries=entries)

    def delete(self, message: dict[str, Any]) -> None:
        self._aws("sqs").delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])

    def counts(self) -> tuple[int, int]:
        attributes = self._aws("sqs").get_queue_attributes(
            QueueUrl=self._url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        visible = int(attributes.get("ApproximateNumberOfMessages", 0))
        return visible, int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0))


class S3Results:
    def __init__(self, aws: AwsClients) -> None:
        self._aws = aws

    def read_json(self, bucket: str, key: str) -> Any:
        return json.loads(self._aws("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
