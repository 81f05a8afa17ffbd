"""The local EventBridge Scheduler: starts each schedule's target on its rate, as the real one does.

Each schedule comes from its ``AWS::Scheduler::Schedule`` definition (:class:`ScheduleSpec`, recorded by the
provisioner): a ``rate(...)`` expression, a state machine target started with the schedule's input (its
context attributes such as ``<aws.scheduler.scheduled-time>`` filled in), the retry policy, and the
dead-letter queue for a delivery that failed after it. The first run comes one period after ``start()``.
Periods are multiplied by ``interval_scale`` (the stack's time scale), so the reconciler's 5 minutes can be a
few seconds in a demo or a test; ``run_once()`` fires every schedule at once, for tests.

Not emulated: ``cron(...)`` and ``at(...)`` expressions, flexible time windows, targets other than
Step Functions (such schedules are skipped with a warning).
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from taskrail.local.emulator import EmulatorContext

log = logging.getLogger("taskrail.local.scheduler")
MAX_RETRY_DELAY_SECONDS = 60
RATE_EXPRESSION = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
RATE_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


@dataclass
class ScheduleSpec:
    """An ``AWS::Scheduler::Schedule``: what to start, with which input, how often, and where failures go."""

    logical_id: str
    name: str
    arn: str
    expression: str
    target_arn: str
    input: str | None
    role_arn: str
    dead_letter_queue_arn: str | None
    maximum_retry_attempts: int
    maximum_event_age_seconds: int
    enabled: bool

    @classmethod
    def from_template(cls, logical_id: str, resource: dict[str, Any], resolve: Callable[[Any], Any]) -> ScheduleSpec:
        """The schedule as the template defines it; ``resolve`` gives its name, ARN and target's ARNs locally."""
        props = resolve(resource["Properties"])
        name, schedule_arn = str(resolve({"Ref": logical_id})), str(resolve({"Fn::GetAtt": [logical_id, "Arn"]}))
        return cls._from_properties(logical_id, name, schedule_arn, props)

    @classmethod
    def from_description(cls, logical_id: str, described: dict[str, Any]) -> ScheduleSpec:
        """The schedule as ``GetSchedule`` shows it (created in moto from the template by ``control_plane``)."""
        return cls._from_properties(logical_id, described["Name"], described["Arn"], described)

    @classmethod
    def _from_properties(cls, logical_id: str, name: str, schedule_arn: str, props: dict[str, Any]) -> ScheduleSpec:
        target = props["Target"]
        retry = target.get("RetryPolicy", {})
        return cls(
            logical_id=logical_id,
            name=name,
            arn=schedule_arn,
            expression=props["ScheduleExpression"],
            target_arn=target["Arn"],
            input=target.get("Input"),
            role_arn=target["RoleArn"],
            dead_letter_queue_arn=target.get("DeadLetterConfig", {}).get("Arn"),
            # EventBridge Scheduler's defaults when the retry policy leaves them out.
            maximum_retry_attempts=int(retry.get("MaximumRetryAttempts", 185)),
            maximum_event_age_seconds=int(retry.get("MaximumEventAgeInSeconds", 86400)),
            enabled=props.get("State", "ENABLED") == "ENABLED",
        )

    @property
    def rate_seconds(self) -> int | None:
        """The period of a ``rate(...)`` expression; None for ``cron(...)`` and ``at(...)``."""
        match = RATE_EXPRESSION.match(self.expression.strip())
        if match is None:
            return None
        return int(match.group(1)) * RATE_UNIT_SECONDS[match.group(2).removesuffix("s")]


def render_input(spec: ScheduleSpec, *, scheduled_time: datetime, execution_id: str, attempt: int) -> str:
    """The target input with EventBridge Scheduler's context attributes replaced by their values."""
    context = {
        "<aws.scheduler.schedule-arn>": spec.arn,
        "<aws.scheduler.scheduled-time>": scheduled_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "<aws.scheduler.execution-id>": execution_id,
        "<aws.scheduler.attempt-number>": str(attempt),
    }
    text = spec.input if spec.input is not None else "{}"
    for attribute, value in context.items():
        text = text.replace(attribute, value)
    return text


def _error_of(error: Exception) -> tuple[str, str]:
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return str(details.get("Code", "")), str(details.get("Message", ""))
    return type(error).__name__, str(error)


def _unsupported(spec: ScheduleSpec) -> str | None:
    if not spec.enabled:
        return "disabled"
    if spec.rate_seconds is None:
        return f"only rate(...) expressions run locally, not {spec.expression}"
    if ":states:" not in spec.target_arn or ":stateMachine:" not in spec.target_arn:
        return f"only Step Functions targets run locally, not {spec.target_arn}"
    return None


