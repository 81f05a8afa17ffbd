"""The generated ASL with its Lambda (and one DynamoDB) states answered from fixtures/MockConfigFile.json.

Named test cases in the AWS Step Functions Local MockConfigFile format; every state a test case does not
mock (DynamoDB, S3, SNS, SQS, EventBridge) runs against moto for real.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from task_common.errors import ERROR_NAMES
from taskrail.local.mock_config import MockedThrow, load_mock_config
from taskrail.local.services.lambda_ import InvokeOutcome, LambdaInvoker, lambda_invoker
from taskrail.local.services.stepfunctions import install_mock_config, start_execution_with_test_case
from tests.workflows.conftest import Lifecycle

MOCK_CONFIG_FILE = Path(__file__).parent / "fixtures" / "MockConfigFile.json"
STATE_MACHINE_NAME = "taskrail-TaskLifecycleStateMachine"
TASK_ID = "t-mocked"

HAPPY_PATH_STATES = [
    "ClaimTask",
    "ValidateParameters",
    "ProcessTask",
    "StoreResult",
    "MarkSucceeded",
    "TaskSucceeded",
]


def mock_config_document() -> dict[str, Any]:
    return json.loads(MOCK_CONFIG_FILE.read_text(encoding="utf-8"))


def mocked_response(test_case: str, state: str) -> dict[str, Any]:
    """The raw ``{attempts: outcome}`` object a test case gives a state."""
    document = mock_config_document()
    name = document["StateMachines"][STATE_MACHINE_NAME]["TestCases"][test_case][state]
    return document["MockedResponses"][name]


class RecordingInvoker:
    """Passes invocations on to the in-process handlers, remembering which functions really ran."""

    def __init__(self, inner: LambdaInvoker) -> None:
        self.inner = inner
        self.invoked: list[str] = []

    def __call__(self, function_name: str, payload: bytes, qualifier: str | None) -> InvokeOutcome:
        self.invoked.append(function_name)
        return self.inner(function_name, payload, qualifier)


def run_test_case(lifecycle: Lifecycle, test_case: str) -> tuple[dict[str, Any], list[str]]:
    """Store a QUEUED task, run its workflow with ``test_case`` answering the mocked states; returns the
    finished execution and the Lambda functions that really ran."""
    lifecycle.store_task(TASK_ID, "text.stats", {"text": "the cat sat\non the mat"})
    sfn = lifecycle.client("stepfunctions")
    recorder = RecordingInvoker(lifecycle.functions)
    with install_mock_config(MOCK_CONFIG_FILE), lambda_invoker(recorder):
        execution_arn = start_execution_with_test_case(
            sfn, lifecycle.state_machine_arn, test_case, name=f"{TASK_ID}-{test_case}", input=[TASK_ID]
        )
        return lifecycle.wait(execution_arn), recorder.invoked


def events_of(lifecycle: Lifecycle, execution_arn: str, event_type: str) -> list[dict[str, Any]]:
    return [e for e in lifecycle.history(execution_arn) if e["type"] == event_type]


def retrier_for(asl_state: dict[str, Any], error: str) -> dict[str, Any]:
    """The first Retry entry of a state that matches ``error``, as the interpreter picks it."""
    for retrier in asl_state.get("Retry", []):
        if error in retrier["ErrorEquals"] or "States.ALL" in retrier["ErrorEquals"]:
            return retrier
    raise AssertionError(f"no Retry of the state matches {error!r}")


# --------------------------------------------------------------------------------------------------
# The fixture file itself
# --------------------------------------------------------------------------------------------------


def test_mock_config_file_parses_and_names_only_states_of_the_workflow(asl_definition: dict[str, Any]):
    # Given the fixture file, parsed by the same loader the local stack uses
    config = load_mock_config(MOCK_CONFIG_FILE)

    # Then it describes exactly the scenarios of this module, for the local state machine's name
    assert list(config.state_machines) == [STATE_MACHINE_NAME]
    test_cases = config.state_machines[STATE_MACHINE_NAME]
    assert set(test_cases) == {
        "HappyPath",
        "TransientThenSucceeds",
        "ValidationRejected",
        "ProcessFailsToDlq",
        "DuplicateStart",
    }
    # And every mocked state exists in the ASL (a renamed state fails here, not silently unmocked)
    asl_states = asl_definition["States"]
    for test_case, states in test_cases.items():
        unknown = sorted(set(states) - set(asl_states))
        assert unknown == [], f"{test_case} mocks states that are not in the ASL: {unknown}"


def test_every_mocked_error_is_a_product_error_type_or_one_the_state_names(asl_definition: dict[str, Any]):
    # A renamed error type would otherwise make a test case take another path without saying why
    config = load_mock_config(MOCK_CONFIG_FILE)
    for test_case, states in config.state_machines[STATE_MACHINE_NAME].items():
        for state_name, response_name in states.items():
            asl_state = asl_definition["States"][state_name]
            named = {
                error
                for handler in [*asl_state.get("Retry", []), *asl_state.get("Catch", [])]
                for error in handler["ErrorEquals"]
            }
            for attempts in config.mocked_responses[response_name]:
                if isinstance(attempts.outcome, MockedThrow):
                    error = attempts.outcome.error
                    assert error in named | ERROR_NAMES, (
                        f"{test_case}: {state_name} throws {error!r}, which is neither a taskrail error type "
                        f"nor named by a Retry or Catch of the state"
                    )


def test_the_mocked_state_machine_is_the_one_the_local_stack_provisions(lifecycle: Lifecycle):
    described = lifecycle.client("stepfunctions").describe_state_machine(stateMachineArn=lifecycle.state_machine_arn)

    assert described["name"] == STATE_MACHINE_NAME


# --------------------------------------------------------------------------------------------------
# One test per test case
# --------------------------------------------------------------------------------------------------


def test_happy_path_stores_the_mocked_result_and_marks_the_task_succeeded(lifecycle: Lifecycle):
    # Given a stored task whose Lambda states answer from HappyPath; When its workflow runs
    execution, invoked = run_test_case(lifecycle, "HappyPath")

    # Then it took the success path
    assert execution["status"] == "SUCCEEDED"
    assert "error" not in execution
    assert lifecycle.states_entered(execution["executionArn"]) == HAPPY_PATH_STATES
    # And no Lambda function ran: ValidateParameters and ProcessTask answered from the mock
    assert invoked == []
    # And the real S3, DynamoDB and SNS states ran with the mocked result
    mocked_payload = mocked_response("HappyPath", "ProcessTask")["0"]["Return"]["Payload"]
    assert lifecycle.result(TASK_ID) == mocked_payload
    assert len(lifecycle.result_versions(TASK_ID)) == 1
    task = lifecycle.task(TASK_ID)
    assert task["status"] == "SUCCEEDED"
    assert task["progress"] == "100"
    assert task["attempt"] == "1"
    assert task["executionArn"] == execution["executionArn"]
    assert task["resultLocation"] == f"s3://{lifecycle.resources.ref('ResultsBucket')}/tasks/{TASK_ID}/result.json"
    notifications = lifecycle.drain("NotificationsArchiveQueue")
    assert [(n["taskId"], n["outcome"]) for n in notifications] == [(TASK_ID, "SUCCEEDED")]
    assert lifecycle.drain("TaskDeadLetterQueue") == []
    assert lifecycle.sleeps.retries() == []


def test_transient_errors_are_retried_within_the_asl_backoff_then_succeed(
    lifecycle: Lifecycle, asl_definition: dict[str, Any]
):
    # Given ProcessTask throws TransientTaskError on attempts 0 and 1, and returns on attempt 2
    mocked = mocked_response("TransientThenSucceeds", "ProcessTask")
    error = mocked["0-1"]["Throw"]["Error"]

    execution, invoked = run_test_case(lifecycle, "TransientThenSucceeds")

    # Then the task succeeds after two retries of ProcessTask, and only of ProcessTask
    assert execution["status"] == "SUCCEEDED"
    entered = lifecycle.states_entered(execution["executionArn"])
    assert entered == HAPPY_PATH_STATES, "a retry re-runs the state without re-entering it"
    assert invoked == []
    failures = events_of(lifecycle, execution["executionArn"], "TaskFailed")
    assert [e["taskFailedEventDetails"]["error"] for e in failures] == [error, error]
    retries = lifecycle.sleeps.retries()
    assert len(retries) == 2
    # And each wait is FULL jitter within the ASL's IntervalSeconds * BackoffRate^k (capped by MaxDelaySeconds)
    retrier = retrier_for(asl_definition["States"]["ProcessTask"], error)
    assert retrier["JitterStrategy"] == "FULL"
    assert retrier["MaxAttempts"] >= len(retries)
    for k, delay in enumerate(retries):
        ceiling = retrier["IntervalSeconds"] * retrier["BackoffRate"] ** k
        ceiling = min(ceiling, retrier.get("MaxDelaySeconds", ceiling))
        assert 0 <= delay <= ceiling, f"retry {k}: waited {delay} s, ceiling {ceiling} s"
    # And the result is the one the third attempt returned
    assert lifecycle.result(TASK_ID) == mocked["2"]["Return"]["Payload"]
    task = lifecycle.task(TASK_ID)
    assert task["status"] == "SUCCEEDED"
    assert task["attempt"] == "1", "Retry inside the execution is not a new claim"
    assert lifecycle.drain("TaskDeadLetterQueue") == []


def test_validation_error_is_rejected_without_retry_and_without_a_dlq_message(lifecycle: Lifecycle):
    # Given ValidateParameters throws ValidationFailed
    throw = mocked_response("ValidationRejected", "ValidateParameters")["0"]["Throw"]

    execution, invoked = run_test_case(lifecycle, "ValidationRejected")

    # Then the execution ends in TaskRejected (a handled outcome: it succeeds, so no alarm counts it), never
    # reaching ProcessTask
    assert execution["status"] == "SUCCEEDED"
    assert lifecycle.states_entered(execution["executionArn"]) == [
        "ClaimTask",
        "ValidateParameters",
        "MarkRejected",
        "TaskRejected",
    ]
    assert invoked == []
    # And nothing was retried or dead-lettered
    assert len(events_of(lifecycle, execution["executionArn"], "TaskFailed")) == 1
    assert lifecycle.sleeps.retries() == []
    assert lifecycle.drain("TaskDeadLetterQueue") == []
    # And the item records the mocked error and cause
    task = lifecycle.task(TASK_ID)
    assert task["status"] == "REJECTED"
    assert task["error"] == throw["Error"]
    assert task["cause"] == throw["Cause"]
    assert [(n["taskId"], n["outcome"]) for n in lifecycle.drain("NotificationsArchiveQueue")] == [
        (TASK_ID, "REJECTED")
    ]


def test_permanent_failure_is_recorded_and_sent_to_the_dlq_with_full_context(lifecycle: Lifecycle):
    # Given ProcessTask throws PermanentTaskError
    throw = mocked_response("ProcessFailsToDlq", "ProcessTask")["0"]["Throw"]

    execution, invoked = run_test_case(lifecycle, "ProcessFailsToDlq")

    # Then the execution fails at ProcessTask with the task's error, without a retry (Redrive resumes there), and
    # the failure recorder sends it to the DLQ
    assert execution["status"] == "FAILED"
    assert execution["error"] == throw["Error"]
    assert lifecycle.states_entered(execution["executionArn"]) == ["ClaimTask", "ValidateParameters", "ProcessTask"]
    assert lifecycle.sleeps.retries() == []
    assert invoked == []
    # And the dead-letter message carries everything `taskrail replay` needs, exactly
    assert lifecycle.drain("TaskDeadLetterQueue") == [
        {
            "taskId": TASK_ID,
            "executionArn": execution["executionArn"],
            "input": [TASK_ID],
            "error": throw["Error"],
            "cause": throw["Cause"],
            "attempt": 1,
        }
    ]
    task = lifecycle.task(TASK_ID)
    assert task["status"] == "FAILED"
    assert task["error"] == throw["Error"]
    assert task["cause"] == throw["Cause"]
    assert [(n["taskId"], n["outcome"]) for n in lifecycle.drain("NotificationsArchiveQueue")] == [(TASK_ID, "FAILED")]
    with pytest.raises(lifecycle.client("s3").exceptions.NoSuchKey):
        lifecycle.result(TASK_ID)


def test_duplicate_start_ends_quietly_at_claim_and_leaves_the_task_untouched(lifecycle: Lifecycle):
    # Given ClaimTask's condition fails (another execution claimed the task first)
    execution, invoked = run_test_case(lifecycle, "DuplicateStart")

    # Then the execution succeeds at once, without side effects
    assert execution["status"] == "SUCCEEDED"
    assert "error" not in execution
    assert lifecycle.states_entered(execution["executionArn"]) == ["ClaimTask", "TaskAlreadyClaimed"]
    assert invoked == []
    task = lifecycle.task(TASK_ID)
    assert task["status"] == "QUEUED"
    assert task["attempt"] == "0"
    assert "executionArn" not in task
    assert lifecycle.result_versions(TASK_ID) == []
    assert lifecycle.drain("NotificationsArchiveQueue") == []
    assert lifecycle.drain("TaskDeadLetterQueue") == []
