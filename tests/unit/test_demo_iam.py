"""`make demo` checks its own IAM log (issue 12): it prints the decisions and "IAM denials: N", and a denial, or
enforcement switched off, is a failed expectation."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from rich.console import Console

from taskrail import demo
from taskrail.local.iam.enforce import IamLog, IamRecord

ROLE = "arn:aws:iam::123456789012:role/taskrail-FunctionsTaskChangesFunctionRole"


def _stack(*allowed: bool, enforce: bool = True) -> Any:
    log = IamLog()
    for ok in allowed:
        log.add(IamRecord(ROLE, "fn", "sqs", "SendMessage", "sqs:SendMessage", "arn:aws:sqs:q", ok, "P[0]"))
    return SimpleNamespace(iam=SimpleNamespace(enforce=enforce, log=log))


def _check(stack: Any, monkeypatch: Any) -> tuple[list[str], str]:
    console = Console(record=True, width=150)
    monkeypatch.setattr(demo, "console", console)
    failures: list[str] = []
    demo.check_iam(stack, failures)
    return failures, console.export_text()


def test_the_demo_prints_its_iam_decisions_and_holds_with_no_denial(monkeypatch: Any) -> None:
    failures, text = _check(_stack(True, True), monkeypatch)
    print(text)
    assert "IAM decisions: 2 by 1 principals; IAM denials: 0" in text
    assert failures == []


def test_a_denial_or_enforcement_off_fails_the_demo(monkeypatch: Any) -> None:
    failures, text = _check(_stack(True, False), monkeypatch)
    print(text)
    assert "IAM denials: 1" in text
    assert "denied taskrail-FunctionsTaskChangesFunctionRole: sqs:SendMessage on arn:aws:sqs:q" in text
    assert failures == ["IAM denials: 1 (expected 0)"]
    off, _ = _check(_stack(True, enforce=False), monkeypatch)
    assert off == ["IAM enforcement is off (TASKRAIL_IAM=off is for debugging only)"]
