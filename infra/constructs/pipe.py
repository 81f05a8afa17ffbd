"""EventBridge Pipes from the Tasks table stream: INSERT starts a workflow; every other change that needs an action
(a cancel, an outcome not yet delivered) goes to the task-changes function. Two pipes, because a DynamoDB stream
serves at most two readers per shard ("Change data capture for DynamoDB Streams"): the outbox shares the cancel
pipe's reader instead of adding one."""

import json
from dataclasses import dataclass

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_pipes as pipes
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk.aws_dynamodb import ITable
from constructs import Construct

from infra.constructs.workflow import allow_start_through_alias
from task_common.contract import OUTCOME_STATUSES, Status

START_FILTER = {"eventName": ["INSERT"]}
# A cancel, or a terminal outcome still pending (the outbox: each terminal write sets outcomePending to the status,
# the task-changes function's mark removes it, so the mark's own MODIFY is filtered out). One pipe's filters are
# ORed.
CANCEL_FILTER = {"eventName": ["MODIFY"], "dynamodb": {"NewImage": {"status": {"S": [Status.CANCELLED.value]}}}}
OUTCOME_FILTER = {
    "eventName": ["MODIFY"],
    "dynamodb": {
        "NewImage": {
            "status": {"S": list(OUTCOME_STATUSES)},
            "outcomePending": {"S": list(OUTCOME_STATUSES)},
        }
    },
}
# The workflow needs only the task id; everything else is read from the table by the steps that need it.
START_INPUT_TEMPLATE = '"<$.dynamodb.NewImage.taskId.S>"'
MAXIMUM_RETRY_ATTEMPTS = 10
# Batches of one record per shard in flight would cap starts at a few per second per shard; the start pipe may
# process up to 10 batches of a shard at once (the maximum for a stream source). Order does not matter for
# starts: each task has one INSERT, and the claim is the exactly-once gate ("Amazon DynamoDB stream as a source",
# EventBridge Pipes User Guide: ParallelizationFactor 1-10).
START_PARALLELIZATION_FACTOR = 10
# The task-changes pipe (cancels and outcomes) was the design's bottleneck at factor 1: 4 shards x 1 batch of one
# record / ~116 ms = 34.4 tasks/s (`taskrail capacity`, docs/CAPACITY.md). Ten batches per shard are safe without
# any ordering guarantee across a shard's records: a task has one cancel record or one outcome record (a cancel is
# refused once the task is terminal, and every write after a cancel is conditional on RUNNING), the reconciler's
# re-trigger repeats the same outcome, and the function delivers each outcome once (the outbox's conditional
# outcomeDelivered) and stops an execution idempotently.
TASK_CHANGES_PARALLELIZATION_FACTOR = 10
# A target the pipe cannot reach (a refused StartExecution, a function error) is otherwise visible only as a DLQ
# message and a metric: ERROR logs each failed delivery with its error, without the record ("Logging and
# monitoring Amazon EventBridge Pipes": levels OFF/ERROR/INFO/TRACE; execution data only if asked for).
PIPE_LOG_LEVEL = "ERROR"


class TaskPipes(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        table: ITable,
        state_machine: sfn.IStateMachine,
        state_machine_alias_arn: str,
        task_changes_function: lambda_.IFunction,
        dead_letter_queue: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        self._table = table
        self._dlq = dead_letter_queue
        start_role = self._role("StartPipeRole")
        allow_start_through_alias(start_role, state_machine)
        self.start_pipe = pipes.CfnPipe(
            self,
            "StartWorkflowPipe",
            description="Starts the task lifecycle for every stored task (at least once)",
            role_arn=start_role.role_arn,
            log_configuration=pipe_log_configuration(self, "StartWorkflowPipeLogs", start_role),
            source=self._stream_arn,
            source_parameters=self._source_parameters(
                START_FILTER, parallelization_factor=START_PARALLELIZATION_FACTOR
            ),
            target=state_machine_alias_arn,
            target_parameters=pipes.CfnPipe.PipeTargetParametersProperty(
                input_template=START_INPUT_TEMPLATE,
                step_function_state_machine_parameters=pipes.CfnPipe.PipeTargetStateMachineParametersProperty(
                    invocation_type="FIRE_AND_FORGET"
                ),
            ),
        )
        self.start_pipe.node.add_dependency(start_role)

        self.task_changes_pipe = stream_to_function_pipe(
            self,
            "TaskChanges",
            description="Cancels and undelivered outcomes to the task-changes function",
            table=table,
            target=task_changes_function,
            filters=(CANCEL_FILTER, OUTCOME_FILTER),
            stream=StreamReading(parallelization_factor=TASK_CHANGES_PARALLELIZATION_FACTOR),
            dead_letter_queue=dead_letter_queue,
        )

    @property
    def _stream_arn(self) -> str:
        stream_arn = self._table.table_stream_arn
        assert stream_arn is not None, "the Tasks table must have a stream"
        return stream_arn

    def _role(self, construct_id: str) -> iam.Role:
        return stream_pipe_role(self, construct_id, self._table, self._dlq)

    def _source_parameters(
        self, *patterns: dict, parallelization_factor: int = 1
    ) -> pipes.CfnPipe.PipeSourceParametersProperty:
        return _source_parameters(patterns, StreamReading(parallelization_factor=parallelization_factor), self._dlq)


@dataclass(frozen=True)
class StreamReading:
    """How a pipe reads its DynamoDB stream: from the oldest record, one at a time, retried, then its DLQ, unless
    said otherwise."""

    starting_position: str = "TRIM_HORIZON"
    batch_size: int = 1
    parallelization_factor: int = 1
    maximum_retry_attempts: int = MAXIMUM_RETRY_ATTEMPTS
    maximum_record_age_in_seconds: int | None = None


def stream_pipe_role(
    scope: Construct, construct_id: str, table: ITable, dead_letter_queue: sqs.IQueue | None
) -> iam.Role:
    """A pipe's role: assumed by pipes of this account only (the confused deputy; docs/AWS-REVIEW.md), reading the
    table's stream, sending to its DLQ if it has one."""
    principal = iam.ServicePrincipal(
        "pipes.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": Stack.of(scope).account}}
    )
    role = iam.Role(scope, construct_id, assumed_by=principal)
    table.grant_stream_read(role)
    if dead_letter_queue is not None:
        # Without this the pipe never stabilises on deploy. sqs:SendMessage is all a pipe's DLQ needs ("Event
        # source permissions for Amazon EventBridge Pipes"); grant_send_messages would add GetQueueAttributes and
        # GetQueueUrl, which no pipe call makes (issue 12's grant coverage: never used locally).
        dead_letter_queue.grant(role, "sqs:SendMessage")
    return role


