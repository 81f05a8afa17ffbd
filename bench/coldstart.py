"""3. Cold start and size: each function's init (import of its handler module in a fresh process) against a bare
``import boto3`` in the same run, its deployment bundle's size, and a check that no CDK/jsii code is in a bundle.

Each import runs in a new interpreter with exactly the environment the local stack gives that function's
workers (``FunctionPool.worker_environment``: the template's variables, ``PYTHONPATH`` = the asset folder in
``cdk.out`` + this virtualenv's site-packages, no bytecode written into the asset, as in the read-only
``/var/task``), and the time is taken inside it around ``import_module`` (interpreter start-up excluded, the same
for both). The runs are interleaved (boto3, f1, f2, … repeated) and the median is reported. The bundle is the
asset folder zipped as ``cdk deploy`` uploads it; Powertools and pydantic come from the Powertools layer, which is
not part of the bundle.

Where an init goes: one ``python -X importtime`` run per function, each module's own time summed by top-level package,
for the modules that ``import boto3`` does not load itself (what the function costs beyond the baseline). What init
leaves to the first request is timed too: the tracer, created on the first traced call (the X-Ray SDK and its patch
of botocore), measured right after the import in the same process.

``python -m bench.coldstart`` runs this section alone and prints it (``--runs N``).
"""

from __future__ import annotations

import argparse
import io
import json
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
    "if sys.argv[2:] == ['first-call']:\n"
    "    from task_common.observability import tracer\n"
    "    started = time.perf_counter()\n"
    "    getattr(tracer, 'real', None)\n"
    "    print((time.perf_counter() - started) * 1000)\n"
)
# The modules of the baseline run: an init's import trace is read against them.
MODULES_PROBE = "import json, sys, boto3; print(json.dumps(sorted(sys.modules)))"
# The trace run (-X importtime) also times the AWS clients the init creates (botocore's public create_client),
# whose cost is module code, not an import: it shows as the handler module's own time in the trace.
TRACE_PROBE = (
    "import importlib, json, sys, time\n"
    "import botocore.session\n"
    "create, spent = botocore.session.Session.create_client, []\n"
    "def timed(self, *args, **kwargs):\n"
    "    started = time.perf_counter()\n"
    "    try:\n"
    "        return create(self, *args, **kwargs)\n"
    "    finally:\n"
    "        spent.append((time.perf_counter() - started) * 1000)\n"
    "botocore.session.Session.create_client = timed\n"
    "importlib.import_module(sys.argv[1])\n"
    "print(json.dumps(spent))\n"
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
    # The first traced call's creation of the tracer, which init leaves to the first request.
    first_call_ms: list[float] = field(default_factory=list)
    # Beyond ``import boto3``: own time of the modules it does not load, by top-level package (-X importtime).
    top_imports: list[tuple[str, float]] = field(default_factory=list)
    beyond_boto3_ms: float = float("nan")
    # Each AWS client the init creates (trace run): module code, so part of the handler module's own time.
    client_ms: list[float] = field(default_factory=list)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.import_ms) if self.import_ms else float("nan")

    @property
    def first_call_median_ms(self) -> float:
        return statistics.median(self.first_call_ms) if self.first_call_ms else float("nan")


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


def _import_ms(module: str, env: dict[str, str], cwd: str, *extra: str, first_call: bool = False) -> tuple[float, str]:
    times, stderr = _timings(module, env, cwd, *extra, first_call=first_call)
    return times[0], stderr


def _timings(
    module: str, env: dict[str, str], cwd: str, *extra: str, first_call: bool = False
) -> tuple[list[float], str]:
    completed = subprocess.run(
        [sys.executable, *extra, "-c", IMPORT_TIMER, module, *(["first-call"] if first_call else [])],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"importing {module} failed: {completed.stderr[-1500:]}")
    lines = completed.stdout.strip().splitlines()
    return [float(line) for line in lines[-2 if first_call else -1 :]], completed.stderr


def _trace(module: str, env: dict[str, str], cwd: str) -> tuple[str, list[float]]:
    """``python -X importtime``'s trace of the import, and the time of each AWS client the import created."""
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", TRACE_PROBE, module],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"importing {module} failed: {completed.stderr[-1500:]}")
    clients: list[float] = json.loads(completed.stdout.strip().splitlines()[-1])
    return completed.stderr, clients


def _baseline_modules(env: dict[str, str], cwd: str) -> frozenset[str]:
    completed = subprocess.run(
        [sys.executable, "-c", MODULES_PROBE], env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=True
    )
    return frozenset(json.loads(completed.stdout.strip().splitlines()[-1]))


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


