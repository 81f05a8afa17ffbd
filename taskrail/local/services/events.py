"""Amazon EventBridge: rule targets that are SNS topics are delivered (moto drops them).

:func:`install_eventbridge_sns_targets` publishes the event (or its target's ``InputPath``) to each SNS topic a
matching rule targets, as EventBridge does; moto delivers the rule's other targets itself.
"""

from __future__ import annotations

import json
from typing import Any, Final

from moto.events.models import Rule as EventsRule

from taskrail.local.services.patching import Patch, Signature, is_patched, lock, original, patch, unpatch

__all__ = ["PATCHES", "install_eventbridge_sns_targets", "uninstall_eventbridge_sns_targets"]

# --------------------------------------------------------------------------------------------------
# Rules with SNS targets
# --------------------------------------------------------------------------------------------------


def _json_path(data: Any, path: str) -> Any:
    for part in path.removeprefix("$").strip(".").split("."):
        if part:
            data = data[part]
    return data


def _send_to_targets(self: EventsRule, original_event: Any, transform_input: bool = True) -> None:
    """moto delivers rule targets to logs, SQS, archives and buses but drops SNS topics; deliver those as
    EventBridge does: the event (or its ``InputPath``) as the message, published to the topic."""

    def is_sns(target: dict[str, Any]) -> bool:
        return target["Arn"].split(":")[2:3] == ["sns"]

    sns_targets = [t for t in self.targets if is_sns(t)]
    if len(sns_targets) < len(self.targets):
        # moto raises NotImplementedError for an SNS target: hand it the others only.
        with lock:
            every_target = self.targets
            self.targets = [t for t in every_target if not is_sns(t)]
            try:
                original(EventsRule, "send_to_targets")(self, original_event, transform_input)
            finally:
                self.targets = every_target
    if not sns_targets or not self.event_pattern.matches_event(original_event):
        return
    from moto.sns.models import sns_backends

    for target in sns_targets:
        parts = target["Arn"].split(":")
        payload = _json_path(original_event, target["InputPath"]) if target.get("InputPath") else original_event
        message = payload if isinstance(payload, str) else json.dumps(payload, default=str)
        sns_backends[parts[4]][parts[3]].publish(message=message, arn=target["Arn"])


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
    ),
    install=install_eventbridge_sns_targets,
    uninstall=uninstall_eventbridge_sns_targets,
)

PATCHES: Final = (SNS_TARGETS,)
