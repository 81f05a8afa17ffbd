"""The local stack: the synthesized template brought up on 127.0.0.1 with emulated AWS services.

One process holds moto (server mode, Step Functions executing through its ASL interpreter), the pipe
pollers and the Runtime APIs; the local API Gateway runs in a process of its own (taskrail/local/apigw_process.py:
intake does not wait for the GIL behind the backlog), and each Lambda function in its own worker processes
through awslambdaric. Moto's state lives in memory for as long as this process runs.
"""

from __future__ import annotations

import contextlib
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
from typing import Any, Final, TypeVar

from task_common.contract import Output
from taskrail.client import TaskrailClient
from taskrail.console import ConsoleDependencies, ConsoleServer
from taskrail.live import LiveFeed, LiveUnavailable
from taskrail.local import accounts, guard
from taskrail.local.apigw import LocalApiGateway
from taskrail.local.apigw_process import ApiGatewayEmulator, GatewayProcess
from taskrail.local.emulator import Emulator, EmulatorContext
from taskrail.local.faults import FaultInjector, FaultPlan, FaultsEmulator
from taskrail.local.functions import FunctionPool, LambdaEmulator
from taskrail.local.iam.enforce import LocalIam
from taskrail.local.outputs import stack_outputs
from taskrail.local.pipes import PipeRunner, PipesEmulator
from taskrail.local.preflight import check_ports
from taskrail.local.provision import LocalResources, provision
from taskrail.local.region import REGION
from taskrail.local.reload import CodeReloader
from taskrail.local.scheduler import LocalScheduler, SchedulerEmulator
from taskrail.local.services import delivery as service_deliveries
from taskrail.local.services import persistence
from taskrail.local.services.events import set_delivery_check
from taskrail.local.services.mailbox import MAILBOX, MailboxEmulator
from taskrail.local.services.registry import assert_supported_moto, install_aws_semantics, uninstall_aws_semantics
from taskrail.local.services.server import reset_moto, threaded_server
from taskrail.local.services.stepfunctions import (
    clear_mock_config,
    reset_time_scale,
    set_mock_config,
    set_role_clients,
    set_time_scale,
)
from taskrail.local.state import (  # the state file and the stack's clients, in a module light enough for the CLI
    CONTROL_RESET,
    LOCAL_CREDENTIALS,  # noqa: F401 (re-exported: tests import it from here)
    PRIVATE_FILE_MODE,
    ROOT,
    STATE_DIR,
    STATE_FILE,
    StackInfo,
    local_client,
    private_dir,
    request_reset,  # noqa: F401 (re-exported)
    write_private,
)
from taskrail.local.users import ROLES, USERS, known_credentials
from taskrail.local.websocket import LocalWebSocketApi, WebSocketEmulator
from taskrail.operator import Operator

CONSOLE_SUBMITTER = "alice"
log = logging.getLogger("taskrail.local")
#: Step Functions Local's variable naming the MockConfigFile (AWS: "Using mocked service integrations")
SFN_MOCK_CONFIG_ENV = "SFN_MOCK_CONFIG"


@dataclass
class StackOptions:
    api_port: int = 0
    aws_port: int = 0
    console_port: int = 0
    time_scale: float = 1.0
    concurrency: int = 2  # workers per function at start
    max_concurrency: int = 8  # and the most it scales out to while they are all busy, as Lambda does
    log_dir: Path = field(default_factory=lambda: STATE_DIR / "logs")
    extra_function_env: dict[str, str] = field(default_factory=dict)
    with_console: bool = True
    faults: FaultPlan | None = None  # off by default: see taskrail/local/faults.py
    #: Step Functions Local's MockConfigFile: StartExecution on "<arn>#<TestCase>" runs that test case. None: the
    #: file SFN_MOCK_CONFIG names, as for Step Functions Local (none when unset).
    mock_config: Path | None = None
    #: Keep moto's data across restarts: restored from this folder at the start, saved there at a clean stop
    #: (taskrail/local/services/persistence.py). None: every start is empty.
    state_dir: Path | None = None
    #: With ``state_dir``: also a snapshot this often while tables are written (a killed process loses less).
    autosave_seconds: float = 30.0
    #: Follow the sources (infra/, workflows/, lambdas/, asl/): function code is reloaded in place, a template
    #: change is refused with a message (taskrail/local/reload.py). `taskrail local up` turns it on.
    reload: bool = False
    #: The API in a process of its own, so intake does not wait for the GIL behind moto and the backlog
    #: (taskrail/local/apigw_process.py). False: in this process (``stack.api`` is then the LocalApiGateway).
    api_process: bool = True


