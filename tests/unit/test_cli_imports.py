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
# What a command never needs either: typer's own parameter coercion (pydantic: taskrail/cli_params.py coerces the
# CLI's plain parameters), boto3 (botocore's session is enough: taskrail/aws_clients.py) and requests (the
# client speaks urllib3, which botocore loads anyway).
NOT_NEEDED = ("pydantic", "boto3", "requests")
# What only an AWS call needs: a command that talks to the API alone makes no botocore client.
AWS_CLIENT = ("botocore.session", "botocore.client")
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


def loaded_by(commands: list[list[str]], forbidden: tuple[str, ...], state_file: Path) -> dict[str, list[str]]:
    """The ``forbidden`` modules loaded after each of ``commands`` (run in turn in one fresh interpreter)."""
    env = {
        **os.environ,
        "TASKRAIL_STATE_FILE": str(state_file),
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "lambdas")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(forbidden), json.dumps(commands)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    loaded: dict[str, list[str]] = json.loads(done.stdout.strip().splitlines()[-1])
    assert list(loaded) == [" ".join(args) for args in commands]  # every command ran
    return {command: modules for command, modules in loaded.items() if modules}


def test_no_stack_talking_command_imports_the_emulator(unreachable_stack: Path) -> None:
    # Given a stack that answers nothing, when each command runs in a fresh interpreter
    loaded = loaded_by(COMMANDS, FORBIDDEN + NOT_NEEDED, unreachable_stack)
    # Then none loaded moto, the local stack's emulators or the CDK app, pydantic or boto3
    assert loaded == {}


def test_a_command_that_talks_to_the_api_alone_makes_no_aws_client(unreachable_stack: Path) -> None:
    # Given the commands that need the API only (those before `replay` in COMMANDS also fail before any AWS call
    # against this stack; these make none in any case)
    api_only = [args for args in COMMANDS if args[0] in ("--help", "status", "list", "cancel", "result", "submit")]
    api_only.append(["logs", "t-1"])  # locally the workers' log files: no AWS call
    # When they run, then none of them loaded botocore's session or client
    assert loaded_by(api_only, AWS_CLIENT, unreachable_stack) == {}


def test_the_probe_sees_an_aws_client_when_one_is_made(unreachable_stack: Path) -> None:
    # The check itself: `dlq` reads the queue through botocore, and the probe sees it
    assert loaded_by([["dlq"]], AWS_CLIENT, unreachable_stack) == {"dlq": ["botocore.client", "botocore.session"]}


def test_the_probe_sees_the_emulator_when_it_is_imported(unreachable_stack: Path) -> None:
    # The check itself: importing the local stack is seen (so an empty list above means something)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "lambdas")])}
    probe = "import sys, taskrail.local.stack; print(sorted({m.split('.')[0] for m in sys.modules} & {'moto'}))"
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.stdout.strip() == "['moto']", done.stderr
