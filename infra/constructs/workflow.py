"""The task-lifecycle state machine (STANDARD, logging ALL events without execution data, X-Ray tracing, an
execution timeout), and its one failure path: an EventBridge rule on the lifecycle's execution status changes
(FAILED, TIMED_OUT, ABORTED) that starts the failure recorder (``workflows/failure_recorder.py``).

With ``lifecycle_type=EXPRESS`` the lifecycle is an Express state machine: Express executions send no status-change
events and keep no history of their own ("Standard vs. Express Workflows"), so there is no rule and no recorder (the
lifecycle records its failures itself, ``workflows/task_lifecycle.py``), and its log group is where its executions
are watched in the console.
"""

from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.constructs.functions import LIVE_ALIAS
from task_common.contract import (
    EXECUTION_STATUS_DETAIL_TYPE,
    EXECUTION_STATUS_EVENT_SOURCE,
    UNSUCCESSFUL_EXECUTION_STATUSES,
)
from workflows import failure_recorder
from workflows.failure_recorder import FailureRecorder, RecorderResources
from workflows.lifecycle_type import EXPRESS, STANDARD
from workflows.task_lifecycle import EXECUTION_TIMEOUTS, LifecycleResources, TaskLifecycle

# EventBridge's default retry policy, written out: the recorder's write is idempotent, and the reconciler repairs
# an event that never arrives.
FAILURE_EVENT_RETRY_ATTEMPTS = 185
FAILURE_EVENT_MAX_AGE = Duration.hours(24)


# The lifecycle's and the failure recorder's logging, measured per option by `taskrail cost` (docs/COST.md,
# "Logging"). STANDARD keeps every execution's full history in the console for 90 days, so its logs carry only
# the error events (nothing on a task that succeeds); an Express execution's log events are its only history, so
# EXPRESS logs them all. Neither includes the states' input and output (user parameters up to 200 KB, results): the
# task item and the DLQ message keep a failure's error, cause and input.
LIFECYCLE_LOG_LEVELS = {STANDARD: sfn.LogLevel.ERROR, EXPRESS: sfn.LogLevel.ALL}
INCLUDE_EXECUTION_DATA = False
# A new lifecycle definition is published as a version; the alias's deployment preference sends it 10 % of the
# new executions for 5 minutes, then all, and CloudFormation rolls the alias back if one of the lifecycle's alarms
# fires meanwhile ("AWS::StepFunctions::StateMachineAlias DeploymentPreference", docs/DEPLOY.md).
CANARY_PERCENTAGE = 10
CANARY_INTERVAL_MINUTES = 5


def allow_start_through_alias(grantee: iam.IGrantable, state_machine: sfn.IStateMachine) -> None:
    """StartExecution on the alias, and on nothing else of the state machine: Step Functions authorizes a start
    through an alias against the state machine's own ARN, with the alias name in the condition key
    ``states:StateMachineQualifier`` ("Authorization for versions and aliases", Step Functions Developer Guide)."""
    grantee.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["states:StartExecution"],
            resources=[state_machine.state_machine_arn],
            conditions={"StringEquals": {"states:StateMachineQualifier": LIVE_ALIAS}},
        )
    )


def standard_state_machine(
    scope: Construct,
    construct_id: str,
    definition: sfn.IChainable,
    *,
    timeout: Duration,
    comment: str,
    state_machine_type: sfn.StateMachineType = sfn.StateMachineType.STANDARD,
    log_level: sfn.LogLevel = sfn.LogLevel.ALL,
) -> sfn.StateMachine:
    """Every taskrail workflow: STANDARD (the lifecycle may be EXPRESS), an execution timeout, X-Ray, and its events
    (ALL unless told) to its own log group."""
    # Under /aws/vendedlogs/states/: otherwise Step Functions adds each log group to the account's CloudWatch Logs
    # resource policy (5,120 characters), and deploys fail in an account with many logged state machines
    # ("Avoiding Amazon CloudWatch Logs resource policy size restrictions", Step Functions Developer Guide).
    log_group = logs.LogGroup(
        scope,
        "ExecutionLogs",
        log_group_name=f"/aws/vendedlogs/states/{Stack.of(scope).stack_name}-{construct_id}",
        retention=logs.RetentionDays.ONE_MONTH,
        removal_policy=RemovalPolicy.DESTROY,
    )
    return sfn.StateMachine(
        scope,
        construct_id,
        definition_body=sfn.DefinitionBody.from_chainable(definition),
        state_machine_type=state_machine_type,
        timeout=timeout,
        tracing_enabled=True,
        # Without execution data: every state's input and output (user parameters up to 200 KB, results) would
        # otherwise be ingested into CloudWatch Logs as well, duplicating the STANDARD execution history, which keeps
        # the full data ("Logging Step Functions using CloudWatch Logs", includeExecutionData). The per-task
        # workflows log ERROR on STANDARD (LIFECYCLE_LOG_LEVELS; cdk-nag AwsSolutions-SF1 acknowledged in infra/nag.py).
        logs=sfn.LogOptions(destination=log_group, level=log_level, include_execution_data=INCLUDE_EXECUTION_DATA),
        comment=comment,
    )


