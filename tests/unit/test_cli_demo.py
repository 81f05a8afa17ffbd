"""`python -m taskrail.demo`: its help, and the tries it shows for a task whose work failed before it succeeded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from taskrail import demo

ROOT = Path(__file__).resolve().parents[2]
HISTORIES = ROOT / "tests" / "unit" / "fixtures" / "histories"


def test_demo_help_prints_the_options_and_runs_nothing():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "lambdas")])}
    done = subprocess.run(
        [sys.executable, "-m", "taskrail.demo", "--help"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: python -m taskrail.demo")
    assert "--keep" in done.stdout
    assert "local stack up" not in done.stdout + done.stderr


def test_a_task_that_failed_twice_then_succeeded_shows_three_tries_in_one_execution():
    # Given the recorded history of an execution whose ProcessTask failed twice and succeeded on the third try
    events = json.loads((HISTORIES / "retried.json").read_text())["events"]
    item = demo.Expectation("flaky (2 failures)", "diagnostic.flaky", {"failures": 2}, "SUCCEEDED")
    item.final = {"status": "SUCCEEDED", "attempt": 1, "resultLocation": "s3://results/tasks/t/result.json"}

    # When the demo counts its tries
    item.tries = demo.tries_of(events)

    # Then the summary says 3 tries in 1 execution (it said "attempt 1")
    console = Console(width=200, record=True)
    console.print(demo.summary_table([item]))
    row = next(line for line in console.export_text().splitlines() if "flaky" in line)
    cells = [cell.strip() for cell in row.split("│") if cell.strip()]
    assert cells[:6] == ["flaky (2 failures)", "diagnostic.flaky", "SUCCEEDED", "SUCCEEDED", "3", "1"]


def test_a_happy_execution_is_one_try():
    events = json.loads((HISTORIES / "happy.json").read_text())["events"]

    assert demo.tries_of(events) == 1


def test_keep_leaves_the_stack_up_with_its_state_file_until_sigterm(tmp_path, monkeypatch):
    import signal
    import threading

    from taskrail.local import state

    monkeypatch.setattr(state, "STATE_FILE", tmp_path / "local.json")
    written = threading.Event()

    class Stack:
        paths: list = []

        def write_state(self, path):
            self.paths.append(path)
            written.set()

    def terminate_once_written():
        assert written.wait(timeout=60)
        os.kill(os.getpid(), signal.SIGTERM)

    handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    killer = threading.Thread(target=terminate_once_written)
    killer.start()
    try:
        demo.explore(Stack())  # returns once SIGTERM arrived (a hang guard: pytest's timeout)
    finally:
        killer.join()
        for number, handler in handlers.items():
            signal.signal(number, handler)

    assert Stack.paths == [tmp_path / "local.json"]  # `taskrail` commands find the demo's stack
