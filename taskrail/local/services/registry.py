"""Every moto patch of the local stack, installed, uninstalled and checked in one place (moto 5.2.5 exactly).

``SERVICES`` lists the service modules; each holds its ``PATCHES``. Emulating one more AWS service with a moto
patch is a module with a ``PATCHES`` tuple and one line here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Final

import moto

from taskrail.local.services import (
    cloudwatch,
    dynamodb,
    dynamodb_return_values,
    dynamodbstreams,
    events,
    lambda_,
    logs,
    logs_subscriptions,
    persistence,
    s3,
    server,
    sns,
    sns_delivery,
    sqs,
    stepfunctions,
    stepfunctions_api,
    stepfunctions_errors,
    stepfunctions_events,
    stepfunctions_express,
    stepfunctions_jsonata,
    stepfunctions_redrive,
)
from taskrail.local.services.patching import Patch

__all__ = [
    "SERVICES",
    "SUPPORTED_MOTO_VERSION",
    "assert_supported_moto",
    "aws_semantics",
    "install_aws_semantics",
    "patches",
    "uninstall_all",
    "uninstall_aws_semantics",
]

SUPPORTED_MOTO_VERSION: Final = "5.2.5"

SERVICES: Final[tuple[ModuleType, ...]] = (
    server,
    lambda_,
    stepfunctions,
    stepfunctions_api,
    stepfunctions_errors,
    stepfunctions_redrive,
    stepfunctions_events,
    stepfunctions_jsonata,
    stepfunctions_express,
    dynamodb,
    dynamodb_return_values,
    dynamodbstreams,
    events,
    sqs,
    sns,
    sns_delivery,
    cloudwatch,
    logs,
    logs_subscriptions,
    s3,
    persistence,
)


def patches() -> list[Patch]:
    return [p for service in SERVICES for p in service.PATCHES]


def assert_supported_moto() -> None:
    """Raise RuntimeError naming every moto symbol that is not what the patches were written against."""
    problems: list[str] = []
    if moto.__version__ != SUPPORTED_MOTO_VERSION:
        problems.append(f"moto.__version__: {moto.__version__!r}, expected {SUPPORTED_MOTO_VERSION!r}")
    problems += [problem for p in patches() for problem in p.problems()]
    if problems:
        raise RuntimeError(
            "taskrail.local.services does not support this moto installation; re-check these internals:\n  "
            + "\n  ".join(problems)
        )


def install_aws_semantics() -> None:
    """Every patch each local run needs to behave as on AWS (and fast): those with an ``install``."""
    for p in patches():
        if p.install is not None:
            p.install()


def uninstall_aws_semantics() -> None:
    for p in reversed(patches()):
        if p.install is not None and p.uninstall is not None:
            p.uninstall()


def uninstall_all() -> None:
    """moto's own code back everywhere: also the patches installed with an argument (invoker, time scale, ...)."""
    for p in reversed(patches()):
        if p.uninstall is not None:
            p.uninstall()


@contextmanager
def aws_semantics() -> Iterator[None]:
    """:func:`install_aws_semantics` for the block; on exit every patch is uninstalled (:func:`uninstall_all`)."""
    install_aws_semantics()
    try:
        yield
    finally:
        uninstall_all()
