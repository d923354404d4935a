"""Issue 16, the legacy parts: CoFlows' old URL forms, F#/VB/Scala sources, manifests as CoFlows writes them,
NuGets no feed has.

Real servers and real `coflows build local` runs on workspaces written here (shaped like the public CoFlows
example workspace, with names of our own).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from conftest import ADMIN_KEY, Server, Workspace, new_workspace

ADMIN = {"x-api-key": ADMIN_KEY}

CALC = '''
import time

def Add(x: int, y: int) -> int:
    return x + y

def Join(*parts):
    return "-".join(str(p) for p in parts)

def Table():
    return [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]

def Fail():
    raise ValueError("calc fails")

### <api name="Slow" timeout="1"/>
def Slow():
    time.sleep(5)
    return "late"

### <api name="Secret">
###   <permissions><group id="Admins" permission="read"/></permissions>
### </api>
def Secret():
    return "secret"
'''


def build(ws: Workspace) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "coflows", "build", "local"], capture_output=True, text=True,
                          cwd=ws.root, timeout=600)


# -- legacy URL forms -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def legacy(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("legacy")
    public = new_workspace(root / "pub", name="Pub", wid="aaaaaaaa-1111-2222-3333-444444444444", public=1)
    public.add_query("Calc.py", CALC)
    private = new_workspace(root / "priv", name="Priv", wid="bbbbbbbb-1111-2222-3333-444444444444", public=None)
    private.add_query("Calc.py", CALC)
    public.config["Workflow"] = [str(public.mnt / "package.json"), str(private.mnt / "package.json")]
    public.save()
    server = Server(public).start()
    try:
        yield server, public.manifest["ID"], private.manifest["ID"]
    finally:
        server.close()


FORMS = {  # the three legacy forms: (path, workflow key, query key, function key)
    "getquery": ("/flow/getquery", "wid", "qid", "name"),
    "m/getwb": ("/m/getwb", "workbook", "id", "name"),
    "flow/getwb": ("/flow/getwb", "workbook", "id", "name"),
}


def url(form: str, wid: str, qid: str, name: str, rest: str = "") -> str:
    path, w, q, n = FORMS[form]
    return f"{path}?{w}={wid}&{q}={qid}&{n}={name}" + (f"&{rest}" if rest else "")


@pytest.mark.parametrize("form", FORMS)
def test_legacy_forms_answer_as_flow_query(legacy, form: str) -> None:
    server, pub, priv = legacy
    pairs = [  # (legacy query, /flow/query path)
        (("Calc.py", "Add", "p[0]=2&p[1]=40"), "Calc.py/Add?p[0]=2&p[1]=40"),
        (("Calc.py", "Add", "p=2&p=40"), "Calc.py/Add?p=2&p=40"),  # CoFlows' `string[] p`
        (("Calc.py", "Add", "x=1&y=2"), "Calc.py/Add?x=1&y=2"),  # beyond CoFlows, by name as /flow/query
        (("Calc.py", "Join", "p[0]=a&p[1]=b%26c&p[2]=3"), "Calc.py/Join?p[0]=a&p[1]=b%26c&p[2]=3"),
        (("Calc.py", "Table.csv", ""), "Calc.py/Table.csv"),
        (("Calc.py", "Table.txt", ""), "Calc.py/Table.txt"),
        (("Calc.py", "Add", "p[0]=x&p[1]=1"), "Calc.py/Add?p[0]=x&p[1]=1"),  # conversion error: 400
        (("Calc.py", "Add", "p[1]=1"), "Calc.py/Add?p[1]=1"),  # p[0] missing: 400
        (("Calc.py", "Fail", ""), "Calc.py/Fail"),  # user error: 500
        (("Calc.py", "Nope", ""), "Calc.py/Nope"),  # unknown function: 404
        (("Nope.py", "Add", ""), "Nope.py/Add"),  # unknown query: 404
        (("Calc.py", "Secret", ""), "Calc.py/Secret"),  # narrowed by <permissions>: 401 anonymous
    ]
    for (qid, name, rest), direct in pairs:
        for headers in (None, ADMIN):
            old = server.get(url(form, pub, qid, name, rest), headers=headers)
            new = server.get(f"/flow/query/{pub}/{direct}", headers=headers)
            assert (old.status_code, old.headers["content-type"], old.content) == \
                   (new.status_code, new.headers["content-type"], new.content), (form, qid, name, rest, headers)
    assert server.get(url(form, pub, "Calc.py", "Add", "p[0]=2&p[1]=40")).json() == 42
    assert server.get(url(form, pub, "Calc.py", "Table.csv")).text.splitlines()[0] == "a,b"
    assert server.get(url(form, pub, "Calc.py", "Secret"), headers=ADMIN).json() == "secret"
    # the workflow by name too, as /flow/query takes it
    assert server.get(url(form, "Pub", "Calc.py", "Add", "p[0]=1&p[1]=1")).json() == 2


@pytest.mark.parametrize("form", FORMS)
def test_legacy_forms_check_permissions_and_keys(legacy, form: str) -> None:
    server, pub, priv = legacy
    assert server.get(url(form, priv, "Calc.py", "Add", "p[0]=1&p[1]=2")).status_code == 401
    assert server.get(url(form, priv, "Calc.py", "Add", "p[0]=1&p[1]=2"), headers=ADMIN).json() == 3
    # the key as CoFlows' web app passes it: _cokey in the query string (never an argument)
    assert server.get(url(form, priv, "Calc.py", "Add", f"_cokey={ADMIN_KEY}&p[0]=1&p[1]=2")).json() == 3
    assert server.get(url(form, priv, "Calc.py", "Add", "_cokey=wrong&p[0]=1&p[1]=2")).status_code == 401
    assert server.get(url(form, pub, "Calc.py", "Add", "p[0]=1&p[1]=2"),
                      headers={"x-api-key": "wrong"}).status_code == 401


@pytest.mark.parametrize("form", FORMS)
def test_legacy_forms_keep_the_time_limit(legacy, form: str) -> None:
    server, pub, _ = legacy
    r = server.get(url(form, pub, "Calc.py", "Slow"))
    assert r.status_code == 504, r.text
    direct = server.get(f"/flow/query/{pub}/Calc.py/Slow")
    assert (r.status_code, r.json()["error"]["type"]) == (direct.status_code, direct.json()["error"]["type"])


@pytest.mark.parametrize("form", FORMS)
def test_bad_or_missing_naming_parameters_are_400_naming_them(legacy, form: str) -> None:
    server, pub, _ = legacy
    path, w, q, n = FORMS[form]
    cases = {
        w: f"{path}?{q}=Calc.py&{n}=Add",
        q: f"{path}?{w}={pub}&{n}=Add",
        n: f"{path}?{w}={pub}&{q}=Calc.py&{n}=",
    }
    for param, u in cases.items():
        r = server.get(u)
        assert r.status_code == 400, (u, r.text)
        err = r.json()["error"]
        assert err["parameter"] == param and f"'{param}'" in err["message"], err
    r = server.get(f"{path}?{w}={pub}&{q}=Calc.py&{q}=Other.py&{n}=Add")
    assert r.status_code == 400 and r.json()["error"]["parameter"] == q
    assert server.get(path).json()["error"]["parameter"] == w
    assert server.post(url(form, pub, "Calc.py", "Add")).status_code == 405  # GET only, as in CoFlows


def test_legacy_forms_are_in_the_openapi(legacy) -> None:
    server, _, _ = legacy
    paths = server.get("/openapi.json", headers=ADMIN).json()["paths"]
    for path, w, q, n in FORMS.values():
        names = [p["name"] for p in paths[path]["get"]["parameters"]]
        assert names[:3] == [w, q, n], names


# -- F#, VB and Scala sources; Bins JARs; manifests written as CoFlows writes them -----------------

WID = "cccccccc-1111-2222-3333-444444444444"
FS_BASE = "namespace Mix.FsLib\n\ntype Point(x : int) =\n    member this.X = x\n"
VB_BASE = "Public Class VbLib\n    Public Shared Function One() As Integer\n        Return 1\n    End Function\nEnd Class\n"
SCALA_BASE = "package mix\n\nobject ScalaLib {\n  def one(): Int = 1\n}\n"
CS_BASE = "namespace Mix { public class Tools { public static int Twice(int x) { return 2 * x; } } }\n"
PY_BASE = "def triple(x):\n    return 3 * x\n"
PY_QUERY = "from pyLib import pylib\n\ndef Triple(x: int) -> int:\n    return pylib.triple(x)\n"
CS_QUERY = "public class CsQuery { public static int Twice(int x) { return Mix.Tools.Twice(x); } }\n"
CS_USES_FS = "public class CsUsesFs { public static int X() { return new Mix.FsLib.Point(3).X; } }\n"
FS_QUERY = "module FsQuery\n\nlet getName() = \"fs\"\n"
VB_QUERY = "Public Class VbQuery\n    Public Shared Function getName() As String\n        Return \"vb\"\n" \
           "    End Function\nEnd Class\n"
SCALA_QUERY = "object ScalaQuery {\n  def getName(): String = \"scala\"\n}\n"
JAVA_QUERY = "public class UseJar {\n    public static int square(int x) { return jlib.Ops.square(x); }\n}\n"
JLIB = "package jlib;\n\npublic class Ops {\n    public static int square(int x) { return x * x; }\n}\n"
PY_AGENT = 'AGENT = {"ID": "mix-agent", "Name": "Mix agent"}\n\ndef Body(data):\n    return data\n'
FS_AGENT = "module FsAgent\n\nlet pkg() = ()\n"

NO_FS = "no compiler for .fs (F#) here; add a prebuilt DLL under Bins"
NO_VB = "no compiler for .vb (VB) here; add a prebuilt DLL under Bins"
NO_SCALA = "no compiler for .scala (Scala) here; add a prebuilt JAR under Bins or Jars"
NO_COMPILER_FILES = {  # file → its one error
    "Base/fsLib/fsLib.fs": NO_FS, "Base/vbLib/vbLib.vb": NO_VB, "Base/scalaLib/scalaLib.scala": NO_SCALA,
    "Queries/FsQuery.fs": NO_FS, "Queries/VbQuery.vb": NO_VB, "Queries/ScalaQuery.scala": NO_SCALA,
    "Agents/FsAgent.fs": NO_FS, "Agents/VbAgent.vb": NO_VB, "Agents/ScalaAgent.scala": NO_SCALA,
}


def coflows_shaped(root: Path) -> Workspace:
    """A workspace whose package.json has exactly the keys (and key order) of the CoFlows example's, mixing
    C#, Python and Java with F#, VB and Scala in Base, Queries and Agents, and a prebuilt JAR under Bins."""
    ws = new_workspace(root, name="Mix", wid=WID, public=1)
    sources = {
        "Base/csLib/csLib.cs": CS_BASE, "Base/fsLib/fsLib.fs": FS_BASE, "Base/pyLib/pylib.py": PY_BASE,
        "Base/scalaLib/scalaLib.scala": SCALA_BASE, "Base/vbLib/vbLib.vb": VB_BASE,
        "Agents/FsAgent.fs": FS_AGENT, "Agents/PyAgent.py": PY_AGENT, "Agents/ScalaAgent.scala": SCALA_BASE,
        "Agents/VbAgent.vb": VB_BASE,
        "Queries/CsQuery.cs": CS_QUERY, "Queries/CsUsesFs.cs": CS_USES_FS, "Queries/FsQuery.fs": FS_QUERY,
        "Queries/PyQuery.py": PY_QUERY, "Queries/ScalaQuery.scala": SCALA_QUERY, "Queries/UseJar.java": JAVA_QUERY,
        "Queries/VbQuery.vb": VB_QUERY, "Files/notes/readme.md": "notes\n",
    }
    for rel, text in sources.items():
        ws.write(rel, text)
    under = lambda rel: rel.split("/", 1)[1]  # noqa: E731
    ws.manifest = {
        "ID": WID, "Name": "Mix",
        "Base": [{"Name": rel if rel.endswith(".py") else under(rel), "Content": rel}
                 for rel in sources if rel.startswith("Base/")],
        "Agents": [{"Name": under(rel), "Content": rel, "Exe": "pkg"} for rel in sources if rel.startswith("Agents/")],
        "Queries": [{"Name": under(rel), "Content": rel, "ID": under(rel)}
                    for rel in sources if rel.startswith("Queries/")],
        "Permissions": [{"ID": "root", "Permission": 2}, {"ID": "Public", "Permission": 1}],
        "NuGets": [], "Pips": [], "Jars": [], "Bins": [],
        "Files": [{"Name": "notes/readme.md", "Content": "Files/notes/readme.md"}],
        "ReadMe": "README.md", "Publisher": None, "PublishTimestamp": "0001-01-01T00:00:00", "AutoDeploy": True,
        "Container": {"Type": "", "Request": {"Cpu": "", "Mem": ""}, "Limit": {"Cpu": "", "Mem": ""},
                      "VolumeMounts": None, "Storage": None},
    }
    ws.save()
    return ws


