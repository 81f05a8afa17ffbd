"""The parity run's header names the AWS CLI its CLI cases run (tests/parity/aws_cli.py), or says they fall back."""

from __future__ import annotations

from tests.parity import aws_cli


def pytest_report_header() -> str:
    return f"parity AWS CLI: {aws_cli.describe()}"
