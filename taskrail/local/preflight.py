"""What `taskrail local up` checks before it starts anything: no stack already running there, its ports free.

Light on purpose (the standard library and :mod:`taskrail.local.state`): the refusal comes at once, before
moto, the template or a worker is loaded. Each refusal says what to do instead.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Mapping
from pathlib import Path

from taskrail.local.state import StackInfo

__all__ = ["LocalUpRefused", "check_can_start", "check_ports", "port_in_use", "process_alive", "running_stack"]

FREE_PORTS_HINT = "--api-port 0 --aws-port 0 --console-port 0 picks free ports"


class LocalUpRefused(RuntimeError):
    """`local up` cannot start as asked; the message says why and what to do (the CLI exits 1 with it)."""


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (another user's counts: it cannot be signalled, but it runs)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_stack(state_file: Path) -> StackInfo | None:
    """The stack ``state_file`` records, if its process is alive (a stale file, or no file: None)."""
    try:
        info = StackInfo.load(state_file)
    except (OSError, ValueError, TypeError):
        return None
    return info if info.pid != os.getpid() and process_alive(info.pid) else None


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether ``host:port`` cannot be bound (with SO_REUSEADDR, as the stack's servers bind)."""
    if port == 0:
        return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            return error.errno in (errno.EADDRINUSE, errno.EACCES)
    return False


def check_can_start(state_file: Path, ports: Mapping[str, int]) -> None:
    """Raise :class:`LocalUpRefused` if a stack already runs for ``state_file`` or a port is taken.

    ``ports`` maps each option name (``api-port``) to the port asked for (0: any free port).
    """
    running = running_stack(state_file)
    if running is not None:
        raise LocalUpRefused(
            f"a local stack is already running (pid {running.pid}, state file {state_file}):\n"
            f"  API            {running.api_url}\n"
            f"  AWS endpoint   {running.aws_endpoint_url}\n"
            f"  console        {running.console_url or '-'}\n"
            "Use it, stop it with `taskrail local down`, or start a second one with --local-state FILE "
            f"({FREE_PORTS_HINT})."
        )
    check_ports(ports)


def check_ports(ports: Mapping[str, int]) -> None:
    """Raise :class:`LocalUpRefused` naming the first port of ``ports`` (option name → port) that is taken."""
    for option, port in ports.items():
        if port_in_use(port):
            raise LocalUpRefused(
                f"port {port} (--{option}) is in use by another program: choose another with --{option} N "
                f"({FREE_PORTS_HINT})."
            )
