"""The handlers count the errors they raise on purpose, so alarms subtract them from Lambda's Errors."""

import json

import pytest

from task_common.errors import PermanentTaskError, TaskCancelled, TransientTaskError, ValidationFailed
from task_common.observability import EXPECTED_ERRORS_METRIC, counts_expected_errors, metrics


def emitted_metrics(output: str) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {}
    for line in output.splitlines():
        if line.startswith("{") and "_aws" in line:
            document = json.loads(line)
            for definition in document["_aws"]["CloudWatchMetrics"]:
                for metric in definition["Metrics"]:
                    found[metric["Name"]] = document[metric["Name"]]
    return found


def handler_raising(error: Exception):
    @metrics.log_metrics
    @counts_expected_errors
    def handler(event, context):
        raise error

    return handler


@pytest.mark.parametrize(
    "error", [ValidationFailed("x"), TaskCancelled("x"), TransientTaskError("x"), PermanentTaskError("x")]
)
def test_an_expected_error_is_counted_and_still_raised(error, capsys):
    with pytest.raises(type(error)):
        handler_raising(error)({}, None)
    assert emitted_metrics(capsys.readouterr().out)[EXPECTED_ERRORS_METRIC] == [1.0]


def test_an_unexpected_error_is_not_counted(capsys):
    with pytest.raises(KeyError):
        handler_raising(KeyError("bug"))({}, None)
    assert EXPECTED_ERRORS_METRIC not in emitted_metrics(capsys.readouterr().out)
