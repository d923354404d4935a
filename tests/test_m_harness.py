"""Shared helpers of the M and agents tests (no tests here): servers with M and agents wired in,
a throwaway PostgreSQL cluster, and an in-process runtime.

`MServer` starts `coflows server` through the real CLI with `create_app` wrapped to install the
M and agents components; `install` is idempotent, so this stays correct once `create_app`
installs them itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import ADMIN_KEY, Server, Workspace, free_port, server_starter

PG_BIN = Path("/usr/lib/postgresql/15/bin")

class MServer(Server):
    """The real server (M and agents are part of it) plus the /live websocket URL."""

    def ws_url(self, key: str | None = ADMIN_KEY) -> str:
        return f"ws://127.0.0.1:{self.port}/live" + (f"?_cokey={key}" if key else "")


@pytest.fixture
def m_server() -> Iterator[Any]:
    """`m_server(ws)` starts a server with M and agents; every server is stopped after the test."""
    yield from server_starter(MServer)


class Live:
    """A /live websocket client (websockets' sync client)."""

    def __init__(self, url: str) -> None:
        from websockets.sync.client import connect

        self._cm = connect(url, open_timeout=10)
        self.conn = self._cm.__enter__()

    def send(self, msg: Any) -> None:
        self.conn.send(json.dumps(msg))

    def recv(self, timeout: float = 10) -> dict:
        return json.loads(self.conn.recv(timeout=timeout))

    def subscribe(self, *topics: str) -> None:
        """Subscribe and wait until the server has processed it (a ping answered after it)."""
        for t in topics:
            self.send({"Type": 1, "Content": t})
        self.send({"Type": 15, "Content": "sync"})
        while True:
            msg = self.recv()
            if msg["Type"] == 15:
                return
            if msg["Type"] == 0:
                raise AssertionError(msg)

    def changes(self, n: int, timeout: float = 10) -> list[dict]:
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            msg = self.recv(max(0.01, deadline - time.monotonic()))
            if msg["Type"] == 14:
                out.append(msg["Content"])
        return out

    def close(self) -> None:
        self._cm.__exit__(None, None, None)


# --- PostgreSQL -----------------------------------------------------------------------------------


class Postgres:
    def __init__(self, root: Path, port: int, as_user: list[str]) -> None:
        self.root, self.port, self.as_user = root, port, as_user
        self.data = root / "data"

    def url(self, db: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{db}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        subprocess.run([*self.as_user, str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)


def _start_postgres() -> Postgres:
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL binaries not found in {PG_BIN}")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed")
    as_user: list[str] = []
    # A temp dir outside pytest's (root-only) tmp tree, so the postgres user can reach it.
    root = Path(tempfile.mkdtemp(prefix="coflows-pg-"))
    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run PostgreSQL as")
        runuser = shutil.which("runuser")
        if runuser is None:
            pytest.skip("running as root and 'runuser' is missing")
        as_user = [runuser, "-u", "postgres", "--"]
        os.chown(root, pw.pw_uid, pw.pw_gid)
    pg = Postgres(root, free_port(), as_user)
    r = subprocess.run([*as_user, str(PG_BIN / "initdb"), "-D", str(pg.data), "-U", "postgres", "--auth=trust",
                        "-E", "UTF8", "--no-sync"], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        pytest.skip(f"initdb failed: {r.stderr.strip()[-500:]}")
    opts = f"-p {pg.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    r = subprocess.run([*as_user, str(PG_BIN / "pg_ctl"), "-D", str(pg.data), "-o", opts, "-l",
                        str(root / "log"), "-w", "-t", "60", "start"], capture_output=True, text=True, timeout=90)
    if r.returncode != 0:
        log = (root / "log").read_text(errors="replace") if (root / "log").exists() else ""
        pytest.skip(f"PostgreSQL did not start: {r.stderr.strip()[-300:]} {log[-500:]}")
    return pg


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    pg = _start_postgres()
    try:
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(pg.root, ignore_errors=True)


# --- in-process runtime -----------------------------------------------------------------------------


def in_process_runtime(ws: Workspace, *, keep_runs: int = 200) -> Any:
    """A Runtime on `ws` with M and agents installed and started, as the server would (no HTTP)."""
    from coflows.agents.component import install as install_agents
    from coflows.config import load_config
    from coflows.m.component import install as install_m
    from coflows.runtime import Runtime

    runtime = Runtime(load_config(str(ws.config_path)))
    runtime.load()
    install_m(runtime)
    install_agents(runtime, keep_runs=keep_runs)

    async def startup() -> None:
        for start in runtime.startups:
            start()

    asyncio.run(startup())
    return runtime


def wait_for(predicate: Any, timeout: float = 10, interval: float = 0.01) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


admin = {"x-api-key": ADMIN_KEY}

ORDERS_PY = '''
from coflows.m import M

def PlaceOrder(item: str, qty: int) -> str:
    return M.Base("orders").Add({"item": item, "qty": qty})
'''


def check_example_agent_over_http(root: Path, m_server: Any, agent_file: str, language: str, by: str,
                                  topic: str) -> None:
    """The example workspace's agent in `agent_file` (mnt/Agents) acknowledges an order placed over
    HTTP into M `topic`, answers its Body, and records its hooks: the same check for each language."""
    from conftest import REPO, new_workspace

    ws = new_workspace(root)
    ws.add_agent(agent_file, (REPO / "mnt/Agents" / agent_file).read_text())
    ws.add_query("PythonQuery.py", ORDERS_PY)
    s = m_server(ws)
    wid = ws.manifest["ID"]
    agent = f"{wid}-{Path(agent_file).stem}"
    listed = [a for a in s.get("/flow/agents").json() if a["ID"] == agent]
    assert listed and listed[0]["State"] == "running" and listed[0]["Language"] == language, listed
    order = s.get(f"/flow/query/{wid}/PythonQuery.py/PlaceOrder?item=tea&qty=2").json()
    status = wait_for(lambda: s.get(f"/m/data?type={topic}").json())
    assert status == [{"order": order, "item": "tea", "status": "received", "by": by}]
    assert s.post(f"/flow/agent/{agent}", json={}, headers=admin).json() == {"orders": 1, "acknowledged": 1}
    runs = s.get(f"/flow/agent/{agent}/runs", headers=admin).json()
    assert {r["Hook"] for r in runs} >= {"Load", "Add", "Body"}
    assert all(r["Status"] == "ok" for r in runs), runs


@pytest.fixture
def runtime_of() -> Iterator[Any]:
    """`runtime_of(ws)`: an in-process runtime with M and agents; all closed after the test."""
    runtimes = []

    def make(ws, **kw):
        rt = in_process_runtime(ws, **kw)
        runtimes.append(rt)
        return rt

    yield make
    for rt in runtimes:
        rt.close()
