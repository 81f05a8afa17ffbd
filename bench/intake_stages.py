"""1. Intake by stage: where each millisecond of a POST /tasks goes, measured inside the stack's process.

While a burst runs (its client in its own process, as in :mod:`bench.intake`), timers wrap the stages of the
request path for the duration of the measurement only (class attributes replaced, then given back; product code
is not instrumented):

API Gateway process: ``http in`` (the handler's guard check, body read and response write: ``_serve`` minus
``handle``), ``route``, ``sigv4`` (``_authenticate``), ``request`` (building ``$input``/``$context``), ``validate``
(parameters and the body against the model), ``vtl request`` / ``vtl response`` (airspeed), ``sign out`` (SigV4 of
the integration's call) and ``moto call`` (the HTTP round trip to the AWS endpoint, signing excluded).
AWS endpoint (moto's process): ``guard sigv4``, ``iam`` (the authorizer), ``moto`` (moto's app: the submission's
DynamoDB UpdateItem) and ``endpoint`` (the whole WSGI call). Each stage is timed as wall time and as the thread's
CPU time: under 32 concurrent clients the wall time includes waiting for the GIL, the CPU time is what it costs.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from bench.common import percentile

API_STAGES = (
    "http in",
    "route",
    "sigv4",
    "request",
    "validate",
    "vtl request",
    "sign out",
    "moto call",
    "vtl response",
)
ENDPOINT_STAGES = ("guard sigv4", "iam", "moto", "endpoint")


@dataclass
class StageTimes:
    """Per stage: the wall and CPU milliseconds of each request that went through it."""

    wall_ms: dict[str, list[float]] = field(default_factory=dict)
    cpu_ms: dict[str, list[float]] = field(default_factory=dict)
    client_ms: list[float] = field(default_factory=list)  # as the burst client saw each request
    concurrency: int = 0
    n: int = 0

    def add(self, stage: str, wall: float, cpu: float) -> None:
        self.wall_ms.setdefault(stage, []).append(wall * 1000)
        self.cpu_ms.setdefault(stage, []).append(cpu * 1000)

    def mean(self, stage: str, *, cpu: bool = False) -> float:
        values = (self.cpu_ms if cpu else self.wall_ms).get(stage, [])
        return sum(values) / len(values) if values else float("nan")

    def p(self, stage: str, q: float) -> float:
        if stage in DERIVED:  # a difference of means: no distribution
            return math.nan
        return percentile(self.wall_ms.get(stage, []), q)

    def rows(self) -> list[tuple[str, str, float, float, float]]:
        """(where, stage, mean wall ms, p99 wall ms, mean CPU ms), in the order a request meets them."""
        out = [("api", s, self.mean(s), self.p(s, 99), self.mean(s, cpu=True)) for s in API_STAGES]
        out += [("endpoint", s, self.mean(s), self.p(s, 99), self.mean(s, cpu=True)) for s in ENDPOINT_STAGES]
        client = sum(self.client_ms) / len(self.client_ms) if self.client_ms else float("nan")
        out.append(("client", "round trip", client, percentile(self.client_ms, 99), float("nan")))
        return out


class _Timers:
    """Wraps ``owner.name`` so each call adds its wall and CPU time to ``stage`` (only on the API's threads for
    the API's stages: the same classes serve other callers)."""

    def __init__(self, times: StageTimes) -> None:
        self.times = times
        self._lock = threading.Lock()
        self._saved: list[tuple[Any, str, Any]] = []

    def wrap(self, owner: Any, name: str, stage: str, *, when: Callable[[tuple[Any, ...]], bool] | None = None) -> None:
        inner = vars(owner)[name]
        self._saved.append((owner, name, inner))
        times, lock = self.times, self._lock

        def timed(*args: Any, **kwargs: Any) -> Any:
            if when is not None and not when(args):
                return inner(*args, **kwargs)
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return inner(*args, **kwargs)
            finally:
                wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
                with lock:
                    times.add(stage, wall, cpu)

        setattr(owner, name, staticmethod(timed) if isinstance(inner, staticmethod) else timed)

    def restore(self) -> None:
        for owner, name, inner in reversed(self._saved):
            setattr(owner, name, inner)
        self._saved.clear()


#: Stages got by difference of two timed calls (their means only): stage -> (outer, inner)
DERIVED = {"http in": ("serve", "handle"), "moto call": ("call", "sign out"), "guard sigv4": ("guard", "iam")}


def _derive(times: StageTimes) -> None:
    for stage, (outer, inner) in DERIVED.items():
        if outer in times.wall_ms:
            times.wall_ms[stage] = [times.mean(outer) - (times.mean(inner) if inner in times.wall_ms else 0.0)]
            times.cpu_ms[stage] = [
                times.mean(outer, cpu=True) - (times.mean(inner, cpu=True) if inner in times.cpu_ms else 0.0)
            ]


#: The User-Agent urllib3 sends when none is given: the API's integration call (taskrail.local.apigw sends none);
#: the functions' boto3 clients (the reconciler's UpdateItems among them) send botocore's.
_INTEGRATION_AGENT = "python-urllib3/"


def _submission(environ_at: int) -> Callable[[tuple[Any, ...]], bool]:
    """Whether a call's WSGI environ (its argument ``environ_at``) is the API's DynamoDB UpdateItem (POST /tasks
    stores a task with one UpdateItem)."""

    def is_submission(args: tuple[Any, ...]) -> bool:
        environ = args[environ_at] if len(args) > environ_at else {}
        return (
            isinstance(environ, dict)
            and environ.get("HTTP_X_AMZ_TARGET") == "DynamoDB_20120810.UpdateItem"
            and str(environ.get("HTTP_USER_AGENT", "")).startswith(_INTEGRATION_AGENT)
        )

    return is_submission


@contextlib.contextmanager
def stage_timers(times: StageTimes, *, api: bool = True, endpoint: bool = True) -> Iterator[StageTimes]:
    """Times the stages of the request path in this process while the block runs: the API's (``api``), the AWS
    endpoint's (``endpoint``) or both."""
    import botocore.auth
    from moto.server import DomainDispatcherApplication

    from taskrail.local import apigw, guard
    from taskrail.local.iam.enforce import LocalIam

    timers = _Timers(times)
    gateway = apigw.LocalApiGateway
    # the integration's signer only (botocore's SigV4Auth also signs every boto3 client of the process)
    signer = type("TimedSigV4Auth", (botocore.auth.SigV4Auth,), {"add_auth": botocore.auth.SigV4Auth.add_auth})
    saved_signer = apigw.SigV4Auth
    api_stages = (
        (apigw._Handler, "do_POST", "serve"),
        (gateway, "handle", "handle"),
        (gateway, "_route", "route"),
        (gateway, "_authenticate", "sigv4"),
        (gateway, "_api_request", "request"),
        (gateway, "_validate", "validate"),
        (gateway, "_request_body", "vtl request"),
        (gateway, "_call_service", "call"),
        (signer, "add_auth", "sign out"),
        (apigw, "render_response", "vtl response"),
    )
    # the endpoint's stages for the API's UpdateItems only (the functions and the scheduler also call the endpoint)
    endpoint_stages = (
        (guard.AwsEndpointGuard, "__call__", "endpoint", _submission(1)),
        (guard.AwsEndpointGuard, "_refuse", "guard", _submission(1)),
        (LocalIam, "__call__", "iam", _submission(2)),
        (DomainDispatcherApplication, "__call__", "moto", _submission(1)),
    )
    try:
        for owner, name, stage in api_stages if api else ():
            timers.wrap(owner, name, stage)
        for owner, name, stage, when in endpoint_stages if endpoint else ():
            timers.wrap(owner, name, stage, when=when)
        apigw.SigV4Auth = signer  # type: ignore[misc]
        yield times
    finally:
        apigw.SigV4Auth = saved_signer  # type: ignore[misc]
        timers.restore()
        _derive(times)


def _api_child() -> int:
    """``python -m bench.intake_stages --api-child``: taskrail.local.apigw_process's child with the API's timers
    on; after serving (its stdin closed), the times as JSON on stdout after the URL line."""
    import json
    import pickle
    import sys

    from taskrail.local.apigw_process import serve

    spec = pickle.load(sys.stdin.buffer)  # from the bench, over its own pipe
    times = StageTimes()
    with stage_timers(times, endpoint=False):
        serve(spec, sys.stdin.buffer, sys.stdout.buffer)
    sys.stdout.buffer.write(json.dumps({"wall": times.wall_ms, "cpu": times.cpu_ms}).encode() + b"\n")
    sys.stdout.flush()
    return 0


@contextlib.contextmanager
def _timed_api_process(stack: Any, times: StageTimes) -> Iterator[Any]:
    """When the stack's API is a process of its own: one more like it (the same GatewaySpec, another port) with
    the API's timers on, in a child of this process; yields the StackInfo that points at it."""
    import dataclasses
    import json
    import pickle
    import subprocess
    import sys
    from urllib.parse import urlsplit, urlunsplit

    from bench.common import ROOT
    from taskrail.local.apigw_process import _read_line

    spec = dataclasses.replace(stack.api.spec, port=0)
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.intake_stages", "--api-child"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        cwd=ROOT,
    )  # fmt: skip
    assert child.stdin is not None and child.stdout is not None
    try:
        child.stdin.write(pickle.dumps(spec))
        child.stdin.flush()
        netloc = urlsplit(_read_line(child, 60)).netloc
        yield dataclasses.replace(stack.info, api_url=urlunsplit(urlsplit(stack.info.api_url)._replace(netloc=netloc)))
    finally:
        child.stdin.close()
        measured = json.loads(child.stdout.read() or b"{}")
        child.wait(timeout=30)
        for stage, values in measured.get("wall", {}).items():
            times.wall_ms[stage] = values
        for stage, values in measured.get("cpu", {}).items():
            times.cpu_ms[stage] = values


