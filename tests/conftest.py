"""Shared fixtures: the synthesized template (one synth per session, cached in cdk.out by source digest)."""

import json
import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def template_path() -> Path:
    from infra.synth import synth

    return synth()


@pytest.fixture(scope="session")
def template(template_path: Path) -> dict[str, Any]:
    return json.loads(template_path.read_text())


@pytest.fixture(scope="session")
def asl_definition() -> dict[str, Any]:
    return json.loads((ROOT / "asl" / "task_lifecycle.asl.json").read_text())
