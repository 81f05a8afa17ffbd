"""Alarms on everything that means a task needs a person, and one dashboard."""

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

PERIOD = Duration.minutes(1)


class Observability(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        alarm_topic: sns.ITopic,
        state_machine: sfn.StateMachine,
        functions: list[lambda_.Function],
        queues: dict[str, sqs.Queue],
        scheduled_workflows: dict[str, sfn.StateMachine] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self._action = actions.SnsAction(alarm_topic)
        self.alarms: list[cloudwatch.Alarm] = []
        for name, queue in queues.items():
            self._alarm(
                f"{name}NotEmpty",
                queue.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
            )
        self._alarm("ExecutionsFailed", state_machine.metric_failed(period=PERIOD))
        self._alarm("ExecutionsThrottled", state_machine.metric_throttled(period=PERIOD))
        self._alarm("ExecutionsTimedOut", state_machine.metric_timed_out(period=PERIOD))
        # A scheduled workflow that fails has no DLQ message to show for it: its failed runs are the signal.
        for name, machine in (scheduled_workflows or {}).items():
            self._alarm(f"{name}ExecutionsFailed", machine.metric_failed(period=PERIOD))
            self._alarm(f"{name}ExecutionsTimedOut", machine.metric_timed_out(period=PERIOD))
        for function in functions:
            name = function.node.id
            self._alarm(f"{name}Errors", function.metric_errors(period=PERIOD))
            self._alarm(f"{name}Throttles", function.metric_throttles(period=PERIOD))

        self.dashboard = cloudwatch.Dashboard(self, "Dashboard")
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Executions",
                left=[
                    state_machine.metric_started(period=PERIOD),
                    state_machine.metric_succeeded(period=PERIOD),
                    state_machine.metric_failed(period=PERIOD),
                ],
            ),
            cloudwatch.GraphWidget(
                title="Dead-letter queues",
                left=[q.metric_approximate_number_of_messages_visible(period=PERIOD) for q in queues.values()],
            ),
            cloudwatch.GraphWidget(
                title="Function errors and duration",
                left=[f.metric_errors(period=PERIOD) for f in functions],
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

    def _alarm(self, name: str, metric: cloudwatch.Metric) -> None:
        alarm = metric.create_alarm(
            self,
            name,
            alarm_description=f"taskrail: {name}",
            threshold=0,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(self._action)
        self.alarms.append(alarm)