def test_the_shape_is_the_coflows_examples(tmp_path: Path) -> None:
    example = Path("/tmp/cfw/package.json")
    if not example.is_file():
        pytest.skip("the CoFlows example workspace is not checked out at /tmp/cfw")
    ours = json.loads((coflows_shaped(tmp_path / "ws").mnt / "package.json").read_text())
    theirs = json.loads(example.read_text())
    assert list(ours) == list(theirs)
    for key in ("Base", "Agents", "Queries", "Files"):
        assert list(ours[key][0]) == list(theirs[key][0]), key
    assert ours["Container"] == theirs["Container"]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    """The mixed workspace, with files added after its manifest was written, and `coflows build local` run."""
    if shutil.which("javac") is None or shutil.which("mcs") is None:
        pytest.skip("needs a JDK and mono")
    sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "packages"))
    from builders import build_jar

    ws = coflows_shaped(tmp_path_factory.mktemp("mix") / "ws")
    before = json.loads((ws.mnt / "package.json").read_text())
    build_jar(ws.root / "jarbuild", ws.mnt / "Bins" / "JLib.jar", {"jlib/Ops.java": JLIB})
    ws.write("Queries/New.py", "def One():\n    return 1\n")
    ws.write("Queries/sub/Deep.py", "def Two():\n    return 2\n")
    ws.write("Base/pyNew/pynew.py", "X = 1\n")
    ws.write("Base/csNew/csNew.cs", "namespace Mix { public class More { public static int Four() { return 4; } } }\n")
    ws.write("Agents/NewAgent.py", 'AGENT = {"ID": "mix-new"}\n\ndef Body(data):\n    return data\n')
    ws.write("Files/docs/new.md", "new\n")
    result = build(ws)
    return ws, before, result


