"""What every mutator shares: the scratch tree, one pytest run per mutant, the result of a mutant."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# One pytest run per mutant: stop at the first failure, fixed order (a mutant's verdict must not depend on a
# seed), no cache writes into the scratch tree.
PYTEST_ARGS = ("-x", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", "--no-header", "-rf")
FAILED_LINE = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.MULTILINE)


@dataclass(frozen=True)
class Mutant:
    area: str
    ident: str  # stable across runs of the same commit: where and what (`ClaimTask.Catch[0]: deleted`)
    detail: str = ""  # a diff line or the value before and after, for the report


@dataclass(frozen=True)
class Outcome:
    mutant: Mutant
    killed: bool
    killed_by: str  # the first failing test, "timeout", or "" for a survivor
    seconds: float

    @property
    def verdict(self) -> str:
        return "killed" if self.killed else "SURVIVED"


@dataclass
class AreaResult:
    area: str
    tests: tuple[str, ...]
    total: int  # mutants generated
    outcomes: list[Outcome] = field(default_factory=list)
    baseline_error: str = ""
    flaky: set[str] = field(default_factory=set)
    invalid: list[Mutant] = field(default_factory=list)  # sampled, but not a program (not counted)
    missing: list[Mutant] = field(default_factory=list)  # re-check: an earlier mutant this commit cannot make
    sampled: int = 0  # mutants chosen to run (valid or not); fewer judged means the run was stopped
    listener: Callable[[AreaResult], None] | None = field(default=None, repr=False, compare=False)

    def add(self, outcome: Outcome) -> None:
        """One more mutant judged; the listener (``make mutation`` writes the report) hears of each."""
        self.outcomes.append(outcome)
        self.judged()

    def judged(self) -> None:
        if self.listener is not None:
            self.listener(self)

    @property
    def stopped(self) -> bool:
        return len(self.outcomes) + len(self.invalid) < self.sampled

    @property
    def killed(self) -> int:
        return sum(o.killed for o in self.outcomes)

    @property
    def survivors(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.killed]


def scratch_tree(workdir: Path, rev: str = "HEAD") -> tuple[Path, str]:
    """A fresh copy of a committed tree (``git archive``) and its commit id."""
    commit = subprocess.run(
        ["git", "rev-parse", "--verify", f"{rev}^{{commit}}"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    tree = workdir / "tree"
    if tree.exists():
        shutil.rmtree(tree)
    tree.mkdir(parents=True)
    archive = workdir / "tree.tar"
    subprocess.run(["git", "archive", "--format=tar", "-o", str(archive), commit], cwd=ROOT, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    archive.unlink()
    # What `make setup` installed beside the sources (the pinned Node.js and CDK CLI), as in the working tree.
    if (ROOT / "node_modules").is_dir():
        (tree / "node_modules").symlink_to(ROOT / "node_modules")
    # The functions' layer (infra/layer.py; a synth refuses to run without it).
    if (ROOT / "build" / "lambda-layer").is_dir():
        (tree / "build").mkdir(exist_ok=True)
        (tree / "build" / "lambda-layer").symlink_to(ROOT / "build" / "lambda-layer")
    return tree, commit


def test_env(workdir: Path, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKRAIL_ASL_DIR", "TASKRAIL_TEMPLATE"))}
    env.update(
        TASKRAIL_CDK_OUT=str(workdir / "cdk.out"),
        PYTHONDONTWRITEBYTECODE="1",
        JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20",
        AWS_EC2_METADATA_DISABLED="true",
    )
    env.update(overrides)
    return env


@dataclass(frozen=True)
class TestRun:
    passed: bool
    first_failure: str
    seconds: float
    output: str


def run_pytest(tree: Path, tests: tuple[str, ...], env: dict[str, str], timeout: float) -> TestRun:
    """Runs the tests in the scratch tree; a run over its time limit counts as failed ("timeout")."""
    start = time.monotonic()
    command = [sys.executable, "-m", "pytest", *PYTEST_ARGS, *tests]
    try:
        proc = subprocess.run(command, check=False, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return TestRun(False, "timeout", time.monotonic() - start, "")
    output = proc.stdout + proc.stderr
    failure = FAILED_LINE.search(output)
    first = failure.group(1) if failure else ("" if proc.returncode == 0 else f"exit status {proc.returncode}")
    return TestRun(proc.returncode == 0, first, time.monotonic() - start, output)


def confirmed_run(tree: Path, tests: tuple[str, ...], env: dict[str, str], timeout: float, flaky: set[str]) -> TestRun:
    """A failure counts once the failing test fails again on its own; a test that then passes is noted as flaky
    (this machine is shared, and a timing-sensitive test must not make a mutant look killed) and the tests run
    once more, whose verdict stands."""
    first = run_pytest(tree, tests, env, timeout)
    if first.passed or first.first_failure == "timeout" or "::" not in first.first_failure:
        return first
    again = run_pytest(tree, (first.first_failure,), env, timeout)
    if not again.passed:
        return first
    flaky.add(first.first_failure)
    return run_pytest(tree, tests, env, timeout)


def synth_in(tree: Path, env: dict[str, str]) -> Path:
    """Synthesizes the scratch tree's app and regenerates its asl/; returns the template path."""
    subprocess.run([sys.executable, "-m", "infra.synth"], cwd=tree, env=env, check=True, capture_output=True, text=True)
    return Path(env["TASKRAIL_CDK_OUT"]) / "taskrail.template.json"


def pick(
    every: list[Mutant], select: Callable[[list[Mutant]], list[Mutant]], wanted: list[Mutant] | None
) -> tuple[set[str], list[Mutant]]:
    """The idents to run: a sample of ``every``, or (a re-check) those of ``wanted``; and the wanted ones this
    commit has no mutant for (the definition or template changed there)."""
    if wanted is None:
        return {m.ident for m in select(every)}, []
    known = {m.ident for m in every}
    return {m.ident for m in wanted if m.ident in known}, [m for m in wanted if m.ident not in known]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
