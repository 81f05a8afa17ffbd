"""The taskrail stack: composes one construct per concern and exports what the CLI discovers."""

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.constructs.api import TaskApi
from infra.constructs.functions import TASK_CHANGES, Functions
from infra.constructs.live import LiveProgress
from infra.constructs.notifications import Notifications
from infra.constructs.observability import Observability
from infra.constructs.pipe import TaskPipes
from infra.constructs.reconciler import Reconciler
from infra.constructs.storage import Storage
from infra.constructs.users import UsersAndProfiles
from infra.constructs.workflow import Workflow
from task_common.contract import DIAGNOSTICS_PREFIX, TASKS_PREFIX, USERS_PREFIX, Output
from workflows.lifecycle_type import EXPRESS, EXPRESS_MAX_EXECUTION_SECONDS, STANDARD
from workflows.task_lifecycle import LifecycleResources, process_time_budget


class TaskrailStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        lifecycle_type: str = STANDARD,
        **kwargs,
    ) -> None:  # type: ignore[no-untyped-def]
        super().__init__(scope, construct_id, **kwargs)
        storage = Storage(self, "Storage", removal_policy=removal_policy)
        notifications = Notifications(self, "Notifications", removal_policy=removal_policy)
        functions = Functions(
            self,
            "Functions",
            environment={
                "TASKS_TABLE_NAME": storage.tasks_table.table_name,
                "RESULTS_BUCKET_NAME": storage.results_bucket.bucket_name,
                "IDEMPOTENCY_TABLE_NAME": storage.idempotency_table.table_name,
            },
        )
        self._grant_function_access(storage, functions)
        # Validate refuses a task type that cannot finish within the lifecycle's execution limit (EXPRESS: 5 minutes).
        for name, value in process_time_budget(lifecycle_type).environment().items():
            functions.validate.add_environment(name, value)
        workflow = Workflow(
            self,
            "Workflow",
            resources=LifecycleResources(
                tasks_table=storage.tasks_table,
                results_bucket=storage.results_bucket,
                validate_function=functions.live(functions.validate),
                process_function=functions.live(functions.process),
            ),
            failure_event_dead_letter_queue=notifications.dead_letter_queue_for_rules,
            lifecycle_type=lifecycle_type,
        )
        # One function reads the stream's changes after the start: cancels and outcomes (the outbox).
        task_changes = functions.add(
            TASK_CHANGES,
            environment={
                "DEAD_LETTER_QUEUE_URL": notifications.dead_letter_queue.queue_url,
                "EVENT_BUS_NAME": notifications.event_bus.event_bus_name,
                # An EXPRESS execution cannot be stopped (nor described): a cancel is the task's status alone.
                **({"STOP_EXECUTIONS": "false"} if lifecycle_type == EXPRESS else {}),
            },
        )
        self._grant_task_changes_access(storage, notifications, task_changes)
        if lifecycle_type != EXPRESS:
            workflow.state_machine.grant_execution(task_changes, "states:DescribeExecution", "states:StopExecution")
        TaskPipes(
            self,
            "Pipes",
            table=storage.tasks_table,
            state_machine=workflow.state_machine,
            state_machine_alias_arn=workflow.alias_arn,
            task_changes_function=functions.live(task_changes),
            dead_letter_queue=notifications.pipe_dead_letter_queue,
        )
        api = TaskApi(
            self,
            "Api",
            table=storage.tasks_table,
            user_index=storage.user_index,
            functions=functions,
            results_bucket=storage.results_bucket,
        )
        # GET /me, PUT /me/profile, and the Profiles stream's email subscriptions (issue 16 §1).
        users = UsersAndProfiles(
            self,
            "Users",
            removal_policy=removal_policy,
            functions=functions,
            topic=notifications.topic,
            dead_letter_queue=notifications.pipe_dead_letter_queue,
            access_logs=api.access_logs,
        )
        api.add_user_routes(profiles_table=users.profiles_table, me_function=functions.live(users.me_function))
        reconciler = Reconciler(
            self,
            "Reconciler",
            functions=functions,
            tasks_table=storage.tasks_table,
            pending_index=storage.pending_index,
            outcome_pending_index=storage.outcome_pending_index,
            lifecycle=workflow.state_machine,
            lifecycle_alias_arn=workflow.alias_arn,
        )
        if lifecycle_type == EXPRESS:  # its executions are not described: RUNNING tasks are settled by age
            reconciler.function.add_environment("LIFECYCLE_MAX_EXECUTION_SECONDS", str(EXPRESS_MAX_EXECUTION_SECONDS))
        # Live progress over a WebSocket API (its URL is the WebSocketUrl output); before Observability, which
        # watches every function.
        LiveProgress(self, "LiveProgress", tasks_table=storage.tasks_table, functions=functions)
        observability = Observability(
            self,
            "Observability",
            alarm_topics=notifications.alarm_actions,
            state_machine=workflow.state_machine,
            functions=functions.all,
            live_aliases={function.node.id: functions.live(function) for function in functions.all},
            queues={
                "TaskDeadLetterQueue": notifications.dead_letter_queue,
                "PipeDeadLetterQueue": notifications.pipe_dead_letter_queue,
                "EventRuleDeadLetterQueue": notifications.dead_letter_queue_for_rules,
                "ScheduleDeadLetterQueue": reconciler.schedule_dead_letter_queue,
            },
            scheduled_workflows={
                "Reconciler": reconciler.state_machine,
                **({"FailureRecorder": workflow.recorder} if workflow.recorder else {}),
            },
        )
        # Canary deploys (docs/DEPLOY.md): each function's CodeDeploy group and the lifecycle's alias roll back on
        # their alarms.
        functions.roll_back_on(observability.function_alarms)
        workflow.roll_back_on(observability.lifecycle_alarms)
        # The one way every client finds the resources (task_common.contract.Output), locally too.
        outputs = {
            Output.API_URL: api.api.url,
            Output.TASKS_TABLE_NAME: storage.tasks_table.table_name,
            Output.RESULTS_BUCKET_NAME: storage.results_bucket.bucket_name,
            Output.STATE_MACHINE_ARN: workflow.state_machine.state_machine_arn,
            Output.STATE_MACHINE_ALIAS_ARN: workflow.alias_arn,
            Output.RECONCILER_STATE_MACHINE_ARN: reconciler.state_machine.state_machine_arn,
            Output.DEAD_LETTER_QUEUE_URL: notifications.dead_letter_queue.queue_url,
            Output.PIPE_DEAD_LETTER_QUEUE_URL: notifications.pipe_dead_letter_queue.queue_url,
            Output.NOTIFICATIONS_TOPIC_ARN: notifications.topic.topic_arn,
            Output.NOTIFICATIONS_ARCHIVE_QUEUE_URL: notifications.notifications_archive.queue_url,
            Output.EVENT_BUS_NAME: notifications.event_bus.event_bus_name,
        }
        for name, value in outputs.items():
            CfnOutput(self, name.value, value=value)

    @staticmethod
    def _grant_task_changes_access(storage: Storage, notifications: Notifications, function: lambda_.IFunction) -> None:
        """The outbox: mark the task delivered, one idempotency record per delivery, the event, the DLQ message."""
        for actions, resources in (
            (["dynamodb:UpdateItem"], [storage.tasks_table.table_arn]),
            (
                ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
                [storage.idempotency_table.table_arn],
            ),
            (["events:PutEvents"], [notifications.event_bus.event_bus_arn]),
            (["sqs:SendMessage"], [notifications.dead_letter_queue.queue_arn]),
        ):
            function.add_to_role_policy(iam.PolicyStatement(actions=actions, resources=resources))

    @staticmethod
    def _grant_function_access(storage: Storage, functions: Functions) -> None:
        """Explicit statements: the L2 grant helpers add wildcard actions (s3:Abort*, s3:List*) we do not use."""
        table_arn, bucket = storage.tasks_table.table_arn, storage.results_bucket

        def allow(
            function: lambda_.IFunction, actions: list[str], resources: list[str], conditions: dict | None = None
        ) -> None:
            function.add_to_role_policy(
                iam.PolicyStatement(actions=actions, resources=resources, conditions=conditions)
            )

        allow(functions.validate, ["dynamodb:GetItem"], [table_arn])
        # ProcessTask writes progress and its redrive resume, and never reads the task item (the grant coverage of a
        # whole e2e run, issue 12: its dynamodb:GetItem on the table was never used)
        allow(functions.process, ["dynamodb:UpdateItem"], [table_arn])
        allow(
            functions.process,
            ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
            [storage.idempotency_table.table_arn],
        )
        # Validate re-reads claim-checked params (tasks/); only ProcessTask reads a task's source under the owner's
        # users/{userId}/ (task_types/sources.py), so only it may read users/ (issue 12's grant coverage)
        allow(functions.validate, ["s3:GetObject"], [bucket.arn_for_objects(f"{TASKS_PREFIX}*")])
        allow(
            functions.process,
            ["s3:GetObject"],
            [bucket.arn_for_objects(f"{USERS_PREFIX}*"), bucket.arn_for_objects(f"{TASKS_PREFIX}*")],
        )
        for function in (functions.validate, functions.process):
            allow(function, ["s3:PutObject"], [bucket.arn_for_objects(f"{TASKS_PREFIX}*")])
        allow(functions.process, ["s3:GetObject"], [bucket.arn_for_objects(f"{DIAGNOSTICS_PREFIX}*")])
        # Without ListBucket a missing object reads as 403 rather than 404 (the poison marker check); only for the
        # diagnostics/ prefix, never a listing of users' keys (s3:prefix, docs/AWS-REVIEW.md).
        allow(
            functions.process,
            ["s3:ListBucket"],
            [bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{DIAGNOSTICS_PREFIX}*"]}},
        )
