"""The deliveries AWS services make on a resource's behalf, checked by the local IAM before they happen.

An AWS service delivering to a resource (SNS to a subscribed queue, CloudWatch to an alarm's topic) acts as its
service principal on behalf of a source ARN, and the destination's resource policy (and its KMS key's) must
allow it. :func:`set_delivery_check` installs the check (the local IAM's
``taskrail.local.iam.enforce.LocalIam.service_delivery``); :func:`check` answers None (deliver) or IAM's denial
message. With no check installed, everything is delivered. A service acting with a role it assumes (EventBridge
starting a state machine with the target's ``RoleArn``) is checked as that role (:func:`set_role_check`).
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["DeliveryCheck", "RoleCheck", "check", "check_as_role", "set_delivery_check", "set_role_check"]

#: (service principal, action, resource ARN, source ARN) -> IAM's denial message, or None.
DeliveryCheck = Callable[[str, str, str, str], str | None]
_check: DeliveryCheck | None = None


def set_delivery_check(delivery_check: DeliveryCheck | None) -> None:
    global _check  # noqa: PLW0603 - moto's backends are process-wide, so is this
    _check = delivery_check


def check(principal: str, action: str, resource: str, source_arn: str) -> str | None:
    current = _check
    return None if current is None else current(principal, action, resource, source_arn)


#: (role ARN, action, resource ARN) -> IAM's denial message, or None: a call a service makes with a role it
#: assumes (an EventBridge target's RoleArn), evaluated as that role (LocalIam.role_delivery).
RoleCheck = Callable[[str, str, str], str | None]
_role_check: RoleCheck | None = None


def set_role_check(role_check: RoleCheck | None) -> None:
    global _role_check  # noqa: PLW0603 - as _check
    _role_check = role_check


def check_as_role(role_arn: str, action: str, resource: str) -> str | None:
    current = _role_check
    return None if current is None else current(role_arn, action, resource)