def test_build_appends_entries_as_coflows_and_adds_no_key(built) -> None:
    ws, before, result = built
    after = json.loads((ws.mnt / "package.json").read_text())
    assert list(after) == list(before)  # no key added ("Flows" included), none dropped, same order
    appended = {
        "Base": [{"Name": "csNew/csNew.cs", "Content": "Base/csNew/csNew.cs"},
                 {"Name": "Base/pyNew/pynew.py", "Content": "Base/pyNew/pynew.py"}],
        "Agents": [{"Name": "NewAgent.py", "Content": "Agents/NewAgent.py", "Exe": "pkg"}],
        "Queries": [{"Name": "New.py", "Content": "Queries/New.py", "ID": "New.py"},
                    {"Name": "sub/Deep.py", "Content": "Queries/sub/Deep.py", "ID": "sub/Deep.py"}],
        "Bins": [{"Name": "JLib.jar", "Content": "Bins/JLib.jar"}],
        "Files": [{"Name": "docs/new.md", "Content": "Files/docs/new.md"}],
    }
    for key, value in before.items():
        assert after[key] == (value + appended[key] if key in appended else value), key
    for key in ("Base", "Agents", "Queries", "Bins", "Files"):  # entries keep CoFlows' key order
        assert all(list(e) == list(after[key][0]) for e in after[key]), key
    # a second build changes nothing
    again = build(ws)
    assert json.loads((ws.mnt / "package.json").read_text()) == after, again.stdout


