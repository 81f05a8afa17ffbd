"""Behaviours that surviving mutants of lambdas/ showed no test held (docs/TEST-STRENGTH.md, area lambdas)."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError
from pydantic import ValidationError

from task_common.aws import StepFunctionsExecutions
from task_common.models import ValidatedTask, ValidateRequest
from task_types.diagnostic_flaky import FlakyParams

DEFINITION = json.dumps({"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 600, "End": True}}})


def test_starting_an_execution_reports_a_name_already_taken_and_raises_on_anything_else(aws_environment):
    # Given a state machine (plain moto: the execution stays RUNNING)
    sfn = aws_environment.sfn
    arn = sfn.create_state_machine(
        name="task-lifecycle", definition=DEFINITION, roleArn="arn:aws:iam::123456789012:role/task-lifecycle"
    )["stateMachineArn"]
    executions = StepFunctionsExecutions(sfn)

    # When a task is started, then started again under its name with another input, Then the first start
    # reports True and the second False (ExecutionAlreadyExists), as the reconciler counts them
    assert executions.start(arn, name="t-1-q0", input_json='["t-1"]') is True
    assert executions.start(arn, name="t-1-q0", input_json='["t-other"]') is False
    # And any other refusal is raised, never read as "already started"
    with pytest.raises(ClientError):
        executions.start(arn + "-missing", name="t-2-q0", input_json='["t-2"]')


@pytest.mark.parametrize("model", [ValidateRequest, ValidatedTask])
def test_an_empty_task_id_is_refused(model: type[ValidateRequest] | type[ValidatedTask]):
    with pytest.raises(ValidationError, match="taskId"):
        model.model_validate({"taskId": "", "userId": "alice", "type": "text.stats", "params": {}})


@pytest.mark.parametrize("model", [ValidateRequest, ValidatedTask])
def test_any_non_empty_task_id_is_accepted_even_one_character(model: type[ValidateRequest] | type[ValidatedTask]):
    # The rule is "non-empty", not a minimum length: the empty id above is the only one refused
    parsed = model.model_validate({"taskId": "t", "userId": "alice", "type": "text.stats", "params": {}})
    assert parsed.task_id == "t"


def test_a_validate_request_without_attempt_is_the_first_attempt():
    assert ValidateRequest.model_validate({"taskId": "t-1"}).attempt == 0


def test_a_flaky_task_may_fail_at_most_ten_times():
    assert FlakyParams.model_validate({"failures": 10}).failures == 10
    with pytest.raises(ValidationError):
        FlakyParams.model_validate({"failures": 11})
