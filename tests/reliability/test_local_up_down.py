"""`taskrail local up` in the background, used, then `taskrail local down`: nothing is left running. A second
`local up` for the same state file, or on a taken port, is refused at once."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from taskrail.local.accounts import user_client
from taskrail.local.stack import StackInfo
from tests.local_up import LOCAL_CLI, start_local_up


def worker_pids_for(endpoint: str) -> set[int]:
    """awslambdaric worker processes whose environment points at this stack's services."""
    pids = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if b"awslambdaric" not in (proc / "cmdline").read_bytes():
                continue
            if f"AWS_ENDPOINT_URL={endpoint}".encode() in (proc / "environ").read_bytes().split(b"\0"):
                pids.add(int(proc.name))
        except OSError:
            continue
    return pids


def test_local_up_serves_tasks_and_local_down_stops_everything(tmp_path: Path):
    state = tmp_path / "local.json"
    cli = LOCAL_CLI
    log = (tmp_path / "up.log").open("w")
    up = start_local_up(state, log)
    try:
        info = StackInfo.load(state)
        assert info.api_url.startswith("http://127.0.0.1:") and info.console_url.startswith("http://127.0.0.1:")
        client = user_client(info, "alice")
        task_id = client.submit("text.stats", {"text": "up and down"})["taskId"]
        assert client.wait([task_id], timeout=60)[task_id]["status"] == "SUCCEEDED"
        workers = worker_pids_for(info.aws_endpoint_url)
        assert workers, "the functions run as awslambdaric worker processes"

        second = subprocess.run(
            [*cli, "up", "--local-state", str(state)], capture_output=True, text=True, timeout=60, check=False
        )
        print(second.stderr)
        assert second.returncode == 1
        assert f"a local stack is already running (pid {info.pid}" in second.stderr
        assert info.api_url in second.stderr and "taskrail local down" in second.stderr
        assert StackInfo.load(state).pid == info.pid, "the running stack's state file is left as it was"

        down = subprocess.run(
            [*cli, "down", "--local-state", str(state)], capture_output=True, text=True, timeout=60, check=False
        )

        assert down.returncode == 0, down.stderr
        assert up.wait(timeout=60) == 0
        assert not state.exists()
        deadline = time.monotonic() + 10
        while worker_pids_for(info.aws_endpoint_url) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert worker_pids_for(info.aws_endpoint_url) == set(), "orphan worker processes"
    finally:
        if up.poll() is None:
            up.kill()
        log.close()


def test_local_up_on_a_taken_port_exits_at_once_naming_the_port_and_the_option(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        up = subprocess.run(
            [*LOCAL_CLI, "up", "--api-port", "0", "--aws-port", str(port), "--console-port", "0",
             "--local-state", str(tmp_path / "local.json")],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    print(up.stderr)
    assert up.returncode == 1
    assert f"port {port} (--aws-port) is in use by another program" in up.stderr
    assert "--aws-port 0" in up.stderr  # how to choose
    assert not (tmp_path / "local.json").exists()
