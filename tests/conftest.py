"""Shared fixtures: the synthesized template (one synth per session, cached in cdk.out by source digest)."""

import json
import os
from pathlib import Path
from typing import Any

import pytest

# Before any test imports aws_cdk: jsii starts its kernel with the pinned node.
from infra import node_runtime  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]


def tested_template_path() -> Path:
    """The template every test reads: TASKRAIL_TEMPLATE (a mutated copy, written by `make mutation`) or the synth."""
    override = os.environ.get("TASKRAIL_TEMPLATE")
    if override:
        return Path(override)
    from infra.synth import synth

    return synth()


@pytest.fixture(scope="session")
def template_path() -> Path:
    return tested_template_path()


@pytest.fixture(scope="session")
def template(template_path: Path) -> dict[str, Any]:
    return json.loads(template_path.read_text())


@pytest.fixture(scope="session")
def express_template_path() -> Path:
    """The template of an EXPRESS lifecycle (`-c lifecycleType=EXPRESS`), synthesized beside the default one."""
    from infra.synth import synth
    from workflows.lifecycle_type import EXPRESS

    return synth(lifecycle_type=EXPRESS)


@pytest.fixture(scope="session")
def express_template(express_template_path: Path) -> dict[str, Any]:
    return json.loads(express_template_path.read_text())


@pytest.fixture(scope="session")
def asl_definition() -> dict[str, Any]:
    from workflows.asl import asl_file

    return json.loads(asl_file("task_lifecycle").read_text())
