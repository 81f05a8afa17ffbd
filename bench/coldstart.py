"""3. Cold start and size: each function's init (import of its handler module in a fresh process) against a bare
``import boto3`` in the same run, its deployment bundle's size, and a check that no CDK/jsii code is in a bundle.

Each import runs in a new interpreter with exactly the environment the local stack gives that function's
workers (``FunctionPool.worker_environment``: the template's variables, ``PYTHONPATH`` = the asset folder in
``cdk.out`` + this virtualenv's site-packages, no bytecode written into the asset, as in the read-only
``/var/task``), and the time is taken inside it around ``import_module`` (interpreter start-up excluded, the same
for both). The runs are interleaved (boto3, f1, f2, … repeated) and the median is reported. The bundle is the
asset folder zipped as ``cdk deploy`` uploads it; Powertools and pydantic come from the Powertools layer, which is
not part of the bundle.
"""

from __future__ import annotations

import io
import re
import statistics
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

IMPORT_TIMER = (
    "import importlib, sys, time\n"
    "started = time.perf_counter()\n"
    "importlib.import_module(sys.argv[1])\n"
    "print((time.perf_counter() - started) * 1000)\n"
)
BASELINE = "boto3"
FORBIDDEN_PARTS = frozenset({"aws_cdk", "jsii", "constructs", "cdk_nag", "node_modules", "cdk.out", "infra"})
FORBIDDEN_IMPORT = re.compile(r"^\s*(?:from|import)\s+(aws_cdk|jsii|constructs|cdk_nag|infra)\b", re.MULTILINE)


@dataclass
class FunctionColdStart:
    name: str
    handler: str
    memory_mb: int
    import_ms: list[float] = field(default_factory=list)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.import_ms) if self.import_ms else float("nan")


@dataclass
class Bundle:
    path: str
    functions: list[str]
    files: int
    unzipped_bytes: int
    zipped_bytes: int
    cdk_code: list[str]


@dataclass
class ColdStartResult:
    baseline_ms: list[float]
    functions: list[FunctionColdStart]
    bundles: list[Bundle]
    top_imports: list[tuple[str, float]] = field(default_factory=list)  # of the slowest handler, cumulative ms
    slowest: str = ""

    @property
    def baseline_median_ms(self) -> float:
        return statistics.median(self.baseline_ms) if self.baseline_ms else float("nan")


def _function_specs(template: dict[str, Any] | None) -> list[Any]:
    from taskrail.local.inprocess import in_process_platform, quiet

    with quiet(), in_process_platform(template) as platform:
        return list(platform.resources.functions.values())


def _import_ms(module: str, env: dict[str, str], cwd: str, *extra: str) -> tuple[float, str]:
    completed = subprocess.run(
        [sys.executable, *extra, "-c", IMPORT_TIMER, module],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"importing {module} failed: {completed.stderr[-1500:]}")
    return float(completed.stdout.strip().splitlines()[-1]), completed.stderr


def bundle(path: Path, functions: list[str]) -> Bundle:
    buffer, files, unzipped, cdk = io.BytesIO(), 0, 0, []
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            relative = file.relative_to(path)
            data = file.read_bytes()
            archive.writestr(str(relative), data)
            files, unzipped = files + 1, unzipped + len(data)
            if FORBIDDEN_PARTS & set(relative.parts) or file.suffix in (".jsii", ".tgz"):
                cdk.append(str(relative))
            elif file.suffix == ".py" and FORBIDDEN_IMPORT.search(data.decode("utf-8", "replace")):
                cdk.append(f"{relative} (imports CDK)")
    return Bundle(str(path), functions, files, unzipped, len(buffer.getvalue()), cdk)


def _top_imports(stderr: str, limit: int = 8) -> list[tuple[str, float]]:
    """Import time by top-level package (each module's own time, summed), from ``python -X importtime``,
    counting only what the handler's import brought in (not the interpreter's start-up)."""
    entries = []
    for line in stderr.splitlines():
        match = re.match(r"import time:\s+(\d+)\s+\|\s+\d+\s+\|\s*(\S+)", line)
        if match:
            entries.append((match.group(2), int(match.group(1))))
    names = [name for name, _ in entries]
    first = names.index("site") + 1 if "site" in names else 0
    totals: dict[str, float] = {}
    for name, self_us in entries[first:]:
        package = name.split(".")[0]
        totals[package] = totals.get(package, 0.0) + self_us / 1000
    return sorted(totals.items(), key=lambda kv: -kv[1])[:limit]


def cold_start(*, runs: int = 5, template: dict[str, Any] | None = None) -> ColdStartResult:
    from taskrail.local.functions import FunctionPool

    specs = _function_specs(template)
    pool = FunctionPool({s.logical_id: s for s in specs}, "http://127.0.0.1:9", concurrency=1)
    envs = {s.name: pool.worker_environment(s.name) for s in specs}
    functions = [FunctionColdStart(s.name, s.handler, s.memory_mb) for s in specs]
    by_name = {s.name: s for s in specs}
    baseline: list[float] = []
    first = specs[0]
    for _ in range(runs):
        baseline.append(_import_ms(BASELINE, envs[first.name], str(Path(first.code_path).resolve()))[0])
        for function in functions:
            spec = by_name[function.name]
            module = spec.handler.rsplit(".", 1)[0]
            function.import_ms.append(_import_ms(module, envs[spec.name], str(Path(spec.code_path).resolve()))[0])
    slowest = max(functions, key=lambda f: f.median_ms)
    spec = by_name[slowest.name]
    _, trace = _import_ms(
        spec.handler.rsplit(".", 1)[0], envs[spec.name], str(Path(spec.code_path).resolve()), "-X", "importtime"
    )
    paths: dict[str, list[str]] = {}
    for s in specs:
        paths.setdefault(str(Path(s.code_path).resolve()), []).append(s.name)
    bundles = [bundle(Path(p), names) for p, names in paths.items()]
    return ColdStartResult(baseline, functions, bundles, _top_imports(trace), slowest.name)
