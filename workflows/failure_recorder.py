"""The failure recorder: the one path by which a task becomes FAILED, whatever ended its execution.

The lifecycle catches only what it handles itself (a rejection, a cancel): every other failure ends the execution
at the state that failed, so that Redrive resumes there (docs/DECISIONS.md, "Failures end where they failed").
An EventBridge rule on the lifecycle's "Step Functions Execution Status Change" events (FAILED, TIMED_OUT,
ABORTED; ``infra/constructs/workflow.py``) starts this workflow with the event as its input. One DynamoDB
UpdateItem (a direct integration, no function) sets the task FAILED with the error and cause and opens its outbox
entry (``outcomePending``): the task-changes function then sends the one DLQ message and the one outcome event.

The write is conditional: the task is RUNNING, under this execution, and not yet failed for this redrive (its
``redriveCount`` is not newer than the event's). So an abort caused by a cancel (the task is CANCELLED) writes
nothing, a late or repeated event (EventBridge delivers at least once) writes nothing, and the reconciler, which
does the same conditional write for events that were lost, never doubles it.

An event without an error (an execution timeout, a StopExecution without one) is recorded as the reconciler
records it: ``ExecutionEnded``, "the execution ended <status> while the task ran".
"""

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from task_common.contract import EXECUTION_ENDED_CAUSE, EXECUTION_ENDED_ERROR, PENDING_SHARD_ATTRIBUTE, Status
from workflows import retry_policies as retry

WORKFLOW_NAME = "failure_recorder"
EXECUTION_TIMEOUT = Duration.minutes(5)
# The lifecycle's input is ["<taskId>"]; the event carries it as a JSON string.
TASK_ID_OF_EVENT = "States.ArrayGetItem(States.StringToJson($.detail.input), 0)"
ENDED_CAUSE = f"States.Format('{EXECUTION_ENDED_CAUSE}', $.detail.status)"
RECORDED = "TaskFailureRecorded"
ALREADY_SETTLED = "TaskAlreadySettled"


@dataclass(frozen=True)
class RecorderResources:
    tasks_table: dynamodb.ITable


def _failure(error: str, cause: str) -> dict[str, str]:
    """The record's fields, from the event: the task id, the execution, its redrive count, the error and cause."""
    return {
        "taskId.$": TASK_ID_OF_EVENT,
        "executionArn.$": "$.detail.executionArn",
        "redriveCount.$": "States.JsonToString($.detail.redriveCount)",
        "error" + (".$" if error.startswith(("$", "States.")) else ""): error,
        "cause.$": cause,
    }


class FailureRecorder(Construct):
    """Builds the definition; the state machine itself is created by the infra workflow construct."""

    def __init__(self, scope: Construct, construct_id: str, *, resources: RecorderResources) -> None:
        super().__init__(scope, construct_id)
        self._r = resources
        self.definition = self._build()

    def _record(self) -> tasks.DynamoUpdateItem:
        record = tasks.DynamoUpdateItem(
            self,
            "RecordTaskFailed",
            comment="RUNNING → FAILED under this execution, once per redrive; opens the outbox entry",
            table=self._r.tasks_table,
            key={"taskId": tasks.DynamoAttributeValue.from_string(sfn.JsonPath.string_at("$.taskId"))},
            update_expression=(
                "SET #status = :failed, #error = :error, #cause = :cause, redriveCount = :redrive, "
                f"updatedAt = :now, finishedAt = :now, outcomePending = :failed REMOVE {PENDING_SHARD_ATTRIBUTE}"
            ),
            condition_expression=(
                "#status = :running AND executionArn = :arn "
                "AND (attribute_not_exists(redriveCount) OR redriveCount <= :redrive)"
            ),
            expression_attribute_names={"#status": "status", "#error": "error", "#cause": "cause"},
            expression_attribute_values={
                ":failed": tasks.DynamoAttributeValue.from_string(Status.FAILED.value),
                ":running": tasks.DynamoAttributeValue.from_string(Status.RUNNING.value),
                ":arn": tasks.DynamoAttributeValue.from_string(sfn.JsonPath.string_at("$.executionArn")),
                ":redrive": tasks.DynamoAttributeValue.number_from_string(sfn.JsonPath.string_at("$.redriveCount")),
                ":error": tasks.DynamoAttributeValue.from_string(sfn.JsonPath.string_at("$.error")),
                ":cause": tasks.DynamoAttributeValue.from_string(sfn.JsonPath.string_at("$.cause")),
                ":now": tasks.DynamoAttributeValue.from_string(sfn.JsonPath.string_at("$$.State.EnteredTime")),
            },
            result_path=sfn.JsonPath.DISCARD,
            task_timeout=sfn.Timeout.duration(Duration.seconds(30)),
        )
        retry.DYNAMODB_THROTTLING.apply_to(record)
        return record

    def _build(self) -> sfn.IChainable:
        record = self._record()
        settled = sfn.Succeed(
            self,
            ALREADY_SETTLED,
            comment="Cancelled, succeeded, replayed, or recorded already (a repeated event): nothing to record",
        )
        record.add_catch(settled, errors=[retry.CONDITION_FAILED], result_path=sfn.JsonPath.DISCARD)
        record.next(sfn.Succeed(self, RECORDED))

        def shaped(state_id: str, comment: str, error: str, cause: str) -> sfn.Pass:
            shape = sfn.Pass(self, state_id, comment=comment, parameters=_failure(error, cause))
            shape.next(record)
            return shape

        given = shaped("KeepTheFailure", "The execution's own error and cause", "$.detail.error", "$.detail.cause")
        no_cause = shaped("NameTheCause", "An error without a cause", "$.detail.error", ENDED_CAUSE)
        unnamed = shaped("NameTheFailure", "A timeout or an abort without an error", EXECUTION_ENDED_ERROR, ENDED_CAUSE)
        error_given = sfn.Condition.is_not_null("$.detail.error")
        return (
            sfn.Choice(self, "IsTheFailureNamed", comment="Timeouts and aborts may carry no error or cause")
            .when(sfn.Condition.and_(error_given, sfn.Condition.is_not_null("$.detail.cause")), given)
            .when(error_given, no_cause)
            .otherwise(unnamed)
        )
