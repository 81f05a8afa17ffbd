"""Python mutants, made by cosmic-ray (pinned in pyproject's dev extras) in the scratch tree.

cosmic-ray enumerates the mutation sites (``cosmic-ray init`` + ``dump``) and applies one mutant to disk
(``cosmic-ray apply``); this module runs the area's tests itself (its own time limit, the first failing test
recorded) and restores the file. Two choices keep the figures meaningful:

- no mutant inside a type annotation: with pydantic or without ``from __future__ import annotations`` such a
  mutant breaks the import (killed by anything), otherwise it changes nothing;
- cosmic-ray offers up to ten variants of one operator at one place (``+`` → ``-``, ``*``, …); a site counts
  once, with one variant picked by the seed, so a single ``a | b`` does not weigh ten times a condition.

Areas and the tests that cover them (``AREAS``): ``lambdas`` (logic, shared code and task types) by
``tests/unit``; ``workflows`` by ``tests/workflows`` and ``tests/infra``, with ``asl/`` regenerated from the mutated
code first (else the drift check alone would kill every mutant); ``emulator`` (the moto patches of the local
stack, one module per AWS service in ``taskrail/local/services/``) by their tests, ``tests/local/services`` and the
parity tests ``tests/parity`` (each asserts the local stack answers as AWS does).
"""

from __future__ import annotations

import ast
import difflib
import json
import random
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.mutation.common import ROOT, AreaResult, Mutant, Outcome, confirmed_run, log, synth_in, test_env

SKIPPED_OPERATORS = ("core/VariableInserter", "core/VariableReplacer")


@dataclass(frozen=True)
class Area:
    name: str
    modules: tuple[str, ...]  # globs, relative to the tree
    tests: tuple[str, ...]
    regenerate_asl: bool = False


AREAS = (
    Area(
        "lambdas",
        ("lambdas/*/logic.py", "lambdas/task_common/*.py", "lambdas/task_types/*.py"),
        # The contract's import probe runs outside the tree, where the editable install (made for the working
        # tree) answers, never the scratch copy: it fails in any copy, mutant or not.
        (
            "tests/unit",
            "--deselect",
            "tests/unit/test_contract.py::test_the_contract_imports_from_outside_the_repository_with_the_standard_library_only",
        ),
    ),
    Area("workflows", ("workflows/*.py",), ("tests/workflows", "tests/infra"), regenerate_asl=True),
    Area("emulator", ("taskrail/local/services/*.py",), ("tests/local/services", "tests/parity")),
)


@dataclass(frozen=True)
class Site:
    module: str
    operator: str
    occurrence: int
    line: int
    column: int

    @property
    def family(self) -> str:
        """``core/ReplaceBinaryOperator_Add_Sub`` → ``core/ReplaceBinaryOperator_Add``: one per place."""
        parts = self.operator.split("_")
        return "_".join(parts[:2]) if len(parts) > 2 else self.operator


Span = tuple[tuple[int, int], tuple[int, int]]


def _annotation_spans(source: str) -> list[Span]:
    """(start, end) positions, as (line, column), of every type annotation."""
    spans: list[Span] = []
    for node in ast.walk(ast.parse(source)):
        annotation: ast.expr | None = None
        if isinstance(node, ast.arg | ast.AnnAssign):
            annotation = node.annotation
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            annotation = node.returns
        if annotation is not None and annotation.end_lineno is not None and annotation.end_col_offset is not None:
            spans.append(
                ((annotation.lineno, annotation.col_offset), (annotation.end_lineno, annotation.end_col_offset))
            )
    return spans


def _in_annotation(position: tuple[int, int], spans: list[Span]) -> bool:
    return any(start <= position < end for start, end in spans)


