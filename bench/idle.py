"""Idle CPU of `taskrail local up`: the CPU time the stack process and its workers use over a window with no work.

The stack runs as a user starts it (a subprocess of `taskrail local up` on free ports, no console traffic). Once
its state file exists and a short settling time has passed, the CPU time (user + system, from ``/proc``) of the
stack process and of every descendant (the awslambdaric workers) is read at the start and the end of the window.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import ROOT, Figure

IDLE = "7. Idle local stack"
TARGET_PERCENT = 2.0  # ≈ 0 %: what a laptop does not notice
WINDOW_S = 10.0
SETTLE_S = 3.0
START_DEADLINE_S = 180.0
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class IdleResult:
    window_s: float
    cpu_s: float  # the stack process and its descendants
    stack_cpu_s: float  # the stack process alone
    processes: int

    @property
    def percent_of_a_core(self) -> float:
        return 100.0 * self.cpu_s / self.window_s

    def figure(self) -> Figure:
        return Figure(
            IDLE,
            f"CPU over {self.window_s:.0f} s idle ({self.processes} processes)",
            f"{self.percent_of_a_core:.1f} % of a core ({self.cpu_s:.2f} s CPU)",
            f"≤ {TARGET_PERCENT:.0f} % of a core",
            self.percent_of_a_core <= TARGET_PERCENT,
        )


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(parent, []).append(int(proc.name))
    return tree


def _cpu_seconds(pid: int) -> float:
    """utime + stime of one process (its own, not its reaped children's)."""
    try:
        fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _tree_cpu(root: int) -> tuple[float, float, int]:
    """(CPU of root and its descendants, CPU of root, how many processes)."""
    tree = _children()
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo += tree.get(pid, [])
    return sum(_cpu_seconds(p) for p in pids), _cpu_seconds(root), len(pids)


def idle_cpu(window_s: float = WINDOW_S, settle_s: float = SETTLE_S) -> IdleResult:
    """Start `taskrail local up`, let it settle, measure its CPU over ``window_s``, stop it."""
    with tempfile.TemporaryDirectory(prefix="taskrail-idle-") as scratch:
        state = Path(scratch) / "local.json"
        command = [sys.executable, "-m", "taskrail.cli", "local", "up", "--api-port", "0", "--aws-port", "0",
                   "--console-port", "0", "--local-state", str(state)]  # fmt: skip
        log = Path(scratch) / "up.log"
        with log.open("w") as output:
            up = subprocess.Popen(command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + START_DEADLINE_S
            while not state.exists():
                if up.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"`taskrail local up` did not start:\n{log.read_text()[-2000:]}")
                time.sleep(0.2)
            time.sleep(settle_s)
            cpu_0, stack_0, _ = _tree_cpu(up.pid)
            started = time.monotonic()
            time.sleep(window_s)
            cpu_1, stack_1, processes = _tree_cpu(up.pid)
            elapsed = time.monotonic() - started
        finally:
            up.terminate()
            try:
                up.wait(timeout=60)
            except subprocess.TimeoutExpired:
                up.kill()
    return IdleResult(window_s=elapsed, cpu_s=cpu_1 - cpu_0, stack_cpu_s=stack_1 - stack_0, processes=processes)


if __name__ == "__main__":
    result = idle_cpu()
    print(
        f"idle local up: {result.percent_of_a_core:.1f} % of a core over {result.window_s:.1f} s "
        f"({result.cpu_s:.2f} s CPU; stack process {result.stack_cpu_s:.2f} s; {result.processes} processes)"
    )
