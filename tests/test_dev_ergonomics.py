"""Issue 19, points 4-7: working on a running server the way one works with a dev server.

A broken edit says so (X-Coflows-Stale, /flow/workflows, one log line); a second server on
a busy port exits 2 before it loads anything; logs carry the workflow's name.
"""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from conftest import ADMIN_KEY, edit_source, new_workspace

STAMP_AGENT = '''
import pathlib

def Load(entries):
    pathlib.Path(__file__).resolve().parent.parent.parent.joinpath("loaded.txt").write_text("loaded")

def pkg():
    return {"ID": "stamp-agent", "Name": "Stamp", "Description": "writes a file in Load", "MID": "stamp",
            "Load": Load}
'''


def cli(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`coflows …` with a terminal wide enough that rich's tables keep a row on one line."""
    return subprocess.run([sys.executable, "-m", "coflows", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "COLUMNS": "250"})


# -- point 4: a broken query keeps serving its last good version and says so -----------------------
def test_a_broken_edit_is_served_stale_with_a_header_a_status_and_one_log_line(tmp_path, start_server):
    ws = new_workspace(tmp_path / "ws")
    ws.add_query("Calc.py", "def Add(x: int, y: int):\n    return x + y\n")
    s = start_server(ws)
    url = f"/flow/query/{ws.manifest['ID']}/Calc.py/Add"
    r = s.get(url, params={"p[0]": 1, "p[1]": 2})
    assert r.status_code == 200 and r.json() == 3
    assert "x-coflows-stale" not in r.headers  # a header only when stale

    edit_source(ws.mnt / "Queries/Calc.py", "def Add(x: int, y: int):\n    return x +\n")
    for _ in range(5):
        r = s.get(url, params={"p[0]": 1, "p[1]": 2})
        assert r.status_code == 200 and r.json() == 3  # the last good version answers
        stale = r.headers.get("x-coflows-stale", "")
        assert stale.startswith("Queries/Calc.py:2:"), stale
        assert "\n" not in stale
    wf = next(w for w in s.get("/flow/workflows", headers=s.admin()).json() if w["id"] == ws.manifest["ID"])
    q = next(q for q in wf["queries"] if q["id"] == "Calc.py")
    assert q["stale"] is True and q["errors"] and q["errors"][0].startswith("Queries/Calc.py:2:")
    # one log line for the edit, not one per call
    lines = [line for line in s.output().splitlines() if "Calc.py:2" in line and "last good version" in line]
    assert len(lines) == 1, s.output()[-3000:]

    edit_source(ws.mnt / "Queries/Calc.py", "def Add(x: int, y: int):\n    return x + y + 100\n")
    r = s.get(url, params={"p[0]": 1, "p[1]": 2})
    assert r.json() == 103 and "x-coflows-stale" not in r.headers
    wf = next(w for w in s.get("/flow/workflows", headers=s.admin()).json() if w["id"] == ws.manifest["ID"])
    assert next(q for q in wf["queries"] if q["id"] == "Calc.py")["stale"] is False


def test_stale_header_also_on_errors_of_the_last_good_version(tmp_path, start_server):
    ws = new_workspace(tmp_path / "ws")
    ws.add_query("Boom.js", "function Boom() { throw new Error('bang') }\n")
    s = start_server(ws)
    url = f"/flow/query/{ws.manifest['ID']}/Boom.js/Boom"
    assert s.get(url).status_code == 500
    edit_source(ws.mnt / "Queries/Boom.js", "function Boom() { throw new Error('bang') \n")
    r = s.get(url)
    assert r.status_code == 500 and r.headers["x-coflows-stale"].startswith("Queries/Boom.js")


# -- point 5: start-up preconditions before any engine or agent ------------------------------------
def _busy_port_ws(tmp_path: Path):
    ws = new_workspace(tmp_path / "ws")
    ws.add_query("Calc.js", "function Add(x, y) { return x + y }\n")  # V8 would start if anything loaded
    ws.add_agent("Stamp.py", STAMP_AGENT)
    return ws


def _holder() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    return sock


def test_a_busy_port_exits_2_before_any_engine_or_agent_load(tmp_path):
    ws = _busy_port_ws(tmp_path)
    holder = _holder()
    port = holder.getsockname()[1]
    try:
        for extra in ((), ("--no-supervisor",)):
            t = time.monotonic()
            r = cli(ws.root, "server", str(ws.config_path), "--port", str(port), *extra, timeout=60)
            elapsed = time.monotonic() - t
            assert r.returncode == 2, (extra, r.stderr)
            assert f"cannot listen on 127.0.0.1:{port}" in r.stderr and "--port" in r.stderr
            assert "engine" not in r.stderr and "serving on" not in r.stderr and "server started" not in r.stderr
            assert not (ws.root / "loaded.txt").exists()  # the agent's Load hook never ran
            assert not (ws.mnt / "database.db").exists()  # nothing was created
            assert elapsed < 30  # not frozen
    finally:
        holder.close()


def test_the_agent_load_hook_does_run_when_the_port_is_free(tmp_path, start_server):
    """The other side of the busy-port test: its marker file is what a running server writes."""
    ws = _busy_port_ws(tmp_path)
    s = start_server(ws)
    deadline = time.monotonic() + 60
    marker = ws.root / "loaded.txt"
    # the file exists (empty) a moment before the hook's write lands: wait for its content
    while not (marker.exists() and marker.read_text() == "loaded") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marker.exists() and marker.read_text() == "loaded", s.output()[-4000:]


def test_an_unreachable_database_exits_2_before_any_engine(tmp_path):
    ws = _busy_port_ws(tmp_path)
    ws.config["Database"] = {"Type": "postgres", "Connection": "postgresql://u:p@127.0.0.1:1/nodb"}
    ws.save()
    r = cli(ws.root, "server", str(ws.config_path), "--port", "0", "--no-supervisor", timeout=60)
    assert r.returncode == 2, r.stderr
    assert "Database.Connection" in r.stderr and "Traceback" not in r.stderr
    assert "engine" not in r.stderr and not (ws.root / "loaded.txt").exists()


# -- point 7: log lines carry the workflow's name --------------------------------------------------
def test_user_output_is_tagged_with_the_workflow_name(tmp_path, start_server):
    ws = new_workspace(tmp_path / "ws", name="Named")
    ws.add_query("Talk.py", "def Say(w: str):\n    print('py says', w)\n    return w\n")
    ws.add_query("Talk.js", "function Say(w) { console.log('js says', w); return w }\n")
    s = start_server(ws)
    wid = ws.manifest["ID"]
    assert s.get(f"/flow/query/{wid}/Talk.py/Say", params={"p[0]": "hi"}).json() == "hi"
    assert s.get(f"/flow/query/Named/Talk.js/Say", params={"p[0]": "ho"}).json() == "ho"
    deadline = time.monotonic() + 10
    while "js says" not in s.output() and time.monotonic() < deadline:
        time.sleep(0.1)
    out = s.output()
    assert "[Named/Talk.py/Say] py says hi" in out
    assert "[Named/Talk.js/Say] js says ho" in out
    assert f"[{wid}/" not in out


# -- point 7: templates for the four languages; the build table lists agents -----------------------
def test_add_query_and_agent_templates_build_and_run_in_four_languages(tmp_path, start_server):
    ws = new_workspace(tmp_path / "ws")
    for lang in ("py", "cs", "java", "js"):
        name = f"T{lang.capitalize()}"
        r = cli(ws.root, "add", "query", lang, name)
        assert r.returncode == 0, r.stderr
        r = cli(ws.root, "add", "agent", lang, f"{name}Agent")
        assert r.returncode == 0, r.stderr
    again = cli(ws.root, "add", "agent", "js", "TJsAgent")
    assert again.returncode == 2 and "already exists" in again.stderr
    bad = cli(ws.root, "add", "agent", "rb", "X")
    assert bad.returncode == 2 and "unknown language" in bad.stderr
    r = cli(ws.root, "build", "local", timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Success" in r.stdout
    wid = json.loads((ws.mnt / "package.json").read_text())["ID"]
    for lang in ("py", "cs", "java", "js"):
        row = next(line for line in r.stdout.splitlines() if f"T{lang.capitalize()}Agent.{lang}" in line)
        assert "0 * * ? * *" in row and f"T{lang.capitalize()}Agent" in row.split(f"Agent.{lang}", 1)[1], row
    s = start_server(ws)
    for lang in ("py", "cs", "java", "js"):
        name = f"T{lang.capitalize()}"
        r = s.get(f"/flow/query/{wid}/{name}.{lang}/Hello", params={"p[0]": "you"})
        assert r.status_code == 200 and r.json() == "Hello, you!", (lang, r.text)
    listed = s.get("/flow/agents", headers=s.admin()).json()
    ids = {a["ID"]: a for a in (listed if isinstance(listed, list) else listed.get("agents", []))}
    for lang in ("py", "cs", "java", "js"):
        a = ids[f"{wid}-T{lang.capitalize()}Agent"]
        assert a["Schedule"] == "0 * * ? * *" and a["MID"] == f"T{lang.capitalize()}Agent" and not a["Error"], a


def test_add_agent_name_alone_is_a_python_agent(tmp_path):
    ws = new_workspace(tmp_path / "ws")
    r = cli(ws.root, "add", "agent", "Watcher")
    assert r.returncode == 0, r.stderr
    assert (ws.mnt / "Agents/Watcher.py").is_file()
    assert json.loads((ws.mnt / "package.json").read_text())["Agents"][-1]["Name"] == "Watcher.py"


# -- point 6: `coflows query local` starts only the engines the call needs ---------------------------
ENGINES_USED = '''
import json, os, sys
from coflows.config import load_config
from coflows.local import open_on_demand
from coflows.runtime import Runtime

rt = Runtime(load_config(sys.argv[1]))
rt.load(open_on_demand)  # as `coflows query local` does
wf = rt.registry.default_workflow()
try:
    result = rt.calls.run(lambda: rt.call(sys.argv[2], *sys.argv[3:], workflow=wf.id), label="t", timeout=120)
except Exception as e:
    result = f"error: {e}"
print(json.dumps({"result": result, "engines": sorted(rt.engines.started())}, default=str))
sys.stdout.flush()
os._exit(0)
'''


def _polyglot_ws(tmp_path: Path):
    ws = new_workspace(tmp_path / "ws")
    ws.add_base("Util.cs", "namespace Util { public static class Num { public static int Twice(int x) { return 2 * x; } } }\n")
    ws.add_base("helpers.py", "def plus(x, y):\n    return x + y\n")
    ws.add_query("Q.cs", "public class Q { public static int Twice(int x) { return Util.Num.Twice(x); } }\n")
    ws.add_query("Q.java", "public class Q { public static int Neg(int x) { return -x; } }\n")
    ws.add_query("Q.js", "function Inc(x) { return x + 1 }\n")
    ws.add_query("Broken.js", "function Nope( { \n")
    ws.add_query("P.py", "import coflows\nimport helpers\n\n"
                         "def Add(x: int, y: int) -> int:\n    return helpers.plus(x, y)\n\n"
                         "def Cross(x: int) -> list:\n"
                         "    # JavaScript first: the CLR and the JVM, planned, start before V8 (never after it)\n"
                         "    return [coflows.call('Q.js/Inc', x), coflows.call('Q.cs/Twice', x),"
                         " coflows.call('Q.java/Neg', x)]\n")
    return ws


def _engines_used(ws, ref: str, *args: str) -> dict:
    r = subprocess.run([sys.executable, "-c", ENGINES_USED, str(ws.config_path), ref, *args], cwd=ws.root,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_query_local_starts_only_the_engines_a_python_call_needs(tmp_path):
    ws = _polyglot_ws(tmp_path)
    assert _engines_used(ws, "P.py/Add", "1", "2") == {"result": 3, "engines": ["python"]}
    r = cli(ws.root, "query", "local", "P.py", "Add", "20", "22")
    assert r.returncode == 0 and json.loads(r.stdout) == 42, r.stderr
    # a broken query elsewhere does not stand in the way (it is never loaded) ...
    assert "Broken.js" not in r.stderr
    # ... but calling it reports its error with file:line
    r = cli(ws.root, "query", "local", "Broken.js", "Nope")
    assert r.returncode == 1 and "Queries/Broken.js" in r.stderr


def test_query_local_starts_other_engines_on_demand_in_order(tmp_path):
    ws = _polyglot_ws(tmp_path)
    used = _engines_used(ws, "P.py/Cross", "5")
    assert used == {"result": [6, 10, -5], "engines": ["csharp", "java", "javascript", "python"]}
    used = _engines_used(ws, "Q.cs/Twice", "4")  # a C# query: its Base is loaded with it
    assert used == {"result": 8, "engines": ["csharp", "python"]}


def test_a_broken_base_names_the_base_in_the_stale_header(tmp_path, start_server):
    ws = new_workspace(tmp_path / "ws")
    ws.add_base("b.py", "N = 1\n")
    ws.add_query("q.py", "import b\n\ndef V():\n    return b.N\n")
    s = start_server(ws)
    url = f"/flow/query/{ws.manifest['ID']}/q.py/V"
    assert s.get(url).json() == 1
    edit_source(ws.mnt / "Base/b.py", "N = (\n")
    r = s.get(url)
    assert r.status_code == 200 and r.json() == 1
    assert r.headers["x-coflows-stale"].startswith("Base/b.py:1"), r.headers.get("x-coflows-stale")


class _FakeEngine:
    """Stands for an engine in the start-order tests (no runtime started)."""

    order = 0
    language = ""
    started: list[str] = []

    def __init__(self, runtime) -> None:  # noqa: ANN001
        pass

    def start(self) -> None:
        _FakeEngine.started.append(self.language)


class FakeClr(_FakeEngine):
    order, language = 10, "fake-clr"


class FakeV8(_FakeEngine):
    order, language = 30, "fake-v8"


def test_on_demand_engines_start_in_order_when_planned_and_are_refused_otherwise(monkeypatch):
    """What `query local` relies on: a planned earlier engine starts before a later one asked for
    first (V8 never before Mono); an unplanned earlier one after a later one is refused, not a crash."""
    from coflows import engines

    monkeypatch.setitem(engines.ENGINE_CLASSES, "fake-clr", ("test_dev_ergonomics:FakeClr", 10))
    monkeypatch.setitem(engines.ENGINE_CLASSES, "fake-v8", ("test_dev_ergonomics:FakeV8", 30))
    _FakeEngine.started = []
    planned = engines.EngineManager()
    planned.plan({"fake-clr", "fake-v8"})
    planned.get("fake-v8")
    assert _FakeEngine.started == ["fake-clr", "fake-v8"]
    _FakeEngine.started = []
    unplanned = engines.EngineManager()
    unplanned.get("fake-v8")
    try:
        unplanned.get("fake-clr")
    except engines.EngineUnavailable as e:
        assert "must start before" in str(e) and "restart" in str(e)
    else:
        raise AssertionError("an earlier engine started after a later one")
    assert _FakeEngine.started == ["fake-v8"]