def sites(tree: Path, workdir: Path, area: Area) -> list[Site]:
    """Every mutation site cosmic-ray finds in the area's modules, less those in annotations."""
    modules = sorted(
        str(p.relative_to(tree)) for pattern in area.modules for p in tree.glob(pattern) if p.name != "__init__.py"
    )
    config = workdir / f"{area.name}.cosmic-ray.toml"
    session = workdir / f"{area.name}.sqlite"
    session.unlink(missing_ok=True)
    config.write_text(
        "[cosmic-ray]\n"
        f"module-path = {json.dumps(modules)}\n"
        "timeout = 600.0\nexcluded-modules = []\n"
        'test-command = "false"\n'
        '[cosmic-ray.distributor]\nname = "local"\n'
    )
    cosmic_ray = str(Path(sys.executable).with_name("cosmic-ray"))
    subprocess.run([cosmic_ray, "init", str(config), str(session)], cwd=tree, check=True, capture_output=True)
    dump = subprocess.run(
        [cosmic_ray, "dump", str(session)], cwd=tree, check=True, capture_output=True, text=True
    ).stdout
    annotations = {m: _annotation_spans((tree / m).read_text()) for m in modules}
    found = []
    for line in dump.splitlines():
        item, _result = json.loads(line)
        for mutation in item["mutations"]:
            module = str(Path(mutation["module_path"]))
            row, column = mutation["start_pos"]
            if mutation["operator_name"] in SKIPPED_OPERATORS or _in_annotation((row, column), annotations[module]):
                continue
            found.append(Site(module, mutation["operator_name"], mutation["occurrence"], row, column))
    return found


def one_per_place(found: list[Site], seed: int) -> list[Site]:
    rng = random.Random(seed)
    places: dict[tuple[str, int, int, str], list[Site]] = {}
    for site in found:
        places.setdefault((site.module, site.line, site.column, site.family), []).append(site)
    return [rng.choice(variants) for _place, variants in sorted(places.items())]


def _compiles(source: str) -> bool:
    """cosmic-ray's parso-based operators also rewrite a signature's bare ``*``: such a mutant is no program."""
    try:
        compile(source, "<mutant>", "exec")
    except SyntaxError:
        return False
    return True


