"""taskrail.local.scheduler: schedules fire on their scaled rate, with context attributes, retries and a DLQ."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from taskrail.local.scheduler import LocalScheduler, ScheduleSpec, render_input

REGION = "us-east-1"
PASS_MACHINE = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


@pytest.fixture
def schedule(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScheduleSpec]:
    """A 5-minute schedule that starts a state machine, with a dead-letter queue, in moto."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        target = client("stepfunctions").create_state_machine(
            name="reconciler", definition=PASS_MACHINE, roleArn="arn:aws:iam::123456789012:role/sfn"
        )["stateMachineArn"]
        client("sqs").create_queue(QueueName="schedule-dlq")
        yield ScheduleSpec(
            logical_id="ReconcileSchedule1234",
            name="taskrail-ReconcileSchedule",
            arn="arn:aws:scheduler:us-east-1:123456789012:schedule/default/taskrail-ReconcileSchedule",
            expression="rate(5 minutes)",
            target_arn=target,
            input='{"scheduledTime":"<aws.scheduler.scheduled-time>","attempt":"<aws.scheduler.attempt-number>"}',
            role_arn="arn:aws:iam::123456789012:role/schedule",
            dead_letter_queue_arn="arn:aws:sqs:us-east-1:123456789012:schedule-dlq",
            maximum_retry_attempts=2,
            maximum_event_age_seconds=240,
            enabled=True,
        )


def test_rate_expressions_are_read_in_seconds():
    spec = ScheduleSpec("id", "n", "arn", "rate(5 minutes)", "t", None, "r", None, 0, 60, True)

    assert spec.rate_seconds == 300
    assert dataclasses.replace(spec, expression="rate(1 hour)").rate_seconds == 3600
    assert dataclasses.replace(spec, expression="cron(0 12 * * ? *)").rate_seconds is None


def test_context_attributes_in_the_input_are_filled_in(schedule: ScheduleSpec):
    when = datetime(2025, 3, 22, 18, 59, 43, tzinfo=UTC)

    text = render_input(schedule, scheduled_time=when, execution_id="d32c5kddcf5bb8c3", attempt=1)

    assert json.loads(text) == {"scheduledTime": "2025-03-22T18:59:43Z", "attempt": "1"}


def test_a_schedule_fires_on_its_scaled_period_until_stopped(schedule: ScheduleSpec):
    # Given a 5-minute schedule scaled down to 50 ms
    scheduler = LocalScheduler({"Reconcile": schedule}, client, interval_scale=0.05 / 300)
    assert scheduler.interval("Reconcile") == pytest.approx(0.05)

    # When it runs for a while
    scheduler.start()
    deadline = time.monotonic() + 5
    while len(scheduler.started["Reconcile"]) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    scheduler.stop()

    # Then it started the target repeatedly, each time with the rendered input
    started = scheduler.started["Reconcile"]
    assert len(started) >= 3
    first = client("stepfunctions").describe_execution(executionArn=started[0])
    assert json.loads(first["input"])["scheduledTime"].endswith("Z")
    # And once stopped it cannot fire again: the schedule's timer thread (the only thing that fires it) has ended.
    assert [t.name for t in threading.enumerate() if t.name == "schedule-Reconcile"] == []
    assert len(scheduler.started["Reconcile"]) == len(started)


def test_a_paused_schedule_lets_its_periods_pass_without_firing_until_resumed(schedule: ScheduleSpec):
    scheduler = LocalScheduler({"Reconcile": schedule}, client, interval_scale=0.02 / 300)
    scheduler.pause()
    scheduler.start()
    try:
        # Three periods pass (counted by the timer itself, not assumed from a sleep) and nothing fires
        deadline = time.monotonic() + 5
        while scheduler.skipped["Reconcile"] < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert scheduler.skipped["Reconcile"] >= 3
        assert scheduler.started["Reconcile"] == []
        # Resumed, it fires again
        scheduler.resume()
        while not scheduler.started["Reconcile"] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(scheduler.started["Reconcile"]) >= 1
    finally:
        scheduler.stop()


def test_an_undeliverable_run_is_retried_then_dead_lettered_with_its_details(schedule: ScheduleSpec):
    missing = dataclasses.replace(schedule, target_arn=schedule.target_arn + "-gone")
    scheduler = LocalScheduler({"Reconcile": missing}, client, interval_scale=0.001)

    assert scheduler.run_once() == []

    url = client("sqs").get_queue_url(QueueName="schedule-dlq")["QueueUrl"]
    (message,) = client("sqs").receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"]
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert attributes["ERROR_CODE"] == "StateMachineDoesNotExist"
    assert attributes["RETRY_ATTEMPTS"] == "2"
    assert attributes["TARGET_ARN"] == missing.target_arn
    assert attributes["SCHEDULE_ARN"] == schedule.arn
    assert json.loads(message["Body"])["attempt"] == "3"
    assert scheduler.dead_lettered == {"Reconcile": 1}


def test_disabled_cron_and_non_step_functions_schedules_are_not_run(schedule: ScheduleSpec):
    schedules = {
        "Disabled": dataclasses.replace(schedule, enabled=False),
        "Cron": dataclasses.replace(schedule, expression="cron(0 12 * * ? *)"),
        "Lambda": dataclasses.replace(schedule, target_arn="arn:aws:lambda:us-east-1:123456789012:function:f"),
    }

    scheduler = LocalScheduler(schedules, client)

    assert scheduler.run_once() == []
    assert scheduler.started == {}


def test_a_scale_of_zero_is_refused():
    with pytest.raises(ValueError, match="positive"):
        LocalScheduler({}, client, interval_scale=0)