def test_build_reports_each_fs_vb_scala_file_once(built) -> None:
    ws, _, result = built
    assert result.returncode == 2, result.stdout + result.stderr  # agents' errors are exit 2 (others: 1)
    report = [line for line in result.stderr.splitlines() if not line[:4].isdigit()]  # not the log lines
    for rel, reason in NO_COMPILER_FILES.items():
        hits = [line for line in report if rel in line and reason in line]
        assert len(hits) == 1, (rel, hits, result.stderr)
    assert "Traceback" not in result.stderr


def test_build_exit_code_without_agents_is_the_compile_errors_one(tmp_path: Path) -> None:
    ws = new_workspace(tmp_path / "ws", name="Fs", wid=WID)
    ws.add_query("Ok.py", "def One():\n    return 1\n")
    ws.add_query("Fs.fs", FS_QUERY)
    ws.add_base("fsLib.fs", FS_BASE)
    result = build(ws)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"Queries/Fs.fs: {NO_FS}" in result.stderr and f"Base/fsLib.fs: {NO_FS}" in result.stderr


@pytest.fixture(scope="module")
def mixed_server(built):
    ws, _, _ = built
    server = Server(ws).start(timeout=180)
    try:
        yield server
    finally:
        server.close()


def test_mixed_workspace_serves_everything_else(mixed_server: Server) -> None:
    s = mixed_server
    assert s.get(f"/flow/query/{WID}/PyQuery.py/Triple?p[0]=4").json() == 12
    assert s.get(f"/flow/query/{WID}/CsQuery.cs/Twice?p[0]=4").json() == 8
    assert s.get(f"/flow/query/{WID}/UseJar.java/square?p[0]=7").json() == 49  # a Java query on a Bins JAR
    assert s.get(f"/flow/query/{WID}/New.py/One").json() == 1
    assert s.get(f"/m/getwb?workbook={WID}&id=sub/Deep.py&name=Two").json() == 2
    r = s.get(f"/flow/query/{WID}/FsQuery.fs/getName")
    assert r.status_code == 404, r.text


