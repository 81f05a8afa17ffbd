"""taskrail.local.services.stepfunctions_redrive: a redrive of an execution stopped while a state still blocks.

AWS records ``ExecutionAborted`` when StopExecution stops the execution and ``ExecutionTimedOut`` when the
execution's ``TimeoutSeconds`` elapse ("StopExecution", "GetExecutionHistory" and "HistoryEvent", AWS Step
Functions API Reference: the stopped execution's history ends with that event), and a redrive then appends
``ExecutionRedriven`` to the same history ("RedriveExecution", API Reference; "Redriving executions", Developer
Guide). moto writes the stop event only when the blocked state returns, so ``_close_first_run`` writes it when a
redrive comes first. Here the Lambda invocation still blocks when the redrive is made: the history must read
stopped event, then ``ExecutionRedriven``, then the redriven run's end, each once.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from taskrail.local.services import lambda_, registry
from tests.local.services.harness import ROLE_ARN, lambda_task

DEADLINE_SECONDS = 15.0


class BlockingWorker:
    """The Lambda function "worker": every invocation waits until released, then succeeds."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, function_name: str, payload: bytes, qualifier: str | None) -> lambda_.InvokeOutcome:
        with self._lock:
            self.calls += 1
        self.release.wait(timeout=DEADLINE_SECONDS)
        return lambda_.InvokeOutcome.success({"done": True})


@pytest.fixture
def sfn(aws: dict[str, Any]) -> Iterator[Any]:
    """moto with every patch of the local stack (StopExecution stops at once, as on AWS; RedriveExecution)."""
    with registry.aws_semantics():
        yield aws["stepfunctions"]


def until(sfn: Any, arn: str, predicate: Any) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=arn)
        if predicate(described):
            return described  # type: ignore[no-any-return]
        time.sleep(0.02)
    raise AssertionError(f"{arn}: condition not met after {DEADLINE_SECONDS}s")


def event_types(sfn: Any, arn: str) -> list[str]:
    return [e["type"] for e in sfn.get_execution_history(executionArn=arn)["events"]]


@pytest.mark.parametrize(
    ("status", "closing_event", "timeout_seconds"),
    [("ABORTED", "ExecutionAborted", None), ("TIMED_OUT", "ExecutionTimedOut", 1)],
)
def test_a_redrive_while_the_stopped_runs_state_still_blocks_records_the_stop_first(
    sfn: Any, status: str, closing_event: str, timeout_seconds: int | None
) -> None:
    worker = BlockingWorker()
    lambda_.install_lambda_invoker(worker)
    extra = {} if timeout_seconds is None else {"TimeoutSeconds": timeout_seconds}
    definition = json.dumps({"StartAt": "Work", "States": {"Work": lambda_task("worker", End=True)}, **extra})
    machine = sfn.create_state_machine(name="blocking", definition=definition, roleArn=ROLE_ARN)["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, name="run-1", input="{}")["executionArn"]
    until(sfn, arn, lambda d: worker.calls == 1)
    if status == "ABORTED":
        sfn.stop_execution(executionArn=arn)
    stopped = until(sfn, arn, lambda d: d["status"] != "RUNNING")
    assert stopped["status"] == status, stopped
    assert worker.calls == 1 and not worker.release.is_set()  # the first run's invocation has not returned

    sfn.redrive_execution(executionArn=arn)
    worker.release.set()
    done = until(sfn, arn, lambda d: d["status"] != "RUNNING")
    types = event_types(sfn, arn)
    print(status, "redriven while blocked:", done["status"], done["redriveCount"], types)

    assert (done["status"], done["redriveCount"]) == ("SUCCEEDED", 1), done
    assert types.count(closing_event) == 1, types
    assert types.count("ExecutionRedriven") == 1 and types.count("ExecutionSucceeded") == 1, types
    assert types.index(closing_event) < types.index("ExecutionRedriven") < types.index("ExecutionSucceeded"), types
