"""`taskrail local up` in the background, used, then `taskrail local down`: nothing is left running."""

from __future__ import annotations

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