def _top_imports(stderr: str, limit: int = 8, *, besides: frozenset[str] = frozenset()) -> list[tuple[str, float]]:
    """Import time by top-level package (each module's own time, summed), from ``python -X importtime``,
    counting only what the handler's import brought in (not the interpreter's start-up), and of that only the
    modules not in ``besides``."""
    entries = []
    for line in stderr.splitlines():
        match = re.match(r"import time:\s+(\d+)\s+\|\s+\d+\s+\|\s*(\S+)", line)
        if match:
            entries.append((match.group(2), int(match.group(1))))
    names = [name for name, _ in entries]
    first = names.index("site") + 1 if "site" in names else 0
    totals: dict[str, float] = {}
    for name, self_us in entries[first:]:
        if name in besides:
            continue
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
            init, *first_call = _timings(module, envs[spec.name], str(Path(spec.code_path).resolve()), first_call=True)[
                0
            ]
            function.import_ms.append(init)
            function.first_call_ms.extend(first_call)
    boto3_modules = _baseline_modules(envs[first.name], str(Path(first.code_path).resolve()))
    traces: dict[str, str] = {}
    for function in functions:
        spec = by_name[function.name]
        module = spec.handler.rsplit(".", 1)[0]
        traces[function.name], function.client_ms = _trace(module, envs[spec.name], str(Path(spec.code_path).resolve()))
        function.top_imports = _top_imports(traces[function.name], besides=boto3_modules)
        function.beyond_boto3_ms = sum(
            ms for _, ms in _top_imports(traces[function.name], 10_000, besides=boto3_modules)
        )
    slowest = max(functions, key=lambda f: f.median_ms)
    trace = traces[slowest.name]
    paths: dict[str, list[str]] = {}
    for s in specs:
        paths.setdefault(str(Path(s.code_path).resolve()), []).append(s.name)
    bundles = [bundle(Path(p), names) for p, names in paths.items()]
    return ColdStartResult(baseline, functions, bundles, _top_imports(trace), slowest.name)


def lines(result: ColdStartResult, *, target: float) -> list[str]:
    """The section as text: each function's init against ``import boto3`` of the same run, the target, where each
    init goes beyond the baseline, and what it leaves to the first traced call."""
    base = result.baseline_median_ms
    out = [
        f"bare `import boto3`: {base:.0f} ms median (runs: {', '.join(f'{v:.0f}' for v in result.baseline_ms)})",
        f"{'function':<24} {'init':>8} {'x boto3':>8} {'target':>9} {'1st call':>9}  runs (ms)",
    ]
    for function in result.functions:
        ratio = function.median_ms / base
        verdict = "met" if ratio <= target else "missed"
        out.append(
            f"{function.name.removeprefix('taskrail-'):<24} {function.median_ms:>6.0f} ms {ratio:>7.2f}x "
            f"{f'≤{target}x {verdict}':>9} {function.first_call_median_ms:>6.0f} ms  "
            f"{', '.join(f'{v:.0f}' for v in function.import_ms)}"
        )
    out.append("beyond `import boto3` (-X importtime, one run, own time of the modules boto3 does not load):")
    for function in result.functions:
        top = ", ".join(f"{name} {ms:.0f}" for name, ms in function.top_imports)
        clients = (
            f"; {len(function.client_ms)} AWS client(s) created: {sum(function.client_ms):.0f}"
            if function.client_ms
            else ""
        )
        out.append(
            f"  {function.name.removeprefix('taskrail-'):<22} {function.beyond_boto3_ms:>5.0f} ms: {top}{clients}"
        )
    out.append("1st call: what the first traced call adds (the tracer: X-Ray SDK, botocore patched), after init.")
    return out


def main(argv: list[str] | None = None) -> int:
    import os
    from importlib import metadata

    from bench.common import INIT_TARGET, load_average

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="fresh-process imports per function (default 5)")
    args = parser.parse_args(argv)
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    load_before = load_average()
    result = cold_start(runs=args.runs)
    versions = ", ".join(
        f"{name} {metadata.version(name)}" for name in ("boto3", "pydantic", "aws-lambda-powertools", "aws-xray-sdk")
    )
    print("\n".join(lines(result, target=INIT_TARGET)))
    # The layer's Powertools release is infra's pin, held equal to pyproject's by tests/infra/test_lambda_layer.py; the
    # layer's own pydantic and X-Ray SDK are whatever that release bundles (not pinned here).
    print(f"versions (pyproject pins; Powertools is the layer's release): {versions}")
    print(f"load average (1/5/15 min): before {load_before}, after {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
