"""On the EXPRESS lifecycle too, a ProcessTask try that runs past the state's ``TimeoutSeconds`` is retried.

``test_state_timeouts.py`` shows it on STANDARD with a real timeout (a mocked ``Throw`` of ``States.Timeout`` is
turned into ``States.Runtime`` by the interpreter: see there). The EXPRESS definition catches every other error
into ``RecordTaskFailed`` (``States.ALL``), so a retrier that lost ``States.Timeout`` would turn a slow first try
into a FAILED task (docs/TEST-STRENGTH.md, area asl: ``task_lifecycle.express/ProcessTask.Retry[0]: error-equals
drops States.Timeout`` survived every other test).
"""

from __future__ import annotations

import json

from taskrail.local.services.lambda_ import lambda_invoker
from tests.workflows.conftest import Lifecycle
from tests.workflows.test_error_paths_express import express  # noqa: F401 - the EXPRESS platform fixture
from tests.workflows.test_state_timeouts import SHORT_TIMEOUT_SECONDS, first_try_hangs, timed_out
from workflows.task_lifecycle import RECORD_FAILURE


def express_with_short_timeout(lifecycle: Lifecycle, state: str) -> str:
    """The provisioned EXPRESS lifecycle again, under a new name, with ``state``'s TimeoutSeconds shortened."""
    sfn = lifecycle.client("stepfunctions")
    described = sfn.describe_state_machine(stateMachineArn=lifecycle.state_machine_arn)
    assert described["type"] == "EXPRESS"
    definition = json.loads(described["definition"])
    assert definition["States"][state]["TimeoutSeconds"] > SHORT_TIMEOUT_SECONDS
    definition["States"][state]["TimeoutSeconds"] = SHORT_TIMEOUT_SECONDS
    created = sfn.create_state_machine(
        name=f"{described['name']}-short-{state}",
        definition=json.dumps(definition),
        roleArn=described["roleArn"],
        type="EXPRESS",
    )
    return str(created["stateMachineArn"])


def test_an_express_process_task_try_that_times_out_is_retried_and_the_task_succeeds(express: Lifecycle):  # noqa: F811
    # Given ProcessTask's first try runs past the state's timeout
    arn = express_with_short_timeout(express, "ProcessTask")
    invoke, release = first_try_hangs(express, "ProcessTaskFunction")
    express.store_task("t-timeout", "text.stats", {"text": "the cat sat"})

    # When the task runs
    try:
        with lambda_invoker(invoke):
            execution = express.wait(express.start("t-timeout", state_machine_arn=arn), timeout=120)
    finally:
        release.set()

    # Then the state failed with States.Timeout, the retrier naming it retried (the catch-all did not take it into
    # RecordTaskFailed), and the task succeeded
    states = express.states_entered(execution["executionArn"])
    print("EXPRESS timed-out try:", execution["status"], timed_out(express, execution["executionArn"]), states)
    assert timed_out(express, execution["executionArn"])[:1] == ["States.Timeout"]
    assert RECORD_FAILURE not in states, states
    assert execution["status"] == "SUCCEEDED" and states[-1] == "TaskSucceeded", states
    assert express.task("t-timeout")["status"] == "SUCCEEDED"
