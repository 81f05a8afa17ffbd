"""jsii runs on the Node.js pinned in package.json, never the machine's, and no command prints its node banner.

The machine's `node` (first on PATH) is Node 20 here and in CI, for which jsii prints an end-of-life banner at
every kernel start: these tests fail if infra/node_runtime.py stops steering jsii (its JSII_NODE touch point).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra import node_runtime

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_SECONDS = 120  # a hang guard: each command takes about a second
BANNER_MARKERS = ("end-of-life", "!!  ", "not supported anymore", "Please upgrade to a supported node")

# Loads aws_cdk as `taskrail cost` does when it synthesizes (infra.synth imports infra.app), then names the
# executables of this process's children: jsii's kernel is one of them.
KERNEL_PROBE = """
import json, os, sys
import infra.app
mine = str(os.getpid())
children = []
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        stat = open(f"/proc/{pid}/stat").read()
        if stat.rsplit(")", 1)[1].split()[1] == mine:
            children.append(os.path.realpath(f"/proc/{pid}/exe"))
    except OSError:
        pass
print(json.dumps(children))
"""


def machine_environment() -> dict[str, str]:
    """The environment a user's shell gives: no JSII_* choice or silencer, the machine's node on PATH."""
    return {k: v for k, v in os.environ.items() if not k.startswith("JSII_")}


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=ROOT, env=machine_environment(), capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False
    )


def banners(completed: subprocess.CompletedProcess[str]) -> list[str]:
    return [marker for marker in BANNER_MARKERS if marker in completed.stdout + completed.stderr]


def test_the_pinned_node_is_the_version_package_json_names():
    completed = run([str(node_runtime.NODE_BIN), "--version"])
    assert completed.stdout.strip() == f"v{node_runtime.PINNED_NODE_VERSION}"


def test_jsii_kernel_runs_on_the_pinned_node_not_the_machines():
    # Given a shell whose first `node` on PATH is the machine's
    # When aws_cdk is loaded through the path `taskrail cost` takes to synthesize
    completed = run([sys.executable, "-c", KERNEL_PROBE])
    # Then jsii's kernel process is the pinned node, and it printed no banner
    assert completed.returncode == 0, completed.stderr
    assert str(node_runtime.NODE_BIN.resolve()) in json.loads(completed.stdout.splitlines()[-1])
    assert banners(completed) == [], completed.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["-c", "import taskrail.cost"],
        ["-c", "import infra.app"],
        ["-m", "taskrail.cli", "cost", "--help"],
    ],
    ids=["import-taskrail.cost", "import-infra.app", "taskrail-cost-help"],
)
def test_no_command_prints_the_jsii_node_banner(argv: list[str]):
    completed = run([sys.executable, *argv])
    assert completed.returncode == 0, completed.stderr
    assert banners(completed) == [], completed.stdout + completed.stderr


def test_a_missing_pinned_node_is_refused_with_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setattr(node_runtime, "NODE_BIN", tmp_path / "node_modules" / ".bin" / "node")
    with pytest.raises(node_runtime.PinnedNodeUnavailable, match="run `make setup`"):
        node_runtime.use_pinned_node()


def test_importing_aws_cdk_first_is_refused():
    completed = run([sys.executable, "-c", "import aws_cdk, infra.node_runtime"])
    assert completed.returncode != 0
    assert "aws_cdk was imported before infra.node_runtime" in completed.stderr
