"""The local API Gateway in a process of its own (taskrail.local.apigw_process): the same API, guard and SigV4,
served by a child that stops with its parent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from taskrail.local.apigw import ApiDefinition
from taskrail.local.apigw_process import GatewayProcess, GatewaySpec
from taskrail.local.users import ALICE
from tests.local.local_api import provisioned_moto
from tests.local.test_apigw import SESSION, signed_request

REGION = "us-east-1"
HANG_GUARD_SECONDS = 30.0


def _gone(pid: int) -> bool:
    """No such process, or only its zombie (a dead child its reaper has not collected yet)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return True
    return state in ("Z", "X")


def _wait_gone(pid: int) -> bool:
    deadline = time.monotonic() + HANG_GUARD_SECONDS
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.05)
    return _gone(pid)


@pytest.fixture(scope="module")
def served(template: dict[str, Any], template_path: Path) -> Iterator[tuple[GatewaySpec, Any, str]]:
    with provisioned_moto(template, template_path) as moto:
        spec = GatewaySpec(api=ApiDefinition.from_template(template, moto.resolve), aws_endpoint_url=moto.url, port=0,
                           role_credentials={})  # fmt: skip
        yield spec, moto.client("dynamodb"), moto.resources.ref("TasksTable")


def test_the_api_process_stores_a_task_guards_its_listener_and_stops_when_told(
    served: tuple[GatewaySpec, Any, str],
) -> None:
    # Given the template's API served by a child process
    spec, dynamodb, table = served
    gateway = GatewayProcess(spec)
    url = gateway.start()
    try:
        pid = gateway.pid
        assert pid is not None and pid != os.getpid()
        # When alice submits, signed
        answer = signed_request(ALICE, "POST", f"{url}/tasks", {"type": "text.stats", "params": {"text": "a b"}},
                                {"Content-Type": "application/json"})  # fmt: skip
        # Then the task is stored first, in the AWS endpoint's table
        assert answer.status_code == 202, answer.text
        task_id = answer.json()["taskId"]
        item = dynamodb.get_item(TableName=table, Key={"taskId": {"S": task_id}}, ConsistentRead=True)["Item"]
        assert item["status"] == {"S": "QUEUED"}
        # and an unsigned request, or one from a web page, is refused by the child as by the in-process API
        unsigned = SESSION.post(f"{url}/tasks", data=json.dumps({"type": "text.stats"}), timeout=30)
        assert unsigned.status_code == 403
        assert unsigned.json()["message"] == "Missing Authentication Token"
        browser = SESSION.get(f"{url}/tasks", headers={"Origin": "http://evil.example"}, timeout=30)
        assert browser.status_code == 403
        assert gateway.routes() == spec.api.routes()
    finally:
        gateway.stop()
    # When stopped, no API process is left
    assert _wait_gone(pid)


def test_the_api_process_exits_when_its_parent_is_killed(served: tuple[GatewaySpec, Any, str]) -> None:
    # Given a parent process (here: a fresh interpreter) that started the API process
    spec, _dynamodb, _table = served
    code = (
        "import pickle, sys, time\n"
        "from taskrail.local.apigw_process import GatewayProcess\n"
        "gateway = GatewayProcess(pickle.load(sys.stdin.buffer))\n"
        "gateway.start()\n"
        "print(gateway.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    import pickle

    parent = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert parent.stdin is not None and parent.stdout is not None
    parent.stdin.write(pickle.dumps(spec))
    parent.stdin.close()
    child = int(parent.stdout.readline())
    assert not _gone(child)
    # When the parent is killed (no chance to stop anything)
    parent.kill()
    parent.wait(timeout=HANG_GUARD_SECONDS)
    # Then the API process goes too
    assert _wait_gone(child), f"the API process {child} outlived its parent"
