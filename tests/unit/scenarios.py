"""Scenario data: fixture files named after the scenario they describe."""

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"


def read_fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def read_json_fixture(name: str) -> Any:
    return json.loads(read_fixture(name))
