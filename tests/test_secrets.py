"""Secrets stay secret: API keys never reach a log line or an error body; database and key files are 0600."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from conftest import ADMIN_KEY, Server, new_workspace
from test_m_harness import Live, MServer

QUERY = '''
def Echo(x: str):
    return len(x)

def Boom(x: str):
    raise ValueError("cannot use " + x)
'''


class TracingServer(MServer):
    """The real server with the access log on and uvicorn at its most talkative (it dumps ASGI scopes,
    the websockets library its handshakes)."""

    args = ("--access-log", "--log-level", "trace")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def tracing_server():
    servers: list[Server] = []

    def start(ws):  # noqa: ANN001, ANN202
        servers.append(TracingServer(ws).start())
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def test_api_keys_never_reach_the_log_or_an_error_body(tmp_path, tracing_server):
    ws = new_workspace(tmp_path / "ws")
    ws.add_query("Q.py", QUERY)
    wid = ws.manifest["ID"]
    wrong = "wrong-key-0123456789"
    s = tracing_server(ws)
    assert s.get(f"/flow/query/{wid}/Q.py/Echo?x=abc&_cokey={ADMIN_KEY}").json() == 3
    assert s.get(f"/flow/query/{wid}/Q.py/Echo?x=abc", headers={"x-api-key": ADMIN_KEY}).json() == 3
    assert s.get(f"/flow/query/{wid}/Q.py/Echo?x=abc&_cokey={wrong}").status_code == 401
    assert s.get(f"/no/such/route?_cokey={ADMIN_KEY}").status_code == 404
    # an error message that would echo the key (user code puts its argument in it)
    r = s.get(f"/flow/query/{wid}/Q.py/Boom?x={ADMIN_KEY}", headers={"x-api-key": ADMIN_KEY})
    live = Live(s.ws_url())  # /live?_cokey=<admin key>
    try:
        live.subscribe("orders")
    finally:
        live.close()
    s.stop()  # flush every log line
    out = s.output()
    assert "GET /flow/query/" in out and "_cokey=*** HTTP/1.1\" 200" in out  # the access log
    assert "WebSocket /live?_cokey=***" in out  # uvicorn's websocket line (logged even without --access-log)
    assert ADMIN_KEY not in out
    assert wrong not in out
    assert r.status_code >= 400 and "cannot use ***" in r.text  # the error body and its stack
    assert ADMIN_KEY not in r.text


def test_database_and_its_wal_files_are_private(tmp_path, start_server):
    ws = new_workspace(tmp_path / "ws")
    os.umask(0o022)  # the usual umask, under which SQLite would create 0644 files
    s = start_server(ws)
    assert s.post("/m/add?type=orders", json={"item": "tea"}, headers=s.admin()).status_code == 200
    db = ws.mnt / "database.db"
    files = [db, db.with_name("database.db-wal"), db.with_name("database.db-shm")]
    assert all(p.exists() for p in files), sorted(os.listdir(ws.mnt))
    assert {p.name: oct(_mode(p)) for p in files} == {p.name: "0o600" for p in files}


def test_an_existing_world_readable_database_is_narrowed(tmp_path):
    from coflows.store import Database

    db = tmp_path / "old.db"
    first = Database(f"sqlite:///{db}")
    with first.engine.begin() as c:
        c.exec_driver_sql("CREATE TABLE t (x)")
    first.dispose()
    wal = db.with_name("old.db-wal")
    wal.touch()
    for p in (db, wal):
        os.chmod(p, 0o644)
    again = Database(f"sqlite:///{db}")
    try:
        assert (oct(_mode(db)), oct(_mode(wal))) == ("0o600", "0o600")
    finally:
        again.dispose()


def test_generated_admin_key_is_private_and_not_logged(tmp_path, start_server):
    ws = new_workspace(tmp_path / "ws")
    del ws.config["Server"]["SecretKey"]
    ws.save()
    s = start_server(ws, env={"COFLOWS_SECRET_KEY": ""})
    state = ws.mnt / ".coflows"
    key = (state / "secret_key").read_text().strip()
    assert s.get("/flow/workflows", headers={"x-api-key": key}).status_code == 200
    assert (oct(_mode(state)), oct(_mode(state / "secret_key"))) == ("0o700", "0o600")
    s.stop()
    out = s.output()
    assert str(state / "secret_key") in out  # the operator is told where it is
    assert key not in out


def test_redaction_of_log_records_in_process(caplog):
    """Every logger, any handler: the record itself is redacted when it is made."""
    from coflows.redact import install, protect

    install()
    protect("in-process-secret-42")
    log = logging.getLogger("some.user.logger")
    with caplog.at_level(logging.INFO):
        log.info("%s - %s", "GET /x?_cokey=abc123&y=1", {"x-api-key": "abc123"})
        log.info("url https://user:hunter2@feed.example/v3 then in-process-secret-42")
        try:
            raise RuntimeError("failed for /live?_cokey=zzz999")
        except RuntimeError:
            log.exception("boom")
    text = caplog.text
    assert "abc123" not in text and "hunter2" not in text and "zzz999" not in text
    assert "in-process-secret-42" not in text
    assert "_cokey=***&y=1" in text and "'x-api-key': '***'" in text and "user:***@feed" in text


def test_package_lock_files_are_private(tmp_path):
    """Locks may hold a private feed's URL with its credentials (kept: a missing file is fetched again)."""
    from coflows.packages.download import atomic_write_text

    os.umask(0o022)
    lock = tmp_path / "nugets" / "nugets.lock.json"
    atomic_write_text(lock, '{"feeds": ["https://user:token@feed.example/v3/index.json"]}')
    assert oct(_mode(lock)) == "0o600"


def test_state_folder_made_by_an_engine_is_narrowed_when_the_key_is_generated(tmp_path):
    from coflows.config import parse_config

    os.umask(0o022)
    (tmp_path / "mnt" / ".coflows" / "clr").mkdir(parents=True)  # as the C# engine makes it, 0755
    config = parse_config({"Workflow": "mnt/package.json"}, "c.json", tmp_path)
    key = config.admin_key()
    state = tmp_path / "mnt" / ".coflows"
    assert (oct(_mode(state)), oct(_mode(state / "secret_key"))) == ("0o700", "0o600")
    assert sorted(os.listdir(state)) == ["clr", "secret_key"] and config.admin_key() == key
