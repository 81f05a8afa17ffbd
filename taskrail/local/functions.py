"""Runs each Lambda function of the template as worker processes through awslambdaric, the real runtime client.

Every worker is ``python -m awslambdaric <handler>`` (the same client the managed Python runtime runs),
started with the interpreter of this process, ``cwd`` = the function's asset folder, and a fresh environment:

* the function's ``Environment.Variables`` from the template (:attr:`FunctionSpec.environment`),
* ``AWS_ENDPOINT_URL`` = the local services (boto3 honours it, so handlers need no change),
* the variables the Lambda runtime defines (:data:`RUNTIME_VARIABLES`): ``AWS_LAMBDA_RUNTIME_API``,
  ``AWS_LAMBDA_FUNCTION_*``, ``AWS_LAMBDA_LOG_*``, ``AWS_REGION``/``AWS_DEFAULT_REGION``,
  ``AWS_EXECUTION_ENV``, ``AWS_LAMBDA_INITIALIZATION_TYPE``, ``LAMBDA_TASK_ROOT``, ``LAMBDA_RUNTIME_DIR``,
  ``_HANDLER``, ``TZ``, ``LANG``, ``PATH``, fixed local credentials, and ``PYTHONPATH`` = the asset folder
  plus this virtualenv's site-packages (the local stand-in for the Powertools layer and the runtime's own
  boto3). ``PYTHONDONTWRITEBYTECODE=1`` stands in for the read-only ``/var/task``: no ``__pycache__`` is
  written into ``cdk.out``. ``LANG`` is ``en_US.UTF-8`` as on AWS when that locale is installed, else
  ``C.UTF-8`` (with a missing locale Python would coerce it and add ``LC_CTYPE`` to the environment),
* ``extra_env`` given to the pool, last: meant only for fault-injection and tracing switches
  (e.g. ``POWERTOOLS_TRACE_DISABLED``), never for configuration the template should carry.

Nothing else of this process's environment reaches a worker. awslambdaric itself adds ``_X_AMZN_TRACE_ID``
per invocation (from the ``Lambda-Runtime-Trace-Id`` header), as on AWS.

**Runtime API.** Each worker process gets its own Runtime API server on ``127.0.0.1`` (a
``ThreadingHTTPServer``, HTTP/1.1 with Content-Length), as each AWS execution environment has its own: that
is how an invocation is tied to the process that took it, so a crash or a timeout fails exactly that
invocation. All the servers of a function serve the function's one FIFO queue. ``GET …/invocation/next``
blocks until an invocation is queued; ``POST …/invocation/{id}/response`` and ``…/error`` complete it
(202); ``POST …/init/error`` records an init failure (the worker then exits by itself).

**Outcomes**, as ``lambda:Invoke`` reports them (:class:`InvokeOutcome`): the worker's response bytes; for
``/error`` the worker's body with ``function_error="Unhandled"`` (``errorType`` = the exception's class
name, which the workflow's Retry/Catch match); and the platform's own errors:

* ``Sandbox.Timedout`` -- no answer by the deadline: ``timeout_seconds * time_scale`` after the worker
  took the invocation (time spent queued does not count, as on AWS). ``time_scale`` (default 1) is for
  tests; the ``Lambda-Runtime-Deadline-Ms`` header uses the same scaled deadline, so
  ``context.get_remaining_time_in_millis()`` (Powertools idempotency's in-progress expiry) agrees with the
  enforcement. The worker's process group is killed and a replacement started at once.
* ``Runtime.ExitError`` -- the worker exited while handling the invocation (``exit status N`` or
  ``signal: killed``); a replacement is started. A worker that exits while idle is simply replaced.
* init failure -- the error awslambdaric posts to ``/init/error`` (``Runtime.ImportModuleError``,
  ``Runtime.HandlerNotFound``, ``Runtime.UserCodeSyntaxError``, or the exception of the module's top
  level), or ``Runtime.ExitError`` if the process died during init without posting. Queued invocations
  fail with it when no other worker of the function is up. The replacement waits with backoff (0.25 s
  doubling to 30 s), cut short by the next invocation: as on AWS, each invocation of a broken function
  tries a fresh init and reports its error, without a busy restart loop while nothing is invoked.

**Concurrency**: ``concurrency`` workers per function (an int for all, or a dict by function name or
construct name; default 1). With ``max_concurrency`` set, a function whose workers are all busy when an
invocation arrives starts one more (one at a time, up to ``max_concurrency``), as Lambda starts another
execution environment rather than make an invocation wait for a busy one ("Understanding Lambda function
scaling": each concurrent request gets its own environment); the extra workers stay, warm. Invocations beyond
the workers wait in the function's FIFO queue. With ``max_queue``
set, an invocation that would wait behind ``max_queue`` others raises :class:`LambdaThrottled`
(``Lambda.TooManyRequestsException`` in the workflow); ``max_queue=0`` is AWS's reserved-concurrency
throttling. Unknown function: :class:`FunctionNotFound` (``ResourceNotFoundException``).

Workers run in their own sessions (``start_new_session``); :meth:`FunctionPool.stop` (also registered with
``atexit``) SIGKILLs each worker's process group, so children of handlers die too. If this process is
killed outright, each orphaned worker exits by itself: its Runtime API connection breaks, and awslambdaric
exits on a failed ``next``.

Logs: worker stdout/stderr (awslambdaric writes the handler's logs to stdout) go to
``log_dir/<function name>.log``, with ``START``/``END``/``REPORT`` lines as Lambda writes them; without
``log_dir`` they go to this process's stderr.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import json
import logging
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, ClassVar, Final

from taskrail.local import guard
from taskrail.local.region import REGION
from taskrail.local.services.lambda_ import (
    InvokeOutcome,
    LambdaInvokeError,
    LambdaServiceError,
    LambdaThrottled,
    install_lambda_invoker,
    uninstall_lambda_invoker,
)
from taskrail.local.users import STACK_SERVICE

if TYPE_CHECKING:
    from taskrail.local.emulator import EmulatorContext

__all__ = [
    "RUNTIME_VARIABLES",
    "FunctionNotFound",
    "FunctionPool",
    "FunctionSpec",
    "FunctionStats",
    "LambdaEmulator",
]

LOG = logging.getLogger(__name__)


@dataclass
class FunctionSpec:
    """An ``AWS::Lambda::Function``: what to run (the asset folder and handler), with which limits and environment."""

    logical_id: str
    name: str
    arn: str
    handler: str
    timeout_seconds: int
    memory_mb: int
    environment: dict[str, str]
    code_path: str

    @classmethod
    def from_template(
        cls, logical_id: str, resource: dict[str, Any], resolve: Callable[[Any], Any], *, cdk_out: str
    ) -> FunctionSpec:
        """The function as the template defines it; ``resolve`` gives its name, ARN and environment locally."""
        props = resource["Properties"]
        # The asset's staged folder in cdk.out: exactly what `cdk deploy` zips and uploads.
        asset = "asset." + str(props["Code"].get("S3Key", "")).removesuffix(".zip")
        return cls(
            logical_id=logical_id,
            name=str(resolve({"Ref": logical_id})),
            arn=str(resolve({"Fn::GetAtt": [logical_id, "Arn"]})),
            handler=props["Handler"],
            timeout_seconds=int(props.get("Timeout", 3)),
            memory_mb=int(props.get("MemorySize", 128)),
            environment={k: str(v) for k, v in resolve(props.get("Environment", {}).get("Variables", {})).items()},
            code_path=f"{cdk_out}/{asset}" if asset else "",
        )


API_PREFIX: Final = "/2018-06-01/runtime"
NEXT_PATH: Final = f"{API_PREFIX}/invocation/next"
INIT_ERROR_PATH: Final = f"{API_PREFIX}/init/error"
_INVOCATION_PATH: Final = re.compile(rf"^{API_PREFIX}/invocation/(?P<id>[^/]+)/(?P<kind>response|error)$")
ERROR_TYPE_HEADER: Final = "Lambda-Runtime-Function-Error-Type"

EXECUTION_ENV: Final = "AWS_Lambda_python3.11"
#: The stack's service credential (taskrail/local/users.py), with a session token as Lambda's role credentials have.
LOCAL_CREDENTIALS: Final = {
    "AWS_ACCESS_KEY_ID": STACK_SERVICE.access_key_id,
    "AWS_SECRET_ACCESS_KEY": STACK_SERVICE.secret_access_key,
    "AWS_SESSION_TOKEN": STACK_SERVICE.session_token or "",
}
#: Every variable the pool defines besides the function's own and ``AWS_ENDPOINT_URL`` (before ``extra_env``).
RUNTIME_VARIABLES: Final = frozenset(
    {
        "AWS_LAMBDA_RUNTIME_API",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_EXECUTION_ENV",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
        "_HANDLER",
        "TZ",
        "LANG",
        "PATH",
        "PYTHONPATH",
        "PYTHONDONTWRITEBYTECODE",
        *LOCAL_CREDENTIALS,
    }
)

INIT_BACKOFF_FIRST: Final = 0.25
INIT_BACKOFF_MAX: Final = 30.0
CRASH_BACKOFF_MAX: Final = 5.0
STOP_JOIN_SECONDS: Final = 10.0
# How soon a Runtime API server notices shutdown(): each wake-up of an idle server costs CPU, so not often (the
# servers of a stopping pool are shut down in parallel).
SERVER_POLL_SECONDS: Final = 0.5


class FunctionNotFound(LambdaInvokeError):
    aws_code = "ResourceNotFoundException"
    status = 404
    default_message = "Function not found."


@dataclass(frozen=True)
class FunctionStats:
    """A snapshot of one function's counters (``errors`` counts every Unhandled outcome)."""

    function: str
    invocations: int
    errors: int
    timeouts: int
    crashes: int
    init_errors: int
    restarts: int
    throttles: int
    workers: int
    busy: int
    queued: int
    init_seconds: tuple[float, ...]  # spawn → first poll of /next, per worker that got there

    def as_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


