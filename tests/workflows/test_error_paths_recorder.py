"""The failure recorder's one write retries DynamoDB throttling, as every other write of the workflows does.

``RecordTaskFailed`` (``asl/failure_recorder.asl.json``) is the only thing that sets a STANDARD task FAILED when its
execution fails (docs/DECISIONS.md): a throttled write that is not retried fails the recorder's execution and leaves
the task RUNNING until the reconciler finds it. ``test_error_paths.py`` holds that policy for the lifecycle's
states; this file holds it for the recorder (docs/TEST-STRENGTH.md, area asl: ``failure_recorder/RecordTaskFailed``
with a name dropped from its ``ErrorEquals`` survived every workflow test). Each error is thrown once from a
MockConfigFile test case of the recorder, on the status-change event a real failure sent it.
"""

from __future__ import annotations

import json

from taskrail.local.services.stepfunctions import install_mock_config, start_execution_with_test_case
from tests.workflows.conftest import RECORDER, Lifecycle
from tests.workflows.test_error_paths import DYNAMODB_THROTTLING, FIXTURE, throw


def test_a_throttled_write_of_the_failure_recorder_is_retried_and_the_failure_recorded(lifecycle: Lifecycle):
    # Given a poison task whose failure the recorder recorded from its status-change event
    lifecycle.run("t-recorded", "diagnostic.poison", {})
    lifecycle.settle()
    (first,) = lifecycle.recorder_runs()
    recorder = lifecycle.resources.state_machines[RECORDER]
    name = recorder.rsplit(":", 1)[-1]

    for error in DYNAMODB_THROTTLING:
        # When the same event reaches the recorder and its write is throttled once, then answers
        document = json.loads(FIXTURE.read_text(encoding="utf-8"))
        document["MockedResponses"]["Throttled"] = {"0": throw(error), "1": {"Return": {}}}
        document["StateMachines"][name] = {"TestCases": {"Throttled": {"RecordTaskFailed": "Throttled"}}}
        retries_before = len(lifecycle.sleeps.retries())
        with install_mock_config(document):
            arn = start_execution_with_test_case(
                lifecycle.client("stepfunctions"),
                recorder,
                "Throttled",
                name=f"throttled-{error[9:]}",
                input=first["input"],
            )
            execution = lifecycle.wait(arn)

        # Then the write was retried once and the recorder ended as recorded, not failed at RecordTaskFailed
        states = lifecycle.states_entered(arn)
        print(f"{error}: {execution['status']} after {states}")
        assert (execution["status"], states[-1]) == ("SUCCEEDED", "TaskFailureRecorded"), (
            states,
            execution.get("error"),
        )
        assert len(lifecycle.sleeps.retries()) == retries_before + 1
