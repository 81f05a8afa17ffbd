"""A state that runs past its ``TimeoutSeconds`` fails with ``States.Timeout``, and the workflows retry it; the
reconciler's own error policy (Lambda service errors, a failed run) as a table like test_error_paths.

Why the timeout is real here and not mocked: Step Functions retries before it catches ("When a state reports an
error and either there is no Retry field, or if retries fail to resolve the error, Step Functions scans through
the catchers", Error handling in Step Functions workflows,
https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html), and a state may report
errors with other names, but "these error names can't begin with the States. prefix". A MockConfigFile ``Throw``
of ``States.Timeout`` is such a name: the vendored interpreter refuses it as a custom error
(``CustomErrorName``) and the state fails with ``States.Runtime`` instead, which no retrier names and moto's
``States.ALL`` catcher then takes. That was an artifact of the mock, not a workflow defect: with a real timeout
the interpreter reports ``States.Timeout`` (a ``TaskTimedOut`` event) and the retrier naming it retries.

A real timeout needs a state that runs past its limit: the state machine under test is re-created from the
definition as provisioned (``asl/``, or a mutant of it) with only that state's ``TimeoutSeconds`` shortened, the
way ``time_scale`` shortens retry waits, and the first invocation blocks until the retry releases it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest

from taskrail.local.services.lambda_ import InvokeOutcome, lambda_invoker
from taskrail.local.services.stepfunctions import install_mock_config, start_execution_with_test_case
from tests.workflows.conftest import Lifecycle
from tests.workflows.test_reconciler import reconciler_arn

SHORT_TIMEOUT_SECONDS = 3  # the state's limit in the test copy; the retried try must finish within it
HANG_GUARD_SECONDS = 60  # a blocked first try is released by the retry, or by this at the latest

LAMBDA_SERVICE = (
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
)


def with_short_timeout(lifecycle: Lifecycle, state_machine_arn: str, state: str) -> str:
    """The provisioned state machine again, under a new name, with ``state``'s TimeoutSeconds shortened."""
    sfn = lifecycle.client("stepfunctions")
    described = sfn.describe_state_machine(stateMachineArn=state_machine_arn)
    definition = json.loads(described["definition"])
    assert definition["States"][state]["TimeoutSeconds"] > SHORT_TIMEOUT_SECONDS
    definition["States"][state]["TimeoutSeconds"] = SHORT_TIMEOUT_SECONDS
    return str(
        sfn.create_state_machine(
            name=f"{described['name']}-short-{state}", definition=json.dumps(definition), roleArn=described["roleArn"]
        )["stateMachineArn"]
    )


def first_try_hangs(lifecycle: Lifecycle, function_suffix: str) -> tuple[Callable[..., InvokeOutcome], threading.Event]:
    """An invoker whose first call of the function blocks until the next call of it (the retry) releases it."""
    release = threading.Event()
    calls: list[str] = []

    def invoke(name: str, payload: bytes, qualifier: str | None) -> InvokeOutcome:
        if name.endswith(function_suffix):
            calls.append(name)
            if len(calls) == 1:
                release.wait(HANG_GUARD_SECONDS)
                return InvokeOutcome.unhandled("LateAnswer", "the timed-out try answered after its state gave up")
            release.set()
        return lifecycle.functions(name, payload, qualifier)

    return invoke, release


def timed_out(lifecycle: Lifecycle, execution_arn: str) -> list[str]:
    return [
        e["taskTimedOutEventDetails"]["error"] for e in lifecycle.history(execution_arn) if e["type"] == "TaskTimedOut"
    ]


def test_a_process_task_try_that_times_out_is_retried_and_the_task_succeeds(lifecycle: Lifecycle):
    # Given ProcessTask's first try runs past the state's timeout
    arn = with_short_timeout(lifecycle, lifecycle.state_machine_arn, "ProcessTask")
    invoke, release = first_try_hangs(lifecycle, "ProcessTaskFunction")
    lifecycle.store_task("t-timeout", "text.stats", {"text": "the cat sat"})

    # When the task runs
    try:
        with lambda_invoker(invoke):
            execution = lifecycle.wait(lifecycle.start("t-timeout", state_machine_arn=arn), timeout=120)
    finally:
        release.set()

    # Then the state failed with States.Timeout, the retrier naming it retried (nothing catches it: without the
    # retry the execution would fail at ProcessTask), and it succeeded
    states = lifecycle.states_entered(execution["executionArn"])
    assert timed_out(lifecycle, execution["executionArn"])[:1] == ["States.Timeout"]
    assert states.count("ProcessTask") == 1, states
    assert execution["status"] == "SUCCEEDED" and states[-1] == "TaskSucceeded", states
    assert lifecycle.task("t-timeout")["status"] == "SUCCEEDED"


def test_a_reconciler_run_that_times_out_is_retried(lifecycle: Lifecycle):
    # Given the reconciler function's first run goes past the state's timeout
    arn = with_short_timeout(lifecycle, reconciler_arn(lifecycle), "ReconcileTasks")
    invoke, release = first_try_hangs(lifecycle, "ReconcileTasksFunction")

    # When the reconciler runs
    try:
        with lambda_invoker(invoke):
            started = lifecycle.client("stepfunctions").start_execution(stateMachineArn=arn, input="{}")
            execution = lifecycle.wait(started["executionArn"], timeout=120)
    finally:
        release.set()

    # Then the timed-out run was retried and the execution succeeded
    assert timed_out(lifecycle, execution["executionArn"])[:1] == ["States.Timeout"]
    assert execution["status"] == "SUCCEEDED", lifecycle.states_entered(execution["executionArn"])


RECONCILED = {"Return": {"StatusCode": 200, "Payload": {"started": 0, "failed": 0, "truncated": False}}}
# (error, how many runs in a row fail with it before one answers): each must be retried that often. A Lambda
# service error has its own retrier (6 attempts); three failures in a row tell it from the catch-all
# States.TaskFailed retrier behind it (2 attempts, docs/DECISIONS.md: a failed run is retried whole twice).
RECONCILER_RETRIED = [*((e, 3) for e in LAMBDA_SERVICE), ("ReconciliationIncomplete", 2)]


@pytest.mark.parametrize(("error", "failures"), RECONCILER_RETRIED, ids=[e for e, _ in RECONCILER_RETRIED])
def test_an_error_the_reconciler_retries_is_retried_and_the_run_succeeds(
    lifecycle: Lifecycle, error: str, failures: int
):
    # Given ReconcileTasks fails with the error that many times in a row, then answers
    thrown = {"Throw": {"Error": error, "Cause": f"injected {error}"}}
    outcomes = {f"0-{failures - 1}": thrown, str(failures): RECONCILED}
    name = "taskrail-ReconcilerStateMachine"
    document: dict[str, Any] = {
        "StateMachines": {name: {"TestCases": {"Injected": {"ReconcileTasks": "Injected"}}}},
        "MockedResponses": {"Injected": outcomes},
    }

    # When the reconciler runs
    with install_mock_config(document):
        arn = start_execution_with_test_case(
            lifecycle.client("stepfunctions"), reconciler_arn(lifecycle), "Injected", name=f"r-{error[-20:]}"
        )
        execution = lifecycle.wait(arn)

    # Then each failure was retried and the run succeeded with the function's counts
    assert execution["status"] == "SUCCEEDED", (lifecycle.states_entered(arn), execution.get("cause"))
    assert json.loads(execution["output"])["reconciled"]["counts"] == RECONCILED["Return"]["Payload"]
    assert len(lifecycle.sleeps.retries()) == failures
