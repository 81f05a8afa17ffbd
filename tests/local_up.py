"""Starting `taskrail local up` as a user does, in a subprocess, for the tests that need the real command."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

START_DEADLINE = 180
LOCAL_CLI = [sys.executable, "-m", "taskrail.cli", "local"]
ROOT = Path(__file__).resolve().parents[1]
#: What a scratch copy of the project needs to synthesize and run the stack (node_modules is linked, not copied).
PROJECT_PARTS = ("taskrail", "infra", "workflows", "lambdas", "asl", "package.json", "cdk.json", "pyproject.toml")


def start_local_up(
    state: Path,
    log: IO[str],
    *,
    args: Sequence[str] = (),
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """`taskrail local up` on free ports, writing its state file at ``state``; returns once the file exists.

    Without code reload unless ``args`` asks for it (``--reload``): a test's stack should not follow edits made
    in the tree by whatever else runs meanwhile."""
    reload = [] if "--reload" in args else ["--no-reload"]
    up = subprocess.Popen(
        [*LOCAL_CLI, "up", "--api-port", "0", "--aws-port", "0", "--console-port", "0", "--time-scale", "0.02",
         "--local-state", str(state), *reload, *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        env=env,
    )  # fmt: skip
    deadline = time.monotonic() + START_DEADLINE
    while not state.exists():
        if up.poll() is not None or time.monotonic() >= deadline:
            up.kill()
            log.flush()
            raise AssertionError(f"local up did not write its state file:\n{Path(log.name).read_text()[-3000:]}")
        time.sleep(0.2)
    return up


def stop_local_up(up: subprocess.Popen[bytes], timeout: float = 60) -> int:
    """SIGTERM, as `taskrail local down` sends; the exit status (killed after ``timeout``)."""
    if up.poll() is None:
        up.terminate()
    try:
        return up.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        up.kill()
        return up.wait()


def scratch_project(destination: Path) -> Path:
    """A copy of this checkout's sources at ``destination`` (edits there never touch the tree)."""
    destination.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".mypy_cache")
    for part in PROJECT_PARTS:
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, destination / part, ignore=ignore)
        elif source.exists():
            shutil.copy2(source, destination / part)
    (destination / "node_modules").symlink_to(ROOT / "node_modules")
    # The functions' layer, as `make setup` built it (infra/layer.py; a synth refuses to run without it).
    (destination / "build").mkdir(exist_ok=True)
    (destination / "build" / "lambda-layer").symlink_to(ROOT / "build" / "lambda-layer")
    return destination