def intake_stages(stack: Any, n: int, concurrency: int) -> StageTimes:
    """A burst of ``n`` POST /tasks from ``concurrency`` clients with the stage timers on (pipes paused by the
    caller; the endpoint's stages count the API's UpdateItems only). The API's stages are timed where the API runs: in
    this process, or (the stack's default) in an API process of its own started for the measurement."""
    from bench.intake import burst
    from taskrail.local.apigw_process import GatewayProcess

    times = StageTimes(concurrency=concurrency, n=n)
    if isinstance(stack.api, GatewayProcess):
        with stage_timers(times, api=False), _timed_api_process(stack, times) as info:
            result = burst(info, n, concurrency)
    else:
        with stage_timers(times):
            result = burst(stack.info, n, concurrency)
    _derive(times)
    times.client_ms = list(result.latencies_ms)
    return times


@contextlib.contextmanager
def profiled(owner: Any, name: str, sink: list[Any]) -> Iterator[None]:
    """cProfile each call of ``owner.name`` (on whichever thread runs it) into ``sink``, while the block runs."""
    import cProfile

    inner = vars(owner)[name]

    def run(*args: Any, **kwargs: Any) -> Any:
        profile = cProfile.Profile()
        profile.enable()
        try:
            return inner(*args, **kwargs)
        finally:
            profile.disable()
            sink.append(profile)

    setattr(owner, name, run)
    try:
        yield
    finally:
        setattr(owner, name, inner)


