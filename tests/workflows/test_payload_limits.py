"""Step Functions limits every state's input and output (and a task's parameters) to 262,144 bytes of UTF-8
JSON, and ``States.DataLimitExceeded`` cannot be caught by ``States.ALL`` ("Quotas related to state machine
executions" and "Error handling in Step Functions workflows", Step Functions Developer Guide). The workflow must
stay under it by construction: the worst case of every inline threshold together (issue 9, defect 2)."""

from typing import Any

import pytest

from task_common.claim_check import as_string_bytes, byte_size, to_json
from tests.workflows.conftest import Lifecycle, describe_failure

STATE_PAYLOAD_LIMIT_BYTES = 262_144
PAYLOAD_FIELDS = ("input", "output", "parameters")


def payload_sizes(events: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """(event type, UTF-8 size) of every state input, output and task parameters in a history."""
    sizes = []
    for event in events:
        for key, details in event.items():
            if key.endswith("EventDetails") and isinstance(details, dict):
                for field in PAYLOAD_FIELDS:
                    if isinstance(details.get(field), str):
                        sizes.append((f"{event['type']}.{field}", len(details[field].encode("utf-8"))))
    return sizes


def threshold(lifecycle: Lifecycle) -> int:
    return int(lifecycle.resources.functions["ProcessTaskFunction"].environment["CLAIM_CHECK_THRESHOLD_BYTES"])


def echo_params_at_the_threshold(limit: int, unit: str) -> dict[str, Any]:
    """The largest echo params for which both the parameters (as Validate measures them) and the result (as
    Process measures it) still travel inline: the worst case for the state size."""

    def inline(count: int) -> bool:
        payload = unit * count
        return (
            byte_size(to_json({"payload": payload})) <= limit and as_string_bytes(to_json({"echo": payload})) <= limit
        )

    low, high = 0, limit
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if inline(middle) else (low, middle - 1)
    return {"payload": unit * low}


@pytest.mark.parametrize(
    ("case", "unit"),
    [
        ("plain ASCII: parameters and result both inline at the threshold", "x"),
        ("quotes: each byte escaped again when the result is carried as a string", '"'),
    ],
)
def test_the_worst_case_of_every_inline_threshold_stays_under_the_state_limit(
    lifecycle: Lifecycle, case: str, unit: str
):
    # Given echo parameters exactly at the claim-check threshold, whose result is as large as they are
    params = echo_params_at_the_threshold(threshold(lifecycle), unit)

    # When the task runs
    execution = lifecycle.run("t-limit", "diagnostic.echo", params)

    # Then it succeeds, and no state input, output or task parameters exceeds the limit
    assert execution["status"] == "SUCCEEDED", f"{case}: {describe_failure(lifecycle, execution['executionArn'])}"
    sizes = payload_sizes(lifecycle.history(execution["executionArn"]))
    largest = max(sizes, key=lambda item: item[1])
    assert largest[1] <= STATE_PAYLOAD_LIMIT_BYTES, f"{case}: {largest}"
    # And the result reads back whole, inline or through its S3 reference
    stored = lifecycle.result("t-limit")
    assert stored["attempt"] == 1
    assert stored["result"] == {"echo": params["payload"]}
