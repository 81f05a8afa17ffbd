"""A function that times out or runs out of memory returns a payload without an error type; Step Functions
reports it as ``Lambda.Unknown`` ("Handle Lambda service exceptions", Step Functions Developer Guide), and the
workflow's transient policy retries it."""

from typing import Any

from taskrail.local.services.lambda_ import InvokeOutcome, lambda_invoker
from tests.workflows.conftest import Lifecycle

# What Lambda answers when a function times out: an Unhandled function error whose payload names no type.
TIMED_OUT_PAYLOAD = b'{"errorMessage": "2026-12-01T10:00:00.000Z 1d2c3b4a Task timed out after 900.00 seconds"}'


def process_times_out_once(lifecycle: Lifecycle) -> Any:
    calls: list[str] = []

    def invoke(name: str, payload: bytes, qualifier: str | None) -> InvokeOutcome:
        if name.endswith("ProcessTaskFunction") and not calls:
            calls.append(name)
            return InvokeOutcome(payload=TIMED_OUT_PAYLOAD, function_error="Unhandled")
        return lifecycle.functions(name, payload, qualifier)

    return invoke


def test_a_function_error_without_a_type_is_lambda_unknown_and_retried(lifecycle: Lifecycle):
    # Given ProcessTask's first try times out (Lambda's payload names no error type)
    with lambda_invoker(process_times_out_once(lifecycle)):
        # When the task runs
        execution = lifecycle.run("t-unknown-error", "text.stats", {"text": "a b"})

    # Then the failed try is Lambda.Unknown, with AWS's cause, and the retry succeeds
    failures = [
        e["taskFailedEventDetails"] for e in lifecycle.history(execution["executionArn"]) if e["type"] == "TaskFailed"
    ]
    assert [f["error"] for f in failures] == ["Lambda.Unknown"]
    assert failures[0]["cause"].startswith(
        "The cause could not be determined because Lambda did not return an error type"
    )
    assert execution["status"] == "SUCCEEDED"
