"""The local API Gateway's access log (taskrail/local/access_logs.py): each request's line rendered from the stage's
AccessLogSetting.Format of the synthesized template, "-" for a variable without a value, written to the stage's log
group in the local CloudWatch Logs by a thread of its own ("Variables for access logging for API Gateway",
https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-variables-for-access-logging.html)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from taskrail.local.access_logs import AccessLogSpec, AccessLogWriter, render_line
from taskrail.local.apigw import ApiDefinition, LocalApiGateway
from taskrail.local.services import logs_subscriptions
from taskrail.local.users import ALICE
from tests.e2e.polling import wait_for
from tests.local.local_api import provisioned_moto
from tests.local.test_apigw import signed_request


def test_a_line_is_the_format_with_each_variable_replaced_and_dash_for_none() -> None:
    line_format = '{"user": "$context.identity.user", "status": "$context.status", "e": "$context.integration.error"}'
    line = render_line(line_format, {"context.identity.user": 'AIDA"X\\\n', "context.status": "202"})
    assert json.loads(line) == {"user": 'AIDA"X\\\n', "status": "202", "e": "-"}


def test_the_stage_names_the_log_group_and_the_format(template: dict[str, Any], template_path: Path) -> None:
    with provisioned_moto(template, template_path) as moto:
        api = ApiDefinition.from_template(template, moto.resolve)
        assert api.access_log is not None
        assert api.access_log.log_group_name == moto.resources.ref("AccessLogs")
        assert "$context.identity.user" in api.access_log.format


@contextmanager
def _subscriptions_delivered_as_on_aws() -> Iterator[None]:
    """The template's subscription filter is provisioned too: its delivery goes through the local patch (moto's own
    would run the function in Docker), the invoke reaching moto's echoing backend (no functions run here)."""
    logs_subscriptions.install()
    try:
        yield
    finally:
        logs_subscriptions.uninstall()


class FakeLogs:
    def __init__(self) -> None:
        self.calls: list[list[dict[str, Any]]] = []

    def create_log_stream(self, **_request: Any) -> None:
        return None

    def put_log_events(self, *, logEvents: list[dict[str, Any]], **_request: Any) -> None:
        self.calls.append(logEvents)


def test_the_writer_sends_queued_lines_in_batches_and_everything_at_stop() -> None:
    fake = FakeLogs()
    writer = AccessLogWriter(AccessLogSpec("group", "{}"), lambda: fake, stream_name="s").start()
    for i in range(50):
        writer.write(f"line {i}", 1000 + i)
    writer.stop()
    sent = [event["message"] for call in fake.calls for event in call]
    print("PutLogEvents calls:", len(fake.calls), "lines:", len(sent))
    assert sent == [f"line {i}" for i in range(50)]
    assert len(fake.calls) < 50  # batched, not one call a line
    assert writer.sent == 50


def test_each_request_writes_its_line_to_the_stages_log_group(template: dict[str, Any], template_path: Path) -> None:
    with (
        provisioned_moto(template, template_path) as moto,
        LocalApiGateway(template, moto.resolve, moto.url, access_logs=True) as gateway,
        _subscriptions_delivered_as_on_aws(),
    ):
        assert gateway.access_log is not None
        line_format = gateway.access_log.spec.format
        signed = signed_request(
            ALICE, "POST", gateway.url + "/tasks", {"type": "text.stats", "params": {"text": "a b"}},
            {"Content-Type": "application/json"},
        )  # fmt: skip
        unsigned = requests.get(gateway.url + "/tasks", timeout=30)
        assert (signed.status_code, unsigned.status_code) == (202, 403)
        logs, group = moto.client("logs"), moto.resources.ref("AccessLogs")

        def lines() -> list[dict[str, Any]]:
            found = logs.filter_log_events(logGroupName=group)["events"]
            return [json.loads(e["message"]) for e in found] if len(found) >= 2 else []

        first, second = sorted(wait_for(lines, 30, "two access log lines"), key=lambda line: line["status"])
    print(first, second, sep="\n")
    assert (first["user"], first["userArn"], first["caller"]) == (ALICE.principal_id, ALICE.arn, ALICE.principal_id)
    assert (first["httpMethod"], first["resourcePath"], first["status"]) == ("POST", "/tasks", "202")
    assert (second["user"], second["userArn"], second["status"]) == ("-", "-", "403")
    assert first["requestId"] != second["requestId"] and first["ip"] == "127.0.0.1"
    assert set(first) == set(json.loads(line_format))


class ResetLogs(FakeLogs):
    """A log group provisioned again (`taskrail local reset`): the writer's stream is gone until it makes it again."""

    def __init__(self) -> None:
        super().__init__()
        self.streams = 0
        self.gone = True

    def create_log_stream(self, **_request: Any) -> None:
        self.streams += 1
        self.gone = self.streams == 1  # the first stream is lost with the reset

    def put_log_events(self, *, logEvents: list[dict[str, Any]], **request: Any) -> None:
        if self.gone:
            raise RuntimeError(
                "An error occurred (ResourceNotFoundException): The specified log stream does not exist."
            )
        super().put_log_events(logEvents=logEvents, **request)


def test_after_a_reset_the_writer_makes_its_stream_again_and_loses_no_line() -> None:
    fake = ResetLogs()
    writer = AccessLogWriter(AccessLogSpec("group", "{}"), lambda: fake, stream_name="s").start()
    writer.write("after the reset", 1)
    writer.stop()
    assert (fake.streams, [e["message"] for call in fake.calls for e in call]) == (2, ["after the reset"])
