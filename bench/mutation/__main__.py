"""`make mutation` = ``python -m bench.mutation``: mutants per area, run against the area's tests, figures and
survivors written to docs/TEST-STRENGTH.md.

    python -m bench.mutation                      # a sample of 15 mutants per area (seed 1)
    python -m bench.mutation --full               # every mutant (hours on 2 cores)
    python -m bench.mutation --areas asl,template --budget 40 --seed 7
    python -m bench.mutation --budget 20 --area-budget lambdas=40,workflows=6 --rev 1a2b3c4
    python -m bench.mutation --areas lambdas --recheck --tests tests/unit/test_strength_models.py

``--recheck`` re-runs the survivors listed in the output's block of each area (the same changes, found again at
this commit even when lines moved), against the area's tests or ``--tests``; the block it writes says which test
kills each now, and the summary counts them with the sample's kills (only while the sample is that block's).
"""

from __future__ import annotations

import argparse
import random
import re
import shlex
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.mutation import asl, python, template
from bench.mutation.common import ROOT, AreaResult, Mutant, log, scratch_tree
from bench.mutation.report import area_block, recheck_block, survivors_of, update

AREA_NAMES = (*(a.name for a in python.AREAS), "asl", "template")
OUTPUT = ROOT / "docs" / "TEST-STRENGTH.md"


def sampler(
    budget: int | None, seed: int, area: str, match: re.Pattern[str] | None = None
) -> Callable[[list[Mutant]], list[Mutant]]:
    def select(every: list[Mutant]) -> list[Mutant]:
        if match is not None:
            every = [m for m in every if match.search(m.ident)]
        if budget is None or budget >= len(every):
            return every
        keep = set(random.Random(f"{seed}:{area}").sample(range(len(every)), budget))
        return [m for i, m in enumerate(every) if i in keep]

    return select


def area_budgets(text: str) -> dict[str, int]:
    """``lambdas=40,workflows=6`` → {"lambdas": 40, "workflows": 6}."""
    pairs = [item.split("=", 1) for item in text.split(",") if item.strip()]
    return {name.strip(): int(value) for name, value in pairs}


def run_area(
    name: str,
    tree: Path,
    workdir: Path,
    args: argparse.Namespace,
    wanted: list[Mutant] | None = None,
    listener: Callable[[AreaResult], None] | None = None,
    of: str | None = None,
) -> AreaResult:
    budget = None if args.full else args.area_budget.get(name, args.budget)
    select = sampler(budget, args.seed, name, args.match)
    tests = tuple(shlex.split(args.tests)) if args.tests else None
    if name == "asl":
        return asl.run(tree, workdir, select, args.timeout, wanted, tests, listener)
    if name == "template":
        return template.run(tree, workdir, select, args.timeout, wanted, tests, listener)
    area = next(a for a in python.AREAS if a.name == name)
    return python.run(tree, workdir, area, select, args.seed, args.timeout, wanted, tests, listener, of)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--areas", default=",".join(AREA_NAMES), help=f"comma-separated, of {', '.join(AREA_NAMES)}")
    parser.add_argument("--budget", type=int, default=15, help="mutants sampled per area (default 15)")
    parser.add_argument(
        "--area-budget", type=area_budgets, default={}, help="per-area budgets, e.g. lambdas=40,workflows=6"
    )
    parser.add_argument(
        "--match",
        type=re.compile,
        help="only the mutants whose id matches this regular expression (re-check survivors)",
    )
    parser.add_argument("--rev", default="HEAD", help="the commit to measure (default HEAD)")
    parser.add_argument("--full", action="store_true", help="every mutant of each area (overrides --budget)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600, help="seconds per test run; over it counts as killed")
    parser.add_argument("--workdir", type=Path, help="scratch folder (default: a new temporary one)")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument(
        "--recheck", action="store_true", help="re-run the survivors of each area's block in --output (newer tests)"
    )
    parser.add_argument("--tests", help="the pytest arguments to run instead of the area's tests (quoted, one string)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.areas.split(",") if n.strip()]
    unknown = sorted(set(names) - set(AREA_NAMES))
    if unknown:
        parser.error(f"unknown area(s): {', '.join(unknown)}")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="taskrail-mutation-"))
    tree, commit = scratch_tree(workdir, args.rev)
    log(f"mutation: commit {commit[:12]}, scratch tree {tree}")
    blocks: dict[str, str] = {}
    failed = False
    for name in names:
        if args.recheck:
            of, wanted = survivors_of(args.output, name)

            def rechecked(partial: AreaResult, key: str = f"{name}_recheck", of: str = of) -> None:
                update(args.output, {**blocks, key: recheck_block(partial, of, commit)})

            result = run_area(name, tree, workdir, args, wanted, rechecked, of)
            print(f"{name:11} re-check: {result.killed}/{len(result.outcomes)} survivors of {of} killed")
            for outcome in result.outcomes:
                print(f"    {outcome.verdict}: {outcome.mutant.ident} {outcome.killed_by}")
            blocks[f"{name}_recheck"] = recheck_block(result, of, commit)
            update(args.output, blocks)
            failed = failed or bool(result.baseline_error)
            continue

        # Written after each mutant, so that a run stopped for time still leaves its figures so far (marked).
        def progressed(partial: AreaResult, key: str = name) -> None:
            update(args.output, {**blocks, key: area_block(partial, commit, args.seed, args.full)})

        result = run_area(name, tree, workdir, args, listener=progressed)
        run = len(result.outcomes)
        if result.baseline_error:
            failed = True
            print(f"{name:11} not measured: {result.baseline_error}")
        else:
            rate = f"{100 * result.killed / run:.1f} %" if run else "n/a"
            print(f"{name:11} killed {result.killed}/{run} ({rate}) of {result.total} mutants; commit {commit[:12]}")
            for survivor in result.survivors:
                print(f"    survived: {survivor.mutant.ident} {survivor.mutant.detail}")
        blocks[name] = area_block(result, commit, args.seed, args.full)
        update(args.output, blocks)
    print(f"wrote {args.output}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