class Workflow(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        resources: LifecycleResources,
        failure_event_dead_letter_queue: sqs.IQueue,
        lifecycle_type: str = STANDARD,
    ) -> None:
        super().__init__(scope, construct_id)
        lifecycle = TaskLifecycle(self, "TaskLifecycle", resources=resources, lifecycle_type=lifecycle_type)
        self.lifecycle_type = lifecycle_type
        self.state_machine = standard_state_machine(
            self,
            "TaskLifecycleStateMachine",
            lifecycle.definition,
            timeout=EXECUTION_TIMEOUTS[lifecycle_type],
            comment="taskrail task lifecycle: claim, validate, process, store, mark"
            + (" (EXPRESS: failures recorded in the workflow)" if lifecycle_type == EXPRESS else ""),
            state_machine_type=sfn.StateMachineType(lifecycle_type),
            log_level=LIFECYCLE_LOG_LEVELS[lifecycle_type],
        )
        self.version = sfn.CfnStateMachineVersion(
            self,
            "TaskLifecycleVersion",
            state_machine_arn=self.state_machine.state_machine_arn,
            state_machine_revision_id=self.state_machine.state_machine_revision_id,
            description="taskrail task lifecycle, published by the deploy",
        )
        self.alias = sfn.CfnStateMachineAlias(
            self,
            "TaskLifecycleLive",
            name=LIVE_ALIAS,
            description="What the pipe and the reconciler start; a deploy shifts it by a canary",
            deployment_preference=self._canary(),
        )
        # The ARN every starter names: StartExecution on it runs the version the alias routes to.
        self.alias_arn = self.alias.attr_arn
        self.recorder: sfn.StateMachine | None = None
        self.failure_rule: events.Rule | None = None
        if lifecycle_type == EXPRESS:
            return
        recorder = FailureRecorder(
            self, "FailureRecorder", resources=RecorderResources(tasks_table=resources.tasks_table)
        )
        # Its own construct scope: each workflow's log group is named ExecutionLogs.
        recorder_scope = Construct(self, "Recorder")
        self.recorder = standard_state_machine(
            recorder_scope,
            "FailureRecorderStateMachine",
            recorder.definition,
            timeout=failure_recorder.EXECUTION_TIMEOUT,
            comment="taskrail failure recorder: a lifecycle execution that failed, timed out or was aborted",
            log_level=LIFECYCLE_LOG_LEVELS[STANDARD],
        )
        self.failure_rule = self._failure_rule(self.recorder, failure_event_dead_letter_queue)

    def _canary(
        self, alarms: Sequence[cloudwatch.IAlarm] = ()
    ) -> sfn.CfnStateMachineAlias.DeploymentPreferenceProperty:
        return sfn.CfnStateMachineAlias.DeploymentPreferenceProperty(
            state_machine_version_arn=self.version.attr_arn,
            type="CANARY",
            percentage=CANARY_PERCENTAGE,
            interval=CANARY_INTERVAL_MINUTES,
            alarms=[alarm.alarm_name for alarm in alarms] or None,
        )

    def roll_back_on(self, alarms: Sequence[cloudwatch.IAlarm]) -> None:
        """The alias's deployment rolls back to the previous version when one of these alarms fires."""
        self.alias.deployment_preference = self._canary(alarms)

    def _failure_rule(self, recorder: sfn.StateMachine, dead_letter_queue: sqs.IQueue) -> events.Rule:
        """The default bus's status changes of this lifecycle only; an event it cannot deliver after its retries
        goes to the rules' dead-letter queue (alarmed), and the reconciler repairs the task meanwhile."""
        stack = Stack.of(self)
        # Only EventBridge of this account may assume it (confused deputy; the rule's ARN would be a cycle).
        role = iam.Role(
            self,
            "FailureRuleRole",
            assumed_by=iam.ServicePrincipal(
                "events.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": stack.account}}
            ),
            description="EventBridge: start the failure recorder for a failed task-lifecycle execution",
        )
        return events.Rule(
            self,
            "LifecycleFailedRule",
            description="Failed, timed-out and aborted task-lifecycle executions to the failure recorder",
            event_pattern=events.EventPattern(
                source=[EXECUTION_STATUS_EVENT_SOURCE],
                detail_type=[EXECUTION_STATUS_DETAIL_TYPE],
                detail={
                    "stateMachineArn": [self.state_machine.state_machine_arn],
                    "status": sorted(UNSUCCESSFUL_EXECUTION_STATUSES),
                },
            ),
            targets=[
                targets.SfnStateMachine(
                    recorder,
                    role=role,
                    dead_letter_queue=dead_letter_queue,
                    retry_attempts=FAILURE_EVENT_RETRY_ATTEMPTS,
                    max_event_age=FAILURE_EVENT_MAX_AGE,
                )
            ],
        )
