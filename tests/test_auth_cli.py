"""`coflows user …` / `coflows group …`: the real CLI as a subprocess on a throwaway workspace's database,
then a real server that honours what the CLI wrote (keys, grants, revocations).

The workspace sets `Auth.CacheSeconds` to 0 so a change made by the CLI shows on the server at once.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pty
import select
import signal
import sqlite3
import stat
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import ADMIN_KEY, Server, Workspace, new_workspace

WID = "11111111-2222-3333-4444-555555555555"
PASSWORD = "correct horse battery"


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return new_workspace(tmp_path / "ws", public=None, Auth={"CacheSeconds": 0})


def cli(ws: Workspace, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """`coflows ARGS -c <config>` with stdin from `stdin` (a pipe) or /dev/null: never a terminal."""
    return subprocess.run([sys.executable, "-m", "coflows", *args, "-c", str(ws.config_path)], cwd=ws.root,
                          input=stdin if stdin is not None else "", capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "250"})  # wide tables: one row per line


def ok(ws: Workspace, *args: str, stdin: str | None = None) -> str:
    r = cli(ws, *args, stdin=stdin)
    assert r.returncode == 0, f"{args}: {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r.stdout


def bad(ws: Workspace, field: str, *args: str, stdin: str | None = None) -> str:
    """The command exits 2 with one `error: <field>: …` line and no traceback."""
    r = cli(ws, *args, stdin=stdin)
    assert r.returncode == 2, f"{args}: {r.returncode}\n{r.stdout}\n{r.stderr}"
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {field}: "), r.stderr
    assert "Traceback" not in r.stderr
    return lines[0]


def db_rows(ws: Workspace, sql: str, *params: object) -> list[tuple]:
    con = sqlite3.connect(ws.mnt / "database.db")
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def password_hash(ws: Workspace, email: str) -> str | None:
    rows = db_rows(ws, "SELECT password_hash FROM auth_users WHERE id = ?", email)
    assert rows, f"no row for {email}"
    return rows[0][0]


def list_row(listing: str, first: str) -> str:
    found = [line for line in listing.splitlines() if line.strip("│ ").startswith(first)]
    assert len(found) == 1, listing
    return found[0]


def test_user_add_list_passwd_admin_remove(ws: Workspace) -> None:
    out = ok(ws, "user", "add", "Alice@Example.com", "--name", "Alice Liddell")  # stdin is no terminal
    assert "alice@example.com" in out and "no password" in out
    assert password_hash(ws, "alice@example.com") is None  # OIDC only, or `passwd` later

    out = ok(ws, "user", "add", "bob@example.com", "--password-stdin", "--admin", stdin=PASSWORD + "\n")
    stored = password_hash(ws, "bob@example.com")
    assert stored is not None and stored.startswith("$argon2id$") and PASSWORD not in stored
    assert PASSWORD not in out

    mode = stat.S_IMODE((ws.mnt / "database.db").stat().st_mode)
    assert mode == 0o600, oct(mode)

    listing = ok(ws, "user", "list")
    alice, bob = list_row(listing, "alice@example.com"), list_row(listing, "bob@example.com")
    assert "Alice Liddell" in alice and "set" not in alice and "yes" not in alice
    assert "set" in bob and "yes" in bob
    assert "$argon2" not in listing and PASSWORD not in listing

    ok(ws, "user", "passwd", "alice@example.com", "--password-stdin", stdin="another password\n")
    first = password_hash(ws, "alice@example.com")
    assert first is not None and first.startswith("$argon2id$")
    ok(ws, "user", "passwd", "ALICE@example.com", "--password-stdin", stdin="yet another one\n")
    assert password_hash(ws, "alice@example.com") not in (None, first)

    ok(ws, "user", "admin", "alice@example.com", "--yes")
    assert db_rows(ws, "SELECT is_admin FROM auth_users WHERE id = 'alice@example.com'") == [(1,)]
    ok(ws, "user", "admin", "alice@example.com", "--no")
    assert db_rows(ws, "SELECT is_admin FROM auth_users WHERE id = 'alice@example.com'") == [(0,)]

    r = cli(ws, "user", "remove", "bob@example.com")
    assert r.returncode == 0 and "last admin" in r.stderr  # said, not refused: the admin key remains
    assert "bob@example.com" not in ok(ws, "user", "list")
    assert db_rows(ws, "SELECT id FROM auth_users") == [("alice@example.com",)]


def test_user_errors_exit_2_naming_the_field(ws: Workspace) -> None:
    ok(ws, "user", "add", "alice@example.com")
    bad(ws, "email", "user", "add", "not-an-email")
    bad(ws, "email", "user", "add", "ALICE@example.com")  # duplicate (emails are case-insensitive)
    bad(ws, "password", "user", "add", "carol@example.com", "--password-stdin", stdin="short\n")
    bad(ws, "password", "user", "add", "carol@example.com", "--password-stdin", stdin="")  # nothing on stdin
    assert db_rows(ws, "SELECT id FROM auth_users WHERE id = 'carol@example.com'") == []
    bad(ws, "name", "user", "add", "carol@example.com", "--name", "x" * 201)
    bad(ws, "password", "user", "passwd", "alice@example.com")  # no terminal and no --password-stdin
    assert password_hash(ws, "alice@example.com") is None
    for command in (("remove",), ("passwd", "--password-stdin"), ("admin", "--yes"), ("key",), ("keys",)):
        line = bad(ws, "email", "user", command[0], "nobody@example.com", *command[1:], stdin="long enough pw\n")
        assert "nobody@example.com" in line
    bad(ws, "key", "user", "revoke-key", "0123456789ab")
    pasted = "cfk_" + "s3cr3t" * 7  # the key instead of its ID: refused without echoing it
    assert pasted not in bad(ws, "key", "user", "revoke-key", pasted)
    assert "s3cr3t" not in bad(ws, "key", "user", "revoke-key", "s3cr3t" * 7)
    r = cli(ws, "user", "admin", "alice@example.com")  # --yes or --no is required
    assert r.returncode == 2


def test_bad_database_folder(tmp_path: Path) -> None:
    ws = new_workspace(tmp_path / "ws", Database={"Type": "sqlite", "Connection": "missing/dir/db.sqlite"})
    line = bad(ws, str(ws.config_path), "user", "list")
    assert "Database.Connection" in line and "does not exist" in line


def test_groups_and_grants(ws: Workspace) -> None:
    ok(ws, "user", "add", "alice@example.com")
    ok(ws, "group", "add", "analysts", "--name", "Analysts")
    bad(ws, "group", "group", "add", "analysts")  # duplicate
    bad(ws, "group", "group", "add", "bad id!")

    ok(ws, "group", "grant", "analysts", "alice@example.com", "--level", "write", "--expires", "2099-01-31")
    ok(ws, "group", "grant", WID, "alice@example.com", "--level", "view")  # a workflow's ID needs no `group add`
    rows = dict((g, (lvl, exp)) for g, lvl, exp in
                db_rows(ws, "SELECT group_id, level, expires FROM auth_memberships WHERE user_id = 'alice@example.com'"))
    assert rows[WID] == (0, None)
    assert rows["analysts"][0] == 2 and rows["analysts"][1] == dt.datetime(2099, 1, 31, tzinfo=dt.timezone.utc).timestamp()

    listing = ok(ws, "user", "list")
    alice = listing[listing.index("alice@example.com"):]
    assert "analysts: write (until 2099-01-31 00:00 UTC)" in alice and f"{WID}: view" in alice
    users = {u["id"]: u for u in json.loads(ok(ws, "user", "list", "--json"))}
    assert sorted(users["alice@example.com"]["groups"], key=lambda m: m["group"]) == [
        {"group": WID, "level": "view", "expires": None},
        {"group": "analysts", "level": "write", "expires": "2099-01-31T00:00:00+00:00"}]
    assert users["alice@example.com"]["password"] is False
    as_json = {g["id"]: g for g in json.loads(ok(ws, "group", "list", "--json"))}
    assert as_json[WID]["workflow"] is True and as_json["analysts"]["name"] == "Analysts"
    groups = ok(ws, "group", "list")
    assert "Analysts" in list_row(groups, "analysts") and "alice@example.com: write" in list_row(groups, "analysts")
    assert "workflow Test" in list_row(groups, WID)

    ok(ws, "group", "grant", "analysts", "alice@example.com", "--level", "denied")  # replaces the grant
    assert db_rows(ws, "SELECT level, expires FROM auth_memberships WHERE group_id = 'analysts'") == [(-1, None)]

    assert "super" in bad(ws, "level", "group", "grant", "analysts", "alice@example.com", "--level", "super")
    bad(ws, "expires", "group", "grant", "analysts", "alice@example.com", "--level", "read", "--expires", "soon")
    bad(ws, "expires", "group", "grant", "analysts", "alice@example.com", "--level", "read", "--expires", "2001-01-01")
    bad(ws, "group", "group", "grant", "nosuchgroup", "alice@example.com", "--level", "read")
    bad(ws, "user", "group", "grant", "analysts", "carol@example.com", "--level", "read")
    bad(ws, "user", "group", "grant", "analysts", "carol", "--level", "read")

    ok(ws, "group", "revoke", WID, "alice@example.com")
    bad(ws, "user", "group", "revoke", WID, "alice@example.com")  # not a member any more
    ok(ws, "group", "remove", "analysts")
    assert db_rows(ws, "SELECT * FROM auth_memberships") == []
    assert db_rows(ws, "SELECT * FROM auth_groups") == []
    bad(ws, "group", "group", "remove", "analysts")


def test_key_printed_once_listed_without_secret_and_revoked(ws: Workspace) -> None:
    ok(ws, "user", "add", "alice@example.com")
    r = cli(ws, "user", "key", "alice@example.com", "--label", "ci job")
    assert r.returncode == 0, r.stderr
    key = r.stdout.strip()
    assert r.stdout == key + "\n" and key.startswith("cfk_") and len(key) > 40  # the key alone: scripts capture it
    assert key not in r.stderr
    (kid, digest), = db_rows(ws, "SELECT id, digest FROM auth_api_keys")
    assert key not in digest and kid in r.stderr

    keys = ok(ws, "user", "keys")
    row = list_row(keys, kid)
    assert "alice@example.com" in row and "ci job" in row and key not in keys
    assert ok(ws, "user", "keys", "alice@example.com").count(kid) == 1
    listed, = json.loads(ok(ws, "user", "keys", "--json"))
    assert listed["id"] == kid and listed["user"] == "alice@example.com" and listed["revoked"] is None
    assert key not in json.dumps(listed) and digest not in json.dumps(listed)
    ok(ws, "user", "revoke-key", kid)
    assert db_rows(ws, "SELECT revoked IS NOT NULL FROM auth_api_keys") == [(1,)]
    assert "UTC" in list_row(ok(ws, "user", "keys"), kid).split("│")[-2]  # the revoked column has a time
    assert "already revoked" in ok(ws, "user", "revoke-key", kid)


def _wait_no_echo(fd: int) -> None:
    """Until the terminal's echo is off (the prompt reads hidden input now); the master shows the slave's flags."""
    for _ in range(6000):
        if not termios.tcgetattr(fd)[3] & termios.ECHO:
            return
        time.sleep(0.01)


def _run_on_tty(ws: Workspace, args: list[str], answers: list[str]) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal as stdin/stdout/controlling terminal; answer each prompt in turn."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: nothing but exec
        os.chdir(ws.root)
        os.execv(sys.executable, [sys.executable, "-m", "coflows", *args, "-c", str(ws.config_path)])
    transcript = b""
    pending = list(answers)
    answered = 0
    try:
        while True:
            ready, _, _ = select.select([fd], [], [], 60)
            if not ready:
                break
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            transcript += chunk
            if pending and transcript[answered:].strip().endswith(b":"):  # a new prompt since the last answer
                _wait_no_echo(fd)  # getpass flushes what was typed before it turned echo off
                os.write(fd, (pending.pop(0) + "\n").encode())
                answered = len(transcript)
    finally:
        os.close(fd)
        done, status = os.waitpid(pid, os.WNOHANG)
        if not done:  # a prompt we did not expect: fail, do not hang
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), transcript.decode(errors="replace")


def test_password_prompted_twice_on_a_terminal_without_echo(ws: Workspace) -> None:
    code, transcript = _run_on_tty(ws, ["user", "add", "dora@example.com"], [PASSWORD, PASSWORD])
    assert code == 0, transcript
    assert transcript.count("Password") == 1 and "Repeat" in transcript
    assert PASSWORD not in transcript  # hidden input: never echoed
    stored = password_hash(ws, "dora@example.com")
    assert stored is not None and stored.startswith("$argon2id$")

    code, transcript = _run_on_tty(ws, ["user", "passwd", "dora@example.com"], ["short", "short"])
    assert code == 2 and "password: at least" in transcript
    assert password_hash(ws, "dora@example.com") == stored


def test_server_honours_keys_and_grants_made_by_the_cli(ws: Workspace,
                                                        start_server: Callable[..., Server]) -> None:
    ok(ws, "user", "add", "alice@example.com", "--name", "Alice")
    key = ok(ws, "user", "key", "alice@example.com").strip()
    srv = start_server(ws)
    assert srv.get("/flow/workflows", headers={"x-api-key": ADMIN_KEY}).json()[0]["id"] == WID

    r = srv.get("/flow/workflows", headers={"x-api-key": key})
    assert r.status_code == 200 and r.json() == []  # a user, but no grant on the workflow (no Public grant)
    assert srv.get("/flow/workflows", headers={"x-api-key": key + "x"}).status_code == 401

    ok(ws, "group", "grant", WID, "alice@example.com", "--level", "view")  # while the server runs
    r = srv.get("/flow/workflows", headers={"x-api-key": key})
    assert r.status_code == 200 and [w["id"] for w in r.json()] == [WID]

    ok(ws, "group", "revoke", WID, "alice@example.com")
    assert srv.get("/flow/workflows", headers={"x-api-key": key}).json() == []

    kid = db_rows(ws, "SELECT id FROM auth_api_keys")[0][0]
    ok(ws, "user", "revoke-key", kid)
    assert srv.get("/flow/workflows", headers={"x-api-key": key}).status_code == 401

    key2 = ok(ws, "user", "key", "alice@example.com").strip()  # a new key works at once
    assert srv.get("/flow/workflows", headers={"x-api-key": key2}).status_code == 200
    ok(ws, "user", "remove", "alice@example.com")
    assert srv.get("/flow/workflows", headers={"x-api-key": key2}).status_code == 401
    assert stat.S_IMODE((ws.mnt / "database.db").stat().st_mode) == 0o600