def profile_lines(profiles: list[Any], top: int = 30) -> str:
    import io
    import pstats

    if not profiles:
        return ""
    out = io.StringIO()
    stats = pstats.Stats(profiles[0], stream=out)
    for more in profiles[1:]:
        stats.add(more)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def stage_markdown(results: list[StageTimes]) -> str:
    """One table: per stage, mean wall ms / p99 wall ms / mean CPU ms of each run (one column group per run)."""
    if not results:
        return ""

    def cell(value: float) -> str:
        return "" if math.isnan(value) else f"{value:.2f}"

    header = ["where", "stage"]
    for times in results:
        header += [f"{times.concurrency} client(s): mean ms", "p99 ms", "CPU ms"]
    lines = [
        "### 1. Intake by stage",
        "",
        f"POST /tasks timed by stage where each stage runs (bench/intake_stages.py: the API's process, the AWS "
        f"endpoint's), {results[0].n} requests per run, pipes and schedules paused; the endpoint's rows are the API's "
        "UpdateItems (the submission). "
        "Wall time includes waiting for the GIL; CPU ms is the thread's CPU time. "
        "http in, moto call and guard sigv4 are differences of two timed calls (means only).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    per_run = [times.rows() for times in results]
    for index, (where, stage, *_rest) in enumerate(per_run[0]):
        cells = [where, stage]
        for rows in per_run:
            _where, _stage, mean, p99, cpu = rows[index]
            cells += [cell(mean), cell(p99), cell(cpu)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    """``python -m bench.intake_stages``: a stack of its own (time scale 0.01, no console), pipes paused."""
    import argparse

    from taskrail.local.stack import LocalStack, StackOptions

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--profile", choices=("endpoint", "api"), help="cProfile one side, one client at a time")
    parser.add_argument("--in-process-api", action="store_true", help="the API in the stack's process (as before)")
    parser.add_argument("--api-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.api_child:
        return _api_child()
    stack = LocalStack(StackOptions(time_scale=0.01, with_console=False, api_process=not args.in_process_api))
    stack.start()
    try:
        stack.pipes.pause()
        stack.scheduler.pause()  # nothing but the API and DynamoDB (bench/run.py)
        if args.profile:
            from werkzeug.serving import WSGIRequestHandler

            from bench.intake import burst
            from taskrail.local import apigw

            endpoint = args.profile == "endpoint"
            owner, name = (WSGIRequestHandler, "run_wsgi") if endpoint else (apigw._Handler, "do_POST")
            profiles: list[Any] = []
            with profiled(owner, name, profiles):
                burst(stack.info, args.n, 1)
            print(profile_lines(profiles))
            return 0
        results = [intake_stages(stack, args.n, c) for c in args.concurrency]
    finally:
        stack.stop()
    print(stage_markdown(results))
    return 0


if __name__ == "__main__":
    import os
    import sys

    code = main()
    sys.stdout.flush()
    os._exit(code)
