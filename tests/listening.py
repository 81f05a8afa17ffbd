"""Which TCP sockets this process listens on, read from Linux's /proc (no probe connection, no network)."""

from __future__ import annotations

from pathlib import Path

# 127.0.0.1, ::1 and ::ffff:127.0.0.1 as /proc/net/tcp{,6} spell local addresses.
LOOPBACK_HEX = frozenset({"0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F"})
_LISTEN = "0A"


def listening_sockets_of_this_process(*others: int) -> list[tuple[str, int]]:
    """(local address in /proc/net hex, port) of every TCP socket this process (and the processes ``others``,
    e.g. the local stack's API process) listens on."""
    inodes = set()
    for folder in ("/proc/self/fd", *(f"/proc/{pid}/fd" for pid in others)):
        for fd in Path(folder).iterdir():
            try:
                target = str(fd.readlink())
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].split(":")
            if fields[3] == _LISTEN and fields[9] in inodes:
                listening.append((address, int(port_hex, 16)))
    return listening


def non_loopback_listeners(ports: set[int], *others: int) -> list[tuple[str, int]]:
    """The sockets on ``ports`` that accept connections from other hosts (fails if a port is not listening)."""
    listening = [(address, port) for address, port in listening_sockets_of_this_process(*others) if port in ports]
    assert ports <= {port for _, port in listening}, f"not listening on {ports - {p for _, p in listening}}"
    return [(address, port) for address, port in listening if address not in LOOPBACK_HEX]
