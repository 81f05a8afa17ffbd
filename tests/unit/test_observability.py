"""The handlers count the errors they raise on purpose, so alarms subtract them from Lambda's Errors."""

import json
import time

import pytest

from task_common import observability
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


def emitted_documents(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{") and "_aws" in line]


def test_the_count_is_stamped_with_the_invocations_time_as_lambdas_errors_are(monkeypatch, capsys):
    """ "Types of metrics for Lambda functions": the timestamp on Lambda's error metric is the time the function was
    invoked, not when the error occurred. The alarm subtracts ExpectedErrors from Errors per minute, so a count
    stamped when it is flushed (Powertools' default) would land in a later minute than the error it cancels."""
    invoked = (int(time.time()) // 60) * 60 - 20.0  # 20 s before a minute boundary (EMF accepts 14 days back)
    clock = {"now": invoked}
    monkeypatch.setattr(observability.time, "time", lambda: clock["now"])
    monkeypatch.setattr(metrics, "service", "ProcessTask")  # POWERTOOLS_SERVICE_NAME in the function

    @metrics.log_metrics
    @counts_expected_errors
    def handler(event, context):
        clock["now"] += 90  # the task runs past the minute boundary before it gives up
        raise TransientTaskError("later")

    with pytest.raises(TransientTaskError):
        handler({}, None)
    [document] = [d for d in emitted_documents(capsys.readouterr().out) if EXPECTED_ERRORS_METRIC in d]
    assert document["_aws"]["Timestamp"] == int(invoked * 1000)
    assert document["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    assert document["service"] == "ProcessTask"
