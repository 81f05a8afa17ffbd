"""The task-lifecycle workflow: claim → validate → process → store → mark.

Failures end where they failed: only a rejection (ValidationFailed) and a cancel are caught. Any other error,
after its retries, fails the execution at its state, which is where the console's Redrive resumes it (the same
execution ARN); the failure recorder (``workflows/failure_recorder.py``, started by an EventBridge rule on the
execution's status change) sets the task FAILED, for every kind of failure alike. A redriven ProcessTask (or
MarkSucceeded, MarkRejected) resumes the FAILED task under the same execution before it runs; MarkSucceeded and
MarkRejected write only a task this execution holds.

Outcomes leave from the table, not from the workflow: the terminal write (MarkSucceeded, MarkRejected, the
recorder's) is the outbox entry, and the task-changes function publishes the outcome event and sends the DLQ
message from its stream record (``lambdas/task_changes/outbox.py``), so a delivery that fails is retried and
repaired instead of lost (docs/DECISIONS.md).

The execution input is what the EventBridge Pipe delivers: a JSON array of one task id, ``["<taskId>"]``
(the pipe's input template reduces each stream record to the id; a pipe always delivers an array). The id
is read as ``$$.Execution.Input[0]``: a path that ends at an index, because moto's interpreter (unlike AWS)
returns a list for ``$[0].field``. Pipes deliver at least once and
cannot name executions, so ``ClaimTask`` is the exactly-once gate: a conditional QUEUED → RUNNING update,
and a second execution for the same task ends quietly in ``TaskAlreadyClaimed``.

State data after the claim is ``{"taskId", "attempt", "executionArn"}``; Validate adds ``validation`` (the
work order, with the parameters inline up to the claim-check threshold); ProcessTask *replaces* the state with
``{"taskId", "attempt", "processing"}`` (the result inline up to the threshold, measured as StoreResult carries
it), so no state holds two payloads; the rejection's Catch adds ``error``. Past the threshold, parameters and
results travel as ``s3://`` references (claim check).

On EXPRESS (``cdk deploy -c lifecycleType=EXPRESS``) the same states run, with two differences, because Express
executions send no status-change events to EventBridge (so no failure recorder is started) and cannot be redriven:
every error after its retries is caught into ``RecordTaskFailed`` (the recorder's conditional write, in the
lifecycle) and the execution ends in the Fail state ``TaskFailed``; a failed task is replayed as a new execution
from its DLQ message. The redrive count is then the constant 0. What no Catch can handle there (``States.Runtime``,
the 5-minute limit) is left to the reconciler (docs/DECISIONS.md, "An EXPRESS lifecycle").
"""

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from task_common.contract import PENDING_SHARD_ATTRIBUTE, RESULT_KEY_FORMAT, EndState, Status
from workflows import retry_policies as retry
from workflows.lifecycle_type import EXPRESS, EXPRESS_MAX_EXECUTION_SECONDS, LIFECYCLE_TYPES, STANDARD

WORKFLOW_NAME = "task_lifecycle"
EXECUTION_TIMEOUT = Duration.hours(2)
EXECUTION_TIMEOUTS = {STANDARD: EXECUTION_TIMEOUT, EXPRESS: Duration.seconds(EXPRESS_MAX_EXECUTION_SECONDS)}
# EXPRESS only: where a failure is recorded in the lifecycle, and the Fail state it ends in (the execution FAILED).
RECORD_FAILURE = "RecordTaskFailed"
TASK_FAILED = "TaskFailed"
# What the states around ProcessTask may take of an execution's time (each a second or less when healthy).
OTHER_STATES_RESERVE_SECONDS = 30

