"""What every benchmark shares: figures with their targets, percentiles, and a description of the machine."""

from __future__ import annotations

import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPORT = "docs/BENCHMARKS.md"  # make bench's report, relative to ROOT
PACKAGES = (
    "boto3",
    "botocore",
    "moto",
    "aws-lambda-powertools",
    "pydantic",
    "awslambdaric",
    "airspeed-ext",
    "aws-cdk-lib",
    "requests",
)


#: Issue 14's cold-start target: a function's init at most this many times a bare `import boto3` of the same run.
INIT_TARGET = 1.5


@dataclass(frozen=True)
class Figure:
    """One measured figure, and the target it is held against (reported, never asserted)."""

    section: str
    name: str
    value: str
    target: str = ""
    met: bool | None = None
    note: str = ""

    @property
    def verdict(self) -> str:
        return {True: "met", False: "MISSED", None: ""}[self.met]


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (q in 0..100); nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def fmt_ms(value: float) -> str:
    return "n/a" if math.isnan(value) else (f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms")


def fmt_ratio(value: float) -> str:
    return "n/a" if math.isnan(value) or math.isinf(value) else f"{value:.2f}x"


def log(message: str) -> None:
    """Progress on stderr, so a long run shows where it is."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@contextmanager
def timed(label: str) -> Iterator[None]:
    started = time.perf_counter()
    log(f"{label} …")
    try:
        yield
    finally:
        log(f"{label}: {time.perf_counter() - started:.1f} s")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GB"
    except (OSError, ValueError):
        pass
    return "unknown"


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def system_info() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    commit = _git("rev-parse", "--short", "HEAD")
    # The report this run rewrites is left out: a second run would otherwise call its own commit dirty.
    dirty = " (with uncommitted changes)" if _git("status", "--porcelain", "--", ".", f":(exclude){REPORT}") else ""
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{_cpu_model()}, {os.cpu_count()} cores, {_memory_gb()} RAM",
        "os": platform.platform(),
        "python": platform.python_version(),
        "commit": f"{commit}{dirty}" if commit else "unknown",
        "versions": ", ".join(f"{k} {v}" for k, v in versions.items()),
        "cores": str(os.cpu_count() or 0),
        "load": load_average(),
    }


def load_average() -> str:
    """Other work on the machine moves every figure: say how busy it was."""
    try:
        return " / ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "unknown"
