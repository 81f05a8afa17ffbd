"""Helpers for the tests of taskrail.local.services: state machines run in moto's real interpreter."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from taskrail.local.services import lambda_

REGION = "us-east-1"
ROLE_ARN = "arn:aws:iam::123456789012:role/sfn-role"
DEADLINE_SECONDS = 10.0


class RecordingInvoker:
    """An invoker that plays a script of outcomes (or exceptions) and records each call."""

    def __init__(self, *script: lambda_.InvokeOutcome | Exception) -> None:
        self.script = list(script)
        self.calls: list[tuple[str, Any, str | None]] = []
        self._lock = threading.Lock()

    def __call__(self, function_name: str, payload: bytes, qualifier: str | None) -> lambda_.InvokeOutcome:
        with self._lock:
            self.calls.append((function_name, json.loads(payload), qualifier))
            step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, Exception):
            raise step
        return step


def transient(message: str = "try again") -> lambda_.InvokeOutcome:
    return lambda_.InvokeOutcome.unhandled("TransientTaskError", message, ["  File 'handler.py', line 1"])


def lambda_task(function_name: str, **extra: Any) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": function_name, "Payload.$": "$"},
        "ResultSelector": {"result.$": "$.Payload"},
        **extra,
    }


def asl(states: dict[str, Any], start_at: str) -> str:
    return json.dumps({"StartAt": start_at, "States": states})


def run(sfn: Any, definition: str, *, name: str = "sm", execution_input: Any = None) -> dict[str, Any]:
    arn = sfn.create_state_machine(name=name, definition=definition, roleArn=ROLE_ARN)["stateMachineArn"]
    execution_arn = sfn.start_execution(stateMachineArn=arn, name="run-1", input=json.dumps(execution_input or {}))[
        "executionArn"
    ]
    return wait_for(sfn, execution_arn)


def wait_for(sfn: Any, execution_arn: str) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.02)
    raise AssertionError(f"{execution_arn} still RUNNING after {DEADLINE_SECONDS}s")
