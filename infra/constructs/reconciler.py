"""The reconciler: a STANDARD workflow that EventBridge Scheduler starts every few minutes.

It starts tasks stuck QUEUED and fails, to the dead-letter queue, RUNNING tasks whose execution ended (see
``lambdas/reconcile_tasks/logic.py``). It is covered like the rest: a schedule delivery that fails after its
retries lands in the schedule's own dead-letter queue, and a run that fails after its retries fails the
execution; both are alarmed by the Observability construct (see ``infra/stack.py``).
"""

from aws_cdk import Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as targets
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.constructs.functions import RECONCILE, Functions
from infra.constructs.notifications import MESSAGE_RETENTION
from infra.constructs.workflow import allow_start_through_alias, standard_state_machine
from task_common.contract import OUTCOME_PENDING_INDEX_ENV, PENDING_INDEX_ENV
from workflows.reconciler import EXECUTION_TIMEOUT, ReconcilerResources, ReconcilerWorkflow

SCHEDULE_RATE = Duration.minutes(5)
STUCK_QUEUED_AFTER = Duration.minutes(5)
SCHEDULE_RETRY_ATTEMPTS = 3
# A delivery older than the next run is worth nothing: that run does the same work.
SCHEDULE_MAX_EVENT_AGE = Duration.minutes(4)


class Reconciler(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Functions,
        tasks_table: dynamodb.ITable,
        pending_index: str,
        outcome_pending_index: str,
        lifecycle: sfn.IStateMachine,
        lifecycle_alias_arn: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self._pending_index = pending_index
        self._outcome_pending_index = outcome_pending_index
        self.function = functions.add(
            RECONCILE,
            environment={
                PENDING_INDEX_ENV: pending_index,
                OUTCOME_PENDING_INDEX_ENV: outcome_pending_index,
                "STUCK_QUEUED_AFTER_SECONDS": str(int(STUCK_QUEUED_AFTER.to_seconds())),
            },
        )
        self._grant_function_access(tasks_table, lifecycle)

        workflow = ReconcilerWorkflow(
            self,
            "ReconcilerWorkflow",
            resources=ReconcilerResources(
                reconcile_function=functions.live(self.function), lifecycle_arn=lifecycle_alias_arn
            ),
        )
        self.state_machine = standard_state_machine(
            self,
            "ReconcilerStateMachine",
            workflow.definition,
            timeout=EXECUTION_TIMEOUT,
            comment="taskrail reconciler: starts stuck QUEUED tasks, fails RUNNING tasks whose execution ended",
        )

        # Schedule deliveries that failed after their retries (target missing, throttled, role denied).
        self.schedule_dead_letter_queue = sqs.Queue(
            self,
            "ScheduleDeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=MESSAGE_RETENTION,
        )
        stack = Stack.of(self)
        # Only schedules of this account's default group (the one the schedule below lives in) may assume the role:
        # the confused-deputy conditions of "Set up the execution role" in the Scheduler guide.
        schedule_group_arn = stack.format_arn(service="scheduler", resource="schedule-group", resource_name="default")
        schedule_role = iam.Role(
            self,
            "ScheduleRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": stack.account, "aws:SourceArn": schedule_group_arn}},
            ),
            description="EventBridge Scheduler: start the reconciler, dead-letter undeliverable runs",
        )
        self.schedule = scheduler.Schedule(
            self,
            "ReconcileSchedule",
            description="Starts the taskrail reconciler",
            schedule=scheduler.ScheduleExpression.rate(SCHEDULE_RATE),
            target=targets.StepFunctionsStartExecution(
                self.state_machine,
                input=scheduler.ScheduleTargetInput.from_object(
                    {"scheduledTime": scheduler.ContextAttribute.scheduled_time}
                ),
                role=schedule_role,
                dead_letter_queue=self.schedule_dead_letter_queue,
                retry_attempts=SCHEDULE_RETRY_ATTEMPTS,
                max_event_age=SCHEDULE_MAX_EVENT_AGE,
            ),
        )

    def _grant_function_access(self, table: dynamodb.ITable, lifecycle: sfn.IStateMachine) -> None:
        """Explicit statements, as for the other functions: the L2 grants add actions the function never calls."""

        def allow(actions: list[str], resources: list[str]) -> None:
            self.function.add_to_role_policy(iam.PolicyStatement(actions=actions, resources=resources))

        allow(
            ["dynamodb:Query"],
            [f"{table.table_arn}/index/{index}" for index in (self._pending_index, self._outcome_pending_index)],
        )
        allow(["dynamodb:GetItem", "dynamodb:UpdateItem"], [table.table_arn])
        allow_start_through_alias(self.function, lifecycle)
        # The same executions resource as the L2 grant_execution (one state machine's executions only).
        lifecycle.grant_execution(self.function, "states:DescribeExecution")
