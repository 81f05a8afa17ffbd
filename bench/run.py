"""`make bench`: every benchmark of ARCHITECTURE.md §7 in one bounded run (about 3-5 minutes on 2 cores).

Order: the cost model and the bare interpreter (moto in this process), cold starts (fresh processes), then one
local stack (time scale 0.01, no console) for the latency of one task, end-to-end throughput, and the intake
bursts (idle, then while the backlog drains). Prints a table, writes docs/BENCHMARKS.md. Exit status 0 when
every phase ran (targets are reported, not asserted), 1 when a phase failed to run.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from bench.capacity import capacity_lines, capacity_phase
from bench.common import REPORT, ROOT, load_average, log, system_info, timed
from bench.failure_latency import failure_lines
from bench.live_progress import push_latency_lines
from bench.read_cache import read_cache_lines
from bench.report import Run, markdown, terminal

T = TypeVar("T")
OUTPUT = ROOT / REPORT
TIME_SCALE = 0.01


def _attempt(run: Run, label: str, action: Callable[[], T]) -> T | None:
    try:
        with timed(label):
            return action()
    except Exception as error:
        run.errors.append(f"{label}: {type(error).__name__}: {error}")
        traceback.print_exc(file=sys.stderr)
        return None


def _silence(*names: str) -> None:
    """Stopping a stack with thousands of executions in flight makes each of them log its failure, for as long
    as their threads take to notice (after ``stop()`` returns): quiet for the rest of the run."""
    for name in names:
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _local_stack_phases(run: Run, args: argparse.Namespace) -> None:
    from bench.cli_latency import cli_latency
    from bench.failure_latency import failure_to_dlq_latency as failure_to_dlq
    from bench.intake import burst
    from bench.intake_stages import intake_stages
    from bench.latency import single_task_latency
    from bench.live_progress import push_latency
    from bench.read_cache import read_cache_bench
    from bench.throughput import local_stack_throughput
    from taskrail.local.accounts import user_client
    from taskrail.local.stack import LocalStack, StackOptions

    stack = LocalStack(StackOptions(time_scale=TIME_SCALE, with_console=False))
    started = time.perf_counter()
    with timed("local stack: start"):
        stack.start()
    run.stack_start_s = time.perf_counter() - started
    try:
        assert stack.info is not None
        client = user_client(stack.info, "alice")
        with timed("local stack: warm-up (3 tasks)"):
            ids = [client.submit("text.stats", {"text": "warm up"})["taskId"] for _ in range(3)]
            client.wait(ids, timeout=120, interval=0.1)
        run.latency = _attempt(
            run, "4. latency of one task", lambda: single_task_latency(stack, runs=args.latency_runs)
        )
        run.cli = _attempt(run, "6. CLI latency", lambda: cli_latency(stack.info, runs=args.cli_runs))
        failure = _attempt(run, "8. failure to DLQ message", lambda: failure_to_dlq(stack, runs=args.latency_runs))
        run.failure_latency = failure  # type: ignore[attr-defined]  # printed by failure_lines()
        run.read_cache = _attempt(  # type: ignore[attr-defined]  # printed by read_cache_lines()
            run, "10. read routes and caching", lambda: read_cache_bench(stack, runs=max(10, 6 * args.latency_runs))
        )
        run.push_latency = _attempt(  # type: ignore[attr-defined]  # printed by push_latency_lines()
            run,
            "11. live progress push latency",
            lambda: push_latency(stack),  # PUSH_WRITES: a p99 that is not the max
        )
        run.local = _attempt(run, "2. end-to-end, local stack", lambda: local_stack_throughput(stack, args.e2e))
        stack.pipes.pause()
        stack.scheduler.pause()  # an idle stack: the reconciler would start the queued tasks the pipe holds back
        run.idle = _attempt(run, "1. burst, idle stack", lambda: burst(stack.info, args.burst, args.concurrency))
        run.intake_stages = _attempt(  # type: ignore[attr-defined]  # printed by stage_lines()
            run, "1. intake by stage", lambda: [intake_stages(stack, args.stage_n, c) for c in (1, args.concurrency)]
        )
        stack.pipes.resume()
        stack.scheduler.resume()
        before = sum(stack.pipes.delivered.values())
        time.sleep(1.0)  # the backlog of the idle burst starts draining
        run.busy = _attempt(run, "1. burst, backlog draining", lambda: burst(stack.info, args.burst, args.concurrency))
        run.busy_started_executions = sum(stack.pipes.delivered.values()) - before
    finally:
        _silence("moto", "taskrail", "werkzeug", "botocore", "urllib3")
        with timed("local stack: stop"):
            stack.pipes.pause()
            stack.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--burst", type=int, default=2000, help="POST /tasks per burst (default 2000)")
    parser.add_argument("--concurrency", type=int, default=32, help="client threads of a burst (default 32)")
    parser.add_argument("--stage-n", type=int, default=300, help="POST /tasks per intake-by-stage run (default 300)")
    parser.add_argument("--e2e", type=int, default=50, help="tasks for end-to-end throughput (default 50)")
    parser.add_argument("--latency-runs", type=int, default=5, help="single tasks timed (default 5)")
    parser.add_argument("--cold-runs", type=int, default=5, help="fresh-process imports per function (default 5)")
    parser.add_argument("--cost-runs", type=int, default=3, help="executions per cost path (default 3)")
    parser.add_argument("--cli-runs", type=int, default=5, help="fresh processes per CLI command (default 5)")
    parser.add_argument("--quick", action="store_true", help="small counts, to try the harness (~1-2 min)")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="the markdown report (default docs/BENCHMARKS.md)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    if args.quick:
        args.burst, args.e2e, args.latency_runs, args.cold_runs, args.cost_runs = 200, 12, 2, 2, 1
        args.stage_n = 100
        args.cli_runs = 2
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")

    from rich.console import Console

    from bench.coldstart import cold_start
    from bench.throughput import bare_interpreter_throughput
    from taskrail.cost import cost_report

    started = time.perf_counter()
    options = {
        "burst": args.burst,
        "concurrency": args.concurrency,
        "e2e": args.e2e,
        "latency_runs": args.latency_runs,
        "cold_runs": args.cold_runs,
        "cost_runs": args.cost_runs,
        "time_scale": TIME_SCALE,
    }
    run = Run(info=system_info(), options=options)
    log(f"{run.info['machine']}; {options}")
    run.cost = _attempt(run, "5. cost model (moto, in-process)", lambda: cost_report(runs=args.cost_runs))
    capacity = _attempt(run, "9. capacity at AWS scale", lambda: capacity_phase(run.cost))
    run.bare = _attempt(run, "2. end-to-end, bare interpreter", lambda: bare_interpreter_throughput(args.e2e))
    run.cold = _attempt(run, "3. cold start and size", lambda: cold_start(runs=args.cold_runs))
    from bench.idle import idle_cpu

    run.idle_cpu = _attempt(run, "7. idle CPU of `taskrail local up`", idle_cpu)
    _attempt(run, "local stack", lambda: _local_stack_phases(run, args))
    run.wall_s = time.perf_counter() - started
    run.load_after = load_average()

    console = Console(width=max(Console().width, 140))
    console.print(terminal(run))
    failure_text = failure_lines(getattr(run, "failure_latency", None))
    console.print(failure_text)
    from bench.intake_stages import stage_markdown

    stages_text = stage_markdown(getattr(run, "intake_stages", None) or [])
    console.print(stages_text)
    console.print(read_cache_text := read_cache_lines(getattr(run, "read_cache", None)), markup=False, highlight=False)
    console.print(
        capacity_text := capacity_lines(capacity),
        push_text := push_latency_lines(getattr(run, "push_latency", None)),
        sep="\n", markup=False, highlight=False,
    )  # fmt: skip
    if run.cost is not None:
        from taskrail.cost import render_cost_report

        console.print(render_cost_report(run.cost))
    if not args.no_write:
        args.output.write_text(
            "\n".join((markdown(run), failure_text, stages_text, read_cache_text, capacity_text, push_text)) + "\n"
        )
        log(f"wrote {args.output}")
    return 1 if run.errors else 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Executions the stopped stack left behind are threads of this process; do not wait for them to notice.
    os._exit(code)
