"""Helpers of the replica tests and bench (no tests here): N `coflows server` processes on one
workspace and one PostgreSQL database, and HAProxy on a free loopback port balancing over them.

Why `--no-supervisor`: the tests kill a replica with SIGKILL to make it *gone* (as a crashed
machine is); under the supervisor a killed server process would be restarted at once and take
back its own runs, which is a different story (tests/test_supervisor.py).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from conftest import ADMIN_KEY, Server, Workspace, free_port, new_workspace, pid_alive

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"

HAPROXY_CONFIG = """\
global
    maxconn 4096

defaults
    mode http
    option redispatch          # a request whose server is down goes to another one
    retries 3
    option forwardfor          # the client's address in X-Forwarded-For (uvicorn trusts it from 127.0.0.1)
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 10s
    timeout tunnel 1h          # /live websockets once upgraded
    timeout client-fin 5s

frontend coflows
    bind 127.0.0.1:{port}
    default_backend replicas

backend replicas
    balance roundrobin
    option httpchk GET /health
    http-check expect status 200
    default-server inter 500ms fastinter 250ms downinter 500ms fall 2 rise 2
    http-response set-header X-Replica %[srv_name]   # which replica answered (tests only)
{servers}
"""


class Replica(Server):
    """One replica: the server process itself (no supervisor), so SIGKILL leaves it dead."""

    args = ("--no-supervisor",)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


class HAProxy:
    """HAProxy in the foreground (`-db`) with a config file written in `root`."""

    def __init__(self, root: Path, backends: list[int]) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.config = root / f"haproxy-{self.port}.cfg"
        servers = "\n".join(f"    server r{i + 1} 127.0.0.1:{p} check" for i, p in enumerate(backends))
        self.config.write_text(HAPROXY_CONFIG.format(port=self.port, servers=servers))
        self.log_path = root / f"haproxy-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 15) -> HAProxy:
        check = subprocess.run([HAPROXY, "-c", "-q", "-f", str(self.config)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([HAPROXY, "-db", "-f", str(self.config)], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log_path.read_text(errors="replace")
            try:
                if httpx.get(self.base + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"HAProxy did not serve /health in {timeout}s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self.log.close()


class Cluster:
    """`n` replicas of one workspace on one PostgreSQL database, behind HAProxy.

    `client` talks to the balancer with the admin key; `replicas[i].client` to one replica.
    """

    def __init__(self, ws: Workspace, n: int, env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> None:
        self.ws = ws
        self.replicas = [Replica(ws, env) for _ in range(n)]
        for r in self.replicas:
            r.args = (*Replica.args, *args)  # more `coflows server` options, e.g. --log-level warning
        self.haproxy: HAProxy | None = None
        self.client = httpx.Client(timeout=60, headers={"x-api-key": ADMIN_KEY})

    def start(self) -> Cluster:
        # one after the other: the first one migrates the database, the others find it done
        for r in self.replicas:
            r.start()
        self.haproxy = HAProxy(self.ws.root, [r.port for r in self.replicas]).start()
        self.client.base_url = self.haproxy.base
        return self

    @property
    def base(self) -> str:
        assert self.haproxy is not None
        return self.haproxy.base

    def by_pid(self, pid: int) -> Replica:
        return next(r for r in self.replicas if r.pid == pid)

    def kill(self, replica: Replica) -> None:
        """SIGKILL: the replica is gone; wait until the process is, and HAProxy has seen it."""
        assert replica.proc is not None
        replica.proc.send_signal(signal.SIGKILL)
        replica.proc.wait(10)
        deadline = time.monotonic() + 10
        while pid_alive(replica.pid) and time.monotonic() < deadline:
            time.sleep(0.02)

    def close(self) -> None:
        if self.haproxy is not None:
            self.haproxy.stop()
        for r in self.replicas:
            r.close()
        self.client.close()


def replica_workspace(root: Path, database_url: str, **config: Any) -> Workspace:
    """A workspace whose config points at PostgreSQL (every replica reads the same file)."""
    return new_workspace(root, Database={"Type": "postgres", "Connection": database_url}, **config)


def wait_until(check: Any, timeout: float = 60, interval: float = 0.1, what: str = "condition") -> Any:
    """Poll `check()` until it returns something truthy; fail with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what} not reached in {timeout}s (last: {last!r})")
