"""The asl area's sample, each mutant run against the tests aimed at the state it edits (a quick verdict).

    python -m bench.mutation.aimed --budget 20 --seed 1      # the same sample as `--areas asl --budget 20 --seed 1`

A whole-area run gives each mutant all of ``tests/workflows`` (on a loaded 2-core machine, 15-40 min per surviving
mutant). Here each mutant runs only the rows of the error-path tables for its state (``-k <State>``), and for a
condition or result-path edit the workflow tests that reach the condition. A mutant these tests kill is killed by
the area (they are part of it); one that survives them is reported as "survived its aimed tests", not as a
survivor of the area, and needs the whole area (``--areas asl --recheck``) before it is called one. Each kill is
then shown to pass without the mutant (the killing test run alone on the unmutated definitions).
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
from pathlib import Path

from bench.mutation import asl
from bench.mutation.__main__ import sampler
from bench.mutation.common import confirmed_run, log, run_pytest, scratch_tree, synth_in, test_env

WORKFLOWS = "tests/workflows"
IDENT = re.compile(r"^(?P<workflow>[a-z_.]+)/(?P<state>[A-Za-z]+)")


def aimed(ident: str) -> tuple[str, ...]:
    """The pytest arguments aimed at the mutant's state."""
    match = IDENT.match(ident)
    if match is None:
        return (WORKFLOWS,)
    workflow, state = match["workflow"], match["state"]
    behaviour = ": flip-condition" in ident or ": drop-condition" in ident or ": result-path" in ident
    if workflow == "task_lifecycle.express":
        rows = "recording" if state == "RecordTaskFailed" else state
        timeouts = (f"{WORKFLOWS}/test_state_timeouts_express.py",) if state == "ProcessTask" else ()
        files = (f"{WORKFLOWS}/test_error_paths_express.py", *timeouts, f"{WORKFLOWS}/test_lifecycle_types.py")
        return (*files, "-k", f"{rows} or timeouts or lifecycle_types")
    if workflow == "task_lifecycle":
        extra = (f"{WORKFLOWS}/test_cancellation.py", f"{WORKFLOWS}/test_task_lifecycle.py") if behaviour else ()
        selector = f"{state} or cancel or lifecycle" if behaviour else state
        return (f"{WORKFLOWS}/test_error_paths.py", *extra, "-k", selector)
    if workflow == "reconciler":
        return (f"{WORKFLOWS}/test_state_timeouts.py", f"{WORKFLOWS}/test_reconciler.py")
    if workflow == "failure_recorder":
        return (f"{WORKFLOWS}/test_error_paths_recorder.py", f"{WORKFLOWS}/test_failure_path.py")
    return (WORKFLOWS,)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rev", default="HEAD")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--results", type=Path, help="a JSON file of the verdicts, rewritten after each mutant")
    parser.add_argument("--first", type=int, default=1, help="start at the sample's Nth mutant (split a run)")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="taskrail-aimed-"))
    tree, commit = scratch_tree(workdir, args.rev)
    log(f"aimed: commit {commit[:12]}, scratch tree {tree}")
    env = test_env(workdir)
    synth_in(tree, env)
    definitions = {
        p.name.removesuffix(".asl.json"): json.loads(p.read_text()) for p in sorted((tree / "asl").glob("*.asl.json"))
    }
    every = [m for workflow, definition in definitions.items() for m in asl.mutants(workflow, definition)]
    chosen = {m.ident for m in sampler(args.budget, args.seed, "asl")([m.mutant for m in every])}
    mutant_dir = workdir / "asl-mutant"
    mutant_dir.mkdir(parents=True, exist_ok=True)
    env = test_env(workdir, TASKRAIL_ASL_DIR=str(mutant_dir))
    verdicts: list[dict[str, object]] = []
    flaky: set[str] = set()
    for number, candidate in enumerate([m for m in every if m.mutant.ident in chosen], 1):
        if number < args.first:
            continue
        tests = aimed(candidate.mutant.ident)
        asl._write(mutant_dir, {**definitions, candidate.workflow: candidate.apply(definitions[candidate.workflow])})
        run = confirmed_run(tree, tests, env, args.timeout, flaky)
        verdict: dict[str, object] = {
            "mutant": candidate.mutant.ident,
            "tests": " ".join(tests),
            "killed": not run.passed,
            "killed_by": run.first_failure,
            "seconds": round(run.seconds),
        }
        if not run.passed and "::" in run.first_failure:
            asl._write(mutant_dir, definitions)
            without = run_pytest(tree, (run.first_failure,), env, args.timeout)
            verdict["passes_without_the_mutant"] = without.passed
        # a kill is a named test that fails with the mutant and passes without it (not a timeout, not "no tests")
        verdict["killed"] = bool(verdict.get("passes_without_the_mutant", False))
        verdicts.append(verdict)
        state = "killed" if verdict["killed"] else "survived its aimed tests"
        seconds = f"{run.seconds:.0f} s"
        log(f"aimed {number}/{len(chosen)} {state} {candidate.mutant.ident} by {run.first_failure} ({seconds})")
        if args.results:
            args.results.write_text(json.dumps({"commit": commit, "total": len(every), "verdicts": verdicts}, indent=1))
    killed = sum(bool(v["killed"]) for v in verdicts)
    print(f"asl (aimed tests) killed {killed}/{len(verdicts)} of {len(every)} mutants; commit {commit[:12]}")
    for v in verdicts:
        print(f"    {'killed' if v['killed'] else 'SURVIVED'}: {v['mutant']} {v['killed_by']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
