"""Runs asl/task_lifecycle.asl.json in moto's interpreter with the template's resources provisioned locally: the
in-process platform (``taskrail.local.inprocess``), with the workflow tests' name for it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from taskrail.local.inprocess import Platform, in_process_platform
from tests.workflows.outbox import deliver_task_changes


class Lifecycle(Platform):
    """Given/When/Then helpers over one provisioned, in-process platform (no HTTP, no subprocesses)."""

    def drain(self, queue_construct: str) -> list[dict[str, Any]]:
        """Up to 10 messages of the queue, their bodies parsed, after the task-changes pipe delivered what the
        Tasks stream holds (outcome events and DLQ messages leave from the table: tests/workflows/outbox.py)."""
        deliver_task_changes(self)
        return self.drain_queue(queue_construct)


@pytest.fixture
def lifecycle(template: dict[str, Any], template_path: Path) -> Iterator[Lifecycle]:
    with in_process_platform(
        template, cdk_out=template_path.parent, stack_name="taskrail", platform_class=Lifecycle
    ) as platform:
        yield cast(Lifecycle, platform)


def describe_failure(lifecycle: Lifecycle, execution_arn: str) -> str:
    """The first failure in an execution's history, for assertion messages."""
    return lifecycle.read_history(execution_arn).first_failure