TASK_ID = "$$.Execution.Input[0]"
NOW = "$$.State.EnteredTime"
EXECUTION_ARN = "$$.Execution.Id"
# 0 on a first run; n after the n-th RedriveExecution ("Context object", Step Functions Developer Guide).
REDRIVE_COUNT = "$$.Execution.RedriveCount"
RECORD_ERROR = "#error = :error, #cause = :cause, updatedAt = :now, finishedAt = :now"
# Every terminal write opens the outbox entry: the task-changes function delivers the outcome and closes it.
PENDING = "outcomePending = "
# ... and takes the task out of the reconciler's sparse pending index (contract.PENDING_INDEX).
LEAVES_PENDING_INDEX = PENDING_SHARD_ATTRIBUTE
# MarkSucceeded's and MarkRejected's condition: the task is this execution's (a DLQ replay's new execution, a
# cancel or a newer attempt took it otherwise), RUNNING, or FAILED by an earlier run of this redriven execution.
TERMINAL_WRITE_CONDITION = (
    "executionArn = :arn AND (#status = :running OR (#status = :failed AND redriveCount < :redrive))"
)


@dataclass(frozen=True)
class ProcessTimeBudget:
    """How long a task may process on this lifecycle, all its tries together: Validate refuses a task type whose
    declared maximum duration, times the tries, exceeds it (``task_common.config.LifecycleLimits``)."""

    lifecycle_type: str
    limit_seconds: int
    tries: int
    budget_seconds: int

    def environment(self) -> dict[str, str]:
        return {
            "LIFECYCLE_TYPE": self.lifecycle_type,
            "LIFECYCLE_TIME_LIMIT_SECONDS": str(self.limit_seconds),
            "PROCESS_TRIES": str(self.tries),
            "PROCESS_TIME_BUDGET_SECONDS": str(self.budget_seconds),
        }


def process_time_budget(lifecycle_type: str) -> ProcessTimeBudget:
    """The execution's limit less the other states' reserve and ProcessTask's longest retry waits (TRANSIENT's
    intervals at their cap, FULL jitter's worst draw)."""
    limit = int(EXECUTION_TIMEOUTS[lifecycle_type].to_seconds())
    policy = retry.TRANSIENT
    waits = sum(
        min(policy.interval_seconds * policy.backoff_rate**k, policy.max_delay_seconds)
        for k in range(policy.max_attempts)
    )
    budget = limit - OTHER_STATES_RESERVE_SECONDS - int(waits)
    return ProcessTimeBudget(lifecycle_type, limit, policy.max_attempts + 1, budget)


@dataclass(frozen=True)
class LifecycleResources:
    tasks_table: dynamodb.ITable
    results_bucket: s3.IBucket
    validate_function: lambda_.IFunction
    process_function: lambda_.IFunction


def _s(path_or_value: str) -> tasks.DynamoAttributeValue:
    if path_or_value.startswith("$"):
        return tasks.DynamoAttributeValue.from_string(sfn.JsonPath.string_at(path_or_value))
    return tasks.DynamoAttributeValue.from_string(path_or_value)


def _names_in(expression: str) -> dict[str, str]:
    """DynamoDB rejects unused placeholder names, so declare only those the expression uses."""
    return {f"#{name}": name for name in ("status", "error", "cause") if f"#{name}" in expression}


def _redrive_count() -> tasks.DynamoAttributeValue:
    return tasks.DynamoAttributeValue.number_from_string(
        sfn.JsonPath.json_to_string(sfn.JsonPath.number_at(REDRIVE_COUNT))
    )


def _task_key() -> dict[str, tasks.DynamoAttributeValue]:
    return {"taskId": _s(TASK_ID)}