def test_status_names_each_fs_vb_scala_file(mixed_server: Server) -> None:
    s = mixed_server
    status = s.get("/flow/workflows", headers=ADMIN).json()[0]
    queries = {q["id"]: q for q in status["queries"]}
    for rel, reason in NO_COMPILER_FILES.items():
        if rel.startswith("Queries/"):
            assert queries[rel.split("/", 1)[1]]["errors"] == [f"{rel}: {reason}"]
        elif rel.startswith("Base/"):
            assert status["base_errors"].count(f"{rel}: {reason}") == 1, status["base_errors"]
    # a C# query using an F# Base type: the compiler's own error naming the missing type, or (with the C#
    # engine's stand-ins for F#/VB Base types, engines/clr/stubs.py) a call that fails naming the F# file
    cs_errors = " ".join(queries["CsUsesFs.cs"]["errors"])
    if cs_errors:
        assert cs_errors.startswith("Queries/CsUsesFs.cs:1:") and "`FsLib'" in cs_errors, cs_errors
    else:
        r = s.get(f"/flow/query/{WID}/CsUsesFs.cs/X")
        assert r.status_code == 500 and "fsLib.fs" in r.json()["error"]["message"], r.text
    assert queries["CsQuery.cs"]["errors"] == [] and queries["UseJar.java"]["errors"] == []
    agents = {a["File"]: a for a in s.get("/flow/agents", headers=ADMIN).json()}
    for rel, reason in NO_COMPILER_FILES.items():
        if rel.startswith("Agents/"):
            assert reason in (agents[rel].get("Error") or ""), agents[rel]
    assert not agents["Agents/PyAgent.py"].get("Error"), agents["Agents/PyAgent.py"]
    for rel, reason in NO_COMPILER_FILES.items():  # the workflow's problems list the agents' errors too
        if rel.startswith("Agents/"):
            assert [p for p in status["problems"] if rel in p and reason in p], status["problems"]


# -- NuGets no reachable feed has -------------------------------------------------------------------

def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: nothing listens there


def test_a_nuget_no_reachable_feed_has_is_a_clear_error(tmp_path: Path) -> None:
    feed = tmp_path / "feed"
    feed.mkdir()  # a reachable (folder) feed without the package
    down = f"http://127.0.0.1:{_closed_port()}/index.json"
    ws = new_workspace(tmp_path / "ws", name="Nu", wid=WID, Packages={"NuGetFeeds": [str(feed), down]})
    ws.manifest["NuGets"] = [{"ID": "Mix.Nowhere", "Version": "3.8.0"}]
    ws.save()
    ws.add_query("Ok.py", "def One():\n    return 1\n")
    result = build(ws)
    assert result.returncode == 1, result.stdout + result.stderr
    report = [line for line in result.stderr.splitlines() if not line[:4].isdigit()]
    line = next(line for line in report if "Mix.Nowhere" in line)
    assert line.startswith("NuGets: 'Mix.Nowhere 3.8.0': package 'Mix.Nowhere' not found in " + str(feed)), line
    assert f"NuGet feed {down} is unreachable" in line, line
    assert "Traceback" not in result.stderr

    server = Server(ws).start()
    try:  # the server says the same, and serves the rest
        assert server.get(f"/flow/query/{WID}/Ok.py/One").json() == 1
        status = server.get(f"/flow/workflows/{WID}", headers=ADMIN).json()
        assert status["packages"]["state"] == "failed", status["packages"]
        assert any("package 'Mix.Nowhere' not found in" in p for p in status["problems"]), status["problems"]
        listed = next(w for w in server.get("/flow/workflows", headers=ADMIN).json() if w["id"] == WID)
        assert any("Mix.Nowhere" in p for p in listed["problems"]) and listed["packages"] == "failed", listed
    finally:
        server.close()
