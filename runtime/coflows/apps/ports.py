"""Loopback ports for apps: a free one to hand to `run`, and who listens on one afterwards.

CoFlows counted ports up from 10001, which collides with anything else on the machine; here the
kernel picks a free ephemeral port (bind to 127.0.0.1:0). Between closing that probe socket and
the app binding the port another process could take it, so after `run` the server checks, in
`/proc/net/tcp{,6}` and its own `/proc/self/fd`, that the listener is a socket of this process
and bound to loopback only: an app listening on every interface would bypass coflows' auth.
Without /proc (not Linux) only a connect test is possible and the checks are skipped.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path

LISTEN = "0A"  # TCP state in /proc/net/tcp


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Listener:
    address: str  # as bound, e.g. 127.0.0.1, 0.0.0.0, ::1, ::
    port: int
    inode: int

    @property
    def loopback(self) -> bool:
        ip = ipaddress.ip_address(self.address)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return ip.is_loopback


def _address(hex_addr: str) -> str:
    raw = bytes.fromhex(hex_addr)
    if len(raw) == 4:  # one little-endian 32-bit word
        return str(ipaddress.IPv4Address(raw[::-1]))
    # four 32-bit words, each in host (little-endian) order
    return str(ipaddress.IPv6Address(b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))))


def proc_available() -> bool:
    return Path("/proc/net/tcp").exists() and Path("/proc/self/fd").is_dir()


def listeners(port: int) -> list[Listener]:
    """Every socket listening on `port` (any address), from /proc/net/tcp and tcp6."""
    out: list[Listener] = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != LISTEN:
                continue
            addr, _, hex_port = fields[1].rpartition(":")
            if int(hex_port, 16) == port:
                out.append(Listener(_address(addr), port, int(fields[9])))
    return out


def own_socket_inodes() -> set[int]:
    """Inodes of the sockets this process holds open."""
    found: set[int] = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            found.add(int(target[8:-1]))
    return found


def accepts(port: int, timeout: float = 0.5, host: str = "127.0.0.1") -> bool:
    """Something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def listening(port: int) -> bool:
    """Something listens on `port` (any address; a connect test to 127.0.0.1 without /proc)."""
    return bool(listeners(port)) if proc_available() else accepts(port, 0.1)