#: What the stack runs besides moto, started in this order over the provisioned resources and stopped in reverse
#: (see taskrail/local/emulator.py). Emulating one more AWS service: its module, one line here and one line in
#: ``taskrail.local.provision.PROVISIONERS`` (docs/LOCAL-EMULATOR.md).
EMULATORS: Final[tuple[Callable[[], Emulator], ...]] = (
    MailboxEmulator,  # before anything can publish: SNS email deliveries land in the log folder's mail.jsonl
    WebSocketEmulator,  # before Lambda: the functions' environments name its @connections URL (websocket.py)
    LambdaEmulator,
    PipesEmulator,
    SchedulerEmulator,
    FaultsEmulator,  # after the emulators it drives: Lambda (worker kills) and the pipes (poller outage)
    ApiGatewayEmulator,
    CodeReloader,  # after Lambda, whose workers it restarts on new code (off unless StackOptions.reload)
)

_E = TypeVar("_E")


class LocalStack:
    def __init__(self, options: StackOptions | None = None) -> None:
        self.options = options or StackOptions()
        self._exit = contextlib.ExitStack()
        self.resources: LocalResources | None = None
        self.info: StackInfo | None = None
        self.faults: FaultInjector | None = None
        #: The running emulators, by name, in the order of EMULATORS.
        self.emulators: dict[str, Emulator] = {}
        self._reset_lock = threading.Lock()
        self._template: dict[str, Any] = {}
        #: IAM: every principal acts as its role, each request evaluated against the template (taskrail/local/iam)
        self.iam: LocalIam | None = None
        self._provision: Callable[[], tuple[LocalResources, Any]] | None = None
        self._endpoint = ""
        self._state_files: list[Path] = []
        #: What the start restored from StackOptions.state_dir (None: nothing, or no state_dir)
        self.restored: persistence.Summary | None = None
        self._feed: LiveFeed | None = None  # the console's live feed, once a page asked for it
        self._feed_lock = threading.Lock()

    def clients(self, service: str) -> Any:
        assert self.info is not None
        return local_client(service, self.info.aws_endpoint_url)

    @property
    def template(self) -> dict[str, Any]:
        """The synthesized template the stack runs (provisioned from, and whose policies IAM evaluates)."""
        return self._template

    def _running(self, kind: type[_E]) -> _E | None:
        return next((e for e in self.emulators.values() if isinstance(e, kind)), None)

    @staticmethod
    def _started(part: _E | None, what: str) -> _E:
        if part is None:
            raise RuntimeError(f"the local stack's {what} is not running (start the stack first)")
        return part

    @property
    def functions(self) -> FunctionPool:
        emulator = self._running(LambdaEmulator)
        return self._started(emulator.pool if emulator else None, "Lambda")

    @property
    def pipes(self) -> PipeRunner:
        """The current pipe pollers (a reset replaces them)."""
        emulator = self._running(PipesEmulator)
        return self._started(emulator.runner if emulator else None, "pipes")

    @property
    def scheduler(self) -> LocalScheduler:
        """The current scheduler (a reset replaces it)."""
        emulator = self._running(SchedulerEmulator)
        return self._started(emulator.scheduler if emulator else None, "scheduler")

    @property
    def api(self) -> LocalApiGateway | GatewayProcess:
        emulator = self._running(ApiGatewayEmulator)
        gateway = emulator.gateway if emulator else None
        if gateway is None:
            raise RuntimeError("the local stack's API Gateway is not running (start the stack first)")
        return gateway

    @property
    def websocket(self) -> LocalWebSocketApi:
        """The template's WebSocket API, served on loopback (taskrail/local/websocket.py)."""
        emulator = self._running(WebSocketEmulator)
        return self._started(emulator.server if emulator else None, "WebSocket API")

    def start(self) -> StackInfo:
        from infra.synth import CDK_OUT, STACK_NAME, load_template

        # moto's server logs every request through werkzeug; the stack's own log says what matters.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        # moto's interpreter logs every Fail state and caught error at ERROR with the whole state tree; the
        # execution history has the same facts.
        logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
        # A taken port is refused before anything starts (werkzeug would exit the process from inside the start).
        check_ports(self._ports())
        assert_supported_moto()
        template = self._template = load_template()
        try:
            iam = self.iam = LocalIam(log_dir=private_dir(self.options.log_dir))
            self._exit.callback(iam.log.close)  # the decisions file (after the endpoint, which adds to it, stops)
            endpoint = self._exit.enter_context(
                threaded_server(
                    port=self.options.aws_port, credentials=iam.credentials(known_credentials()), authorizer=iam
                )
            )
            self._endpoint = endpoint
            iam.start(endpoint)
            self._provision = lambda: provision(
                template, lambda s: local_client(s, endpoint), stack_name=STACK_NAME, cdk_out=str(CDK_OUT)
            )
            resources, resolve = self._provision()
            self.resources = resources
            iam.load(template, resources)
            self._restore_state()  # before any emulator: the pipes start on the restored tables' streams
            install_aws_semantics()
            self._exit.callback(uninstall_aws_semantics)
            set_role_clients(iam.interpreter_client)  # the state machines' service calls, as their roles
            self._exit.callback(set_role_clients, None)
            set_delivery_check(iam.service_delivery)  # rule targets deliver as events.amazonaws.com
            self._exit.callback(set_delivery_check, None)
            # SNS subscriptions and alarm actions deliver as sns/cloudwatch.amazonaws.com
            service_deliveries.set_delivery_check(iam.service_delivery)
            self._exit.callback(service_deliveries.set_delivery_check, None)
            service_deliveries.set_role_check(iam.role_delivery)  # a rule target's RoleArn starting a state machine
            self._exit.callback(service_deliveries.set_role_check, None)
            set_time_scale(self.options.time_scale)
            self._exit.callback(reset_time_scale)
            mock_config = self.options.mock_config or os.environ.get(SFN_MOCK_CONFIG_ENV) or None
            if mock_config:
                set_mock_config(Path(mock_config))  # a bad file stops the start with MockConfigError
                self._exit.callback(clear_mock_config)
            private_dir(self.options.log_dir)
            self.faults = FaultInjector(self.options.faults or FaultPlan(), names=self._function_names(resources))
            context = self._context(resources, resolve)
            for make in EMULATORS:
                emulator = make()
                emulator.start(context)
                self.emulators[emulator.name] = emulator
                self._exit.callback(emulator.stop)
            if self.restored is not None:
                # The reconciler's run settles what was in flight at the stop (docs/LOCAL-EMULATOR.md).
                self.scheduler.run_once()
            console_url = self._start_console() if self.options.with_console else ""
            control = ControlServer(self)
            self._exit.callback(control.stop)
        except BaseException:
            self._exit.close()
            raise
        # Found as a deployed stack is found: from the stack's Outputs (taskrail/local/outputs.py).
        outputs = self._outputs(template, resolve)
        self.info = StackInfo(
            api_url=outputs[Output.API_URL],
            aws_endpoint_url=endpoint,
            console_url=console_url,
            pid=os.getpid(),
            region=REGION,
            tasks_table=outputs[Output.TASKS_TABLE_NAME],
            results_bucket=outputs[Output.RESULTS_BUCKET_NAME],
            state_machine_arn=outputs[Output.STATE_MACHINE_ARN],
            dead_letter_queue_url=outputs[Output.DEAD_LETTER_QUEUE_URL],
            notifications_queue_url=outputs[Output.NOTIFICATIONS_ARCHIVE_QUEUE_URL],
            pipe_dead_letter_queue_url=outputs[Output.PIPE_DEAD_LETTER_QUEUE_URL],
            control_socket=str(control.path),
            websocket_url=outputs.get(Output.WEBSOCKET_URL, ""),
            state_machine_alias_arn=outputs.get(Output.STATE_MACHINE_ALIAS_ARN, ""),
        )
        return self.info

    def _outputs(self, template: dict[str, Any], resolve: Any) -> dict[str, str]:
        """The template's Outputs, resolved; the WebSocket API's URLs are its local listeners' (websocket.py)."""
        outputs = stack_outputs(template, resolve, api_url=self.api.url)
        live = self._running(WebSocketEmulator)
        return {name: live.localize(value) for name, value in outputs.items()} if live else outputs

    def _restore_state(self) -> None:
        """With ``state_dir``: load its snapshot into the empty resources, and save one there at the stop."""
        if self.options.state_dir is None:
            return
        folder = private_dir(Path(self.options.state_dir))
        path = folder / persistence.SNAPSHOT_FILE
        if path.exists():
            self.restored = persistence.restore(path)  # SnapshotRefused stops the start: nothing is overwritten
            log.warning("restored from %s: %s", path, self.restored)
            executions = persistence.restore_executions(folder / persistence.EXECUTIONS_FILE)
            log.warning("gave back %d finished executions (histories readable; not redrivable)", executions)
        else:
            self.restored = None
            log.warning("no snapshot in %s yet: starting empty; the stack's data is saved there at the stop", folder)

        def save() -> None:
            log.warning("saved to %s: %s", path, persistence.snapshot(path))
            executions = folder / persistence.EXECUTIONS_FILE
            try:  # a record to read; the stack's own clients, while the AWS endpoint still serves
                machines = list(self.resources.state_machines.values()) if self.resources else []
                count = persistence.archive_executions(self.clients("stepfunctions"), machines, executions)
                log.warning(
                    "kept %d executions' histories in %s (the finished ones come back at a start)", count, executions
                )
            except Exception:
                log.exception("the executions could not be archived to %s", executions)

        # Registered now, so it runs once every emulator has stopped (nothing writes any more).
        self._exit.callback(save)
        self._exit.callback(persistence.Autosave(path, self.options.autosave_seconds).start().stop)

    def _ports(self) -> dict[str, int]:
        """The ports asked for, by the option of `taskrail local up` that sets each (0: a free one)."""
        options = self.options
        ports = {"api-port": options.api_port, "aws-port": options.aws_port}
        return ports | ({"console-port": options.console_port} if options.with_console else {})

    def _context(self, resources: LocalResources, resolve: Any) -> EmulatorContext:
        assert self.faults is not None
        endpoint = self._endpoint
        return EmulatorContext(
            template=self._template,
            resources=resources,
            resolve=resolve,
            endpoint=endpoint,
            clients=lambda s: local_client(s, endpoint),
            faults=self.faults,
            time_scale=self.options.time_scale,
            concurrency=self.options.concurrency,
            max_concurrency=self.options.max_concurrency,
            log_dir=self.options.log_dir,
            extra_function_env=self.options.extra_function_env,
            api_port=self.options.api_port,
            running=self.emulators,
            iam=self.iam,
            project_root=ROOT if self.options.reload else None,
            api_process=self.options.api_process,
        )

    def reset(self) -> None:
        """Empty the stack: moto's backends reset in-process, the template provisioned again, pollers restarted.

        What ``POST /moto-api/reset`` did, without an HTTP request any page could send (``taskrail local
        reset`` asks for it over the control socket). Functions, API and console keep running; executions
        running at the time fail, as their resources are gone. A fault plan's poller outage, if any, applies
        to the pollers the stack started with.
        """
        assert self._provision is not None, "the stack is not started"
        with self._reset_lock:
            restarted = [e for e in self.emulators.values() if e.restart_on_reset]
            for emulator in restarted:
                emulator.stop()
            reset_moto()
            resources, resolve = self._provision()
            self.resources = resources
            if self.iam is not None:
                self.iam.load(self._template, resources)
            context = self._context(resources, resolve)
            for emulator in restarted:
                emulator.start(context)
            log.info("local stack reset: every resource is empty, as after `taskrail local up`")

    @staticmethod
    def _function_names(resources: LocalResources) -> dict[str, str]:
        names = {}
        for construct, spec in resources.functions.items():
            names.update({spec.name: construct, spec.arn: construct, construct: construct})
        return names

    def _start_console(self) -> str:
        console = ConsoleServer(
            self._console_dependencies(),
            guard=lambda handler: guard.handler_refusal(handler, browsers=True),
            port=self.options.console_port,
        )
        url = console.start()
        self._exit.callback(console.stop)
        return url

    def _console_dependencies(self) -> ConsoleDependencies:
        """The console's view of this stack: its endpoints once published, its AWS clients, the operator (as
        alice: the console's replay needs no owner check) and the API as a task's owner (the console's cancel)."""

        def info() -> StackInfo | None:
            return self.info

        def operator() -> Operator:
            assert self.info is not None
            return Operator.over_aws(accounts.user_client(self.info, "alice"), self.clients)

        def owner_client(owner: str) -> TaskrailClient | None:
            assert self.info is not None
            return accounts.owner_client(self.info, owner)

        def submitter() -> TaskrailClient | None:  # the console's "submit a task" form submits as alice
            return accounts.user_client(self.info, CONSOLE_SUBMITTER) if self.info is not None else None

        return ConsoleDependencies(
            info=info, aws=self.clients, operator=operator, owner_client=owner_client, submitter=submitter,
            live=self._live_feed, mail=lambda: [asdict(m) for m in MAILBOX.messages()],
        )  # fmt: skip

    def _live_feed(self) -> LiveFeed | None:
        """The console's relay of the WebSocket channel: every local user and role subscribed to all of their tasks
        (opened at the first page's ask, closed with the stack); None without a channel (the page polls)."""
        with self._feed_lock:
            if self._feed is None and self.info is not None and self.info.websocket_url:
                names = [*USERS, *ROLES]
                credentials = {name: accounts.credentials_of(name) for name in names}
                try:
                    self._feed = LiveFeed(self.info.websocket_url, credentials, REGION).open()
                except LiveUnavailable:
                    log.exception("the console's live feed could not subscribe")
                    return None
                self._exit.callback(self._feed.close)
            return self._feed

    def write_state(self, path: Path = STATE_FILE) -> None:
        assert self.info is not None
        # The file names the local credentials' endpoints and is the key to the control socket's folder:
        # readable by this OS user only.
        write_private(path, self.info.to_json())
        self._state_files.append(path)

    def stop(self) -> None:
        """Stop everything; the state file goes last, so `taskrail local down` (which waits for it to go) returns
        once the stack has stopped and its --state-dir snapshot is written, and a new `local up` cannot start
        meanwhile."""
        try:
            self._exit.close()
        finally:
            for path in self._state_files:
                path.unlink(missing_ok=True)
            self._state_files.clear()

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- the control socket: `taskrail local reset` ------------------------------------------------------------


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