# --------------------------------------------------------------------------------------------------
# Internal state
# --------------------------------------------------------------------------------------------------


@dataclass(eq=False)
class _Invocation:
    request_id: str
    payload: bytes
    trace_id: str
    enqueued: float = field(default_factory=time.monotonic)
    worker: _Worker | None = None
    started: float | None = None  # monotonic, when a worker took it
    deadline: float | None = None  # monotonic
    deadline_epoch_ms: int = 0
    outcome: InvokeOutcome | None = None
    error: LambdaInvokeError | None = None

    @property
    def finished(self) -> bool:
        return self.outcome is not None or self.error is not None


@dataclass(eq=False)
class _Worker:
    function: _Function
    server: _RuntimeApiServer
    log_stream: str
    spawned: float = field(default_factory=time.monotonic)
    proc: subprocess.Popen[bytes] | None = None
    watcher: threading.Thread | None = None
    ready: bool = False  # has polled /next at least once
    init_error: dict[str, Any] | None = None
    dead: bool = False
    retiring: bool = False  # timed out or killed on purpose: takes no more invocations
    code_path: str = ""  # the code it was started on (a reload changes the function's)
    current: _Invocation | None = None
    first_invocation: bool = True
    init_seconds: float | None = None

    @property
    def settled(self) -> bool:
        """Init is over, one way or the other."""
        return self.ready or self.init_error is not None or self.dead

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None


