"""A Task that runs past its TimeoutSeconds fails with States.Timeout, and a result that arrives afterwards is
dropped: the state does not succeed and the execution does not go on with it.

Evidence: [TIMEOUT] "Task workflow state", Step Functions Developer Guide
(https://docs.aws.amazon.com/step-functions/latest/dg/state-task.html): "TimeoutSeconds (Optional) If the task runs
longer than the specified seconds, this state fails with a States.Timeout error name"; "Handling errors in Step
Functions workflows" (concepts-error-handling.html): States.Timeout "A Task state either ran longer than the
TimeoutSeconds value, or failed to send a heartbeat for a period longer than the HeartbeatSeconds value"; a caught
States.Timeout goes to the Catch's Next state.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.stepfunctions.parser.utils import TMP_THREADS

from taskrail.local.services import lambda_
from tests.parity.stepfunctions.cases import history, lambda_task, machine, start, wait_until


def test_a_result_after_the_timeout_does_not_succeed_the_state(aws: dict[str, Any]) -> None:
    sfn = aws["stepfunctions"]
    timed_out = threading.Event()
    answered = threading.Event()

    def slow(name: str, payload: bytes, qualifier: Any) -> lambda_.InvokeOutcome:
        timed_out.wait(timeout=30)  # the worker is still busy when the state times out
        answered.set()
        return lambda_.InvokeOutcome.success({"late": True})

    lambda_.install_lambda_invoker(slow)
    states = {
        "Work": lambda_task(
            "worker", TimeoutSeconds=1, Catch=[{"ErrorEquals": ["States.Timeout"], "Next": "TimedOut"}], Next="After"
        ),
        "After": {"Type": "Pass", "End": True},
        "TimedOut": {"Type": "Pass", "Result": "timed out", "End": True},
    }
    already = len(TMP_THREADS)
    arn = start(sfn, machine(sfn, states, "Work"))
    wait_until(
        sfn, arn, lambda d: any(e["type"] == "TaskTimedOut" for e in history(sfn, arn)) or d["status"] != "RUNNING"
    )
    timed_out.set()
    done = wait_until(sfn, arn)
    assert answered.wait(timeout=15)
    for worker in TMP_THREADS[already:]:  # the timed-out task's thread has handed its late result to moto
        worker.join(timeout=15)
        assert not worker.is_alive()
    events = history(sfn, arn)
    types = [e["type"] for e in events]
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
    print(f"PARITY stepfunctions late result after TimeoutSeconds [TIMEOUT]: {done['status']} {entered} {types}")
    assert done["status"] == "SUCCEEDED"
    assert entered == ["Work", "TimedOut"]
    assert "TaskTimedOut" in types
    assert "TaskSucceeded" not in types
