"""Every error the workflow promises to retry is retried, and every error it promises to catch ends where it
should: one row per (state, error), with the error injected through a MockConfigFile test case built here.

These rows are the workflow's error policy written down independently of the generated ASL, so a retrier or a
catcher lost or narrowed in ``workflows/`` fails a row (docs/TEST-STRENGTH.md, area asl: the mutants that
deleted a Retry or a Catch, or dropped a name from an ``ErrorEquals``, survived every test before this file).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from taskrail.local.services.stepfunctions import install_mock_config, start_execution_with_test_case
from tests.workflows.conftest import Lifecycle

FIXTURE = Path(__file__).parent / "fixtures" / "MockConfigFile.json"
STATE_MACHINE_NAME = "taskrail-TaskLifecycleStateMachine"
TASK_ID = "t-mocked"  # the id the fixture's mocked Lambda payloads carry

LAMBDA_SERVICE = (
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
)
DYNAMODB_THROTTLING = (
    "DynamoDB.ProvisionedThroughputExceededException",
    "DynamoDB.ThrottlingException",
    "DynamoDB.RequestLimitExceeded",
    "DynamoDB.RequestLimitExceededException",
    "DynamoDB.InternalServerError",
    "DynamoDB.InternalServerErrorException",
)
# No state delivers outcomes any more (the task-changes function does, from the table: tests/unit/test_task_changes.py).
# States.Timeout is left out: a state reports no error name that begins with "States." (AWS), so the vendored
# interpreter turns a mocked Throw of it into States.Runtime; a real timeout is retried in test_state_timeouts.
TASK_RETRIED = (
    "TransientTaskError",
    "Lambda.Unknown",
    "Sandbox.Timedout",
    "Runtime.ExitError",
    "IdempotencyAlreadyInProgressError",
)

# The path that leads to a state: the mocked responses (from the fixture) that steer the execution there.
TO_SUCCESS = {"ValidateParameters": "ValidateParametersAccepted", "ProcessTask": "ProcessTaskSucceeded"}
TO_REJECTION = {"ValidateParameters": "ValidateParametersRejected"}
# What a state answers once the retried error has passed (what its ResultSelector or the next state reads).
RECOVERED = {
    "ValidateParameters": "ValidateParametersAccepted",
    "ProcessTask": "ProcessTaskSucceeded",
    "ClaimTask": {"Attributes": {"attempt": {"N": "1"}, "executionArn": {"S": "arn:aws:states:::execution:x"}}},
}

# (state, error, the path there, the terminal state reached when the error is retried)
RETRIED = [
    *(("ClaimTask", e, TO_SUCCESS, "TaskWasCancelled") for e in DYNAMODB_THROTTLING),
    *(("ValidateParameters", e, {"ProcessTask": "ProcessTaskSucceeded"}, "TaskSucceeded") for e in LAMBDA_SERVICE),
    *(("ProcessTask", e, TO_SUCCESS, "TaskSucceeded") for e in (*TASK_RETRIED, *LAMBDA_SERVICE)),
    *(("StoreResult", e, TO_SUCCESS, "TaskSucceeded") for e in ("S3.S3Exception", "S3.SdkClientException")),
    *(("MarkSucceeded", e, TO_SUCCESS, "TaskSucceeded") for e in DYNAMODB_THROTTLING),
    *(("MarkRejected", e, TO_REJECTION, "TaskRejected") for e in DYNAMODB_THROTTLING),
]

# (state, error thrown on every attempt, the path there, the state the catcher leads to, the terminal state)
CAUGHT = [
    ("ProcessTask", "ValidationFailed", TO_SUCCESS, "MarkRejected", "TaskRejected"),
    ("ProcessTask", "TaskCancelled", TO_SUCCESS, "TaskWasCancelled", "TaskWasCancelled"),
    ("MarkSucceeded", "DynamoDB.ConditionalCheckFailedException", TO_SUCCESS, "TaskWasCancelled", "TaskWasCancelled"),
    ("MarkRejected", "DynamoDB.ConditionalCheckFailedException", TO_REJECTION, "TaskWasCancelled", "TaskWasCancelled"),
]

# (state, error thrown on every attempt, the path there): not caught, after the state's retries if it has any; the
# execution fails at the state (where Redrive resumes it) and the failure recorder sets the task FAILED.
UNCAUGHT = [
    ("ValidateParameters", "Lambda.Unknown", {}),
    ("ProcessTask", "PermanentTaskError", {"ValidateParameters": "ValidateParametersAccepted"}),
    ("ProcessTask", "TransientTaskError", {"ValidateParameters": "ValidateParametersAccepted"}),
    ("StoreResult", "S3.AccessDenied", TO_SUCCESS),
    ("StoreResult", "S3.S3Exception", TO_SUCCESS),
    ("MarkSucceeded", "DynamoDB.ValidationException", TO_SUCCESS),
]


def throw(error: str) -> dict[str, Any]:
    return {"Throw": {"Error": error, "Cause": f"injected {error}"}}


def run_case(lifecycle: Lifecycle, path: dict[str, str], state: str, outcomes: dict[str, Any]) -> dict[str, Any]:
    """Run the workflow with ``path`` steering it and ``state`` answering ``outcomes`` by attempt."""
    document = json.loads(FIXTURE.read_text(encoding="utf-8"))
    responses = document["MockedResponses"]
    responses["Injected"] = outcomes
    document["StateMachines"][STATE_MACHINE_NAME]["TestCases"] = {"Injected": {**path, state: "Injected"}}
    lifecycle.store_task(TASK_ID, "text.stats", {"text": "the cat sat\non the mat"})
    with install_mock_config(document):
        execution_arn = start_execution_with_test_case(
            lifecycle.client("stepfunctions"),
            lifecycle.state_machine_arn,
            "Injected",
            name=f"{TASK_ID}-injected",
            input=[TASK_ID],
        )
        return lifecycle.wait(execution_arn)


def recovered(state: str, document: dict[str, Any]) -> dict[str, Any]:
    answer = RECOVERED.get(state, {})
    if isinstance(answer, str):
        return dict(document["MockedResponses"][answer]["0"])
    return {"Return": answer}


@pytest.mark.parametrize(("state", "error", "path", "terminal"), RETRIED, ids=[f"{s}-{e}" for s, e, *_ in RETRIED])
def test_an_error_the_state_retries_is_retried_and_the_execution_carries_on(
    lifecycle: Lifecycle, state: str, error: str, path: dict[str, str], terminal: str
):
    # Given the state fails once with the error, then answers as usual
    document = json.loads(FIXTURE.read_text(encoding="utf-8"))
    outcomes = {"0": throw(error), "1": recovered(state, document)}

    # When the workflow runs
    execution = run_case(lifecycle, path, state, outcomes)

    # Then the error was retried (one retry wait was taken) and the execution reached its usual end
    states = lifecycle.states_entered(execution["executionArn"])
    assert states[-1] == terminal, f"{state} did not retry {error}: {states}, {execution.get('error')}"
    assert len(lifecycle.sleeps.retries()) == 1


@pytest.mark.parametrize(
    ("state", "error", "path", "handler", "terminal"), CAUGHT, ids=[f"{s}-{e}" for s, e, *_ in CAUGHT]
)
def test_an_error_the_state_catches_leads_to_its_handler_with_the_error_kept(
    lifecycle: Lifecycle, state: str, error: str, path: dict[str, str], handler: str, terminal: str
):
    # Given the state fails with the error on every attempt
    outcomes = {"0-9": throw(error)}

    # When the workflow runs
    execution = run_case(lifecycle, path, state, outcomes)

    # Then the catcher leads to its handler, and the execution ends where that path ends
    states = lifecycle.states_entered(execution["executionArn"])
    assert states[states.index(state) + 1] == handler, states
    assert states[-1] == terminal, (states, execution.get("error"), execution.get("cause"))
    if handler == "MarkRejected":
        assert lifecycle.task(TASK_ID)["status"] == "REJECTED"


@pytest.mark.parametrize(("state", "error", "path"), UNCAUGHT, ids=[f"{s}-{e}" for s, e, _ in UNCAUGHT])
def test_an_error_no_state_handles_fails_the_execution_at_its_state_and_is_recorded_once(
    lifecycle: Lifecycle, state: str, error: str, path: dict[str, str]
):
    # Given the state fails with the error on every attempt
    outcomes = {"0-9": throw(error)}

    # When the workflow runs, and the failure's status-change event has been recorded
    execution = run_case(lifecycle, path, state, outcomes)
    lifecycle.settle()

    # Then the execution failed at the state itself (the step Redrive resumes), with the state's error
    states = lifecycle.states_entered(execution["executionArn"])
    print(f"{state} {error}: {execution['status']} after {states}")
    assert (execution["status"], execution.get("error"), states[-1]) == ("FAILED", error, state), states
    # And the recorder set the task FAILED with that error, once: one DLQ message, one outcome event
    task = lifecycle.task(TASK_ID)
    assert (task["status"], task["error"], task["cause"]) == ("FAILED", error, f"injected {error}")
    (message,) = lifecycle.drain("TaskDeadLetterQueue")
    assert (message["error"], message["executionArn"]) == (error, execution["executionArn"])
    assert [n["outcome"] for n in lifecycle.drain("NotificationsArchiveQueue")] == ["FAILED"]
