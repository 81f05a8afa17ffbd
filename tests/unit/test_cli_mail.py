"""`taskrail mail`: the local mailbox's messages, and --confirm doing what a confirmation email's link does."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from taskrail import cli
from taskrail import mail as mailbox
from taskrail.local.services.mailbox import CONFIRMATION, MAIL_FILE, NOTIFICATION, Mail

TOPIC = "arn:aws:sns:us-east-1:123456789012:notifications"
TOKEN = "ab12cd34" + "0" * 56


@pytest.fixture
def state_file(tmp_path: Path) -> Path:
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    lines = [
        Mail(
            "alice@example.com",
            "AWS Notification - Subscription Confirmation",
            "confirm",
            CONFIRMATION,
            TOPIC,
            f"{TOPIC}:1",
            token=TOKEN,
        ),
        Mail(
            "alice@example.com",
            "AWS Notification Message",
            json.dumps({"taskId": "t-1", "outcome": "FAILED"}),
            NOTIFICATION,
            TOPIC,
            f"{TOPIC}:1",
        ),
        Mail("bob@example.com", "AWS Notification Message", "plain text", NOTIFICATION, TOPIC, f"{TOPIC}:2"),
    ]
    (log_dir / MAIL_FILE).write_text("".join(json.dumps(asdict(m)) + "\n" for m in lines))
    path = tmp_path / "local.json"
    path.write_text(json.dumps({"log_dir": str(log_dir)}))
    return path


def test_mail_lists_the_messages_to_one_address_as_json(state_file: Path) -> None:
    result = CliRunner().invoke(
        cli.app, ["mail", "--to", "alice@example.com", "--json", "--local-state", str(state_file)]
    )
    print(result.output)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert [m["kind"] for m in shown] == [CONFIRMATION, NOTIFICATION]
    assert shown[1]["message"] == {"taskId": "t-1", "outcome": "FAILED"}
    assert "token" not in shown[1]


def test_mail_prints_a_table_with_the_confirmation_command(state_file: Path) -> None:
    result = CliRunner().invoke(cli.app, ["mail", "--local-state", str(state_file)])
    assert result.exit_code == 0, result.output
    assert "taskrail mail --confirm ab12cd340000" in result.output
    assert "task t-1 FAILED" in result.output


class FakeSns:
    def __init__(self) -> None:
        self.confirmed: list[dict[str, Any]] = []

    def confirm_subscription(self, **request: Any) -> dict[str, Any]:
        self.confirmed.append(request)
        return {"SubscriptionArn": f"{TOPIC}:1"}


def test_confirm_sends_the_messages_token_to_its_topic(state_file: Path) -> None:
    sns = FakeSns()
    arn = mailbox.confirm(Path(json.loads(state_file.read_text())["log_dir"]), "ab12cd34", lambda: sns)
    assert arn == f"{TOPIC}:1"
    assert sns.confirmed == [{"TopicArn": TOPIC, "Token": TOKEN}]


@pytest.mark.parametrize("prefix", ["ab12", "ffffffff"])
def test_confirm_refuses_a_short_or_unknown_token(state_file: Path, prefix: str) -> None:
    result = CliRunner().invoke(cli.app, ["mail", "--confirm", prefix, "--local-state", str(state_file)])
    print(result.output)
    assert result.exit_code == 2
