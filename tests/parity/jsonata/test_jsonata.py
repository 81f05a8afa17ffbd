"""Step Functions parity: JSONata states (QueryLanguage JSONata: Output, Assign, $states, workflow variables).

Evidence: "Transforming data with JSONata in Step Functions"
(https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html: a string inside Output/Arguments is
evaluated as JSONata when surrounded by {% %}; $states.input is the state's input; Output replaces the state's
output), "Passing data between states with variables"
(https://docs.aws.amazon.com/step-functions/latest/dg/workflow-variables.html: Assign stores variables for later
states, referenced as $name; $states.input is the state's original input), and "Pass workflow state"
(https://docs.aws.amazon.com/step-functions/latest/dg/state-pass.html). The state machine runs on moto in server
mode with every patch of the local stack installed, over HTTP.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from taskrail.local.services import registry, server, stepfunctions, stepfunctions_jsonata
from taskrail.local.stack import LOCAL_CREDENTIALS

DEFINITION = {
    "QueryLanguage": "JSONata",
    "StartAt": "Total",
    "States": {
        "Total": {
            "Type": "Pass",
            "Assign": {"total": "{% $sum($states.input.items.price) %}", "customer": "{% $states.input.customer %}"},
            "Output": {"count": "{% $count($states.input.items) %}"},
            "Next": "Invoice",
        },
        "Invoice": {
            "Type": "Pass",
            "Output": {
                "invoice": "{% 'Invoice for ' & $uppercase($customer) %}",
                "total": "{% $total %}",
                "withTax": "{% $round($total * 1.1, 2) %}",
                "items": "{% $states.input.count %}",
                "static": "not an expression",
            },
            "End": True,
        },
    },
}
INPUT = {"customer": "ana", "items": [{"price": 10}, {"price": 2.5}, {"price": 7.5}]}
EXPECTED = {
    "invoice": "Invoice for ANA",
    "total": 20,
    "withTax": 22,
    "items": 3,
    "static": "not an expression",
}


@pytest.fixture(scope="module")
def sfn() -> Iterator[Any]:
    with registry.aws_semantics(), stepfunctions.time_scale(0), server.threaded_server("127.0.0.1", 0) as url:
        stepfunctions_jsonata.install_jsonata()  # registry.SERVICES installs it too (idempotent)
        try:
            yield boto3.Session(region_name="us-east-1", **LOCAL_CREDENTIALS).client("stepfunctions", endpoint_url=url)
        finally:
            stepfunctions_jsonata.uninstall_jsonata()


def test_the_local_stack_installs_the_jsonata_evaluator() -> None:
    print("registered:", stepfunctions_jsonata in registry.SERVICES)
    assert stepfunctions_jsonata in registry.SERVICES


def run(sfn: Any, definition: dict[str, Any], execution_input: Any) -> dict[str, Any]:
    machine = sfn.create_state_machine(
        name=f"jsonata-{uuid.uuid4().hex[:10]}",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/parity-sfn",
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, input=json.dumps(execution_input))["executionArn"]
    deadline = time.monotonic() + 15
    while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution did not end"
        time.sleep(0.02)
    return described  # type: ignore[no-any-return]


def test_a_jsonata_state_and_a_variable_give_the_documented_results(sfn: Any) -> None:
    described = run(sfn, DEFINITION, INPUT)

    print(described["status"], described.get("output"), described.get("error"), described.get("cause"))
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == EXPECTED


def test_a_failing_jsonata_expression_fails_the_execution_with_states_query_evaluation_error(sfn: Any) -> None:
    # "Transforming data with JSONata": an expression that cannot be evaluated raises States.QueryEvaluationError
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "Broken",
        "States": {"Broken": {"Type": "Pass", "Output": "{% $number('not a number') + $undefinedFn() %}", "End": True}},
    }

    described = run(sfn, definition, {})

    print(described["status"], described.get("error"), described.get("cause"))
    assert described["status"] == "FAILED"
    assert described.get("error") == "States.QueryEvaluationError"


def test_loading_the_jsonata_evaluator_keeps_the_processs_recursion_limit():
    """jsonata-python raises the process's recursion limit to 10,000 when imported; the local stack runs in one
    process with the API emulator, whose JSON parser must keep refusing what the default limit refuses."""
    import subprocess
    import sys

    probe = (
        "import sys; before = sys.getrecursionlimit(); "
        "import taskrail.local.services.stepfunctions_jsonata; "
        "print(before, sys.getrecursionlimit())"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == out[1], out
