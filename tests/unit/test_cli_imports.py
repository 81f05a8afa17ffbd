"""The CLI stays instant: a command that talks to a running stack never imports the emulator.

Importing ``taskrail.local.stack`` loads moto and its Step Functions parser (about 2 s, issue 13), and nothing a
stack-talking command does needs it. Each command runs in a fresh interpreter (a subprocess: this process has
moto loaded already) against a state file whose stack answers nothing, and the modules it loaded are listed.
Latency itself is measured in `make bench` (bench/cli_latency.py), never here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from taskrail.local.state import StackInfo

ROOT = Path(__file__).resolve().parents[2]
# What only the emulator or the CDK app needs.
FORBIDDEN = ("moto", "taskrail.local.stack", "taskrail.local.functions", "taskrail.local.services", "infra", "aws_cdk")
COMMANDS = [
    ["--help"],
    ["status", "t-1"],
    ["list", "--status", "FAILED", "--since", "1h"],
    ["watch", "t-1", "--timeout", "1"],
    ["cancel", "t-1"],
    ["result", "t-1"],
    ["history", "t-1"],
    ["logs", "t-1"],
    ["submit", "text.stats", "-p", "text=hello"],
    ["replay", "t-1"],
    ["replay", "--dlq", "--dry-run"],
    ["dlq"],
    ["local", "down", "--help"],
]
PROBE = """
import json, sys
from taskrail.cli import app
forbidden = tuple(sys.argv[1].split(","))
loaded = {}
for args in json.loads(sys.argv[2]):
    try:
        app(args, prog_name="taskrail")
    except SystemExit:
        pass
    loaded[" ".join(args)] = sorted(m for m in sys.modules if m.split(".")[0] in forbidden or m.startswith(forbidden))
print(json.dumps(loaded))
"""


@pytest.fixture
def unreachable_stack(tmp_path: Path) -> Path:
    """A state file naming a live process (this one) and endpoints where nothing listens (port 9: discard)."""
    info = StackInfo(
        api_url="http://127.0.0.1:9/v1",
        aws_endpoint_url="http://127.0.0.1:9",
        console_url="",
        pid=os.getpid(),
        region="us-east-1",
        tasks_table="Tasks",
        results_bucket="results",
        state_machine_arn="arn:aws:states:us-east-1:123456789012:stateMachine:Lifecycle",
        dead_letter_queue_url="http://127.0.0.1:9/123456789012/dlq",
        notifications_queue_url="http://127.0.0.1:9/123456789012/notifications",
        pipe_dead_letter_queue_url="http://127.0.0.1:9/123456789012/pipe-dlq",
    )
    path = tmp_path / "local.json"
    path.write_text(info.to_json())
    return path


def test_no_stack_talking_command_imports_the_emulator(unreachable_stack: Path) -> None:
    # Given a stack that answers nothing, when each command runs in a fresh interpreter
    env = {
        **os.environ,
        "TASKRAIL_STATE_FILE": str(unreachable_stack),
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "lambdas")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(FORBIDDEN), json.dumps(COMMANDS)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    # Then every command ran, and none loaded moto, the local stack's emulators or the CDK app
    assert list(loaded) == [" ".join(args) for args in COMMANDS]
    assert {command: modules for command, modules in loaded.items() if modules} == {}


def test_the_probe_sees_the_emulator_when_it_is_imported(unreachable_stack: Path) -> None:
    # The check itself: importing the local stack is seen (so an empty list above means something)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "lambdas")])}
    probe = "import sys, taskrail.local.stack; print(sorted({m.split('.')[0] for m in sys.modules} & {'moto'}))"
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.stdout.strip() == "['moto']", done.stderr
