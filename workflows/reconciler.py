"""The reconciler workflow: one run of ``reconcile_tasks`` on a schedule, retried whole, alarmed on failure.

EventBridge Scheduler starts it every few minutes (``infra/constructs/reconciler.py``); the local stack drives
the same schedule with ``taskrail.local.scheduler``. The function gets the lifecycle state machine's ARN in
its payload, not in its environment: the ARN is a placeholder of this definition
(``${TaskLifecycleStateMachineArn}`` in ``asl/reconciler.asl.json``), whereas the local provisioner resolves
function environments before it creates state machines (whose definitions name the functions).

The execution input is what the schedule sends (``{"scheduledTime": …}``); the output adds the run's counts
under ``reconciled``.
"""

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from workflows import retry_policies as retry

WORKFLOW_NAME = "reconciler"
# Two retried runs of a 2-minute function, with room to spare; far below the next-but-one schedule.
EXECUTION_TIMEOUT = Duration.minutes(15)
RECONCILIATION_FAILED = "ReconciliationFailed"


@dataclass(frozen=True)
class ReconcilerResources:
    reconcile_function: lambda_.IFunction
    lifecycle_arn: str  # the lifecycle's alias: what the reconciler starts


class ReconcilerWorkflow(Construct):
    """Builds the definition; the state machine itself is created by the infra reconciler construct."""

    def __init__(self, scope: Construct, construct_id: str, *, resources: ReconcilerResources) -> None:
        super().__init__(scope, construct_id)
        self._r = resources
        self.definition = self._build()

    def _reconcile(self) -> tasks.LambdaInvoke:
        reconcile = tasks.LambdaInvoke(
            self,
            "ReconcileTasks",
            comment="Starts tasks stuck QUEUED; fails RUNNING tasks whose execution ended, to the DLQ",
            lambda_function=self._r.reconcile_function,
            payload=sfn.TaskInput.from_object({"lifecycleStateMachineArn": self._r.lifecycle_arn}),
            retry_on_service_exceptions=False,
            result_selector={"counts": sfn.JsonPath.object_at("$.Payload")},
            result_path="$.reconciled",
            task_timeout=sfn.Timeout.duration(Duration.minutes(3)),
        )
        retry.LAMBDA_SERVICE.apply_to(reconcile)
        retry.RECONCILER_RUN.apply_to(reconcile)
        return reconcile

    def _build(self) -> sfn.IChainable:
        reconcile = self._reconcile()
        failed = sfn.Fail(
            self,
            RECONCILIATION_FAILED,
            comment="Alarmed: the run failed after its retries; the next scheduled run tries again",
            error=RECONCILIATION_FAILED,
            cause_path="$.error.Cause",
        )
        reconcile.add_catch(failed, errors=["States.ALL"], result_path="$.error")
        return reconcile.next(sfn.Succeed(self, "TasksReconciled"))
