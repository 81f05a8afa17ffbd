"""Errors that Retry and Catch cannot match.

Evidence: [ERR] "Handling errors in Step Functions workflows", Step Functions Developer Guide
(https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html): "The States.ALL error type
[...] can't catch the States.DataLimitExceeded terminal error or Runtime error types"; States.Runtime "Errors of
this type aren't retriable and will always cause the execution to fail. A retry or catch on States.ALL won't catch
States.Runtime errors"; States.DataLimitExceeded: "A terminal error that can't be caught by the States.ALL error
type", reported when "The output of a state is larger than payload size quota" (256 KiB, "Step Functions service
quotas").
"""

from __future__ import annotations

import json
from typing import Any

from taskrail.local.services import lambda_
from tests.parity.stepfunctions.cases import history, machine, start, wait_until

CAUGHT = {"Caught": {"Type": "Pass", "Result": "caught", "End": True}}
RETRY_ALL = [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2, "IntervalSeconds": 1}]
CATCH_ALL = [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]


def test_a_parameters_path_missing_from_the_input_fails_the_execution_uncaught(aws: dict[str, Any]) -> None:
    """[ERR] States.Runtime: not retried, not caught by States.ALL."""
    sfn = aws["stepfunctions"]
    states = {
        "Work": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "worker", "Payload": {"id.$": "$.missing.path"}},
            "Retry": RETRY_ALL,
            "Catch": CATCH_ALL,
            "End": True,
        },
        **CAUGHT,
    }
    arn = start(sfn, machine(sfn, states, "Work"), {"taskId": "t-1"})
    done = wait_until(sfn, arn)
    entered = [e["stateEnteredEventDetails"]["name"] for e in history(sfn, arn) if "stateEnteredEventDetails" in e]
    print("States.Runtime:", done["status"], done.get("error"), entered)
    assert (done["status"], done["error"]) == ("FAILED", "States.Runtime"), done
    assert entered == ["Work"]  # not retried, Caught never entered


def test_a_states_runtime_error_after_the_call_is_not_retried(aws: dict[str, Any]) -> None:
    """[ERR] States.Runtime "aren't retriable": a ResultSelector path missing from the Lambda result fails the
    execution after one invocation, although Retry on States.ALL allows two more attempts (a retry adds no
    TaskStateEntered event, so the invocations are what shows it)."""
    sfn = aws["stepfunctions"]
    calls: list[Any] = []

    def invoker(name: str, payload: bytes, qualifier: str | None) -> lambda_.InvokeOutcome:
        calls.append(json.loads(payload))
        return lambda_.InvokeOutcome.success({"ok": True})

    lambda_.install_lambda_invoker(invoker)
    states = {
        "Work": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "worker", "Payload.$": "$"},
            "ResultSelector": {"x.$": "$.Payload.missing.deep"},
            "Retry": RETRY_ALL,
            "End": True,
        }
    }
    arn = start(sfn, machine(sfn, states, "Work"))
    done = wait_until(sfn, arn)
    scheduled = [e for e in history(sfn, arn) if e["type"] == "TaskScheduled"]
    print("States.Runtime after the call:", done["status"], done.get("error"), "invocations", len(calls))
    assert (done["status"], done.get("error")) == ("FAILED", "States.Runtime"), done
    assert (len(calls), len(scheduled)) == (1, 1)


def test_an_explicit_states_runtime_catcher_does_not_catch_it(aws: dict[str, Any]) -> None:
    """[ERR] "will always cause the execution to fail"."""
    sfn = aws["stepfunctions"]
    states = {
        "Work": {
            "Type": "Pass",
            "Parameters": {"id.$": "$.missing"},
            "Next": "Inner",
        },
        "Inner": {"Type": "Succeed"},
    }
    # a Pass state has no Catch: use a Parallel wrapper with a Catch naming States.Runtime
    wrapper = {
        "Wrap": {
            "Type": "Parallel",
            "Branches": [{"StartAt": "Work", "States": states}],
            "Catch": [{"ErrorEquals": ["States.Runtime"], "Next": "Caught"}],
            "End": True,
        },
        **CAUGHT,
    }
    done = wait_until(sfn, start(sfn, machine(sfn, wrapper, "Wrap")))
    print("explicit States.Runtime catcher:", done["status"], done.get("error"))
    assert (done["status"], done["error"]) == ("FAILED", "States.Runtime"), done


def test_states_data_limit_exceeded_is_not_caught_by_states_all(aws: dict[str, Any]) -> None:
    """[ERR] a task result over 256 KiB: States.DataLimitExceeded, not caught by States.ALL."""
    sfn = aws["stepfunctions"]
    big = "x" * (256 * 1024 + 1)
    lambda_.install_lambda_invoker(lambda name, payload, qualifier: lambda_.InvokeOutcome.success({"blob": big}))
    states = {
        "Work": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "worker", "Payload.$": "$"},
            "Catch": CATCH_ALL,
            "End": True,
        },
        **CAUGHT,
    }
    arn = start(sfn, machine(sfn, states, "Work"))
    done = wait_until(sfn, arn)
    entered = [e["stateEnteredEventDetails"]["name"] for e in history(sfn, arn) if "stateEnteredEventDetails" in e]
    print("DataLimitExceeded:", done["status"], done.get("error"), entered)
    assert (done["status"], done.get("error")) == ("FAILED", "States.DataLimitExceeded"), done
    assert entered == ["Work"]


def test_a_task_error_is_still_caught_by_states_all(aws: dict[str, Any]) -> None:
    """[ERR] States.ALL "A wildcard that matches any known error name": a Fail inside a branch is caught."""
    sfn = aws["stepfunctions"]
    states = {
        "Wrap": {
            "Type": "Parallel",
            "Branches": [{"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Poison"}}}],
            "Catch": CATCH_ALL,
            "End": True,
        },
        **CAUGHT,
    }
    arn = start(sfn, machine(sfn, states, "Wrap"))
    done = wait_until(sfn, arn)
    entered = [e["stateEnteredEventDetails"]["name"] for e in history(sfn, arn) if "stateEnteredEventDetails" in e]
    assert done["status"] == "SUCCEEDED" and entered[-1] == "Caught", (done, entered)
