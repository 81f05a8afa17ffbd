"""Starting `taskrail local up` as a user does, in a subprocess, for the tests that need the real command."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import IO

START_DEADLINE = 120
LOCAL_CLI = [sys.executable, "-m", "taskrail.cli", "local"]


def start_local_up(state: Path, log: IO[str]) -> subprocess.Popen[bytes]:
    """`taskrail local up` on free ports, writing its state file at ``state``; returns once the file exists."""
    up = subprocess.Popen(
        [*LOCAL_CLI, "up", "--api-port", "0", "--aws-port", "0", "--console-port", "0", "--time-scale", "0.02",
         "--local-state", str(state)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + START_DEADLINE
    while not state.exists():
        if up.poll() is not None or time.monotonic() >= deadline:
            up.kill()
            log.flush()
            raise AssertionError(f"local up did not write its state file:\n{Path(log.name).read_text()[-3000:]}")
        time.sleep(0.2)
    return up