class LocalScheduler:
    """One timer thread per schedule; counters of runs started and deliveries dead-lettered, by schedule."""

    def __init__(
        self,
        schedules: dict[str, ScheduleSpec],
        clients: Callable[[str], Any],
        *,
        interval_scale: float = 1.0,
        clients_for: Callable[[str], Callable[[str], Any]] | None = None,
    ) -> None:
        if interval_scale <= 0:
            raise ValueError(f"interval_scale must be positive (a 0 would fire without pause): {interval_scale}")
        self._clients = clients
        # schedule name -> clients signed as the schedule's role (taskrail/local/iam); the stack's otherwise
        self._clients_for = clients_for or (lambda _name: clients)
        self._scale = interval_scale
        self._schedules: dict[str, ScheduleSpec] = {}
        for name, spec in schedules.items():
            reason = _unsupported(spec)
            if reason is None:
                self._schedules[name] = spec
            else:
                log.warning("schedule %s is not run locally: %s", name, reason)
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.started: dict[str, list[str]] = {name: [] for name in self._schedules}
        self.dead_lettered: dict[str, int] = dict.fromkeys(self._schedules, 0)
        self.skipped: dict[str, int] = dict.fromkeys(self._schedules, 0)  # periods passed while paused

    def interval(self, name: str) -> float:
        """Seconds between two runs of the schedule, scaled."""
        rate = self._schedules[name].rate_seconds
        assert rate is not None, "only rate schedules are kept"
        return rate * self._scale

    def start(self) -> LocalScheduler:
        for name in self._schedules:
            thread = threading.Thread(target=self._run, args=(name,), name=f"schedule-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def pause(self) -> None:
        """Let the periods pass without firing (``make bench`` measures an idle stack so, with ``pipes.pause()``:
        at a time scale of 0.01 the 5-minute reconciler would otherwise run every 3 s and start the queued tasks
        the paused pipe holds back). ``run_once`` still fires."""
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()

    def run_once(self) -> list[str]:
        """Fire every schedule now; the ARNs of the executions started."""
        return [arn for name in self._schedules if (arn := self._fire(name)) is not None]

    def _run(self, name: str) -> None:
        while not self._stop.wait(self.interval(name)):
            if self._paused.is_set():
                with self._lock:
                    self.skipped[name] += 1
                continue
            try:
                self._fire(name)
            except Exception:
                log.exception("schedule %s: a run failed", name)

    def _fire(self, name: str) -> str | None:
        spec = self._schedules[name]
        scheduled_time = datetime.now(UTC)
        execution_id = uuid.uuid4().hex[:16]
        last_error = ("", "")
        for attempt in range(1, spec.maximum_retry_attempts + 2):
            payload = render_input(spec, scheduled_time=scheduled_time, execution_id=execution_id, attempt=attempt)
            try:
                # Step Functions names the execution when the caller does not; moto needs a name.
                arn = str(
                    self._clients_for(name)("stepfunctions").start_execution(
                        stateMachineArn=spec.target_arn, name=str(uuid.uuid4()), input=payload
                    )["executionArn"]
                )
            except Exception as error:
                last_error = _error_of(error)
                log.warning("schedule %s: delivery attempt %d failed: %s: %s", name, attempt, *last_error)
                age = (datetime.now(UTC) - scheduled_time).total_seconds()
                delay = min(2 ** (attempt - 1), MAX_RETRY_DELAY_SECONDS) * self._scale
                if age + delay > spec.maximum_event_age_seconds * self._scale or self._stop.wait(delay):
                    break
                continue
            with self._lock:
                self.started[name].append(arn)
            return arn
        self._dead_letter(spec, name, payload, execution_id, attempt, last_error)
        return None

    def _dead_letter(
        self, spec: ScheduleSpec, name: str, payload: str, execution_id: str, attempts: int, error: tuple[str, str]
    ) -> None:
        """The undelivered input, with the details EventBridge Scheduler attaches as message attributes."""
        with self._lock:
            self.dead_lettered[name] += 1
        code, message = error
        if not spec.dead_letter_queue_arn:
            log.error("schedule %s: dropped a run after %d attempt(s) (no DLQ): %s: %s", name, attempts, code, message)
            return
        attributes = {
            "ERROR_CODE": code,
            "ERROR_MESSAGE": message or code,
            "EXECUTION_ID": execution_id,
            "RETRY_ATTEMPTS": str(attempts - 1),
            "SCHEDULE_ARN": spec.arn,
            "TARGET_ARN": spec.target_arn,
        }
        # EventBridge Scheduler sends to the queue's ARN as the schedule's role; finding the URL is the emulator's.
        url = self._clients("sqs").get_queue_url(QueueName=spec.dead_letter_queue_arn.rsplit(":", 1)[-1])["QueueUrl"]
        self._clients_for(name)("sqs").send_message(
            QueueUrl=url,
            MessageBody=payload,
            MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
        )
        log.error("schedule %s: run dead-lettered after %d attempt(s): %s: %s", name, attempts, code, message)


class SchedulerEmulator:
    """The stack's EventBridge Scheduler: rate schedules fire on a timer, scaled like Retry and Wait."""

    name: ClassVar[str] = "scheduler"
    restart_on_reset: ClassVar[bool] = True

    def __init__(self) -> None:
        self.scheduler: LocalScheduler | None = None

    def start(self, context: EmulatorContext) -> None:
        iam = context.iam
        scheduler_api = context.clients("scheduler")
        # What fires is what `aws scheduler get-schedule` shows (control_plane.schedule created it from the template).
        schedules = {
            key: ScheduleSpec.from_description(
                spec.logical_id,
                scheduler_api.get_schedule(Name=spec.name, GroupName=spec.arn.rsplit("/", 2)[-2]),
            )
            for key, spec in context.resources.schedules.items()
        }
        self.scheduler = LocalScheduler(
            schedules,
            context.clients,
            interval_scale=context.time_scale or 1.0,
            clients_for=(lambda name: iam.clients_as(iam.roles.schedules[name])) if iam is not None else None,
        ).start()

    def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()
