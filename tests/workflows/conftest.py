"""Runs asl/task_lifecycle.asl.json in moto's interpreter with the template's resources provisioned locally: the
in-process platform (``taskrail.local.inprocess``), with the workflow tests' name for it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from task_common.contract import UNSUCCESSFUL_EXECUTION_STATUSES
from taskrail.local.inprocess import Platform, in_process_platform
from tests.workflows.outbox import deliver_task_changes
from workflows.lifecycle_type import LIFECYCLE_TYPES, STANDARD

RECORDER = "FailureRecorderStateMachine"


class Lifecycle(Platform):
    """Given/When/Then helpers over one provisioned, in-process platform (no HTTP, no subprocesses)."""

    def settle(self, timeout: float = 60) -> None:
        """Until no execution of any of the template's state machines runs (the failure recorder starts from the
        lifecycle's status-change event, after the lifecycle ended), then the task-changes pipe's deliveries."""
        deadline = time.monotonic() + timeout
        while self.running() or self._unrecorded():
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"still running after {timeout} s: {self.running()}; unrecorded: {self._unrecorded()}"
                )
            time.sleep(0.02)
        deliver_task_changes(self)

    def _unrecorded(self) -> list[str]:
        """Lifecycle executions that ended unsuccessfully and whose status-change event has not started the
        recorder yet (the event is put just after the execution's status changed). An EXPRESS lifecycle has no
        recorder: it records its failures itself."""
        if RECORDER not in self.resources.state_machines:
            return []
        sfn = self.client("stepfunctions")
        ended = [
            sfn.describe_execution(executionArn=e["executionArn"])
            for e in sfn.list_executions(stateMachineArn=self.state_machine_arn)["executions"]
            if e["status"] in UNSUCCESSFUL_EXECUTION_STATUSES
        ]
        recorded = set()
        for run in self.recorder_runs():
            detail = json.loads(run["input"])["detail"]
            recorded.add((detail["executionArn"], detail["status"], detail["redriveCount"]))
        return [
            e["executionArn"]
            for e in ended
            if (e["executionArn"], e["status"], e.get("redriveCount", 0)) not in recorded
        ]

    def recorder_runs(self) -> list[dict[str, Any]]:
        """The failure recorder's executions, each described (its input is the status-change event)."""
        sfn = self.client("stepfunctions")
        arn = self.resources.state_machines.get(RECORDER)
        if arn is None:
            return []
        runs = sfn.list_executions(stateMachineArn=arn)["executions"]
        return [sfn.describe_execution(executionArn=run["executionArn"]) for run in runs]

    def drain(self, queue_construct: str) -> list[dict[str, Any]]:
        """Up to 10 messages of the queue, their bodies parsed, after every execution ended (a failure's recorder
        too) and the task-changes pipe delivered what the Tasks stream holds (outcome events and DLQ messages leave
        from the table: tests/workflows/outbox.py)."""
        self.settle()
        return self.drain_queue(queue_construct)


@pytest.fixture
def lifecycle(template: dict[str, Any], template_path: Path) -> Iterator[Lifecycle]:
    with in_process_platform(
        template, cdk_out=template_path.parent, stack_name="taskrail", platform_class=Lifecycle
    ) as platform:
        yield cast(Lifecycle, platform)


@pytest.fixture(params=LIFECYCLE_TYPES)
def typed_lifecycle(request: pytest.FixtureRequest) -> Iterator[Lifecycle]:
    """The platform of a STANDARD and of an EXPRESS lifecycle (`-c lifecycleType=EXPRESS`), each from its template."""
    path: Path = request.getfixturevalue("template_path" if request.param == STANDARD else "express_template_path")
    template = json.loads(path.read_text())
    with in_process_platform(
        template, cdk_out=path.parent, stack_name="taskrail", platform_class=Lifecycle
    ) as platform:
        yield cast(Lifecycle, platform)


def describe_failure(lifecycle: Lifecycle, execution_arn: str) -> str:
    """The first failure in an execution's history, for assertion messages."""
    return lifecycle.read_history(execution_arn).first_failure