class TaskLifecycle(Construct):
    """Builds the definition; the state machine itself is created by the infra workflow construct."""

    def __init__(
        self, scope: Construct, construct_id: str, *, resources: LifecycleResources, lifecycle_type: str = STANDARD
    ) -> None:
        super().__init__(scope, construct_id)
        if lifecycle_type not in LIFECYCLE_TYPES:
            raise ValueError(f"lifecycle type {lifecycle_type!r}: expected one of {', '.join(LIFECYCLE_TYPES)}")
        self._r = resources
        self._express = lifecycle_type == EXPRESS
        self.definition = self._build()

    def _redrive_count(self) -> tasks.DynamoAttributeValue:
        # An Express execution is never redriven: its count is 0 (its context object need not carry one).
        return tasks.DynamoAttributeValue.from_number(0) if self._express else _redrive_count()

    # -- states -------------------------------------------------------------------------------------------

    def _update_status(
        self,
        state_id: str,
        *,
        set_expression: str,
        values: dict[str, tasks.DynamoAttributeValue],
        condition: str = "#status = :running",
        comment: str,
    ) -> tasks.DynamoUpdateItem:
        state = tasks.DynamoUpdateItem(
            self,
            state_id,
            comment=comment,
            table=self._r.tasks_table,
            key=_task_key(),
            update_expression=set_expression,
            condition_expression=condition,
            expression_attribute_names=_names_in(set_expression + condition),
            expression_attribute_values={":running": _s(Status.RUNNING.value), ":now": _s(NOW), **values},
            result_path=sfn.JsonPath.DISCARD,
            task_timeout=sfn.Timeout.duration(Duration.seconds(30)),
        )
        retry.DYNAMODB_THROTTLING.apply_to(state)
        return state

    def _claim(self) -> tasks.DynamoUpdateItem:
        claim = tasks.DynamoUpdateItem(
            self,
            "ClaimTask",
            comment="QUEUED → RUNNING exactly once: a duplicate delivery fails the condition",
            table=self._r.tasks_table,
            key=_task_key(),
            update_expression=(
                "SET #status = :running, executionArn = :arn, startedAt = :now, updatedAt = :now, "
                "progress = :zero, redriveCount = :zero REMOVE outcomePending, outcomeDelivered ADD attempt :one"
            ),
            condition_expression="#status = :queued",
            expression_attribute_names={"#status": "status"},
            expression_attribute_values={
                ":running": _s(Status.RUNNING.value),
                ":queued": _s(Status.QUEUED.value),
                ":arn": _s(EXECUTION_ARN),
                ":now": _s(NOW),
                ":zero": tasks.DynamoAttributeValue.from_number(0),
                ":one": tasks.DynamoAttributeValue.from_number(1),
            },
            return_values=tasks.DynamoReturnValues.UPDATED_NEW,
            result_selector={
                "taskId": sfn.JsonPath.string_at(TASK_ID),
                "attempt": sfn.JsonPath.string_to_json(sfn.JsonPath.string_at("$.Attributes.attempt.N")),
                "executionArn": sfn.JsonPath.string_at("$.Attributes.executionArn.S"),
            },
            result_path="$",
            task_timeout=sfn.Timeout.duration(Duration.seconds(30)),
        )
        retry.DYNAMODB_THROTTLING.apply_to(claim)
        return claim

    def _validate(self) -> tasks.LambdaInvoke:
        validate = tasks.LambdaInvoke(
            self,
            "ValidateParameters",
            comment="Checks the type and parameters; large parameters move to S3 (claim check)",
            lambda_function=self._r.validate_function,
            payload=sfn.TaskInput.from_object(
                {"taskId": sfn.JsonPath.string_at("$.taskId"), "attempt": sfn.JsonPath.number_at("$.attempt")}
            ),
            retry_on_service_exceptions=False,
            result_selector={"workOrder": sfn.JsonPath.object_at("$.Payload")},
            result_path="$.validation",
            task_timeout=sfn.Timeout.duration(Duration.seconds(60)),
        )
        retry.LAMBDA_SERVICE.apply_to(validate)
        return validate

    def _process(self) -> tasks.LambdaInvoke:
        process = tasks.LambdaInvoke(
            self,
            "ProcessTask",
            comment="Runs the task type; reports progress into the Tasks item",
            lambda_function=self._r.process_function,
            payload=sfn.TaskInput.from_object(
                {
                    **{
                        field: sfn.JsonPath.string_at(f"$.validation.workOrder.{field}")
                        for field in ("taskId", "userId", "type", "paramsLocation")
                    },
                    "attempt": sfn.JsonPath.number_at("$.validation.workOrder.attempt"),
                    "params": sfn.JsonPath.object_at("$.validation.workOrder.params"),
                    # Each retry is a new try for Process's idempotency key (see process_task/handler.py).
                    "retry": sfn.JsonPath.number_at("$$.State.RetryCount"),
                    # A redriven execution resumes its FAILED task first (process_task/resume.py).
                    "executionArn": sfn.JsonPath.string_at(EXECUTION_ARN),
                    "redriveCount": 0 if self._express else sfn.JsonPath.number_at(REDRIVE_COUNT),
                }
            ),
            retry_on_service_exceptions=False,
            # The result replaces the whole state: the work order (parameters up to the claim-check threshold)
            # is dropped here, so no state carries both the parameters and the result (each under the
            # threshold, together over Step Functions' 256 KB limit, whose States.DataLimitExceeded no Catch
            # can handle).
            result_selector={
                "taskId": sfn.JsonPath.string_at("$.Payload.taskId"),
                "attempt": sfn.JsonPath.number_at("$.Payload.attempt"),
                "processing": {"output": sfn.JsonPath.object_at("$.Payload")},
            },
            result_path="$",
            task_timeout=sfn.Timeout.duration(Duration.minutes(16)),
        )
        retry.TRANSIENT.apply_to(process)
        retry.LAMBDA_SERVICE.apply_to(process)
        return process

    def _store_result(self) -> tasks.CallAwsService:
        store = tasks.CallAwsService(
            self,
            "StoreResult",
            comment="Result object keyed by task: a replay overwrites, never duplicates",
            service="s3",
            action="putObject",
            parameters={
                "Bucket": self._r.results_bucket.bucket_name,
                "Key": sfn.JsonPath.format(RESULT_KEY_FORMAT, sfn.JsonPath.string_at("$.taskId")),
                "Body": sfn.JsonPath.json_to_string(sfn.JsonPath.object_at("$.processing.output")),
                "ContentType": "application/json",
            },
            iam_resources=[self._r.results_bucket.arn_for_objects("tasks/*")],
            iam_action="s3:PutObject",
            result_path=sfn.JsonPath.DISCARD,
            task_timeout=sfn.Timeout.duration(Duration.seconds(60)),
        )
        retry.S3_SERVICE.apply_to(store)
        return store

    # -- wiring -------------------------------------------------------------------------------------------

    def _build(self) -> sfn.IChainable:
        claim = self._claim()
        validate = self._validate()
        process = self._process()
        store = self._store_result()
        # A redrive that resumes at StoreResult or MarkSucceeded finds its task FAILED (recorded for an earlier
        # run of this execution): this write resumes it, as ProcessTask's does on a redrive that reruns it. Both
        # branches are this execution's only: a redrive that passed no resume gate (it resumed after ProcessTask)
        # must not mark the task another execution (a DLQ replay's -rN) holds RUNNING.
        mark_succeeded = self._update_status(
            "MarkSucceeded",
            comment="RUNNING (or FAILED earlier in this redriven execution) → SUCCEEDED with the result location",
            set_expression=(
                "SET #status = :succeeded, progress = :hundred, resultLocation = :location, redriveCount = :redrive, "
                f"updatedAt = :now, finishedAt = :now, {PENDING}:succeeded "
                f"REMOVE #error, #cause, {LEAVES_PENDING_INDEX}"
            ),
            condition=TERMINAL_WRITE_CONDITION,
            values={
                ":failed": _s(Status.FAILED.value),
                ":arn": _s(EXECUTION_ARN),
                ":redrive": self._redrive_count(),
                ":succeeded": _s(Status.SUCCEEDED.value),
                ":hundred": tasks.DynamoAttributeValue.from_number(100),
                ":location": tasks.DynamoAttributeValue.from_string(
                    sfn.JsonPath.format(
                        f"s3://{self._r.results_bucket.bucket_name}/{RESULT_KEY_FORMAT}",
                        sfn.JsonPath.string_at("$.taskId"),
                    )
                ),
            },
        )

        # A redrive that resumes at ValidateParameters passes no resume gate before a rejection either.
        mark_rejected = self._update_status(
            "MarkRejected",
            comment="RUNNING (or FAILED earlier in this redriven execution) → REJECTED: invalid input is never retried",
            set_expression=(
                f"SET #status = :rejected, {RECORD_ERROR}, redriveCount = :redrive, {PENDING}:rejected "
                f"REMOVE {LEAVES_PENDING_INDEX}"
            ),
            condition=TERMINAL_WRITE_CONDITION,
            values={
                ":failed": _s(Status.FAILED.value),
                ":arn": _s(EXECUTION_ARN),
                ":redrive": self._redrive_count(),
                ":rejected": _s(Status.REJECTED.value),
                ":error": _s("$.error.Error"),
                ":cause": _s("$.error.Cause"),
            },
        )

        already_claimed = sfn.Succeed(
            self, EndState.ALREADY_CLAIMED.value, comment="A duplicate delivery: nothing to do"
        )
        cancelled = sfn.Succeed(
            self, EndState.CANCELLED.value, comment="The task was cancelled (or replayed) while it ran"
        )
        # A rejection is an outcome the workflow handled, not a failure: the execution succeeds (so that
        # ExecutionsFailed counts only tasks that FAILED, an invalid request never pages anyone, and a redrive of it
        # is refused: ExecutionNotRedrivable) and the task is REJECTED.
        rejected = sfn.Succeed(
            self, EndState.REJECTED.value, comment="The task's input is invalid: the task is REJECTED"
        )

        # Every other error, after its retries, is left uncaught: the execution fails at the state that failed,
        # which is where Redrive resumes it. The failure recorder (an EventBridge rule on the execution's status
        # change, workflows/failure_recorder.py) sets the task FAILED; a redrive's ProcessTask or MarkSucceeded
        # resumes it.
        error_path = "$.error"
        claim.add_catch(already_claimed, errors=[retry.CONDITION_FAILED], result_path=sfn.JsonPath.DISCARD)
        validate.add_catch(mark_rejected, errors=[retry.VALIDATION_FAILED], result_path=error_path)
        process.add_catch(cancelled, errors=[retry.TASK_CANCELLED], result_path=error_path)
        process.add_catch(mark_rejected, errors=[retry.VALIDATION_FAILED], result_path=error_path)
        mark_succeeded.add_catch(cancelled, errors=[retry.CONDITION_FAILED], result_path=error_path)
        mark_rejected.add_catch(cancelled, errors=[retry.CONDITION_FAILED], result_path=sfn.JsonPath.DISCARD)

        mark_rejected.next(rejected)
        if self._express:
            self._catch_failures(validate, process, store, mark_succeeded, mark_rejected)
        return (
            claim.next(validate)
            .next(process)
            .next(store)
            .next(mark_succeeded)
            .next(sfn.Succeed(self, EndState.SUCCEEDED.value))
        )

    def _catch_failures(self, *states: sfn.TaskStateBase) -> None:
        """EXPRESS: no status-change event starts the failure recorder, so its write runs here, after every other
        catcher of each state (errors after their retries), and the execution ends FAILED in TaskFailed."""
        record = self._update_status(
            RECORD_FAILURE,
            comment="RUNNING → FAILED under this execution (the failure recorder's write); opens the outbox entry",
            set_expression=(
                f"SET #status = :failed, {RECORD_ERROR}, redriveCount = :redrive, {PENDING}:failed "
                f"REMOVE {LEAVES_PENDING_INDEX}"
            ),
            condition="#status = :running AND executionArn = :arn",
            values={
                ":failed": _s(Status.FAILED.value),
                ":arn": _s(EXECUTION_ARN),
                ":redrive": self._redrive_count(),
                ":error": _s("$.error.Error"),
                ":cause": _s("$.error.Cause"),
            },
        )
        failed = sfn.Fail(
            self,
            TASK_FAILED,
            comment="The task is FAILED (or was cancelled or replayed meanwhile); replay starts a new execution",
            error_path="$.error.Error",
            cause_path="$.error.Cause",
        )
        record.add_catch(failed, errors=[retry.CONDITION_FAILED], result_path=sfn.JsonPath.DISCARD)
        record.next(failed)
        for state in states:
            state.add_catch(record, errors=["States.ALL"], result_path="$.error")