@dataclass(eq=False)
class _Function:
    key: str
    spec: FunctionSpec
    concurrency: int
    timeout: float
    log: IO[bytes] | None = None
    cond: threading.Condition = field(default_factory=threading.Condition)
    queue: deque[_Invocation] = field(default_factory=deque)
    workers: list[_Worker] = field(default_factory=list)
    consecutive_failures: int = 0
    invocations: int = 0
    errors: int = 0
    timeouts: int = 0
    crashes: int = 0
    init_errors: int = 0
    restarts: int = 0
    throttles: int = 0
    init_seconds: list[float] = field(default_factory=list)

    def has_live_ready_worker(self) -> bool:
        return any(w.ready and not w.dead and not w.retiring for w in self.workers)

    def idle_workers(self) -> int:
        return sum(1 for w in self.workers if w.ready and w.current is None and not w.dead and not w.retiring)


# --------------------------------------------------------------------------------------------------
# Runtime API
# --------------------------------------------------------------------------------------------------


class _RuntimeApiServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, pool: FunctionPool) -> None:
        super().__init__(("127.0.0.1", 0), _RuntimeApiHandler)
        self.pool = pool
        self.worker: _Worker | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A worker killed mid-request (timeout, crash, stop) resets its connection: expected, not news.
        LOG.debug("runtime api %s: request from %s failed", self.address, client_address, exc_info=True)


class _RuntimeApiHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _RuntimeApiServer

    def setup(self) -> None:
        super().setup()
        # Small header and body writes; without this Nagle + delayed ACK add ~40 ms per request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug("runtime api %s: " + format, self.server.address, *args)

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _reply_json(self, status: int, body: dict[str, Any]) -> None:
        self._reply(status, json.dumps(body).encode())

    def _refused(self) -> bool:
        """The local guard (loopback Host with this port, no browser): answered 403 and True when refused."""
        refused = guard.handler_refusal(self, browsers=False)
        if refused is None:
            return False
        self.close_connection = True
        self._reply_json(403, {"errorMessage": refused.message, "errorType": "Forbidden"})
        return True

    def do_GET(self) -> None:
        if self._refused():
            return
        worker = self.server.worker
        if self.path != NEXT_PATH or worker is None:
            self._reply_json(404, {"errorMessage": "Not found", "errorType": "NotFound"})
            return
        invocation = self.server.pool._next_invocation(worker)
        if invocation is None:  # worker retired or pool stopping: leave the poll unanswered
            self.close_connection = True
            return
        headers = {
            "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
            "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_epoch_ms),
            "Lambda-Runtime-Invoked-Function-Arn": worker.function.spec.arn,
            "Lambda-Runtime-Trace-Id": invocation.trace_id,
        }
        try:
            self._reply(200, invocation.payload, headers)
        except OSError:  # the worker died while polling; its watcher fails the invocation
            self.close_connection = True

    def do_POST(self) -> None:
        if self._refused():
            return
        worker = self.server.worker
        length = self.headers.get("Content-Length")
        if length is None:
            self._reply_json(411, {"errorMessage": "Content-Length required", "errorType": "LengthRequired"})
            return
        body = self.rfile.read(int(length))
        if worker is None:
            self._reply_json(404, {"errorMessage": "Not found", "errorType": "NotFound"})
            return
        pool = self.server.pool
        if self.path == INIT_ERROR_PATH:
            pool._init_error(worker, body, self.headers.get(ERROR_TYPE_HEADER))
            self._reply_json(202, {"status": "OK"})
            return
        match = _INVOCATION_PATH.match(self.path)
        if not match:
            self._reply_json(404, {"errorMessage": "Not found", "errorType": "NotFound"})
            return
        unhandled = match["kind"] == "error"
        error_type = self.headers.get(ERROR_TYPE_HEADER)
        if pool._complete(worker, match["id"], body, unhandled=unhandled, error_type=error_type):
            self._reply_json(202, {"status": "OK"})
        else:
            self._reply_json(400, {"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"})


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def _trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=0"


