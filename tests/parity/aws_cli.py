"""The AWS CLI as a client of the local AWS endpoint: ``aws <service> <command> --endpoint-url URL --<option> value``.

The real CLI runs when it is installed (``.venv/bin/aws``, else ``aws`` on the PATH). Without it, the same operation
is sent through botocore, found as the CLI finds it: the operation whose name, in the CLI's hyphenated form
(``botocore.xform_name(name, "-")``), is the command, and each ``--option`` the input member of that hyphenated name.
Either way the answer is the JSON document the CLI prints (``--output json``), and a refusal raises.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
from botocore import xform_name
from botocore.config import Config

from taskrail.local.stack import LOCAL_CREDENTIALS

REGION = "us-east-1"
NO_RETRIES = Config(retries={"max_attempts": 1, "mode": "standard"})


def executable() -> str | None:
    """The AWS CLI this run uses, or None (botocore then sends the CLI's operation)."""
    beside_python = Path(sys.executable).with_name("aws")
    return str(beside_python) if beside_python.exists() else shutil.which("aws")


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
