"""Shared fixtures: throwaway workspaces and a real coflows server on a free loopback port."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parent.parent
ADMIN_KEY = "test-admin-key"


def pid_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Workspace:
    """A workspace folder with package.json and coflows_config.json, written by a test."""

    root: Path  # folder holding coflows_config.json; the workspace is root/"mnt"
    manifest: dict[str, Any]
    config: dict[str, Any]

    @property
    def mnt(self) -> Path:
        return self.root / "mnt"

    @property
    def config_path(self) -> Path:
        return self.root / "coflows_config.json"

    def write(self, rel: str, text: str) -> Path:
        path = self.mnt / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def save(self) -> None:
        (self.mnt / "package.json").write_text(json.dumps(self.manifest, indent=2))
        self.config_path.write_text(json.dumps(self.config, indent=2))

    def add_query(self, name: str, text: str, query_id: str | None = None) -> None:
        self.write(f"Queries/{name}", text)
        self.manifest["Queries"].append({"Name": name, "Content": f"Queries/{name}", "ID": query_id or name})
        self.save()

    def add_base(self, name: str, text: str) -> None:
        self.write(f"Base/{name}", text)
        self.manifest["Base"].append({"Name": name, "Content": f"Base/{name}"})
        self.save()

    def add_agent(self, name: str, text: str, exe: str = "pkg") -> None:
        self.write(f"Agents/{name}", text)
        self.manifest["Agents"].append({"Name": name, "Content": f"Agents/{name}", "Exe": exe})
        self.save()


def new_workspace(root: Path, name: str = "Test", wid: str = "11111111-2222-3333-4444-555555555555",
                  public: int | None = 1, **config_extra: Any) -> Workspace:
    (root / "mnt").mkdir(parents=True, exist_ok=True)
    perms = [{"ID": "root", "Permission": 2}]
    if public is not None:
        perms.append({"ID": "Public", "Permission": public})
    manifest = {"ID": wid, "Name": name, "Base": [], "Agents": [], "Queries": [], "Permissions": perms,
                "NuGets": [], "Pips": [], "Jars": [], "Bins": [], "Files": []}
    config = {"Database": {"Type": "sqlite", "Connection": "mnt/database.db"}, "Workflow": "mnt/package.json",
              "Server": {"Host": "127.0.0.1", "Port": 0, "SecretKey": ADMIN_KEY},
              "Cloud": {"Host": "", "SecretKey": ADMIN_KEY, "SSL": False}}
    config.update(config_extra)
    ws = Workspace(root, manifest, config)
    ws.save()
    return ws


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return new_workspace(tmp_path / "ws")


class Server:
    """`coflows server` as a real subprocess (uvicorn on a free loopback port)."""

    args: tuple[str, ...] = ()  # more `coflows server` options (a subclass may set e.g. --access-log)

    def __init__(self, ws: Workspace, env: dict[str, str] | None = None) -> None:
        self.ws = ws
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = ws.root / f"server-{self.port}.log"
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.client = httpx.Client(base_url=self.base, timeout=60)

    def start(self, timeout: float = 90) -> Server:
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "coflows", "server", str(self.ws.config_path), "--port", str(self.port),
             *self.args],
            cwd=self.ws.root, stdout=self.log, stderr=subprocess.STDOUT, env=self.env,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if self.client.get("/health").status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not start in {timeout}s:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.get(path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.post(path, **kw)

    def admin(self) -> dict[str, str]:
        return {"x-api-key": ADMIN_KEY}

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        child = self.child_pid()
        if child is not None:  # the supervisor's child dies with it (SIGKILL): wait until it is gone
            deadline = time.monotonic() + 10
            while pid_alive(child) and time.monotonic() < deadline:
                time.sleep(0.02)
        self.log.close()
        return self.proc.returncode

    def child_pid(self) -> int | None:
        """The pid of the server process the supervisor started last (from its log line)."""
        found = re.findall(r"server started \(pid (\d+)\)", self.output())
        return int(found[-1]) if found else None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def close(self) -> None:
        """Stop the server and close the test's HTTP client (fixture teardown)."""
        self.stop()
        self.client.close()


def server_starter(cls: type[Server] = Server) -> Iterator[Callable[..., Server]]:
    """For fixtures: yields `start(ws, env=None)`, which starts a `cls` server; all are closed after."""
    servers: list[Server] = []

    def _start(ws: Workspace, env: dict[str, str] | None = None) -> Server:
        s = cls(ws, env).start()
        servers.append(s)
        return s

    try:
        yield _start
    finally:  # also when the fixture closes the generator (GeneratorExit at the yield)
        for s in servers:
            s.close()


@pytest.fixture
def start_server() -> Iterator[Callable[..., Server]]:
    """`start_server(ws)` starts a server on `ws`; every server is stopped after the test."""
    yield from server_starter(Server)


def edit_source(path: Path, text: str) -> None:
    """Rewrite a user source so a reload surely sees it: a new mtime even on coarse
    filesystem clocks, then wait out the interval in which calls from code
    (`runtime.call`) may still be served by the previous version."""
    from coflows.registry import CODE_CALL_REFRESH_SECONDS

    before = path.stat().st_mtime_ns
    path.write_text(text)
    if path.stat().st_mtime_ns == before:
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))
    time.sleep(CODE_CALL_REFRESH_SECONDS + 0.05)


def run_script_scenario(script: str, name: str, tmp_path: Path, timeout: float) -> dict[str, Any]:
    """Run `python script name tmp_path` (a test module's in-process scenario, in a fresh process so
    engines start clean) and return the JSON its last line prints."""
    here = Path(script).resolve().parent
    proc = subprocess.run([sys.executable, script, name, str(tmp_path)], cwd=here, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "PYTHONPATH": str(here)})
    assert proc.returncode == 0, f"scenario {name} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])
