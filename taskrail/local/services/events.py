"""Amazon EventBridge: rule targets that are SNS topics or Step Functions state machines (moto drops them).

:func:`install_eventbridge_sns_targets` publishes the event (or its target's ``InputPath``) to each SNS topic a
matching rule targets, and starts an execution of each state machine it targets (the event as input), as
EventBridge does; moto delivers the rule's other targets itself. With a delivery check
(:func:`set_delivery_check`, the local IAM) each delivery is made as ``events.amazonaws.com`` against the topic's
policy (and its key's): a refused one goes to the target's DLQ.

PutEvents' request limits (:data:`PUT_EVENTS_LIMITS`): 1 to 10 entries (moto checks the 10), and the entries'
total size, counted as EventBridge counts it ("Calculating Amazon EventBridge PutEvents event entry size": Time 14
bytes, Source, DetailType, Detail and each Resources entry their UTF-8 bytes), over :data:`MAX_PUT_EVENTS_BYTES` is
refused with ``ValidationException`` "Total size of the entries in the request is over the limit." (the answer AWS
gave, reported in awslabs/aws-service-catalog-puppet#563). moto put any size. Cases: tests/parity/events.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from moto.events.exceptions import ValidationException as EventsValidationException
from moto.events.models import EventsBackend
from moto.events.models import Rule as EventsRule
from moto.sqs import models as _sqs_models
from moto.stepfunctions.parser import models as _sfn_parser_models

from taskrail.local.services import delivery
from taskrail.local.services.patching import Patch, Signature, is_patched, lock, original, patch, unpatch

__all__ = [
    "MAX_PUT_EVENTS_BYTES",
    "PATCHES",
    "install_eventbridge_sns_targets",
    "put_events_entry_size",
    "set_delivery_check",
    "uninstall_eventbridge_sns_targets",
]

LOG = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------------
# Rules with SNS targets
# --------------------------------------------------------------------------------------------------


def _json_path(data: Any, path: str) -> Any:
    for part in path.removeprefix("$").strip(".").split("."):
        if part:
            data = data[part]
    return data


def _send_to_targets(self: EventsRule, original_event: Any, transform_input: bool = True) -> None:
    """moto delivers rule targets to logs, SQS, archives and buses but raises for SNS topics and Step Functions
    state machines; deliver those as EventBridge does: the event (or its ``InputPath``, or its constant
    ``Input``) as the message published to the topic, or as the input of a new execution of the state machine."""

    def is_ours(target: dict[str, Any]) -> bool:
        return target["Arn"].split(":")[2:3] in (["sns"], ["states"])

    our_targets = [t for t in self.targets if is_ours(t)]
    if len(our_targets) < len(self.targets):
        # moto raises NotImplementedError for an SNS or Step Functions target: hand it the others only.
        with lock:
            every_target = self.targets
            self.targets = [t for t in every_target if not is_ours(t)]
            try:
                original(EventsRule, "send_to_targets")(self, original_event, transform_input)
            finally:
                self.targets = every_target
    if not our_targets or not self.event_pattern.matches_event(original_event):
        return
    from moto.sns.models import sns_backends

    original_event = _with_iso_time(original_event)

    for target in our_targets:
        parts = target["Arn"].split(":")
        if target.get("Input") is not None:
            payload: Any = target["Input"]
        else:
            payload = _json_path(original_event, target["InputPath"]) if target.get("InputPath") else original_event
        message = payload if isinstance(payload, str) else json.dumps(payload, default=str)
        if parts[2] == "states":
            _start_execution(self, target, message)
            continue
        denied = _delivery_check(EVENTS_PRINCIPAL, "sns:Publish", target["Arn"], self.arn) if _delivery_check else None
        if denied is not None:
            _dead_letter(self, target, original_event, denied)
            continue
        sns_backends[parts[4]][parts[3]].publish(message=message, arn=target["Arn"])


def _with_iso_time(event: Any) -> Any:
    """The event with ``time`` as EventBridge sends it: ISO 8601 UTC to the second ("2026-12-01T16:57:36Z",
    "Amazon EventBridge events" reference: time "The event timestamp"). moto keeps the epoch float it stamped
    and converts it only in the targets it delivers itself (logs, SQS)."""
    if not isinstance(event, dict) or not isinstance(event.get("time"), int | float):
        return event
    stamp = datetime.fromtimestamp(float(event["time"]), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {**event, "time": stamp}


def _start_execution(rule: EventsRule, target: dict[str, Any], message: str) -> None:
    """A Step Functions target: StartExecution of the state machine with the event as input and a generated name
    ("Amazon EventBridge targets", EventBridge User Guide; the target's RoleArn is the caller on AWS). A start
    refused by Step Functions (a FAILED-to-invoke target) is logged; EventBridge's retries are not emulated. The
    start is made as the target's ``RoleArn`` (:func:`delivery.check_as_role`): a role without
    ``states:StartExecution`` sends the event to the target's DLQ, as a refused delivery does."""
    from moto.stepfunctions.responses import get_backend

    role_arn = target.get("RoleArn")
    denied = delivery.check_as_role(role_arn, "states:StartExecution", target["Arn"]) if role_arn else None
    if denied is not None:
        _dead_letter(rule, target, json.loads(message), denied)
        return
    _, _, _, region, account, _ = target["Arn"].split(":", 5)
    try:
        get_backend(account, region).start_execution(target["Arn"], str(uuid.uuid4()), message)
    except Exception:
        LOG.exception("rule %s: StartExecution of %s failed", rule.arn, target["Arn"])


EVENTS_PRINCIPAL: Final = "events.amazonaws.com"
#: (service principal, action, resource ARN, source ARN) -> IAM's denial message, or None: the local IAM
#: (taskrail.local.iam.enforce.LocalIam.service_delivery); None delivers unchecked.
_delivery_check: Callable[[str, str, str, str], str | None] | None = None


def set_delivery_check(check: Callable[[str, str, str, str], str | None] | None) -> None:
    global _delivery_check  # noqa: PLW0603 - moto's backends are process-wide, so is this
    _delivery_check = check


def _dead_letter(rule: EventsRule, target: dict[str, Any], event: Any, reason: str) -> None:
    """A delivery refused for missing permissions is not retried: EventBridge sends the event to the target's
    DLQ at once, with RULE_ARN, TARGET_ARN, ERROR_CODE NO_PERMISSIONS and ERROR_MESSAGE ("Using dead-letter
    queues to process undelivered events", EventBridge User Guide). Writing the DLQ needs its queue policy too."""
    queue_arn = (target.get("DeadLetterConfig") or {}).get("Arn")
    if not queue_arn:
        LOG.error("rule %s: event to %s dropped (no DLQ): %s", rule.arn, target["Arn"], reason)
        return
    refused = _delivery_check(EVENTS_PRINCIPAL, "sqs:SendMessage", queue_arn, rule.arn) if _delivery_check else None
    if refused is not None:
        LOG.error(
            "rule %s: event to %s dropped (%s), and the DLQ refused it: %s", rule.arn, target["Arn"], reason, refused
        )
        return
    _, _, _, region, account, name = queue_arn.split(":", 5)
    attributes = {
        "RULE_ARN": rule.arn,
        "TARGET_ARN": target["Arn"],
        "ERROR_CODE": "NO_PERMISSIONS",
        "ERROR_MESSAGE": reason,
        "RETRY_ATTEMPTS": "0",
    }
    _sqs_models.sqs_backends[account][region].send_message(
        name,
        json.dumps(event, default=str),
        message_attributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
    )


def install_eventbridge_sns_targets() -> None:
    if not is_patched(EventsRule, "send_to_targets"):
        patch(EventsRule, "send_to_targets", _send_to_targets)


def uninstall_eventbridge_sns_targets() -> None:
    if is_patched(EventsRule, "send_to_targets"):
        unpatch(EventsRule, "send_to_targets")


SNS_TARGETS: Final = Patch(
    "rule targets that are SNS topics",
    depends=(
        Signature(
            "moto.events.models.Rule.send_to_targets",
            lambda: original(EventsRule, "send_to_targets"),
            ("self", "original_event", "transform_input"),
        ),
        Signature(  # a Step Functions target (_start_execution)
            "moto.stepfunctions.parser.models.StepFunctionsParserBackend.start_execution",
            lambda: original(_sfn_parser_models.StepFunctionsParserBackend, "start_execution"),
            ("self", "state_machine_arn", "name", "execution_input", "trace_header"),
        ),
        # a refused delivery's dead letter (_dead_letter) calls SQSBackend.send_message: declared by services/sqs.py
    ),
    install=install_eventbridge_sns_targets,
    uninstall=uninstall_eventbridge_sns_targets,
)

# --------------------------------------------------------------------------------------------------
# PutEvents request limits
# --------------------------------------------------------------------------------------------------

#: PutEvents' total entry size limit: 1 MiB since EventBridge raised it from 256 KB (AWS's PutEvents page as
#: quoted in DataDog/dd-trace-js#9038, 2026-06: "the current AWS PutEvents 1 MiB payload limit")
MAX_PUT_EVENTS_BYTES: Final = 1024 * 1024
TOTAL_TOO_LARGE: Final = "Total size of the entries in the request is over the limit."


def _utf8(value: Any) -> int:
    return len(value.encode("utf-8")) if isinstance(value, str) else 0


def put_events_entry_size(entry: dict[str, Any]) -> int:
    """A PutEventsRequestEntry's size as EventBridge calculates it (the documented Java ``getSize``)."""
    size = 14 if entry.get("Time") is not None else 0
    size += _utf8(entry.get("Source")) + _utf8(entry.get("DetailType")) + _utf8(entry.get("Detail"))
    return size + sum(_utf8(resource) for resource in entry.get("Resources") or [])


def _put_events(self: EventsBackend, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not events:
        raise EventsValidationException(
            "1 validation error detected: Value '[]' at 'entries' failed to satisfy constraint: "
            "Member must have length greater than or equal to 1"
        )
    if len(events) <= 10 and sum(put_events_entry_size(e) for e in events) > MAX_PUT_EVENTS_BYTES:
        raise EventsValidationException(TOTAL_TOO_LARGE)
    return original(EventsBackend, "put_events")(self, events)  # type: ignore[no-any-return]


def install_put_events_limits() -> None:
    if not is_patched(EventsBackend, "put_events"):
        patch(EventsBackend, "put_events", _put_events)


def uninstall_put_events_limits() -> None:
    if is_patched(EventsBackend, "put_events"):
        unpatch(EventsBackend, "put_events")


PUT_EVENTS_LIMITS: Final = Patch(
    "PutEvents: 1 to 10 entries, total entry size at most 1 MiB",
    depends=(
        Signature(
            "moto.events.models.EventsBackend.put_events",
            lambda: original(EventsBackend, "put_events"),
            ("self", "events"),
        ),
    ),
    install=install_put_events_limits,
    uninstall=uninstall_put_events_limits,
)

PATCHES: Final = (SNS_TARGETS, PUT_EVENTS_LIMITS)
