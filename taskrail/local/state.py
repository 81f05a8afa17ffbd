"""The local stack's state file (``.taskrail/local.json``) and what a client needs to talk to a running stack.

Light on purpose: the standard library and the local users only (boto3 is imported when a client is made). The
CLI reads a running stack through this module; importing :mod:`taskrail.local.stack` would load moto and its Step
Functions parser (seconds) just to read a JSON file. ``tests/unit/test_cli_imports.py`` fails if a stack-talking
command pulls the emulator in again.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from taskrail.local.region import REGION
from taskrail.local.users import STACK_SERVICE

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
#: The control socket's one command (`taskrail local reset`); the stack's side is taskrail.local.stack.ControlServer.
CONTROL_RESET = b"reset\n"


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
    # the live-progress WebSocket API (Output WebSocketUrl, ws://127.0.0.1:PORT/live locally); "" without one
    websocket_url: str = ""
    state_machine_alias_arn: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def load(cls, path: Path = STATE_FILE) -> StackInfo:
        return cls(**json.loads(path.read_text()))


def local_client(service: str, endpoint_url: str) -> Any:
    import boto3

    return boto3.client(service, endpoint_url=endpoint_url, region_name=REGION, **LOCAL_CREDENTIALS)


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
