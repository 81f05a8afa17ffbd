"""The local stack: the synthesized template brought up on 127.0.0.1 with emulated AWS services.

One process holds moto (server mode, Step Functions executing through its ASL interpreter), the pipe
pollers, the local API Gateway and the Runtime APIs; each Lambda function runs in its own worker
processes through awslambdaric. Moto's state lives in memory for as long as this process runs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import socketserver
import struct
import tempfile
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import boto3

from taskrail.local import moto_hooks
from taskrail.local.faults import FaultInjector, FaultPlan
from taskrail.local.provision import REGION, LocalResources, provision
from taskrail.local.users import STACK_SERVICE

log = logging.getLogger("taskrail.local")
ROOT = Path(__file__).resolve().parents[2]
STATE_DIR = ROOT / ".taskrail"
STATE_FILE = STATE_DIR / "local.json"
# What the stack's own clients sign with: the service credential of the local registry (taskrail/local/users.py).
# Local-only, like every key there: it is no AWS account's, and the local AWS endpoint accepts nothing else.
LOCAL_CREDENTIALS = {
    "aws_access_key_id": STACK_SERVICE.access_key_id,
    "aws_secret_access_key": STACK_SERVICE.secret_access_key,
}
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """``path`` as a directory only this OS user can list or enter (created, or tightened, to 0700)."""
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    path.chmod(PRIVATE_DIR_MODE)
    return path


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by this OS user only (0600 from the start, also when it existed)."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    with os.fdopen(fd, "w") as file:
        os.fchmod(file.fileno(), PRIVATE_FILE_MODE)
        file.write(text)


@dataclass
class StackOptions:
    api_port: int = 0
    aws_port: int = 0
    console_port: int = 0
    time_scale: float = 1.0
    concurrency: int = 2
    log_dir: Path = field(default_factory=lambda: STATE_DIR / "logs")
    extra_function_env: dict[str, str] = field(default_factory=dict)
    with_console: bool = True
    faults: FaultPlan | None = None  # off by default: see taskrail/local/faults.py


@dataclass
class StackInfo:
    """What a client needs to reach a running local stack (also written to .taskrail/local.json)."""

    api_url: str
    aws_endpoint_url: str
    console_url: str
    pid: int
    region: str
    tasks_table: str
    results_bucket: str
    state_machine_arn: str
    dead_letter_queue_url: str
    notifications_queue_url: str
    pipe_dead_letter_queue_url: str
    # `taskrail local reset` talks to the stack here (a Unix socket in a 0700 folder; see ControlServer)
    control_socket: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def load(cls, path: Path = STATE_FILE) -> StackInfo:
        return cls(**json.loads(path.read_text()))


def local_client(service: str, endpoint_url: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint_url, region_name=REGION, **LOCAL_CREDENTIALS)


class LocalStack:
    def __init__(self, options: StackOptions | None = None) -> None:
        self.options = options or StackOptions()
        self._exit = contextlib.ExitStack()
        self.resources: LocalResources | None = None
        self.info: StackInfo | None = None
        self.functions: Any = None
        self.pipes: Any = None
        self.api: Any = None
        self.faults: FaultInjector | None = None
        self.scheduler: Any = None
        self._reset_lock = threading.Lock()
        self._provision: Callable[[], tuple[LocalResources, Any]] | None = None
        self._endpoint = ""

    def clients(self, service: str) -> Any:
        assert self.info is not None
        return local_client(service, self.info.aws_endpoint_url)

    def start(self) -> StackInfo:
        from infra.synth import CDK_OUT, STACK_NAME, load_template
        from taskrail.local.apigw import LocalApiGateway
        from taskrail.local.functions import FunctionPool

        # moto's server logs every request through werkzeug; the stack's own log says what matters.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        # moto's interpreter logs every Fail state and caught error at ERROR with the whole state tree; the
        # execution history has the same facts.
        logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
        moto_hooks.assert_supported_moto()
        template = load_template()
        try:
            endpoint = self._exit.enter_context(moto_hooks.threaded_server(port=self.options.aws_port))
            self._endpoint = endpoint
            self._provision = lambda: provision(
                template, lambda s: local_client(s, endpoint), stack_name=STACK_NAME, cdk_out=str(CDK_OUT)
            )
            resources, resolve = self._provision()
            self.resources = resources
            moto_hooks.install_aws_semantics()
            self._exit.callback(moto_hooks.uninstall_aws_semantics)
            moto_hooks.set_time_scale(self.options.time_scale)
            self._exit.callback(moto_hooks.reset_time_scale)
            private_dir(self.options.log_dir)
            self.functions = FunctionPool(
                resources.functions,
                endpoint,
                concurrency=self.options.concurrency,
                extra_env=self.options.extra_function_env,
                time_scale=1.0,
                log_dir=self.options.log_dir,
            )
            self.functions.start()
            self._exit.callback(self.functions.stop)
            self.faults = FaultInjector(self.options.faults or FaultPlan(), names=self._function_names(resources))
            moto_hooks.install_lambda_invoker(self.faults.wrap(self.functions.invoke))
            self._exit.callback(moto_hooks.uninstall_lambda_invoker)
            self._start_pollers(resources)
            # reset() replaces the pollers: stop whichever are current at exit
            self._exit.callback(lambda: self.pipes.stop())  # noqa: PLW0108
            self._exit.callback(lambda: self.scheduler.stop())  # noqa: PLW0108
            self.faults.start(kill_worker=self.functions.kill_worker, pipes=self.pipes)
            self._exit.callback(self.faults.stop)
            self.api = LocalApiGateway(template, resolve, endpoint, port=self.options.api_port)
            api_url = self.api.start()
            self._exit.callback(self.api.stop)
            console_url = self._start_console(endpoint) if self.options.with_console else ""
            control = ControlServer(self)
            self._exit.callback(control.stop)
        except BaseException:
            self._exit.close()
            raise
        self.info = StackInfo(
            api_url=api_url,
            aws_endpoint_url=endpoint,
            console_url=console_url,
            pid=os.getpid(),
            region=REGION,
            tasks_table=resources.ref("TasksTable"),
            results_bucket=resources.ref("ResultsBucket"),
            state_machine_arn=resources.state_machines["TaskLifecycleStateMachine"],
            dead_letter_queue_url=resources.ref("TaskDeadLetterQueue"),
            notifications_queue_url=resources.ref("NotificationsArchiveQueue"),
            pipe_dead_letter_queue_url=resources.ref("PipeDeadLetterQueue"),
            control_socket=str(control.path),
        )
        return self.info

    def _start_pollers(self, resources: LocalResources) -> None:
        from taskrail.local.pipes import PipeRunner
        from taskrail.local.scheduler import LocalScheduler

        assert self.faults is not None
        endpoint = self._endpoint
        self.pipes = PipeRunner(
            resources.pipes, lambda s: local_client(s, endpoint), duplicate=self.faults.duplicate
        ).start()
        # EventBridge Scheduler (the reconciler): rate schedules fire on a timer, scaled like Retry and Wait.
        self.scheduler = LocalScheduler(
            resources.schedules, lambda s: local_client(s, endpoint), interval_scale=self.options.time_scale or 1.0
        )
        self.scheduler.start()

    def reset(self) -> None:
        """Empty the stack: moto's backends reset in-process, the template provisioned again, pollers restarted.

        What ``POST /moto-api/reset`` did, without an HTTP request any page could send (``taskrail local
        reset`` asks for it over the control socket). Functions, API and console keep running; executions
        running at the time fail, as their resources are gone. A fault plan's poller outage, if any, applies
        to the pollers the stack started with.
        """
        assert self._provision is not None, "the stack is not started"
        with self._reset_lock:
            self.pipes.stop()
            self.scheduler.stop()
            moto_hooks.reset_moto()
            resources, _ = self._provision()
            self.resources = resources
            self._start_pollers(resources)
            log.info("local stack reset: every resource is empty, as after `taskrail local up`")

    @staticmethod
    def _function_names(resources: LocalResources) -> dict[str, str]:
        names = {}
        for construct, spec in resources.functions.items():
            names.update({spec.name: construct, spec.arn: construct, construct: construct})
        return names

    def _start_console(self, endpoint: str) -> str:
        try:
            from taskrail.console import ConsoleServer
        except ImportError:
            return ""
        console = ConsoleServer(self, port=self.options.console_port)
        url = console.start()
        self._exit.callback(console.stop)
        return url

    def write_state(self, path: Path = STATE_FILE) -> None:
        assert self.info is not None
        # The file names the local credentials' endpoints and is the key to the control socket's folder:
        # readable by this OS user only.
        write_private(path, self.info.to_json())
        self._exit.callback(lambda: path.unlink(missing_ok=True))

    def stop(self) -> None:
        self._exit.close()

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- the control socket: `taskrail local reset` ------------------------------------------------------------

CONTROL_RESET = b"reset\n"


class _ControlHandler(socketserver.StreamRequestHandler):
    server: _ControlSocketServer

    def handle(self) -> None:
        # The folder is 0700 already; the peer's uid is checked too (Linux SO_PEERCRED): this OS user or root.
        _pid, uid, _gid = struct.unpack("3i", self.request.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        if uid not in (os.getuid(), 0):
            self.wfile.write(b"refused: another OS user\n")
            return
        command = self.rfile.readline(64)
        if command != CONTROL_RESET:
            self.wfile.write(b"refused: unknown command\n")
            return
        try:
            self.server.stack.reset()
        except Exception as error:
            log.exception("local stack reset failed")
            self.wfile.write(f"failed: {type(error).__name__}: {error}\n".encode())
            return
        self.wfile.write(b"ok\n")


class _ControlSocketServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str, stack: LocalStack) -> None:
        self.stack = stack
        super().__init__(path, _ControlHandler)


class ControlServer:
    """The stack's control channel: a Unix socket in a fresh 0700 folder, so only this OS user reaches it.

    Not HTTP, and not on a TCP port: no web page can send to it. Its path is in the state file (0600).
    """

    def __init__(self, stack: LocalStack) -> None:
        self._folder = Path(tempfile.mkdtemp(prefix="taskrail-control-"))  # 0700, as mkdtemp makes it
        self.path = self._folder / "control.sock"
        self._server = _ControlSocketServer(str(self.path), stack)
        self.path.chmod(PRIVATE_FILE_MODE)
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-control", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.path.unlink(missing_ok=True)
        self._folder.rmdir()


def request_reset(control_socket: str, timeout: float = 120.0) -> str:
    """Ask the stack behind ``control_socket`` to reset; returns its answer (``ok`` on success)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(timeout)
        client.connect(control_socket)
        client.sendall(CONTROL_RESET)
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = client.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.decode().strip()
