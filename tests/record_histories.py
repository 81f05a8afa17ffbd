"""Records the execution histories under ``tests/unit/fixtures/histories/`` that ``tests/unit/test_history.py`` reads.

    .venv/bin/python -m tests.record_histories          # all six (about 40 s)
    .venv/bin/python -m tests.record_histories happy    # one
    TASKRAIL_TEMPLATE=path/to/taskrail.template.json .venv/bin/python -m tests.record_histories   # another synth

Each history is one task run through ``asl/task_lifecycle.asl.json`` on the in-process platform
(``taskrail.local.inprocess``: moto's interpreter, the real handlers), saved as the ``events`` of
``GetExecutionHistory`` with timestamps as ISO-8601 text:

* ``happy``: ``text.stats``, every step once;
* ``retried``: ``diagnostic.flaky`` failing twice (``TransientTaskError``), then succeeding;
* ``timed_out_then_retried``: ProcessTask's first attempt times out (``States.Timeout``, in the transient Retry)
  and the second succeeds. ProcessTask's ``TimeoutSeconds`` is 960; the recorder lowers it to 1 in the recorded
  state machine (the only change), so that the recording takes a second instead of 16 minutes, and holds the
  first invocation until the history has been read (its answer is never read, as on AWS);
* ``rejected``: ``text.stats`` with invalid parameters (``top`` out of range): ValidateParameters raises
  ``ValidationFailed``, the Catch goes to MarkRejected and the Succeed state TaskRejected (the execution SUCCEEDED);
* ``failed``: ``diagnostic.poison``: ProcessTask fails permanently; nothing catches ``PermanentTaskError``, so the
  execution FAILED inside ProcessTask (the failure recorder, a workflow of its own, records the failure);
* ``cancelled``: ``diagnostic.sleep``, cancelled by its owner while ProcessTask runs and stopped as the cancel
  function does (``StopExecution``): ABORTED.

Recorded once and committed; re-record only when the workflow changes what a test reads (and say so).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from task_common.errors import TaskCancelled
from taskrail.local.inprocess import InvokeOutcome, Platform, in_process_platform, quiet

FIXTURES = Path(__file__).resolve().parent / "unit" / "fixtures" / "histories"
DEADLINE_SECONDS = 60  # a hang guard
TIMEOUT_SECONDS = 1  # ProcessTask's TimeoutSeconds in the timed-out recording (960 in the definition)
_RELEASE_AFTER_READING: list[threading.Event] = []  # invocations held until the history has been read


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting: {what}")
        time.sleep(0.02)


def _event_types(platform: Platform, arn: str) -> list[str]:
    return [e["type"] for e in platform.history(arn)]


def happy(platform: Platform) -> str:
    platform.store_task("h-happy", "text.stats", {"text": "the cat sat on the mat"})
    return platform.start("h-happy")


def retried(platform: Platform) -> str:
    platform.store_task("h-retried", "diagnostic.flaky", {"failures": 2})
    return platform.start("h-retried")


def rejected(platform: Platform) -> str:
    platform.store_task("h-rejected", "text.stats", {"text": "x", "top": 1000})
    return platform.start("h-rejected")


def failed(platform: Platform) -> str:
    platform.store_task("h-failed", "diagnostic.poison", {})
    return platform.start("h-failed")


def timed_out_then_retried(platform: Platform) -> str:
    sfn = platform.client("stepfunctions")
    definition = json.loads(sfn.describe_state_machine(stateMachineArn=platform.state_machine_arn)["definition"])
    definition["States"]["ProcessTask"]["TimeoutSeconds"] = TIMEOUT_SECONDS
    sfn.update_state_machine(stateMachineArn=platform.state_machine_arn, definition=json.dumps(definition))
    held = threading.Event()
    _RELEASE_AFTER_READING.append(held)
    process_calls = 0

    def first_process_attempt_hangs(name: str, payload: bytes, qualifier: str | None) -> Any:
        nonlocal process_calls
        if name.endswith("ProcessTaskFunction"):
            process_calls += 1
            if process_calls == 1:
                # Held until the history has been read: moto would record the late answer of a timed-out task
                # (a TaskSucceeded after the TaskTimedOut), which AWS does not report.
                held.wait(DEADLINE_SECONDS)
                return InvokeOutcome.success({"late": True})
        return platform.functions(name, payload, qualifier)

    platform.invoker = first_process_attempt_hangs
    platform.store_task("h-timeout", "text.stats", {"text": "slow at first"})
    return platform.start("h-timeout")


def cancelled(platform: Platform) -> str:
    released, returned = threading.Event(), threading.Event()

    def process_waits_for_the_cancel(name: str, payload: bytes, qualifier: str | None) -> Any:
        if not name.endswith("ProcessTaskFunction"):
            return platform.functions(name, payload, qualifier)
        released.wait(DEADLINE_SECONDS)
        try:
            return platform.functions(name, payload, qualifier)  # its progress report finds the task CANCELLED
        finally:
            returned.set()

    platform.invoker = process_waits_for_the_cancel
    platform.store_task("h-cancelled", "diagnostic.sleep", {"seconds": 0.2, "steps": 2})
    arn = platform.start("h-cancelled")
    _wait_for(lambda: "ProcessTask" in platform.states_entered(arn), "ProcessTask")
    platform.client("dynamodb").update_item(  # what DELETE /tasks/{id} writes
        TableName=platform.tasks_table,
        Key={"taskId": {"S": "h-cancelled"}},
        UpdateExpression="SET #s = :c",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":c": {"S": "CANCELLED"}},
    )
    sfn = platform.client("stepfunctions")
    sfn.stop_execution(executionArn=arn, error=TaskCancelled.__name__, cause="cancelled by the task's owner")
    _wait_for(lambda: sfn.describe_execution(executionArn=arn)["status"] == "ABORTED", "ABORTED")
    released.set()
    _wait_for(returned.is_set, "ProcessTask's function to return")
    _wait_for(lambda: "ExecutionAborted" in _event_types(platform, arn), "ExecutionAborted in the history")
    return arn


RECORDINGS: dict[str, Callable[[Platform], str]] = {
    "happy": happy,
    "retried": retried,
    "timed_out_then_retried": timed_out_then_retried,
    "rejected": rejected,
    "failed": failed,
    "cancelled": cancelled,
}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON: {value!r}")


def _template() -> tuple[dict[str, Any] | None, Path | None]:
    """TASKRAIL_TEMPLATE (a synthesized template, its assets beside it), as the tests read it; else the synth."""
    override = os.environ.get("TASKRAIL_TEMPLATE")
    if not override:
        return None, None
    return json.loads(Path(override).read_text()), Path(override).parent


def record(name: str) -> Path:
    template, cdk_out = _template()
    with (
        quiet(),
        in_process_platform(template, cdk_out=cdk_out, stack_name="taskrail" if template else None) as platform,
    ):
        arn = RECORDINGS[name](platform)
        execution = platform.wait(arn)
        events = platform.history(arn)
        while _RELEASE_AFTER_READING:
            _RELEASE_AFTER_READING.pop().set()
    path = FIXTURES / f"{name}.json"
    document = {"recordedWith": "python -m tests.record_histories", "status": execution["status"], "events": events}
    path.write_text(json.dumps(document, indent=1, default=_plain) + "\n")
    return path


def main(argv: list[str]) -> int:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for name in argv or list(RECORDINGS):
        path = record(name)
        print(f"{name}: {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
