"""The task-lifecycle state machine: STANDARD, logging ALL events (without execution data), X-Ray tracing, an
execution timeout."""

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from workflows.task_lifecycle import EXECUTION_TIMEOUT, LifecycleResources, TaskLifecycle


def standard_state_machine(
    scope: Construct, construct_id: str, definition: sfn.IChainable, *, timeout: Duration, comment: str
) -> sfn.StateMachine:
    """Every taskrail workflow: STANDARD, an execution timeout, X-Ray, and ALL events to its own log group."""
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
        state_machine_type=sfn.StateMachineType.STANDARD,
        timeout=timeout,
        tracing_enabled=True,
        # ALL events (cdk-nag AwsSolutions-SF1) but without execution data: every state's input and output (user
        # parameters up to 200 KB, results) would otherwise be ingested into CloudWatch Logs as well, duplicating
        # the STANDARD execution history, which keeps the full data ("Logging Step Functions using CloudWatch
        # Logs", includeExecutionData).
        logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
        comment=comment,
    )


class Workflow(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, resources: LifecycleResources) -> None:
        super().__init__(scope, construct_id)
        lifecycle = TaskLifecycle(self, "TaskLifecycle", resources=resources)
        self.state_machine = standard_state_machine(
            self,
            "TaskLifecycleStateMachine",
            lifecycle.definition,
            timeout=EXECUTION_TIMEOUT,
            comment="taskrail task lifecycle: claim, validate, process, store, mark, announce",
        )
