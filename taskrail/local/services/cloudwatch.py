"""Amazon CloudWatch: an alarm that changes state runs its actions, publishing to its SNS topics as CloudWatch does.

moto records a state change (``SetAlarmState``, or nothing at all: it evaluates no metrics) and runs no action. On
AWS, "when the updated state differs from the previous value, the action configured for the appropriate state is
invoked" (SetAlarmState, CloudWatch API Reference), and CloudWatch publishes to an SNS topic as
``cloudwatch.amazonaws.com`` on behalf of the alarm: the topic's policy must allow ``sns:Publish`` and, for an
encrypted topic, its key's policy ``kms:GenerateDataKey*``/``kms:Decrypt`` ("Using Amazon SNS to notify users",
and the SNS encryption page's "Enable compatibility between event sources from AWS services and encrypted
topics"). A refused action is recorded in the alarm's history as "Failed to execute action" and published
nowhere. The message is the alarm notification's JSON (AlarmName, NewStateValue, OldStateValue, Trigger, ...) with
the subject ``ALARM: "<name>" in <Region name>``. Cases: tests/local/services/test_service_deliveries.py.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any, Final

from moto.cloudwatch.models import Alarm, CloudWatchBackend

from taskrail.local.services import delivery
from taskrail.local.services.patching import Patch, Signature, Source, is_patched, original, patch, unpatch

__all__ = ["CLOUDWATCH_PRINCIPAL", "PATCHES", "alarm_action_history", "alarm_message"]

LOG = logging.getLogger(__name__)
CLOUDWATCH_PRINCIPAL: Final = "cloudwatch.amazonaws.com"
REGION_NAMES: Final = {
    "us-east-1": "US East (N. Virginia)",
    "us-west-2": "US West (Oregon)",
    "eu-west-1": "EU (Ireland)",
}


def _time(value: datetime) -> str:
    value = value if value.tzinfo is not None else value.replace(tzinfo=UTC)  # moto's utcnow() is naive UTC
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def alarm_message(alarm: Alarm, old_state: str, account_id: str) -> dict[str, Any]:
    """The notification CloudWatch publishes for ``alarm``'s state change (the fields of AWS's alarm message)."""
    return {
        "AlarmName": alarm.name,
        "AlarmDescription": alarm.description,
        "AWSAccountId": account_id,
        "AlarmConfigurationUpdatedTimestamp": _time(alarm.configuration_updated_timestamp),
        "NewStateValue": alarm.state_value,
        "NewStateReason": alarm.state_reason,
        "StateChangeTime": _time(alarm.state_updated_timestamp),
        "Region": REGION_NAMES.get(alarm.region_name, alarm.region_name),
        "AlarmArn": alarm.alarm_arn,
        "OldStateValue": old_state,
        "OKActions": list(alarm.ok_actions),
        "AlarmActions": list(alarm.alarm_actions),
        "InsufficientDataActions": list(alarm.insufficient_data_actions),
        "Trigger": {
            "MetricName": alarm.metric_name,
            "Namespace": alarm.namespace,
            "StatisticType": "Statistic",
            "Statistic": (alarm.statistic or "").upper(),
            "Unit": alarm.unit,
            "Dimensions": [{"value": d.value, "name": d.name} for d in alarm.dimensions],
            "Period": alarm.period,
            "EvaluationPeriods": alarm.evaluation_periods,
            "ComparisonOperator": alarm.comparison_operator,
            "Threshold": alarm.threshold,
            "TreatMissingData": alarm.treat_missing_data or "",
            "EvaluateLowSampleCountPercentile": alarm.evaluate_low_sample_count_percentile or "",
        },
    }


def _actions_for(alarm: Alarm) -> list[str]:
    by_state = {
        "ALARM": alarm.alarm_actions,
        "OK": alarm.ok_actions,
        "INSUFFICIENT_DATA": alarm.insufficient_data_actions,
    }
    return list(by_state.get(alarm.state_value) or [])


def _set_alarm_state(self: CloudWatchBackend, alarm_name: str, reason: str, reason_data: str, state_value: str) -> None:
    alarm = self.alarms.get(alarm_name)
    old_state = alarm.state_value if alarm is not None else None
    original(CloudWatchBackend, "set_alarm_state")(self, alarm_name, reason, reason_data, state_value)
    alarm = self.alarms[alarm_name]
    if old_state == alarm.state_value or not alarm.actions_enabled:
        return
    for action in _actions_for(alarm):
        if action.split(":")[2:3] == ["sns"]:
            _publish(self, alarm, action, old_state or "INSUFFICIENT_DATA")


def _publish(backend: CloudWatchBackend, alarm: Alarm, topic_arn: str, old_state: str) -> None:
    from moto.sns.models import sns_backends

    denied = delivery.check(CLOUDWATCH_PRINCIPAL, "sns:Publish", topic_arn, alarm.alarm_arn)
    now = datetime.now(UTC)
    if denied is not None:
        LOG.warning("alarm %s: action %s failed: %s", alarm.name, topic_arn, denied)
        alarm.history.append(
            ("Action", f"Failed to execute action {topic_arn}. Received error: {denied}", "{}", alarm.state_value, now)
        )
        return
    region = REGION_NAMES.get(alarm.region_name, alarm.region_name)
    subject = f'{alarm.state_value}: "{alarm.name}" in {region}'[:100]
    message = json.dumps(alarm_message(alarm, old_state, backend.account_id))
    _, _, _, topic_region, account, _ = topic_arn.split(":", 5)
    sns_backends[account][topic_region].publish(message=message, arn=topic_arn, subject=subject)
    alarm.history.append(("Action", f"Successfully executed action {topic_arn}", "{}", alarm.state_value, now))


def alarm_action_history(alarm_name: str, account_id: str, region: str) -> list[str]:
    """The summaries of the alarm's ``Action`` history items, oldest first: what DescribeAlarmHistory with
    ``HistoryItemType=Action`` lists on AWS ("Successfully executed action ...", "Failed to execute action ...").
    moto serves no DescribeAlarmHistory; its alarm keeps (type, summary, data, state, time) tuples."""
    from moto.cloudwatch.models import cloudwatch_backends

    alarm = cloudwatch_backends[account_id][region].alarms[alarm_name]
    return [str(entry[1]) for entry in alarm.history if entry[0] == "Action"]


def install() -> None:
    if not is_patched(CloudWatchBackend, "set_alarm_state"):
        patch(CloudWatchBackend, "set_alarm_state", _set_alarm_state)


def uninstall() -> None:
    if is_patched(CloudWatchBackend, "set_alarm_state"):
        unpatch(CloudWatchBackend, "set_alarm_state")


ALARM_ACTIONS: Final = Patch(
    "an alarm's state change publishes to its SNS actions as cloudwatch.amazonaws.com",
    depends=(
        Signature(
            "moto.cloudwatch.models.CloudWatchBackend.set_alarm_state",
            lambda: original(CloudWatchBackend, "set_alarm_state"),
            ("self", "alarm_name", "reason", "reason_data", "state_value"),
        ),
        Source(  # the alarm's fields the message is made of (alarm_message)
            "moto.cloudwatch.models.Alarm.__init__",
            lambda: Alarm.__init__,
            (
                "self.alarm_arn = ",
                "self.alarm_actions = alarm_actions",
                "self.ok_actions = ok_actions or []",
                "self.insufficient_data_actions = insufficient_data_actions or []",
                "self.history: list[Any] = []",
                "self.state_updated_timestamp = utcnow()",
                "self.configuration_updated_timestamp = utcnow()",
            ),
        ),
        Source(  # the history item's shape alarm_action_history reads: (type, summary, ...)
            "moto.cloudwatch.models.Alarm.update_state",
            lambda: Alarm.update_state,
            ("self.history.append(", '"StateUpdate",\n                self.state_reason,'),
        ),
    ),
    install=install,
    uninstall=uninstall,
)

PATCHES: Final = (ALARM_ACTIONS,)
