"""The error names of AWS SDK integrations, which a Retry or Catch has to name exactly.

Evidence: [SDK] "Learning to use AWS service SDK integrations in Step Functions", Step Functions Developer Guide
(https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html): "If an AWS SDK integration
encounters an error, the resulting Error field is composed of the service name and error name, separated by a
period: ServiceName.ErrorName. Both the service name and error name are in Pascal case"; the S3 error
``BucketAlreadyExists`` is caught as ``S3.BucketAlreadyExistsException`` ("always add the Exception suffix").
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.parity.stepfunctions.cases import history, machine, start, wait_until

CAUGHT = {"Caught": {"Type": "Pass", "Result": "caught", "End": True}}

SDK_CASES = [
    # (case, resource, parameters, the error AWS names)
    (
        "s3 PutObject to a missing bucket",
        "arn:aws:states:::aws-sdk:s3:putObject",
        {"Bucket": "parity-no-such-bucket", "Key": "k", "Body": "x"},
        "S3.NoSuchBucketException",
    ),
    (
        "dynamodb GetItem on a missing table",
        "arn:aws:states:::aws-sdk:dynamodb:getItem",
        {"TableName": "parity-no-such-table", "Key": {"id": {"S": "1"}}},
        "DynamoDb.ResourceNotFoundException",
    ),
]


@pytest.mark.parametrize(("case", "resource", "parameters", "error"), SDK_CASES, ids=[c[0] for c in SDK_CASES])
def test_an_sdk_integration_error_is_service_name_dot_error_name_in_pascal_case(
    aws: dict[str, Any], case: str, resource: str, parameters: dict[str, Any], error: str
) -> None:
    """[SDK] a Catch naming the AWS error name catches it; the TaskFailed event carries that name."""
    sfn = aws["stepfunctions"]
    states = {
        "Call": {
            "Type": "Task",
            "Resource": resource,
            "Parameters": parameters,
            "Catch": [{"ErrorEquals": [error], "Next": "Caught"}],
            "End": True,
        },
        **CAUGHT,
    }
    arn = start(sfn, machine(sfn, states, "Call"))
    done = wait_until(sfn, arn)
    failed = [e["taskFailedEventDetails"]["error"] for e in history(sfn, arn) if "taskFailedEventDetails" in e]
    print(f"PARITY stepfunctions {case} [SDK]: {done['status']} {failed}")
    assert failed == [error]
    assert done["status"] == "SUCCEEDED", done


def test_a_put_events_service_error_is_a_task_failure_a_catch_can_match(aws: dict[str, Any]) -> None:
    """[TASKFAILED] "Handling errors in Step Functions workflows" (concepts-error-handling.html): States.TaskFailed
    "A Task state failed during the execution. When used in a retry or catch, States.TaskFailed acts as a wildcard
    that matches any known error name except for States.Timeout"; States.Runtime is for errors of the execution
    itself ("an exception that it couldn't process", e.g. a path that matches nothing). A PutEvents to a missing bus
    is the service's refusal: a task failure, caught by States.TaskFailed (moto reported States.Runtime, which no
    Retry or Catch matches)."""
    sfn = aws["stepfunctions"]
    states = {
        "Emit": {
            "Type": "Task",
            "Resource": "arn:aws:states:::events:putEvents",
            "Parameters": {
                "Entries": [
                    {"Source": "parity", "DetailType": "x", "Detail": {"a": 1}, "EventBusName": "parity-no-such-bus"}
                ]
            },
            "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "Caught"}],
            "End": True,
        },
        **CAUGHT,
    }
    arn = start(sfn, machine(sfn, states, "Emit"))
    done = wait_until(sfn, arn)
    failed = [e["taskFailedEventDetails"] for e in history(sfn, arn) if "taskFailedEventDetails" in e]
    print(f"PARITY stepfunctions events:putEvents to a missing bus [TASKFAILED]: {done['status']} {failed}")
    assert done["status"] == "SUCCEEDED", done
    [failure] = failed
    assert not failure["error"].startswith("States.")  # the service's error, not one of the execution's own
    assert "parity-no-such-bus" in failure["cause"]  # AWS's exact error name is not documented: not asserted
