"""The task-lifecycle state machine: STANDARD, logging ALL, X-Ray tracing, an execution timeout."""

from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from workflows.task_lifecycle import EXECUTION_TIMEOUT, LifecycleResources, TaskLifecycle


class Workflow(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, resources: LifecycleResources) -> None:
        super().__init__(scope, construct_id)
        lifecycle = TaskLifecycle(self, "TaskLifecycle", resources=resources)
        log_group = logs.LogGroup(
            self,
            "ExecutionLogs",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "TaskLifecycleStateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(lifecycle.definition),
            state_machine_type=sfn.StateMachineType.STANDARD,
            timeout=EXECUTION_TIMEOUT,
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            comment="taskrail task lifecycle: claim, validate, process, store, mark, notify",
        )
