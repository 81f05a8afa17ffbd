"""The AWS CLI as a client of the local AWS endpoint: ``aws <service> <command> --endpoint-url URL --<option> value``.

The real CLI runs when it is installed: the project's ``.venv/bin/aws`` first, then one beside the running Python,
then ``aws`` on the PATH. awscli is not a dependency of the project (pyproject.toml pins none), so which CLI runs, if
any, depends on the machine: :func:`describe` names it, the parity run's header prints it
(tests/parity/conftest.py) and each CLI case prints it. Without a CLI, the same operation is sent through botocore,
found as the CLI finds it: the operation whose name, in the CLI's hyphenated form
(``botocore.xform_name(name, "-")``), is the command, and each ``--option`` the input member of that hyphenated name.
Either way the answer is the JSON document the CLI prints (``--output json``), and a refusal raises.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import botocore
from botocore import xform_name
from botocore.config import Config

from taskrail.local.stack import LOCAL_CREDENTIALS

REGION = "us-east-1"
NO_RETRIES = Config(retries={"max_attempts": 1, "mode": "standard"})


PROJECT_VENV_CLI = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "aws"


def executable() -> str | None:
    """The AWS CLI this run uses, or None (botocore then sends the CLI's operation)."""
    for candidate in (PROJECT_VENV_CLI, Path(sys.executable).with_name("aws")):
        if candidate.exists():
            return str(candidate)
    return shutil.which("aws")


@functools.cache
def describe() -> str:
    """Which client the CLI cases use: ``aws-cli/1.45.11 Python/... botocore/... at /path``, or the fallback."""
    cli = executable()
    if cli is None:
        return f"no AWS CLI found: botocore {botocore.__version__} sends the CLI's operations"
    done = subprocess.run([cli, "--version"], capture_output=True, text=True, timeout=60, check=False)
    version = (done.stdout or done.stderr).strip() or f"version unknown (exit {done.returncode})"
    return f"{version} at {cli}"


def run(endpoint: str, service: str, command: str, **options: str) -> Any:
    """``aws SERVICE COMMAND --endpoint-url ENDPOINT --OPTION VALUE ...`` (options given as ``execution_arn=...``)."""
    cli = executable()
    if cli is not None:
        return _real_cli(cli, endpoint, service, command, options)
    return _botocore(endpoint, service, command, options)


def _real_cli(cli: str, endpoint: str, service: str, command: str, options: dict[str, str]) -> Any:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": REGION,
        "AWS_PAGER": "",
    }
    if LOCAL_CREDENTIALS.get("aws_session_token"):
        env["AWS_SESSION_TOKEN"] = LOCAL_CREDENTIALS["aws_session_token"]
    arguments = [
        f"--{name.replace('_', '-')}" if i % 2 == 0 else value for name, value in options.items() for i in (0, 1)
    ]
    done = subprocess.run(
        [cli, service, command, "--endpoint-url", endpoint, "--output", "json", *arguments],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"aws {service} {command} failed ({done.returncode}): {done.stderr[-500:]}")
    return json.loads(done.stdout) if done.stdout.strip() else {}


def _botocore(endpoint: str, service: str, command: str, options: dict[str, str]) -> Any:
    session = boto3.Session(region_name=REGION, **LOCAL_CREDENTIALS)
    client = session.client(service, endpoint_url=endpoint, config=NO_RETRIES)  # type: ignore[call-overload]
    model = client.meta.service_model
    [operation] = [name for name in model.operation_names if xform_name(name, "-") == command]
    members = model.operation_model(operation).input_shape.members if options else {}
    by_option = {xform_name(member, "-"): member for member in members}
    parameters = {by_option[name.replace("_", "-")]: value for name, value in options.items()}
    answer = getattr(client, xform_name(operation))(**parameters)
    answer.pop("ResponseMetadata", None)
    return json.loads(json.dumps(answer, default=str))