def _log_stream_name() -> str:
    return f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"


def _exit_reason(returncode: int) -> str:
    """Go's ``exec.ExitError`` text, which is what Lambda reports: ``exit status 3``, ``signal: killed``."""
    if returncode >= 0:
        return f"exit status {returncode}"
    try:
        name = signal.strsignal(-returncode) or f"signal {-returncode}"
    except ValueError:
        name = f"signal {-returncode}"
    return f"signal: {name.lower()}"


def _platform_error(error_type: str, message: str) -> InvokeOutcome:
    body = {"errorType": error_type, "errorMessage": message}
    return InvokeOutcome(payload=json.dumps(body).encode(), function_error="Unhandled")


def _exit_error(request_id: str, reason: str) -> InvokeOutcome:
    return _platform_error("Runtime.ExitError", f"RequestId: {request_id} Error: Runtime exited with error: {reason}")


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _locale_available(name: str) -> bool:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.newlocale.restype = ctypes.c_void_p
        libc.newlocale.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p]
        handle = libc.newlocale(1, name.encode(), None)  # LC_CTYPE_MASK (glibc)
        if handle:
            libc.freelocale.argtypes = [ctypes.c_void_p]
            libc.freelocale(handle)
            return True
    except (OSError, AttributeError):
        pass
    return False


_LANG: Final = "en_US.UTF-8" if _locale_available("en_US.UTF-8") else "C.UTF-8"


def _all_settled(workers: list[_Worker | None]) -> bool:
    return all(w is None or w.settled for w in workers)


def _site_packages() -> str:
    return sysconfig.get_paths()["purelib"]


def _resolve_name(name_or_arn: str) -> str:
    """``name``, ``name:qualifier``, ``account:function:name[:q]`` or a (qualified) ARN → the name."""
    parts = name_or_arn.split(":")
    if name_or_arn.startswith("arn:") and len(parts) > 6:
        return parts[6]
    if len(parts) >= 3 and parts[1] == "function":
        return parts[2]
    return parts[0]


# --------------------------------------------------------------------------------------------------
# The pool
# --------------------------------------------------------------------------------------------------


