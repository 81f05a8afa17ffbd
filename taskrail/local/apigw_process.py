"""The local API Gateway in a process of its own, so that intake does not share a GIL with moto and the backlog.

Storage first means the API answers in milliseconds whatever the backlog. In one Python process with moto, the
interpreter's executions, the pipe pollers and the Runtime APIs, every request waited for the GIL behind them
(docs/BENCHMARKS.md: intake by stage). :class:`GatewayProcess` runs the same :class:`LocalApiGateway` (its
guard, SigV4 verification, validation and VTL unchanged) in a child ``python -m taskrail.local.apigw_process``:

* the parent parses the API from the template (``ApiDefinition``, resolved against the provisioned resources)
  and sends it, with the AWS endpoint, the port and the integration roles' session credentials (each
  integration calls the endpoint as its role, as in one process: taskrail/local/iam), pickled on the child's
  stdin -- a pipe only the parent holds;
* the child binds 127.0.0.1, answers its URL on stdout and serves until its stdin closes: the parent's
  :meth:`GatewayProcess.stop`, or the parent's death (the pipe closes with it; Linux's parent-death signal as
  well), so ``taskrail local down`` or a killed stack leaves no API process behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import pickle
import select
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from taskrail.local.apigw import ApiDefinition, LocalApiGateway

if TYPE_CHECKING:
    from taskrail.local.emulator import EmulatorContext

__all__ = ["ApiGatewayEmulator", "GatewayProcess", "GatewaySpec"]

LOG = logging.getLogger("taskrail.local.apigw")
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class GatewaySpec:
    """What the child needs: the parsed API, where the AWS endpoint is, its port, the roles' credentials."""

    api: ApiDefinition
    aws_endpoint_url: str
    port: int
    #: integration role ARN -> (access key id, secret, session token) of that role's session
    role_credentials: Mapping[str, tuple[str, str, str | None]]
    log_level: int = logging.WARNING
    #: the stage's access log, written to the local CloudWatch Logs (taskrail/local/access_logs.py)
    access_logs: bool = False


class GatewayProcess:
    """:class:`LocalApiGateway` in a child process: ``start() -> url``, ``url``, ``routes()``, ``stop()``."""

    def __init__(self, spec: GatewaySpec) -> None:
        self.spec = spec
        self.api = spec.api
        self._process: subprocess.Popen[bytes] | None = None
        self._url = ""

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def url(self) -> str:
        if not self._url:
            raise RuntimeError("the local API Gateway is not started")
        return self._url

    @property
    def internal_errors(self) -> list[str]:
        """Not collected across the process boundary: each 500 is logged (with its traceback) by the child."""
        return []

    def routes(self) -> list[tuple[str, str]]:
        return self.api.routes()

    def start(self) -> str:
        if self._process is not None:
            return self._url
        process = self._process = subprocess.Popen(
            [sys.executable, "-m", "taskrail.local.apigw_process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        assert process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(pickle.dumps(self.spec))
            process.stdin.flush()
            self._url = _read_line(process, START_TIMEOUT_SECONDS)
        except BaseException:
            self.stop()
            raise
        LOG.info(
            "local API Gateway (process %d) serving %d routes at %s", process.pid, len(self.api.methods), self._url
        )
        return self._url

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(OSError):
            if process.stdin is not None:
                process.stdin.close()  # the child's signal to stop
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        if process.stdout is not None:
            process.stdout.close()


class ApiGatewayEmulator:
    """The stack's API Gateway: the template's REST API on 127.0.0.1, in a process of its own unless
    ``EmulatorContext.api_process`` is off."""

    name: ClassVar[str] = "apigateway"
    restart_on_reset: ClassVar[bool] = False

    def __init__(self) -> None:
        self.gateway: LocalApiGateway | GatewayProcess | None = None
        self.url = ""

    def start(self, context: EmulatorContext) -> None:
        iam = context.iam
        role_credentials = iam.botocore_credentials if iam is not None else None
        if not context.api_process:
            self.gateway = LocalApiGateway(
                context.template, context.resolve, context.endpoint, port=context.api_port,
                role_credentials=role_credentials, access_logs=True,
            )  # fmt: skip
            self.url = self.gateway.start()
            return
        api = ApiDefinition.from_template(context.template, context.resolve)
        roles = {m.integration.credentials for m in api.methods if m.integration.credentials}
        sessions = {arn: role_credentials(arn) for arn in sorted(roles)} if role_credentials else {}
        spec = GatewaySpec(
            api=api,
            aws_endpoint_url=context.endpoint,
            port=context.api_port,
            role_credentials={arn: (c.access_key, c.secret_key, c.token) for arn, c in sessions.items() if c},
            log_level=LOG.getEffectiveLevel(),
            access_logs=True,
        )
        self.gateway = GatewayProcess(spec)
        self.url = self.gateway.start()

    def stop(self) -> None:
        if self.gateway is not None:
            self.gateway.stop()


def _read_line(process: subprocess.Popen[bytes], timeout: float) -> str:
    """The child's first line (its URL), waiting at most ``timeout``; its exit status if it died instead."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    line = b""
    while not line.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RuntimeError(f"the local API Gateway process did not start within {timeout:.0f} s")
        ready, _, _ = select.select([process.stdout], [], [], remaining)
        if ready:
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                code = process.wait(timeout=STOP_TIMEOUT_SECONDS)
                raise RuntimeError(f"the local API Gateway process exited ({code}) before serving")
            line += chunk
    return line.decode().strip()


def _die_with_parent() -> None:
    """Linux: SIGTERM when the parent dies (the closed stdin stops the child too; this covers a stuck read)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def serve(spec: GatewaySpec, stdin: Any, stdout: Any) -> None:
    """The child: serve ``spec``'s API until ``stdin`` closes."""
    from botocore.credentials import Credentials

    credentials = {arn: Credentials(*values) for arn, values in spec.role_credentials.items()}
    gateway = LocalApiGateway.from_definition(
        spec.api, spec.aws_endpoint_url, port=spec.port, role_credentials=credentials.get, access_logs=spec.access_logs
    )
    url = gateway.start()
    stdout.write((url + "\n").encode())
    stdout.flush()
    try:
        while stdin.read(4096):  # nothing more is sent: this returns b"" when the parent closes the pipe
            pass
    finally:
        gateway.stop()


def main() -> int:
    _die_with_parent()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent stops us
    spec: GatewaySpec = pickle.load(sys.stdin.buffer)  # from the parent, over its own pipe
    logging.basicConfig(level=spec.log_level, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    serve(spec, sys.stdin.buffer, sys.stdout.buffer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
