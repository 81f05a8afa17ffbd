"""FunctionPool.reload_code: the next invocations run the new code; one running at the reload ends on the old."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskrail.local.functions import FunctionPool, FunctionSpec

pytestmark = pytest.mark.timeout(90)  # hang guard

DEADLINE_SECONDS = 30.0
HANDLER = """
import os, time

def handler(event, context):
    if event.get("hold"):
        while not os.path.exists(event["hold"]):
            time.sleep(0.01)
    return {"version": VERSION, "pid": os.getpid()}
"""


def code(folder: Path, version: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "app.py").write_text(f"VERSION = {version!r}\n{HANDLER}")
    return folder


def spec(code_path: Path) -> FunctionSpec:
    return FunctionSpec(
        logical_id="EchoFunction",
        name="test-echo",
        arn="arn:aws:lambda:us-east-1:123456789012:function:test-echo",
        handler="app.handler",
        timeout_seconds=30,
        memory_mb=128,
        environment={},
        code_path=str(code_path),
    )


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[FunctionPool]:
    with FunctionPool({"Echo": spec(code(tmp_path / "v1", "v1"))}, "http://127.0.0.1:1", concurrency=2) as running:
        yield running


def invoke(pool: FunctionPool, event: dict[str, str] | None = None) -> dict[str, str]:
    return dict(json.loads(pool.invoke("test-echo", json.dumps(event or {}).encode()).payload))


def test_after_a_reload_invocations_run_the_new_code_and_a_running_one_ends_on_the_old(pool, tmp_path: Path):
    # Given an invocation running on the old code, held until the test lets it go
    assert invoke(pool)["version"] == "v1"
    release = tmp_path / "release"
    held: list[dict[str, str]] = []
    thread = threading.Thread(target=lambda: held.append(invoke(pool, {"hold": str(release)})), daemon=True)
    thread.start()
    deadline = time.monotonic() + DEADLINE_SECONDS
    while pool.stats()["test-echo"].busy == 0:
        assert time.monotonic() < deadline, "the held invocation did not start"
        time.sleep(0.01)

    # When the function's code is reloaded
    reloaded = pool.reload_code({"Echo": str(code(tmp_path / "v2", "v2"))})

    # Then the next invocations run the new code, the held one ends on the old, and then its worker is replaced
    assert reloaded == ["test-echo"]
    assert invoke(pool)["version"] == "v2"
    release.touch()
    thread.join(DEADLINE_SECONDS)
    assert held and held[0]["version"] == "v1"
    old_pid = int(held[0]["pid"])
    deadline = time.monotonic() + DEADLINE_SECONDS
    while old_pid in pool.worker_pids("test-echo")["test-echo"]:
        assert time.monotonic() < deadline, "the old worker was not replaced"
        time.sleep(0.01)
    assert {invoke(pool)["version"] for _ in range(4)} == {"v2"}
    assert pool.reload_code({"Echo": str(tmp_path / "v2")}) == []  # the same code: nothing restarts