class FunctionPool:
    """Worker processes per Lambda function, and :meth:`invoke`, the invoker for
    :func:`taskrail.local.services.lambda_.install_lambda_invoker`.

    ``specs`` maps construct names to specs (as :attr:`LocalResources.functions`); a function is addressed
    by its name, its ARN (qualified or not: the only version locally is ``$LATEST``, and moto has already
    checked the qualifier), or its construct name.
    """

    def __init__(
        self,
        specs: dict[str, FunctionSpec],
        aws_endpoint_url: str,
        *,
        concurrency: int | dict[str, int] = 1,
        extra_env: dict[str, str] | None = None,
        time_scale: float = 1.0,
        log_dir: Path | None = None,
        max_queue: int | None = None,
        start_timeout: float = 60.0,
        credentials: Mapping[str, Mapping[str, str]] | None = None,
        max_concurrency: int | None = None,
    ) -> None:
        if not (time_scale > 0 and time_scale != float("inf")):
            raise ValueError(f"time_scale must be a finite number > 0, got {time_scale!r}")
        self._max_concurrency = max_concurrency
        self._endpoint = aws_endpoint_url
        self._extra_env = dict(extra_env or {})
        # function name -> the execution role's session credentials (taskrail/local/iam), as Lambda sets them
        self._credentials = dict(credentials or {})
        self._time_scale = float(time_scale)
        self._log_dir = Path(log_dir) if log_dir is not None else None
        self._max_queue = max_queue
        self._start_timeout = start_timeout
        self._functions: dict[str, _Function] = {}
        self._aliases: dict[str, _Function] = {}
        for key, given in specs.items():
            if not given.code_path or not Path(given.code_path).is_dir():
                raise ValueError(f"function {given.name}: code_path {given.code_path!r} is not a directory")
            # Absolute, since it is the workers' cwd, PYTHONPATH and LAMBDA_TASK_ROOT.
            spec = replace(given, code_path=str(Path(given.code_path).resolve()))
            if isinstance(concurrency, int):
                wanted = concurrency
            else:
                wanted = concurrency.get(spec.name, concurrency.get(key, 1))
            if wanted < 1:
                raise ValueError(f"function {spec.name}: concurrency must be >= 1, got {wanted}")
            function = _Function(key=key, spec=spec, concurrency=wanted, timeout=spec.timeout_seconds * time_scale)
            self._functions[spec.name] = function
            for alias in (spec.name, spec.arn, key):
                self._aliases[alias] = function
        self._spawn_lock = threading.Lock()
        self._started = False
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._threads_lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> FunctionPool:
        """Start every worker; wait (up to ``start_timeout``) until each has polled ``/next`` or failed init."""
        with self._spawn_lock:
            if self._stopping:
                raise RuntimeError("a stopped FunctionPool cannot be started again")
            if self._started:
                return self
            self._started = True
        atexit.register(self.stop)
        if self._log_dir is not None:
            self._log_dir.mkdir(parents=True, exist_ok=True)
            for function in self._functions.values():
                function.log = (self._log_dir / f"{function.spec.name}.log").open("ab")
        try:
            initial = {f: [self._spawn(f) for _ in range(f.concurrency)] for f in self._functions.values()}
            deadline = time.monotonic() + self._start_timeout
            for function, workers in initial.items():
                with function.cond:
                    settled = function.cond.wait_for(
                        partial(_all_settled, workers), timeout=max(0.0, deadline - time.monotonic())
                    )
                if not settled:
                    raise TimeoutError(
                        f"{function.spec.name}: workers did not poll the Runtime API within {self._start_timeout} s"
                    )
                for worker in workers:
                    if worker is not None and worker.init_error is not None:
                        LOG.warning("%s: init failed: %s", function.spec.name, worker.init_error.get("errorMessage"))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Kill every worker's process group, fail what is queued, close the Runtime API servers."""
        with self._spawn_lock:
            if self._stopping or not self._started:
                self._stopping = True
                return
            self._stopping = True
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        workers: list[_Worker] = []
        for function in self._functions.values():
            with function.cond:
                while function.queue:
                    function.queue.popleft().error = LambdaServiceError("The local function pool stopped.")
                workers += function.workers
                function.cond.notify_all()
        for worker in workers:
            if worker.proc is not None:
                _kill_group(worker.proc.pid)
        with self._threads_lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(STOP_JOIN_SECONDS)
        self._close_servers(workers)
        for function in self._functions.values():
            if function.log is not None:
                function.log.close()
                function.log = None

    def __enter__(self) -> FunctionPool:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- public operations -------------------------------------------------------------------------

    def invoke(self, function_name_or_arn: str, payload: bytes, qualifier: str | None = None) -> InvokeOutcome:
        """Run one invocation (synchronously) on a worker of that function; see the module docstring.

        An empty payload is delivered as ``{}``. Raises :class:`FunctionNotFound`, :class:`LambdaThrottled`
        (``max_queue``), or :class:`LambdaServiceError` when the pool is not running.
        """
        function = self._function(function_name_or_arn)
        if not self._started or self._stopping:
            raise LambdaServiceError("The local function pool is not running.")
        invocation = _Invocation(request_id=str(uuid.uuid4()), payload=payload or b"{}", trace_id=_trace_id())
        with function.cond:
            waiting = len(function.queue) + 1 - function.idle_workers()
            if self._max_queue is not None and waiting > self._max_queue:
                function.throttles += 1
                raise LambdaThrottled()
            function.queue.append(invocation)
            function.invocations += 1
            self._scale_out(function)
            function.cond.notify_all()
            while not invocation.finished:
                if invocation.deadline is None:
                    function.cond.wait()
                    continue
                remaining = invocation.deadline - time.monotonic()
                if remaining <= 0:
                    self._time_out(function, invocation)
                    break
                function.cond.wait(remaining)
        if invocation.error is not None:
            raise invocation.error
        assert invocation.outcome is not None
        return invocation.outcome

    __call__ = invoke

    def _scale_out(self, function: _Function) -> None:
        """Under the function's lock, when an invocation was queued or a worker became ready: start another worker
        if invocations wait that no idle worker will take, none is still starting (one at a time: the next one
        starts when this one is ready, if invocations still wait) and the function has fewer than
        ``max_concurrency``. The spawn runs in a thread: it takes this lock, which the caller's wait frees."""
        if self._max_concurrency is None or self._stopping:
            return
        live = [w for w in function.workers if not w.dead and not w.retiring]
        if any(not w.ready for w in live) or len(live) >= self._max_concurrency:
            return
        if len(function.queue) > function.idle_workers():
            self._start_thread(self._replace, function, 0.0)

    def reload_code(self, code_paths: Mapping[str, str]) -> list[str]:
        """Run each named function (name, ARN or construct → its new asset folder) on new code; the names reloaded.

        Idle workers are replaced at once, busy ones when their invocation ends (it finishes on the code it
        started on); invocations meanwhile wait in the function's queue for a worker on the new code.
        """
        reloaded = []
        for name, given in code_paths.items():
            code_path = Path(given).resolve()
            if not code_path.is_dir():
                raise ValueError(f"function {name}: code_path {given!r} is not a directory")
            function = self._function(name)
            with function.cond:
                if function.spec.code_path == str(code_path):
                    continue
                function.spec = replace(function.spec, code_path=str(code_path))
                function.cond.notify_all()  # idle workers wake in _next_invocation and retire
            reloaded.append(function.spec.name)
        return reloaded

    def set_timeout(self, function_name: str, seconds: float | None) -> None:
        """Fault injection: a different timeout for invocations taken from now on; None restores the template's."""
        function = self._function(function_name)
        with function.cond:
            function.timeout = function.spec.timeout_seconds * self._time_scale if seconds is None else seconds

    def kill_worker(self, function_name: str) -> int | None:
        """SIGKILL one worker (a busy one if any, else an idle one); returns its pid, None if none was alive.

        The invocation it was running fails with ``Runtime.ExitError`` (``signal: killed``); a replacement
        starts at once.
        """
        function = self._function(function_name)
        with function.cond:
            alive = [w for w in function.workers if w.proc is not None and not w.dead and not w.retiring]
            busy = [w for w in alive if w.current is not None and not w.current.finished]
            candidates = busy or [w for w in alive if w.ready] or alive
            process = candidates[0].proc if candidates else None
            if process is None:
                return None
            candidates[0].retiring = True
            _kill_group(process.pid)
            return process.pid

    def stats(self) -> dict[str, FunctionStats]:
        """Counters per function name (for the console and the benchmarks)."""
        result = {}
        for name, f in self._functions.items():
            with f.cond:
                result[name] = FunctionStats(
                    function=name,
                    invocations=f.invocations,
                    errors=f.errors,
                    timeouts=f.timeouts,
                    crashes=f.crashes,
                    init_errors=f.init_errors,
                    restarts=f.restarts,
                    throttles=f.throttles,
                    workers=sum(1 for w in f.workers if not w.dead and not w.retiring),
                    busy=sum(1 for w in f.workers if w.current is not None and not w.current.finished),
                    queued=len(f.queue),
                    init_seconds=tuple(f.init_seconds),
                )
        return result

    def worker_pids(self, function_name: str | None = None) -> dict[str, list[int]]:
        """Pids of the workers serving each function (not those being killed), all functions or one."""
        functions = [self._function(function_name)] if function_name else list(self._functions.values())
        result = {}
        for f in functions:
            with f.cond:
                result[f.spec.name] = [
                    w.proc.pid for w in f.workers if w.proc is not None and not w.dead and not w.retiring
                ]
        return result

    def worker_environment(self, function_name: str, runtime_api: str = "127.0.0.1:0") -> dict[str, str]:
        """The environment a worker of that function gets (the log stream name differs per worker)."""
        return self._environment(self._function(function_name).spec, runtime_api)

    # -- internals: workers ------------------------------------------------------------------------

    def _function(self, name_or_arn: str) -> _Function:
        function = self._aliases.get(name_or_arn) or self._aliases.get(_resolve_name(name_or_arn))
        if function is None:
            raise FunctionNotFound(f"Function not found: {name_or_arn}")
        return function

    def _environment(self, spec: FunctionSpec, runtime_api: str, log_stream: str | None = None) -> dict[str, str]:
        env = {
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
            "LANG": _LANG,
            "TZ": ":UTC",
            "PYTHONPATH": os.pathsep.join([spec.code_path, _site_packages()]),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        env.update(spec.environment)
        env["AWS_ENDPOINT_URL"] = self._endpoint
        env.update(
            {
                "AWS_LAMBDA_RUNTIME_API": runtime_api,
                "AWS_LAMBDA_FUNCTION_NAME": spec.name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": log_stream or _log_stream_name(),
                "AWS_REGION": REGION,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_EXECUTION_ENV": EXECUTION_ENV,
                "LAMBDA_TASK_ROOT": spec.code_path,
                "LAMBDA_RUNTIME_DIR": _site_packages(),
                "_HANDLER": spec.handler,
                **self._credentials.get(spec.name, LOCAL_CREDENTIALS),
            }
        )
        env.update(self._extra_env)
        return env

    def _spawn(self, function: _Function) -> _Worker | None:
        with self._spawn_lock:
            if self._stopping:
                return None
            server = _RuntimeApiServer(self)
            worker = _Worker(
                function=function, server=server, log_stream=_log_stream_name(), code_path=function.spec.code_path
            )
            server.worker = worker
            threading.Thread(
                target=server.serve_forever,
                args=(SERVER_POLL_SECONDS,),
                name=f"runtime-api-{server.address}",
                daemon=True,
            ).start()
            spec = function.spec
            output: IO[bytes] | int = function.log if function.log is not None else 2  # this process's stderr
            with function.cond:
                function.workers.append(worker)
            try:
                worker.proc = subprocess.Popen(
                    [sys.executable, "-m", "awslambdaric", spec.handler],
                    cwd=spec.code_path,
                    env=self._environment(spec, server.address, worker.log_stream),
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=output,
                    start_new_session=True,
                )
            except BaseException:
                with function.cond:
                    function.workers.remove(worker)
                self._close_server(worker)
                raise
            worker.watcher = threading.Thread(
                target=self._watch, args=(worker,), name=f"lambda-worker-{spec.name}-{worker.proc.pid}", daemon=True
            )
            self._track(worker.watcher)
            return worker

    def _watch(self, worker: _Worker) -> None:
        assert worker.proc is not None
        returncode = worker.proc.wait()
        _kill_group(worker.proc.pid)  # whatever the handler left behind
        function = worker.function
        with function.cond:
            worker.dead = True
            function.workers.remove(worker)
            delay = self._account_exit(function, worker, returncode)
            function.cond.notify_all()
        if delay is not None and not self._stopping:
            self._start_thread(self._replace, function, delay)
        self._close_server(worker)

    def _account_exit(self, function: _Function, worker: _Worker, returncode: int) -> float | None:
        """Called under the function's lock when a worker exited: fail what it owed; the restart delay."""
        reason = _exit_reason(returncode)
        invocation = worker.current
        if invocation is not None and not invocation.finished:
            self._finish(function, invocation, _exit_error(invocation.request_id, reason), status="error")
            function.crashes += 1
        if self._stopping:
            return None
        function.restarts += 1
        if worker.retiring:  # timed out, or killed on purpose
            return 0.0
        function.consecutive_failures += 1
        if worker.ready:  # crashed after init: at once, then with backoff if it keeps crashing
            failures = function.consecutive_failures
            return 0.0 if failures <= 1 else min(0.1 * 2 ** (failures - 2), CRASH_BACKOFF_MAX)
        function.init_errors += 1
        self._fail_queued_on_init_error(function, worker, reason)
        return min(INIT_BACKOFF_FIRST * 2 ** (function.consecutive_failures - 1), INIT_BACKOFF_MAX)

    def _fail_queued_on_init_error(self, function: _Function, worker: _Worker, reason: str) -> None:
        if function.has_live_ready_worker():
            return
        while function.queue:
            invocation = function.queue.popleft()
            if worker.init_error is not None:
                body = {**worker.init_error, "requestId": invocation.request_id}
                outcome = InvokeOutcome(payload=json.dumps(body).encode(), function_error="Unhandled")
            else:
                outcome = _exit_error(invocation.request_id, reason)
            self._finish(function, invocation, outcome, status="error")

    def _replace(self, function: _Function, delay: float) -> None:
        if delay > 0:
            with function.cond:
                # An invocation waiting with no worker up cuts the backoff short (a fresh init per invoke).
                function.cond.wait_for(
                    lambda: self._stopping or (bool(function.queue) and not function.has_live_ready_worker()),
                    timeout=delay,
                )
        self._spawn(function)

    def _start_thread(self, target: Callable[..., None], *args: Any) -> None:
        self._track(threading.Thread(target=target, args=args, daemon=True))

    def _track(self, thread: threading.Thread) -> None:
        with self._threads_lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    @classmethod
    def _close_servers(cls, workers: list[_Worker]) -> None:
        """In parallel: each shutdown() waits for its server's next poll (SERVER_POLL_SECONDS)."""
        closing = [threading.Thread(target=cls._close_server, args=(w,), daemon=True) for w in workers]
        for thread in closing:
            thread.start()
        for thread in closing:
            thread.join(STOP_JOIN_SECONDS)

    @staticmethod
    def _close_server(worker: _Worker) -> None:
        server = worker.server
        server.worker = None
        with contextlib.suppress(Exception):
            server.shutdown()
            server.server_close()

    # -- internals: Runtime API callbacks ----------------------------------------------------------

    def _next_invocation(self, worker: _Worker) -> _Invocation | None:
        function = worker.function
        with function.cond:
            if not worker.ready:
                worker.ready = True
                worker.init_seconds = time.monotonic() - worker.spawned
                function.init_seconds.append(worker.init_seconds)
                function.consecutive_failures = 0
                self._scale_out(function)  # more invocations may be waiting than this worker can take
            worker.current = None
            function.cond.notify_all()
            while True:
                if worker.code_path != function.spec.code_path and not worker.retiring and not worker.dead:
                    # The code was reloaded: this worker takes no more invocations; its replacement runs the new code.
                    worker.retiring = True
                    assert worker.proc is not None
                    _kill_group(worker.proc.pid)
                if worker.dead or worker.retiring or self._stopping:
                    return None
                if function.queue:
                    invocation = function.queue.popleft()
                    break
                function.cond.wait()
            now = time.monotonic()
            invocation.worker = worker
            invocation.started = now
            invocation.deadline = now + function.timeout
            invocation.deadline_epoch_ms = int(time.time() * 1000 + function.timeout * 1000)
            worker.current = invocation
            function.cond.notify_all()  # the invoker starts its clock
        self._log(function, f"START RequestId: {invocation.request_id} Version: $LATEST")
        return invocation

    def _complete(
        self, worker: _Worker, request_id: str, body: bytes, *, unhandled: bool, error_type: str | None
    ) -> bool:
        function = worker.function
        with function.cond:
            invocation = worker.current
            if invocation is None or invocation.request_id != request_id or invocation.finished:
                return False
            if unhandled:
                try:
                    json.loads(body)
                except ValueError:
                    body = json.dumps(
                        {"errorType": error_type or "Runtime.Unknown", "errorMessage": body.decode(errors="replace")}
                    ).encode()
            outcome = InvokeOutcome(payload=body, function_error="Unhandled" if unhandled else None)
            self._finish(function, invocation, outcome, status="error" if unhandled else None)
            return True

    def _init_error(self, worker: _Worker, body: bytes, error_type: str | None) -> None:
        try:
            error = json.loads(body)
            if not isinstance(error, dict):
                raise ValueError("not an object")
        except ValueError:
            error = {"errorMessage": body.decode(errors="replace"), "errorType": error_type or "Runtime.Unknown"}
        error.setdefault("errorType", error_type or "Runtime.Unknown")
        function = worker.function
        with function.cond:
            worker.init_error = error
            function.cond.notify_all()
        self._log(function, f"INIT_REPORT Status: error\tErrorType: {error['errorType']}")

    def _time_out(self, function: _Function, invocation: _Invocation) -> None:
        """Under the function's lock: the deadline passed without an answer."""
        message = f"Task timed out after {function.timeout:.2f} seconds"
        outcome = _platform_error("Sandbox.Timedout", f"RequestId: {invocation.request_id} Error: {message}")
        self._log(function, f"{datetime.now(UTC).isoformat()} {invocation.request_id} {message}")
        self._finish(function, invocation, outcome, status="timeout")
        function.timeouts += 1
        worker = invocation.worker
        if worker is not None and worker.proc is not None and not worker.dead:
            worker.retiring = True
            _kill_group(worker.proc.pid)

    def _finish(self, function: _Function, invocation: _Invocation, outcome: InvokeOutcome, status: str | None) -> None:
        """Under the function's lock: record the outcome, wake the invoker, write END/REPORT."""
        invocation.outcome = outcome
        if outcome.function_error:
            function.errors += 1
        function.cond.notify_all()
        if invocation.started is None:
            return
        worker = invocation.worker
        duration_ms = (time.monotonic() - invocation.started) * 1000
        report = (
            f"REPORT RequestId: {invocation.request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {int(duration_ms) + 1} ms\tMemory Size: {function.spec.memory_mb} MB"
        )
        if worker is not None and worker.first_invocation and worker.init_seconds is not None:
            report += f"\tInit Duration: {worker.init_seconds * 1000:.2f} ms"
            worker.first_invocation = False
        if status:
            report += f"\tStatus: {status}"
        self._log(function, f"END RequestId: {invocation.request_id}\n{report}")

    @staticmethod
    def _log(function: _Function, line: str) -> None:
        if function.log is None:
            LOG.debug("%s: %s", function.spec.name, line)
            return
        with contextlib.suppress(ValueError, OSError):  # closed by stop()
            function.log.write(line.encode() + b"\n")
            function.log.flush()


class LambdaEmulator:
    """The stack's Lambda: every function of the template in worker processes, and moto's Invoke routed to them
    (through the fault plan, which may refuse or fail an invocation first)."""

    name: ClassVar[str] = "lambda"
    restart_on_reset: ClassVar[bool] = False

    def __init__(self) -> None:
        self.pool: FunctionPool | None = None

    def start(self, context: EmulatorContext) -> None:
        self.pool = FunctionPool(
            context.resources.functions,
            context.endpoint,
            concurrency=context.concurrency,
            max_concurrency=context.max_concurrency,
            extra_env=context.extra_function_env,
            time_scale=1.0,
            log_dir=context.log_dir,
            credentials=context.iam.function_environments() if context.iam is not None else None,
        )
        self.pool.start()
        install_lambda_invoker(context.faults.wrap(self.pool.invoke))

    def stop(self) -> None:
        uninstall_lambda_invoker()
        if self.pool is not None:
            self.pool.stop()
