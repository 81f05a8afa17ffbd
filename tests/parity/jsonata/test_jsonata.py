"""Step Functions parity: JSONata states (QueryLanguage JSONata: Output, Assign, $states, workflow variables).

Evidence: "Transforming data with JSONata in Step Functions"
(https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html: a string inside Output/Arguments is
evaluated as JSONata when surrounded by {% %}; $states.input is the state's input; Output replaces the state's
output), "Passing data between states with variables"
(https://docs.aws.amazon.com/step-functions/latest/dg/workflow-variables.html: Assign stores variables for later
states, referenced as $name; $states.input is the state's original input), and "Pass workflow state"
(https://docs.aws.amazon.com/step-functions/latest/dg/state-pass.html). The state machine runs on moto in server
mode with every patch of the local stack installed, over HTTP.

Documented results asserted as AWS prints them:
- [ARGS] "Transforming data with JSONata", the JSONPath-to-JSONata conversion sample: a Task's ``Arguments``
  ``{"static": "Hello", "title": "{% $states.input.title %}", "name": "{% $customerName %}", "not-evaluated":
  "$customerName"}``, "Given the input ``{ "title" : "Doctor" }`` and variable customerName assigned to "María"",
  produce ``{"static": "Hello", "title": "Doctor", "name": "María", "not-evaluated": "$customerName"}``.
- [SFN-FUNCTIONS] same page, "JSONata functions provided by Step Functions": ``$partition([1,2,3,4,5,6,7,8,9], 3)``
  gives ``[[1,2,3],[4,5,6],[7,8,9]]``; ``$range(0, 10, 2)`` gives ``[0,2,4,6,8,10]``; ``$hash(value, algorithm)``
  (MD5, SHA-1, SHA-256, SHA-384, SHA-512), the JSONata form of ``States.Hash``, whose documented example
  ("Intrinsic functions", intrinsic-functions.html) is ``States.Hash("input data", "SHA-1")`` =
  ``aaff4a450a104cd177d28d18d74485e8cae074b7``; ``$uuid()`` a version 4 UUID; ``$random(seed)`` accepts a seed
  (the same seed, the same number), unlike JSONata's own ``$random``.
- [OUTPUT] "Transforming data with JSONata": a Task's result is ``$states.result`` in ``Output``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from taskrail.local.services import lambda_, registry, server, stepfunctions, stepfunctions_jsonata
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
            session = boto3.Session(region_name="us-east-1", **LOCAL_CREDENTIALS)
            lambda_.create_stub_function(
                session.client("lambda", endpoint_url=url), session.client("iam", endpoint_url=url), "worker"
            )
            yield session.client("stepfunctions", endpoint_url=url)
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


def test_a_jsonata_state_and_a_variable_compute_their_expressions(sfn: Any) -> None:
    # the expected values follow JSONata's function definitions ($sum, $count, $uppercase, $round), not a page
    # of AWS's: the documented examples are the cases below
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


def test_task_arguments_and_a_variable_give_the_documented_result(sfn: Any) -> None:
    """[ARGS] the documented conversion sample, as the Lambda function receives it; [OUTPUT] $states.result."""
    received: list[Any] = []

    def worker(name: str, payload: bytes, qualifier: str | None) -> lambda_.InvokeOutcome:
        received.append(json.loads(payload))
        return lambda_.InvokeOutcome.success({"echo": json.loads(payload)})

    documented_arguments = {
        "static": "Hello",
        "title": "{% $states.input.title %}",
        "name": "{% $customerName %}",
        "not-evaluated": "$customerName",
    }
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "Name",
        "States": {
            "Name": {"Type": "Pass", "Assign": {"customerName": "María"}, "Next": "Call"},
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Arguments": {"FunctionName": "worker", "Payload": documented_arguments},
                "Output": "{% $states.result.Payload.echo %}",
                "End": True,
            },
        },
    }
    documented_result = {"static": "Hello", "title": "Doctor", "name": "María", "not-evaluated": "$customerName"}
    lambda_.install_lambda_invoker(worker)
    try:
        described = run(sfn, definition, {"title": "Doctor"})
    finally:
        lambda_.uninstall_lambda_invoker()

    print("Arguments:", described["status"], received, described.get("output"), described.get("cause"))
    assert described["status"] == "SUCCEEDED", described
    assert received == [documented_result]
    assert json.loads(described["output"]) == documented_result


def _output_of(sfn: Any, expression: str) -> Any:
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "P",
        # inside an object: moto answers a bare string output unquoted (not JSON), see docs/LOCAL-FIDELITY.md
        "States": {"P": {"Type": "Pass", "Output": {"value": "{% " + expression + " %}"}, "End": True}},
    }
    described = run(sfn, definition, {})
    print(expression, described["status"], described.get("output"), described.get("error"))
    assert described["status"] == "SUCCEEDED", described
    return json.loads(described["output"])["value"]


@pytest.mark.parametrize(
    ("expression", "documented"),
    [
        ("$partition([1, 2, 3, 4, 5, 6, 7, 8, 9], 3)", [[1, 2, 3], [4, 5, 6], [7, 8, 9]]),
        ("$range(0, 10, 2)", [0, 2, 4, 6, 8, 10]),
        ("$hash('input data', 'SHA-1')", "aaff4a450a104cd177d28d18d74485e8cae074b7"),
    ],
    ids=["partition", "range", "hash"],
)
def test_the_functions_step_functions_provides_give_the_documented_results(
    sfn: Any, expression: str, documented: Any
) -> None:
    """[SFN-FUNCTIONS] (moto's $hash answered the text "Function $hash is currently not supported")."""
    assert _output_of(sfn, expression) == documented


def test_uuid_is_a_version_4_uuid_and_random_takes_a_seed(sfn: Any) -> None:
    """[SFN-FUNCTIONS] (moto's $uuid answered "Function $uuid is currently not supported"; $random(seed) failed)."""
    generated = _output_of(sfn, "[$uuid(), $uuid()]")
    seeded = _output_of(sfn, "[$random(7), $random(7), $random()]")
    assert all(uuid.UUID(value).version == 4 for value in generated) and generated[0] != generated[1]
    assert seeded[0] == seeded[1] and all(0 <= number < 1 for number in seeded)
