"""The handlers count the errors they raise on purpose, so alarms subtract them from Lambda's Errors."""

import contextlib
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

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


def log_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{") and '"level"' in line]


def try_handler(outcome):
    from task_common.observability import logger, logs_each_try

    @logger.inject_lambda_context(correlation_id_path="taskId")
    @metrics.log_metrics
    @counts_expected_errors
    @logs_each_try
    def handler(event, context):
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return handler


class Context:
    function_name = "taskrail-ProcessTaskFunction"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:taskrail-ProcessTaskFunction"
    aws_request_id = "request-1"


@pytest.mark.parametrize(
    ("outcome", "last_message", "error"),
    [
        ({"ok": True}, "try succeeded", None),
        (TransientTaskError("flaky"), "try failed", "TransientTaskError"),
        (RuntimeError("bug"), "try failed unexpectedly", "RuntimeError"),
    ],
)
def test_every_try_logs_its_start_and_end_with_the_task_id_as_correlation_id(outcome, last_message, error):
    event = {"taskId": "t-42", "type": "diagnostic.flaky", "attempt": 2, "retry": 1, "params": {"secret": "x"}}
    stream = io.StringIO()
    handler = observability.logger.registered_handler
    previous = handler.setStream(stream)  # the Logger's handler holds the stdout of when it was made

    try:
        with contextlib.suppress(Exception):  # the raise itself is asserted by the tests above
            try_handler(outcome)(event, Context())
    finally:
        handler.setStream(previous)
    lines = log_lines(stream.getvalue())

    assert [line["message"] for line in lines] == ["try started", last_message]
    assert {line["correlation_id"] for line in lines} == {"t-42"}
    assert {line["function_request_id"] for line in lines} == {"request-1"}
    assert lines[0]["attempt"] == 2 and lines[0]["retry"] == 1 and lines[0]["type"] == "diagnostic.flaky"
    assert "params" not in lines[0]  # parameters may be large or private: never logged
    assert lines[-1].get("error") == error


def test_a_try_without_metrics_prints_no_powertools_warning():
    # In a fresh interpreter with every warning shown (pytest's own filters hide this one): Powertools warns on a
    # flush without metrics, unless the handlers' observability module was imported
    flush = "from aws_lambda_powertools import Metrics; Metrics(namespace='n').flush_metrics()"
    lambdas = str(Path(__file__).resolve().parents[2] / "lambdas")

    def stderr_of(code: str) -> str:
        env = {**os.environ, "PYTHONPATH": lambdas, "POWERTOOLS_METRICS_NAMESPACE": "n"}
        done = subprocess.run(
            [sys.executable, "-W", "default", "-c", code],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stderr

    assert "No application metrics to publish" in stderr_of(flush)
    assert "No application metrics to publish" not in stderr_of("import task_common.observability; " + flush)
