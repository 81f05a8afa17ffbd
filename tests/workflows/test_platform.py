"""The in-process platform itself (taskrail/local/inprocess.py): it names executions one way, waits for running
executions before it leaves moto's mock, and gives moto back its own code on exit."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.stepfunctions.parser.backend.execution import Execution

from taskrail.local.inprocess import START_SUFFIX, in_process_platform
from taskrail.local.services.patching import is_patched
from tests.workflows.conftest import Lifecycle


def platform(template: dict[str, Any], template_path: Path) -> Any:
    return in_process_platform(template, cdk_out=template_path.parent, stack_name="taskrail")


def test_each_start_of_a_task_is_named_task_id_p_and_its_count(lifecycle: Lifecycle):
    lifecycle.store_task("t-named", "text.stats", {"text": "a b"})

    arns = [lifecycle.wait(lifecycle.start("t-named"))["executionArn"] for _ in range(2)]

    assert [arn.rsplit(":", 1)[-1] for arn in arns] == [f"t-named-{START_SUFFIX}1", f"t-named-{START_SUFFIX}2"]


def test_leaving_the_platform_waits_for_the_executions_still_running(template: dict[str, Any], template_path: Path):
    finished = threading.Event()
    with platform(template, template_path) as running:

        def process_then_note(name: str, payload: bytes, qualifier: str | None) -> Any:
            outcome = running.functions(name, payload, qualifier)
            if name.endswith("ProcessTaskFunction"):
                finished.set()
            return outcome

        running.invoker = process_then_note
        running.store_task("t-left-running", "diagnostic.sleep", {"seconds": 0.3, "steps": 3})
        running.start("t-left-running")  # and the block ends at once, in its first states or its 0.3 s ProcessTask

    assert finished.is_set()


def test_drain_stops_what_still_runs_after_its_timeout(lifecycle: Lifecycle):
    inside, release = threading.Event(), threading.Event()

    def process_waits(name: str, payload: bytes, qualifier: str | None) -> Any:
        if name.endswith("ProcessTaskFunction"):
            inside.set()
            release.wait(30)
        return lifecycle.functions(name, payload, qualifier)

    lifecycle.invoker = process_waits
    lifecycle.store_task("t-straggler", "text.stats", {"text": "a b"})
    arn = lifecycle.start("t-straggler")
    assert inside.wait(30), "ProcessTask never started"

    stopped = lifecycle.drain_executions(timeout=0)
    release.set()

    assert stopped == [arn]
    assert lifecycle.wait(arn)["status"] == "ABORTED"
    assert lifecycle.running() == []


def test_leaving_the_platform_gives_moto_back_its_own_code(template: dict[str, Any], template_path: Path):
    with platform(template, template_path):
        assert is_patched(Execution, "stop")  # the AWS StopExecution semantics
        assert is_patched(LambdaSimpleBackend, "invoke")  # the real handlers

    assert not is_patched(Execution, "stop")
    assert not is_patched(LambdaSimpleBackend, "invoke")
