"""Alarms on what an operator must act on, and one dashboard.

An alarm pages a person, so it watches only what needs one: a dead-letter queue that is not empty, an error
nobody expected, a throttle, a timeout, a task that got stuck. The outcomes the design expects never page: a
rejected task ends its execution in a Succeed state, a cancel ends it ABORTED (or in TaskWasCancelled), and the
errors the functions raise on purpose (ValidationFailed, TaskCancelled, TransientTaskError, PermanentTaskError)
are subtracted from Lambda's Errors by the ExpectedErrors metric the handlers emit
(``lambdas/task_common/observability.py``); a permanent failure pages through the dead-letter queue instead.
"""

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.constructs.functions import METRICS_NAMESPACE
from task_common.contract import EXPECTED_ERRORS_METRIC

PERIOD = Duration.minutes(1)
# What the reconciler counts when the event-driven path left a task behind (lambdas/reconcile_tasks/logic.py).
STUCK_TASK_METRICS = (
    "StuckTasksStarted",
    "EndedTasksMarkedFailed",
    "RunningTasksWithSucceededExecution",
    "RunningTasksWithoutExecution",
)
RECONCILER_SERVICE = "ReconcileTasks"


class Observability(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        alarm_topics: list[sns.ITopic],
        state_machine: sfn.StateMachine,
        functions: list[lambda_.Function],
        queues: dict[str, sqs.Queue],
        scheduled_workflows: dict[str, sfn.StateMachine] | None = None,
        live_aliases: dict[str, lambda_.IFunction] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self._actions = [actions.SnsAction(topic) for topic in alarm_topics]
        self.alarms: list[cloudwatch.Alarm] = []
        # The alarms a deployment rolls back on: per function name (CodeDeploy) and the lifecycle's (its alias).
        self.function_alarms: dict[str, list[cloudwatch.Alarm]] = {}
        for name, queue in queues.items():
            self._alarm(
                f"{name}NotEmpty",
                queue.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
            )
            # NotEmpty stays in ALARM until the queue is drained, so a second failure would page nobody: this one
            # fires for every new dead letter (every sender calls SendMessage itself; "Creating alarms for
            # dead-letter queues using Amazon CloudWatch", SQS Developer Guide).
            self._alarm(f"{name}NewMessages", queue.metric_number_of_messages_sent(period=PERIOD, statistic="Sum"))
        # A lifecycle execution fails only when its task FAILED (rejections and cancels do not fail it).
        self.lifecycle_alarms = [
            self._alarm("ExecutionsFailed", state_machine.metric_failed(period=PERIOD)),
            self._alarm("ExecutionsThrottled", state_machine.metric_throttled(period=PERIOD)),
            self._alarm("ExecutionsTimedOut", state_machine.metric_timed_out(period=PERIOD)),
        ]
        # A scheduled workflow that fails has no DLQ message to show for it: its failed runs are the signal.
        for name, machine in (scheduled_workflows or {}).items():
            self._alarm(f"{name}ExecutionsFailed", machine.metric_failed(period=PERIOD))
            self._alarm(f"{name}ExecutionsTimedOut", machine.metric_timed_out(period=PERIOD))
        for function in functions:
            name = function.node.id
            # Every caller invokes the function's alias, so its metrics (dimension Resource = function:alias) are
            # all the traffic, the canary's new version included ("Types of metrics for Lambda functions").
            live = (live_aliases or {}).get(name, function)
            self.function_alarms[name] = [
                self._alarm(f"{name}UnexpectedErrors", self._unexpected_errors(function, live)),
                self._alarm(f"{name}Throttles", live.metric_throttles(period=PERIOD)),
            ]
        self._alarm("StuckTasks", self._stuck_tasks())

        self.dashboard = cloudwatch.Dashboard(self, "Dashboard")
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Executions",
                left=[
                    state_machine.metric_started(period=PERIOD),
                    state_machine.metric_succeeded(period=PERIOD),
                    state_machine.metric_failed(period=PERIOD),
                    state_machine.metric_aborted(period=PERIOD),
                ],
            ),
            cloudwatch.GraphWidget(
                title="Dead-letter queues",
                left=[q.metric_approximate_number_of_messages_visible(period=PERIOD) for q in queues.values()],
            ),
            cloudwatch.GraphWidget(
                title="Function errors (unexpected) and duration",
                left=[self._unexpected_errors(f) for f in functions],
                right=[f.metric_duration(period=PERIOD) for f in functions],
            ),
            *(
                cloudwatch.GraphWidget(
                    title=f"{name} executions",
                    left=[
                        machine.metric_started(period=PERIOD),
                        machine.metric_succeeded(period=PERIOD),
                        machine.metric_failed(period=PERIOD),
                    ],
                )
                for name, machine in (scheduled_workflows or {}).items()
            ),
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=self.alarms),
        )

    @staticmethod
    def _service_metric(metric_name: str, service: str) -> cloudwatch.Metric:
        """A Powertools metric: namespace taskrail, dimension ``service`` = POWERTOOLS_SERVICE_NAME."""
        return cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=metric_name,
            dimensions_map={"service": service},
            statistic="Sum",
            period=PERIOD,
        )

    def _unexpected_errors(
        self, function: lambda_.Function, live: lambda_.IFunction | None = None
    ) -> cloudwatch.MathExpression:
        service = function.node.id.removesuffix("Function")
        # Ids are unique per function: the dashboard draws every function's expression in one graph.
        errors, expected = f"errors_{service.lower()}", f"expected_{service.lower()}"
        return cloudwatch.MathExpression(
            expression=f"{errors} - FILL({expected}, 0)",
            using_metrics={
                errors: (live or function).metric_errors(period=PERIOD, statistic="Sum"),
                expected: self._service_metric(EXPECTED_ERRORS_METRIC, service),
            },
            label=f"{function.node.id} unexpected errors",
            period=PERIOD,
        )

    def _stuck_tasks(self) -> cloudwatch.MathExpression:
        metrics = {f"m{i}": self._service_metric(name, RECONCILER_SERVICE) for i, name in enumerate(STUCK_TASK_METRICS)}
        return cloudwatch.MathExpression(
            expression=" + ".join(f"FILL({key}, 0)" for key in metrics),
            using_metrics=metrics,
            label="tasks the reconciler had to repair",
            period=PERIOD,
        )

    def _alarm(self, name: str, metric: cloudwatch.Metric | cloudwatch.MathExpression) -> cloudwatch.Alarm:
        alarm = metric.create_alarm(
            self,
            name,
            alarm_description=f"taskrail: {name}",
            threshold=0,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        for action in self._actions:
            alarm.add_alarm_action(action)
        self.alarms.append(alarm)
        return alarm