def _source_parameters(
    patterns: tuple[dict, ...], reading: StreamReading, dead_letter_queue: sqs.IQueue | None
) -> pipes.CfnPipe.PipeSourceParametersProperty:
    dead_letter = pipes.CfnPipe.DeadLetterConfigProperty(arn=dead_letter_queue.queue_arn) if dead_letter_queue else None
    return pipes.CfnPipe.PipeSourceParametersProperty(
        filter_criteria=pipes.CfnPipe.FilterCriteriaProperty(
            filters=[pipes.CfnPipe.FilterProperty(pattern=json.dumps(pattern)) for pattern in patterns]
        ),
        dynamo_db_stream_parameters=pipes.CfnPipe.PipeSourceDynamoDBStreamParametersProperty(
            starting_position=reading.starting_position,
            batch_size=reading.batch_size,
            parallelization_factor=reading.parallelization_factor,
            maximum_retry_attempts=reading.maximum_retry_attempts,
            maximum_record_age_in_seconds=reading.maximum_record_age_in_seconds,
            dead_letter_config=dead_letter,
        ),
    )


def stream_to_function_pipe(
    scope: Construct,
    name: str,
    *,
    description: str,
    table: ITable,
    target: lambda_.IFunction,
    filters: tuple[dict, ...],
    stream: StreamReading,
    dead_letter_queue: sqs.IQueue | None = None,
) -> pipes.CfnPipe:
    """A pipe from ``table``'s stream to a function (its ``live`` alias, docs/DEPLOY.md), invoked synchronously with
    each batch of records that pass ``filters`` (ORed): ``{name}Pipe``, its role ``{name}PipeRole`` and log group
    ``{name}PipeLogs``. The role may invoke the target it is given and nothing else of the function (an alias's
    grant_invoke names the alias ARN only, no ``:*``). Every stream-to-function pipe of the stack is made here
    (task changes, live progress, profile changes)."""
    stream_arn = table.table_stream_arn
    assert stream_arn is not None, f"{name}: the table must have a stream"
    role = stream_pipe_role(scope, f"{name}PipeRole", table, dead_letter_queue)
    target.grant_invoke(role)
    pipe = pipes.CfnPipe(
        scope,
        f"{name}Pipe",
        description=description,
        role_arn=role.role_arn,
        log_configuration=pipe_log_configuration(scope, f"{name}PipeLogs", role),
        source=stream_arn,
        source_parameters=_source_parameters(filters, stream, dead_letter_queue),
        target=target.function_arn,
        target_parameters=pipes.CfnPipe.PipeTargetParametersProperty(
            lambda_function_parameters=pipes.CfnPipe.PipeTargetLambdaFunctionParametersProperty(
                invocation_type="REQUEST_RESPONSE"
            ),
        ),
    )
    pipe.node.add_dependency(role)
    return pipe


def pipe_log_configuration(
    scope: Construct, construct_id: str, role: iam.IRole
) -> pipes.CfnPipe.PipeLogConfigurationProperty:
    """A pipe's log group (construct id and name suffix `construct_id`), writable by the pipe's role, and the log
    configuration naming it: every pipe of the stack logs so (this module, live.py, users.py)."""
    # Under /aws/vendedlogs/ like the state machines' groups (docs/AWS-REVIEW.md): vended-log deliveries to
    # other paths add to the account's CloudWatch Logs resource policy, which has a size limit.
    log_group = logs.LogGroup(
        scope,
        construct_id,
        log_group_name=f"/aws/vendedlogs/pipes/{Stack.of(scope).stack_name}-{construct_id}",
        retention=logs.RetentionDays.ONE_MONTH,
        removal_policy=RemovalPolicy.DESTROY,
    )
    log_group.grant_write(role)
    return pipes.CfnPipe.PipeLogConfigurationProperty(
        level=PIPE_LOG_LEVEL,
        cloudwatch_logs_log_destination=pipes.CfnPipe.CloudwatchLogsLogDestinationProperty(
            log_group_arn=log_group.log_group_arn
        ),
    )
