"""Cloud mode (issue 18 point 4): `coflows build cloud` deploys a workspace to a running server.

Real servers on loopback (under their supervisor, as `bin/server.sh` runs them): server B (the
"cloud") serves workspace W v1; the CLI, run from workspace A's folder (same workflow ID, new
sources), packs A and uploads it to the server its config's `Cloud` section names. B checks the
upload in a scratch process, swaps the files in and hot-reloads them in the same process (same
PID). A second target C proves `Cloud.Host` decides where a deploy goes. Hostile archives are
sent with httpx straight to the route.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from conftest import ADMIN_KEY, REPO, Server, Workspace, new_workspace, pid_alive

WID = "c10ud000-2222-3333-4444-555555555555"
ADMIN = {"x-api-key": ADMIN_KEY}
MAX_DEPLOY = 2 * 1024 * 1024  # B's Server.MaxDeployBytes: archives unpack to at most 8 MB

CALC_V1 = '''
def Add(a: int, b: int) -> int:
    print(f"adding {a} and {b}")
    return a + b
'''
CALC_V2 = CALC_V1 + '''
def Mul(a: int, b: int) -> int:
    return a * b
'''
CALC_BROKEN = CALC_V2 + '''
def Broken(:
    return 1
'''
OTHER = '''
def Hello() -> str:
    return "hello from the forced deploy"
'''


def echo(version: str) -> str:
    return (f'AGENT = {{"ID": "echo", "Name": "Echo", "Schedule": "0 0 3 ? * *"}}\n'
            f'def Job(t, e): pass\n'
            f'def Body(data):\n    return "{version}"\n')


def workspace(root: Path, calc: str, agent: str, **config: object) -> Workspace:
    ws = new_workspace(root, name="CloudTest", wid=WID, public=None, **config)
    ws.add_query("Calc.py", calc)
    ws.add_agent("Echo.py", agent)
    return ws


def start(ws: Workspace) -> Server:
    return Server(ws).start()


def users(ws: Workspace) -> dict[str, str]:
    """A Read user and a Write user of W in B's database (before B starts); email → API key."""
    from coflows.auth.store import UserStore
    from coflows.config import load_config
    from coflows.store import Database, database_url

    cfg = load_config(ws.config_path)
    store = UserStore(Database(database_url(cfg.database.type, cfg.database.connection, cfg.base_dir)))
    keys = {}
    for email, level in (("reader@example.com", "read"), ("writer@example.com", "write")):
        store.add_user(email)
        store.grant(WID, email, level)
        keys[email] = store.new_key(email, "cloud test")[1]
    return keys


def client(root: Path, target: Server, key: str = ADMIN_KEY) -> Workspace:
    """Workspace A: v2 of W (a new function, a changed agent), its Cloud pointing at `target`."""
    return workspace(root, CALC_V2, echo("v2"), Cloud={"Host": f"127.0.0.1:{target.port}", "SecretKey": key,
                                                        "SSL": False})


