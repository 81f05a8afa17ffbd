"""The EXPRESS lifecycle keeps the STANDARD lifecycle's error policy, and records every other failure itself.

``test_error_paths.py`` writes the error policy down as a table and runs it on the STANDARD lifecycle; the EXPRESS
definition (``asl/task_lifecycle.express.asl.json``, ``-c lifecycleType=EXPRESS``) was exercised only by its happy,
rejected and poison paths (``test_lifecycle_types.py``), so a retrier or catcher lost from it survived every test
(docs/TEST-STRENGTH.md, area asl: 10 of the 20 sampled mutants were in that definition). Here the same rows run on
the EXPRESS lifecycle, plus what only it has (docs/DECISIONS.md "An EXPRESS lifecycle"): an Express execution sends
no status-change event, so every error that escapes a state's own handling is caught (``States.ALL``) into
``RecordTaskFailed``, which sets the task FAILED with the error and cause; that write retries DynamoDB throttling
like every other write, and then the execution ends in the ``TaskFailed`` Fail state.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from taskrail.local.inprocess import in_process_platform
from taskrail.local.services.stepfunctions import install_mock_config, start_execution_with_test_case
from tests.workflows.conftest import Lifecycle
from tests.workflows.test_error_paths import (
    CAUGHT,
    DYNAMODB_THROTTLING,
    FIXTURE,
    RETRIED,
    STATE_MACHINE_NAME,
    TASK_ID,
    TO_REJECTION,
    TO_SUCCESS,
    recovered,
    throw,
)
from workflows.task_lifecycle import RECORD_FAILURE, TASK_FAILED

DEAD_LETTER_QUEUE = "TaskDeadLetterQueue"

# (state, error thrown on every attempt, the path there): no handler of the STANDARD policy takes it, so the
# EXPRESS lifecycle's States.ALL catcher leads to RecordTaskFailed.
RECORDED = [
    ("ValidateParameters", "Lambda.Unknown", {}),
    ("ProcessTask", "PermanentTaskError", {"ValidateParameters": "ValidateParametersAccepted"}),
    ("StoreResult", "S3.AccessDenied", TO_SUCCESS),
    ("MarkSucceeded", "DynamoDB.ValidationException", TO_SUCCESS),
    ("MarkRejected", "DynamoDB.ValidationException", TO_REJECTION),
]
# The way to RecordTaskFailed for its own rows: ProcessTask fails for good.
TO_RECORD = {"ValidateParameters": "ValidateParametersAccepted", "ProcessTask": "Permanent"}


@pytest.fixture
def express(express_template_path: Path) -> Iterator[Lifecycle]:
    template = json.loads(express_template_path.read_text())
    with in_process_platform(
        template, cdk_out=express_template_path.parent, stack_name="taskrail", platform_class=Lifecycle
    ) as platform:
        yield cast(Lifecycle, platform)


def run_case(lifecycle: Lifecycle, path: dict[str, str], state: str, outcomes: dict[str, Any]) -> dict[str, Any]:
    """The EXPRESS lifecycle run with ``path`` steering it and ``state`` answering ``outcomes`` by attempt."""
    document = json.loads(FIXTURE.read_text(encoding="utf-8"))
    responses = document["MockedResponses"]
    responses["Injected"] = outcomes
    responses["Permanent"] = {"0-9": throw("PermanentTaskError")}
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


def test_the_platform_runs_the_express_lifecycle(express: Lifecycle) -> None:
    machine = express.client("stepfunctions").describe_state_machine(stateMachineArn=express.state_machine_arn)
    assert machine["type"] == "EXPRESS"


@pytest.mark.parametrize(("state", "error", "path", "terminal"), RETRIED, ids=[f"{s}-{e}" for s, e, *_ in RETRIED])
def test_an_error_the_state_retries_is_retried_on_express_too(
    express: Lifecycle, state: str, error: str, path: dict[str, str], terminal: str
) -> None:
    # Given the state fails once with the error, then answers as usual
    document = json.loads(FIXTURE.read_text(encoding="utf-8"))
    outcomes = {"0": throw(error), "1": recovered(state, document)}

    # When the EXPRESS workflow runs
    execution = run_case(express, path, state, outcomes)

    # Then the error was retried (one retry wait) and the execution reached its usual end, not RecordTaskFailed
    states = express.states_entered(execution["executionArn"])
    assert states[-1] == terminal, f"{state} did not retry {error}: {states}, {execution.get('error')}"
    assert RECORD_FAILURE not in states
    assert len(express.sleeps.retries()) == 1


@pytest.mark.parametrize(
    ("state", "error", "path", "handler", "terminal"), CAUGHT, ids=[f"{s}-{e}" for s, e, *_ in CAUGHT]
)
def test_an_error_the_state_catches_leads_to_its_handler_on_express_too(
    express: Lifecycle, state: str, error: str, path: dict[str, str], handler: str, terminal: str
) -> None:
    # Given the state fails with the error on every attempt
    execution = run_case(express, path, state, {"0-9": throw(error)})

    # Then its own catcher (not the catch-all) leads to the handler, and the execution ends where that path ends
    states = express.states_entered(execution["executionArn"])
    assert states[states.index(state) + 1] == handler, states
    assert states[-1] == terminal, (states, execution.get("error"), execution.get("cause"))
    if handler == "MarkRejected":
        assert express.task(TASK_ID)["status"] == "REJECTED"


@pytest.mark.parametrize(("state", "error", "path"), RECORDED, ids=[f"{s}-{e}" for s, e, _ in RECORDED])
def test_any_other_error_is_recorded_by_the_express_lifecycle_itself_once(
    express: Lifecycle, state: str, error: str, path: dict[str, str]
) -> None:
    # Given the state fails with the error on every attempt
    execution = run_case(express, path, state, {"0-9": throw(error)})
    express.settle()

    # Then the catch-all led from the state to RecordTaskFailed, and the execution failed in TaskFailed
    states = express.states_entered(execution["executionArn"])
    print(f"EXPRESS {state} {error}: {execution['status']} after {states}")
    assert states[-3:] == [state, RECORD_FAILURE, TASK_FAILED], states
    assert execution["status"] == "FAILED"
    # And the task is FAILED with that error and cause, with one DLQ message and one FAILED outcome
    task = express.task(TASK_ID)
    assert (task["status"], task["error"], task["cause"]) == ("FAILED", error, f"injected {error}")
    (message,) = express.drain(DEAD_LETTER_QUEUE)
    assert (message["error"], message["executionArn"]) == (error, execution["executionArn"])
    assert [n["outcome"] for n in express.drain("NotificationsArchiveQueue")] == ["FAILED"]


@pytest.mark.parametrize("error", DYNAMODB_THROTTLING)
def test_recording_a_failure_retries_dynamodb_throttling(express: Lifecycle, error: str) -> None:
    # Given ProcessTask fails for good and RecordTaskFailed's first write is throttled
    execution = run_case(express, TO_RECORD, RECORD_FAILURE, {"0": throw(error), "1": {"Return": {}}})

    # Then the write was retried and the execution ended in TaskFailed (not failed at RecordTaskFailed itself)
    states = express.states_entered(execution["executionArn"])
    assert states[-3:] == ["ProcessTask", RECORD_FAILURE, TASK_FAILED], (states, execution.get("error"))
    assert len(express.sleeps.retries()) == 1
