"""taskrail.local.services.lambda_: every Invoke reaches the invoker, with AWS's errors and Qualifier."""

from __future__ import annotations

import json
from typing import Any

import pytest

from taskrail.local.services import lambda_
from tests.local.services.harness import (
    RecordingInvoker,
    asl,
    lambda_task,
    run,
    transient,
)


def test_lambda_invoke_task_reaches_invoker(aws: dict[str, Any]) -> None:
    invoker = RecordingInvoker(lambda_.InvokeOutcome.success({"status": "done"}))
    with lambda_.lambda_invoker(invoker):
        result = run(
            aws["stepfunctions"],
            asl({"Work": lambda_task("worker", End=True)}, "Work"),
            execution_input={"taskId": "t-1"},
        )
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"]) == {"result": {"status": "done"}}
    assert invoker.calls == [("worker", {"taskId": "t-1"}, None)]


def test_handler_error_is_catchable_by_its_type(aws: dict[str, Any]) -> None:
    states = {
        "Work": lambda_task(
            "worker",
            Catch=[{"ErrorEquals": ["TransientTaskError"], "ResultPath": "$.error", "Next": "Caught"}],
            End=True,
        ),
        "Caught": {"Type": "Pass", "End": True},
    }
    with lambda_.lambda_invoker(RecordingInvoker(transient("db busy"))):
        result = run(aws["stepfunctions"], asl(states, "Work"))
    assert result["status"] == "SUCCEEDED", result
    error = json.loads(result["output"])["error"]
    assert error["Error"] == "TransientTaskError"
    assert json.loads(error["Cause"])["errorMessage"] == "db busy"


def test_uncaught_handler_error_fails_execution_with_its_type(aws: dict[str, Any]) -> None:
    with lambda_.lambda_invoker(RecordingInvoker(lambda_.InvokeOutcome.unhandled("ValueError", "bad input"))):
        result = run(aws["stepfunctions"], asl({"Work": lambda_task("worker", End=True)}, "Work"))
    assert result["status"] == "FAILED"
    assert result["error"] == "ValueError"


@pytest.mark.parametrize(
    ("exception", "expected_error"),
    [
        (lambda_.LambdaThrottled(), "Lambda.TooManyRequestsException"),
        (lambda_.LambdaServiceError("boom"), "Lambda.ServiceException"),
    ],
)
def test_service_errors_surface_as_lambda_errors(
    aws: dict[str, Any], exception: Exception, expected_error: str
) -> None:
    states = {
        "Work": lambda_task("worker", Catch=[{"ErrorEquals": [expected_error], "Next": "Caught"}], End=True),
        "Caught": {"Type": "Pass", "End": True},
    }
    with lambda_.lambda_invoker(RecordingInvoker(exception)):
        result = run(aws["stepfunctions"], asl(states, "Work"))
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"])["Error"] == expected_error


def test_unknown_function_is_resource_not_found(aws: dict[str, Any]) -> None:
    invoker = RecordingInvoker(lambda_.InvokeOutcome.success({}))
    with lambda_.lambda_invoker(invoker):
        result = run(aws["stepfunctions"], asl({"Work": lambda_task("missing", End=True)}, "Work"))
    assert result["status"] == "FAILED"
    assert result["error"] == "Lambda.ResourceNotFoundException"
    assert invoker.calls == []


def test_direct_invoke_passes_qualifier_and_function_error_header(aws: dict[str, Any]) -> None:
    invoker = RecordingInvoker(transient())
    with lambda_.lambda_invoker(invoker):
        response = aws["lambda"].invoke(
            FunctionName="arn:aws:lambda:us-east-1:123456789012:function:worker:$LATEST", Payload=b'{"a": 1}'
        )
    assert response["FunctionError"] == "Unhandled"
    assert json.loads(response["Payload"].read())["errorType"] == "TransientTaskError"
    assert invoker.calls == [("worker", {"a": 1}, "$LATEST")]


def test_separate_qualifier_parameter_reaches_the_function(aws: dict[str, Any]) -> None:
    """AWS's Invoke takes the version or alias as ``?Qualifier=`` (botocore's Lambda model: ``location:
    querystring, locationName: Qualifier``; "Specify a version or alias to invoke a published version of the
    function"). moto 5.2.5 reads ``qualifier`` and loses it; the hook hands it on."""
    invoker = RecordingInvoker(lambda_.InvokeOutcome.success({}))
    with lambda_.lambda_invoker(invoker):
        aws["lambda"].invoke(FunctionName="worker", Qualifier="$LATEST", Payload=b"{}")
        aws["lambda"].invoke(FunctionName="worker", Payload=b"{}")
    assert invoker.calls == [("worker", {}, "$LATEST"), ("worker", {}, None)]


def test_qualifier_hook_is_removed_with_the_invoker() -> None:
    with lambda_.lambda_invoker(RecordingInvoker(lambda_.InvokeOutcome.success({}))):
        assert lambda_._lambda_responses.LambdaResponse.invoke is lambda_._invoke_with_qualifier
    assert lambda_._lambda_responses.LambdaResponse.invoke is not lambda_._invoke_with_qualifier