def coflows(ws: Workspace, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """The CLI from the client workspace's folder, as a user runs it."""
    r = subprocess.run([sys.executable, "-m", "coflows", *args, "-c", str(ws.config_path)], cwd=ws.root,
                       capture_output=True, text=True, timeout=timeout, env={**os.environ, "COLUMNS": "200"})
    print(r.stdout, r.stderr)
    return r


def call(s: Server, fn: str, *params: object, query: str = "Calc.py") -> httpx.Response:
    qs = "&".join(f"p[{i}]={p}" for i, p in enumerate(params))
    return s.get(f"/flow/query/{WID}/{query}/{fn}?{qs}", headers=ADMIN)


@pytest.fixture
def cloud(tmp_path: Path):
    ws = workspace(tmp_path / "b", CALC_V1, echo("v1"))
    ws.config["Server"]["MaxDeployBytes"] = MAX_DEPLOY
    ws.save()
    keys = users(ws)
    s = start(ws)
    s.keys = keys  # type: ignore[attr-defined]
    try:
        yield s
    finally:
        s.close()


def test_build_cloud_deploys_hot_refuses_what_does_not_compile_and_forces(cloud: Server, tmp_path: Path) -> None:
    b = cloud
    pid = b.child_pid()
    assert call(b, "Add", 1, 2).json() == 3
    assert call(b, "Mul", 2, 3).status_code == 404
    assert b.post("/flow/agent/echo", json={}, headers=ADMIN).json() == "v1"

    a = client(tmp_path / "a", b)
    r = coflows(a, "build", "cloud")
    assert r.returncode == 0, r.stderr
    assert "Success!!!" in r.stdout and "Calc.py" in r.stdout and "echo" in r.stdout  # the build report
    assert call(b, "Mul", 2, 3).json() == 6  # the new function, at once
    assert call(b, "Add", 1, 2).json() == 3
    assert b.post("/flow/agent/echo", json={}, headers=ADMIN).json() == "v2"  # the changed agent
    assert b.child_pid() == pid and pid_alive(pid)  # no restart
    assert (b.ws.mnt / "Queries" / "Calc.py").read_text() == CALC_V2
    assert not list((b.ws.mnt / ".coflows" / "deploy").iterdir())  # the stage is gone

    # a compile error: refused with the report, B keeps serving v2
    a.write("Queries/Calc.py", CALC_BROKEN)
    a.add_query("Other.py", OTHER)
    r = coflows(a, "build", "cloud")
    assert r.returncode == 1
    assert "Queries/Calc.py:" in r.stderr and "not deployed" in r.stderr
    assert str(b.ws.root) not in r.stderr  # the server's staging paths are not shown
    assert call(b, "Mul", 2, 3).json() == 6
    assert call(b, "Hello", query="Other.py").status_code == 404
    assert (b.ws.mnt / "Queries" / "Calc.py").read_text() == CALC_V2

    # --force deploys it: the new query answers, Calc.py keeps its last good version (stale)
    r = coflows(a, "build", "cloud", "--force")
    assert r.returncode == 1 and "deployed anyway" in r.stderr
    assert call(b, "Hello", query="Other.py").json() == "hello from the forced deploy"
    stale = call(b, "Mul", 2, 3)
    assert stale.json() == 6 and stale.headers.get("x-coflows-stale")
    assert (b.ws.mnt / "Queries" / "Calc.py").read_text() == CALC_BROKEN
    assert b.child_pid() == pid


def test_cloud_host_decides_the_target(cloud: Server, tmp_path: Path) -> None:
    """Two deploy targets: a config naming C deploys to C only; B keeps v1."""
    c = start(workspace(tmp_path / "c", CALC_V1, echo("v1")))
    try:
        a = client(tmp_path / "a", c)
        # through CoFlows' script this time: bin/build.sh cloud CONFIG
        r = subprocess.run([str(REPO / "bin" / "build.sh"), "cloud", str(a.config_path)], capture_output=True,
                           text=True, timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "Success!!!" in r.stdout
        assert call(c, "Mul", 4, 5).json() == 20
        assert call(cloud, "Mul", 4, 5).status_code == 404
    finally:
        c.close()


def test_permissions_admins_deploy_and_with_deploy_access_write_users_with_write(cloud: Server,
                                                                                 tmp_path: Path) -> None:
    keys = cloud.keys  # type: ignore[attr-defined]
    reader = client(tmp_path / "r", cloud, keys["reader@example.com"])
    writer = client(tmp_path / "w", cloud, keys["writer@example.com"])
    # Server.DeployAccess "admin" (the default): a Write user may not deploy
    r = coflows(writer, "build", "cloud")
    assert r.returncode == 2 and "403" in r.stderr and "Server.DeployAccess" in r.stderr
    assert call(cloud, "Mul", 2, 3).status_code == 404
    # "write": B's config changes, `cloud restart` makes its new server process read it
    cloud.ws.config["Server"]["DeployAccess"] = "write"
    cloud.ws.save()
    assert coflows(client(tmp_path / "a", cloud), "cloud", "restart").returncode == 0
    r = coflows(reader, "build", "cloud")
    assert r.returncode == 2 and "403" in r.stderr
    r = coflows(reader, "cloud", "log")
    assert r.returncode == 2 and "403" in r.stderr
    assert call(cloud, "Mul", 2, 3).status_code == 404
    r = coflows(writer, "build", "cloud")
    assert r.returncode == 0, r.stderr
    assert call(cloud, "Mul", 2, 3).json() == 6
    # restart and remove are the admin's
    for cmd in ("restart", "remove"):
        r = coflows(client(tmp_path / f"w-{cmd}", cloud, keys["writer@example.com"]), "cloud", cmd)
        assert r.returncode == 2 and "403" in r.stderr, cmd
    anonymous = httpx.post(f"{cloud.base}/flow/cloud/deploy?wid={WID}", content=b"x")
    assert anonymous.status_code == 401


# -- hostile archives --------------------------------------------------------------------------------

def _tar(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _link(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def _manifest() -> bytes:
    return json.dumps({"ID": WID, "Name": "CloudTest", "Queries": [], "Agents": [], "Base": []}).encode()


def _zip_bomb(unpacked: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("package.json", _manifest())
        with zf.open("Files/zeros.bin", "w", force_zip64=True) as f:
            block = bytes(1 << 20)
            for _ in range(unpacked >> 20):
                f.write(block)
    return buf.getvalue()


def _zip_many(n: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("package.json", _manifest())
        for i in range(n):
            zf.writestr(f"Files/f{i}.txt", b"")
    return buf.getvalue()


def _zip_symlink() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("package.json", _manifest())
        info = zipfile.ZipInfo("Queries/link.py")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


def test_hostile_archives_are_refused_and_write_nothing_outside(cloud: Server, tmp_path: Path) -> None:
    b = cloud
    outside = tmp_path / "b"  # the parent of B's workspace folder
    before = sorted(p.name for p in outside.iterdir())
    calc = (b.ws.mnt / "Queries" / "Calc.py").read_text()
    many = [_file("package.json", _manifest())] + [_file(f"Files/f{i}.txt", b"") for i in range(10_001)]
    cases = {
        "dotdot": (_tar(_file("package.json", _manifest()), _file("Queries/../../evil.py", b"x")), 400, "'..'"),
        "absolute": (_tar(_file("package.json", _manifest()), _file(f"/{outside}/evil.py", b"x")), 400, "absolute"),
        "symlink": (_tar(_file("package.json", _manifest()), _link("Queries/x.py", "/etc/passwd", tarfile.SYMTYPE)),
                    400, "symlink"),
        "hardlink": (_tar(_file("package.json", _manifest()), _link("Queries/x.py", "package.json", tarfile.LNKTYPE)),
                     400, "hard link"),
        "device": (_tar(_file("package.json", _manifest()), _link("Queries/x.py", "", tarfile.CHRTYPE)), 400,
                   "device"),
        "zip symlink": (_zip_symlink(), 400, "symlink"),
        "hidden": (_tar(_file("package.json", _manifest()), _file(".coflows/secret_key", b"mine")), 400,
                   "not part of a workspace"),
        "config": (_tar(_file("package.json", _manifest()), _file("coflows_config.json", b"{}")), 400,
                   "not part of a workspace"),
        "too many files": (_tar(*many), 413, "more than 10000 entries"),
        "zip of too many files": (_zip_many(10_001), 413, "more than 10000 entries"),
        "zip bomb": (_zip_bomb(20 * 1024 * 1024), 413, "unpacks to more than"),
        "body over the limit": (os.urandom(MAX_DEPLOY + 1), 413, "Server.MaxDeployBytes"),
        "not an archive": (b"hello, not an archive", 400, "not a zip, tar or tar.gz"),
        "other ID": (_tar(_file("package.json", _manifest().replace(WID.encode(), b"another-id"))), 400,
                     "does not match"),
    }
    for name, (body, status, says) in cases.items():
        r = b.post(f"/flow/cloud/deploy?wid={WID}", content=body, headers=ADMIN)
        assert r.status_code == status, f"{name}: {r.status_code} {r.text[:300]}"
        assert says in r.json()["error"]["message"], f"{name}: {r.text[:300]}"
    # a chunked body past the limit too (no content-length)
    r = b.post(f"/flow/cloud/deploy?wid={WID}", content=iter([bytes(MAX_DEPLOY // 2)] * 3), headers=ADMIN)
    assert r.status_code == 413
    assert sorted(p.name for p in outside.iterdir()) == before
    assert not (b.ws.mnt / "evil.py").exists() and not (b.ws.root / "evil.py").exists()
    assert (b.ws.mnt / "Queries" / "Calc.py").read_text() == calc
    assert not list((b.ws.mnt / ".coflows" / "deploy").iterdir())
    assert call(b, "Add", 1, 2).json() == 3  # still serving
    paths = b.get("/openapi.json", headers=ADMIN).json()["paths"]
    assert {"/flow/cloud/deploy", "/flow/cloud/log", "/flow/cloud/restart", "/flow/cloud/remove"} <= set(paths)


# -- log, restart, remove --------------------------------------------------------------------------

def test_cloud_log_restart_and_remove(cloud: Server, tmp_path: Path) -> None:
    b = cloud
    a = client(tmp_path / "a", b)
    assert call(b, "Add", 20, 22).json() == 42  # prints "adding 20 and 22"
    r = coflows(a, "cloud", "log", "--lines", "50")
    assert r.returncode == 0 and "adding 20 and 22" in r.stdout

    pid = b.child_pid()
    r = coflows(a, "cloud", "restart")
    assert r.returncode == 0, r.stderr
    deadline = time.monotonic() + 60
    while b.child_pid() == pid and time.monotonic() < deadline:
        time.sleep(0.1)
    assert b.child_pid() != pid and not pid_alive(pid)
    assert call(b, "Add", 1, 2).json() == 3  # same port, answering again
    assert b.proc.poll() is None  # the supervisor never stopped
    assert "restart it was asked for" in b.output()

    r = coflows(a, "cloud", "remove")
    assert r.returncode == 0 and "removed CloudTest" in r.stdout
    assert call(b, "Add", 1, 2).status_code == 404
    assert b.post("/flow/agent/echo", json={}, headers=ADMIN).status_code == 404
    assert (b.ws.mnt / "Queries" / "Calc.py").exists()  # its files stay
    # a deploy (admin) brings it back, as v2
    r = coflows(a, "build", "cloud")
    assert r.returncode == 0, r.stderr
    assert call(b, "Mul", 6, 7).json() == 42
    assert b.post("/flow/agent/echo", json={}, headers=ADMIN).json() == "v2"
    r = coflows(a, "cloud", "log")
    assert r.returncode == 0 and "[CloudTest/cloud] deployed by admin" in r.stdout


# -- what the client packs ---------------------------------------------------------------------------

def test_pack_takes_the_workspace_and_never_secrets_caches_databases_or_configs(tmp_path: Path) -> None:
    from coflows.workspace.archive import ArchiveTooLarge, pack, unpack

    ws = workspace(tmp_path / "a", CALC_V2, echo("v2"))
    for rel in (".coflows/secret_key", "pip/lib/x.py", "jars/a.jar", "database.db", "Files/data.db",
                "Queries/__pycache__/Calc.cpython-311.pyc", "Queries/.scratch.py", "Queries/Calc.py~",
                "notes.json", "Base/util.py", "Files/report.csv", "README.md"):
        ws.write(rel, "x")
    (ws.mnt / "Queries" / "passwd.py").symlink_to("/etc/passwd")
    packed = pack(ws.mnt, 10 * 1024 * 1024)
    assert packed.files == ["Agents/Echo.py", "Base/util.py", "Files/report.csv", "Queries/Calc.py", "README.md",
                            "package.json"]
    # and the server unpacks exactly that
    archive = tmp_path / "upload"
    archive.write_bytes(packed.data)
    (tmp_path / "out").mkdir()
    assert sorted(unpack(archive, tmp_path / "out", max_bytes=1 << 20)) == packed.files
    assert (tmp_path / "out" / "Queries" / "Calc.py").read_text() == CALC_V2
    with pytest.raises(ArchiveTooLarge, match=r"more than 100\b.*Server.MaxDeployBytes"):
        pack(ws.mnt, 100)
