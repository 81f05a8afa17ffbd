"""A state machine whose role may not invoke a function: on AWS the execution sees ``Lambda.AWSLambdaException``
with Lambda's 403 ``AccessDeniedException`` in the cause, as two AWS executions quote it:

    "error": "Lambda.AWSLambdaException",
    "cause": "User: arn:aws:sts::xxxx:assumed-role/...StateMachineExecutionRol.../... is not authorized to perform:
    lambda:InvokeFunction on resource: arn:aws:lambda:us-east-1:xxxx:function:... because no identity-based policy
    allows the lambda:InvokeFunction action (Service: AWSLambda; Status Code: 403; Error Code:
    AccessDeniedException; Request ID: ...; Proxy: null)"

(awslabs/aws-deployment-framework#460, 2022; the same name in aws-samples/lambda-refarch-imagerecognition#19,
2019). moto's interpreter named it ``Lambda.AccessDeniedException``, which no Retry of the workflow matches; the
workflow's ``ValidateParameters`` retries ``Lambda.AWSLambdaException`` (the "Handle Lambda service exceptions"
policy). The other service errors keep their own names (``Lambda.TooManyRequestsException``,
``Lambda.ServiceException``, as that page names them).
"""

from __future__ import annotations

from typing import Any

import pytest

from taskrail.local.services.lambda_ import (
    InvokeOutcome,
    LambdaInvokeError,
    LambdaServiceError,
    LambdaThrottled,
    lambda_invoker,
)
from tests.workflows.conftest import Lifecycle

DENIAL = (
    "User: arn:aws:sts::123456789012:assumed-role/taskrail-WorkflowTaskLifecycleStateMachineRole/"
    "TaskLifecycleStateMachine is not authorized to perform: lambda:InvokeFunction on resource: "
    "arn:aws:lambda:us-east-1:123456789012:function:taskrail-ValidateTaskFunction:live because no identity-based "
    "policy allows the lambda:InvokeFunction action"
)


class LambdaAccessDenied(LambdaInvokeError):
    aws_code = "AccessDeniedException"
    status = 403
    default_message = DENIAL


def validate_fails_once(lifecycle: Lifecycle, error: type[LambdaInvokeError]) -> Any:
    calls: list[str] = []

    def invoke(name: str, payload: bytes, qualifier: str | None) -> InvokeOutcome:
        if name.endswith("ValidateTaskFunction") and not calls:
            calls.append(name)
            raise error()
        return lifecycle.functions(name, payload, qualifier)

    return invoke


@pytest.mark.parametrize(
    ("error", "name", "status"),
    [
        (LambdaAccessDenied, "Lambda.AWSLambdaException", 403),
        (LambdaThrottled, "Lambda.TooManyRequestsException", 429),
        (LambdaServiceError, "Lambda.ServiceException", 500),
    ],
    ids=["access-denied", "throttled", "service-error"],
)
def test_a_lambda_service_error_has_its_aws_name_and_is_retried(
    lifecycle: Lifecycle, error: type[LambdaInvokeError], name: str, status: int
) -> None:
    # Given ValidateParameters' first invoke is refused by Lambda itself (not the handler)
    with lambda_invoker(validate_fails_once(lifecycle, error)):
        # When the task runs
        execution = lifecycle.run(f"t-{error.aws_code}", "text.stats", {"text": "a b"})

    # Then the failed try has AWS's name, the cause keeps Lambda's code, and the Retry matched it
    failures = [
        e["taskFailedEventDetails"] for e in lifecycle.history(execution["executionArn"]) if e["type"] == "TaskFailed"
    ]
    print(f"{error.aws_code}: {[(f['error'], f['cause'][-160:]) for f in failures]} -> {execution['status']}")
    assert [f["error"] for f in failures] == [name]
    assert f"(Service: AWSLambda; Status Code: {status}; Error Code: {error.aws_code};" in failures[0]["cause"]
    assert failures[0]["cause"].startswith(error.default_message)
    assert execution["status"] == "SUCCEEDED"