def _diff(before: str, after: str) -> str:
    changed = [
        line[1:].strip()
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    return " → ".join(changed[:2])


def _ident(site: Site) -> str:
    return f"{site.module}:{site.line}:{site.column} {site.operator}"


def _detail_of(tree: Path, site: Site) -> str:
    """The change one site's mutant makes (its diff line), the file restored after."""
    path = tree / site.module
    before = path.read_text()
    cosmic_ray = str(Path(sys.executable).with_name("cosmic-ray"))
    try:
        subprocess.run(
            [cosmic_ray, "apply", site.module, site.operator, str(site.occurrence)],
            cwd=tree,
            check=True,
            capture_output=True,
        )
        return _diff(before, path.read_text())
    finally:
        path.write_text(before)


def _context(lines: list[str], line: int) -> list[str]:
    """The statement's line and the two either side (1-based ``line``), stripped."""
    return [text.strip() for text in lines[max(line - 3, 0) : line + 2]]


def _old_lines(of: str | None, module: str) -> list[str]:
    if of is None:
        return []
    shown = subprocess.run(["git", "show", f"{of}:{module}"], cwd=ROOT, capture_output=True, text=True, check=False)
    return shown.stdout.splitlines() if shown.returncode == 0 else []


def resolve(
    tree: Path, candidates: list[Site], wanted: list[Mutant], of: str | None = None
) -> tuple[list[Mutant], list[Mutant]]:
    """The mutants of this tree that make the same change as ``wanted`` (idents of commit ``of``): same module and
    operator, same diff line, and among those (one ``except ClientError`` looks like another) the one whose
    surrounding lines are those it had at ``of``, else the nearest; others' edits shift line numbers. Also those of
    ``wanted`` with no such mutant here."""
    found: list[Mutant] = []
    missing: list[Mutant] = []
    for mutant in wanted:
        place, operator = mutant.ident.split(" ", 1)
        module, line, _column = place.rsplit(":", 2)
        before = _context(_old_lines(of, module), int(line))
        now = (tree / module).read_text().splitlines()
        same = [s for s in candidates if s.module == module and s.operator == operator]
        ranked = sorted(same, key=lambda s: (_context(now, s.line) != before, abs(s.line - int(line))))
        for site in ranked:
            if _detail_of(tree, site) == mutant.detail:
                found.append(Mutant(mutant.area, _ident(site)))
                break
        else:
            missing.append(mutant)
            log(f"{mutant.ident} [{mutant.detail}]: no such mutant at this commit (its code changed)")
    return found, missing


def run(
    tree: Path,
    workdir: Path,
    area: Area,
    select: Callable[[list[Mutant]], list[Mutant]],
    seed: int,
    timeout: float,
    wanted: list[Mutant] | None = None,
    tests: tuple[str, ...] | None = None,
    listener: Callable[[AreaResult], None] | None = None,
    of: str | None = None,
) -> AreaResult:
    """One area's mutants, or with ``wanted`` the same changes as those (a re-check of survivors of commit
    ``of``); ``tests`` replaces the area's test selection."""
    env = test_env(workdir)
    area = Area(area.name, area.modules, tests or area.tests, area.regenerate_asl)
    every = sites(tree, workdir, area)
    candidates = one_per_place(every, seed)
    by_ident = {_ident(s): s for s in (candidates if wanted is None else every)}
    result = AreaResult(area.name, area.tests, total=len(candidates), listener=listener)
    if wanted is None:
        chosen = select([Mutant(area.name, ident) for ident in by_ident])
    else:
        chosen, result.missing = resolve(tree, every, wanted, of)
    result.sampled = len(chosen)
    pristine_asl = workdir / "asl-pristine"
    if area.regenerate_asl:
        synth_in(tree, env)
        shutil.rmtree(pristine_asl, ignore_errors=True)
        shutil.copytree(tree / "asl", pristine_asl)
    baseline = confirmed_run(tree, area.tests, env, timeout, result.flaky)
    if not baseline.passed:
        result.baseline_error = f"the tests fail with no mutant: {baseline.first_failure}"
        return result
    cosmic_ray = str(Path(sys.executable).with_name("cosmic-ray"))
    for number, mutant in enumerate(chosen, 1):
        site = by_ident[mutant.ident]
        path = tree / site.module
        before = path.read_text()
        try:
            subprocess.run(
                [cosmic_ray, "apply", site.module, site.operator, str(site.occurrence)],
                cwd=tree,
                check=True,
                capture_output=True,
            )
            mutated = path.read_text()
            detail = _diff(before, mutated)
            if not _compiles(mutated):
                result.invalid.append(Mutant(area.name, mutant.ident, detail))
                result.judged()
                log(f"{area.name} {number}/{len(chosen)} not a program (syntax error), not counted: {mutant.ident}")
                continue
            outcome = _test(tree, area, env, timeout, Mutant(area.name, mutant.ident, detail), result.flaky)
        finally:
            path.write_text(before)
            if area.regenerate_asl:
                shutil.rmtree(tree / "asl")
                shutil.copytree(pristine_asl, tree / "asl")
        result.add(outcome)
        log(f"{area.name} {number}/{len(chosen)} {outcome.verdict} {mutant.ident} [{detail}] ({outcome.seconds:.0f} s)")
    return result


def _test(tree: Path, area: Area, env: dict[str, str], timeout: float, mutant: Mutant, flaky: set[str]) -> Outcome:
    if area.regenerate_asl:
        try:
            synth_in(tree, env)
        except subprocess.CalledProcessError as error:
            return Outcome(mutant, True, f"synth fails ({error.stderr.strip().splitlines()[-1:]})", 0.0)
    verdict = confirmed_run(tree, area.tests, env, timeout, flaky)
    return Outcome(mutant, not verdict.passed, verdict.first_failure, verdict.seconds)
