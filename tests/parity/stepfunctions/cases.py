"""Shared helpers of the Step Functions parity cases: a state machine per case, polling with a deadline."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

ROLE_ARN = "arn:aws:iam::123456789012:role/parity-sfn"
DEADLINE_SECONDS = 15.0


def machine(sfn: Any, states: dict[str, Any], start_at: str, **extra: Any) -> str:
    definition = json.dumps({"StartAt": start_at, "States": states, **extra})
    name = f"parity-{uuid.uuid4().hex[:12]}"
    return str(sfn.create_state_machine(name=name, definition=definition, roleArn=ROLE_ARN)["stateMachineArn"])


def start(sfn: Any, machine_arn: str, execution_input: Any = None, name: str = "run-1") -> str:
    return str(
        sfn.start_execution(stateMachineArn=machine_arn, name=name, input=json.dumps(execution_input or {}))[
            "executionArn"
        ]
    )


def wait_until(sfn: Any, execution_arn: str, predicate: Any = lambda d: d["status"] != "RUNNING") -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=execution_arn)
        if predicate(described):
            return described  # type: ignore[no-any-return]
        time.sleep(0.02)
    raise AssertionError(f"{execution_arn}: condition not met after {DEADLINE_SECONDS}s")


def history(sfn: Any, execution_arn: str, **options: Any) -> list[dict[str, Any]]:
    return sfn.get_execution_history(executionArn=execution_arn, **options)["events"]  # type: ignore[no-any-return]


def lambda_task(function_name: str, **extra: Any) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": function_name, "Payload.$": "$"},
        "ResultSelector": {"result.$": "$.Payload"},
        **extra,
    }
