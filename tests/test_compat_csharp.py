"""CoFlows-style C#: the "clr" resolver, QuantApp.Kernel/QuantApp.Engine, Python and Java from C#.

In-process scenarios run in a child process (one Mono per process for life: this file, run as a
script) and print their findings as JSON; the CoFlows-shaped query and agent
(`fixtures/compat_csharp`, mirroring the example workspace's CsQuery.cs and CsAgent.cs) run over
HTTP.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import ADMIN_KEY, Server, Workspace, new_workspace, run_script_scenario

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures" / "compat_csharp"
WID = "cccccccc-0000-4000-8000-000000000016"
ALICE, BOB = "alice@example.com", "bob@example.com"

pytestmark = pytest.mark.skipif(shutil.which("javac") is None or shutil.which("mcs") is None,
                                reason="needs Mono and a JDK")


def run_scenario(name: str, tmp_path: Path, timeout: float = 240) -> dict[str, Any]:
    return run_script_scenario(__file__, name, tmp_path, timeout)


def _runtime(config_path: Path) -> tuple[Any, Any]:
    from coflows.config import load_config
    from coflows.runtime import Runtime

    rt = Runtime(load_config(str(config_path)), with_database=False)
    return rt, rt.load()


def _fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


# ------------------------------------------------------------------------------ the "clr" resolver

CS_BASE = '''namespace Cs.Base
{
    public class csBase
    {
        public string getName = "%s";
        public int Add(int x, int y) { return x + y; }
        public class Inner { public string Where = "inner of %s"; }
    }
}
'''


def scenario_resolver(tmp: Path) -> dict[str, Any]:
    from coflows import objects
    from coflows.engines.clr import resolve

    wids = {"A": "aaaaaaaa-0000-4000-8000-000000000016", "B": "bbbbbbbb-0000-4000-8000-000000000016"}
    a = new_workspace(tmp / "a", name="A", wid=wids["A"])
    b = new_workspace(tmp / "b", name="B", wid=wids["B"])
    for ws, tag in ((a, "A1"), (b, "B1")):
        ws.add_base("csBase/csBase.cs", CS_BASE % (tag, tag))
    a.config["Workflow"] = ["mnt/package.json", str(b.mnt / "package.json")]
    a.save()
    rt, problems = _runtime(a.config_path)
    out: dict[str, Any] = {"problems": [p for ps in problems.values() for p in ps]}

    def name_in(wid: str) -> str:
        cls = objects.resolve("Cs.Base.csBase", wid)
        inst = objects.call_object(cls, [])
        return str(objects.get_member(inst, "getName"))

    out["names"] = {tag: name_in(wid) for tag, wid in wids.items()}
    out["add"] = objects.call_member(objects.call_object(objects.resolve("Cs.Base.csBase", wids["A"]), []),
                                     "Add", [20.0, 5])  # an integral float, as CoFlows' fork passed it
    inner = objects.call_object(objects.resolve("Cs.Base.csBase.Inner", wids["B"]), [])
    out["inner"] = str(inner.Where)
    out["namespace"] = repr(objects.resolve("Cs.Base", wids["A"]))
    out["newline"] = objects.get_member(objects.resolve("System.Environment", wids["A"]), "NewLine")
    out["list_type"] = str(objects.resolve("System.Collections.Generic.List`1").__name__)
    out["quantapp_by_clr"] = resolve.framework_type("QuantApp.Kernel.User")
    # hot reload: the Base changes on disk and is loaded again; the new class answers
    a.write("Base/csBase/csBase.cs", CS_BASE % ("A2", "A2"))
    rt.registry.workflow(wids["A"]).load_base()
    out["after_reload"] = {tag: name_in(wid) for tag, wid in wids.items()}
    # unloading the workflow unregisters its resolver: the name is only a namespace now
    engine = rt.engines.get("csharp")
    engine.unload_workflow(rt.registry.workflow(wids["A"]).ctx)
    out["after_unload"] = repr(objects.resolve("Cs.Base.csBase", wids["A"]))
    out["other_still"] = name_in(wids["B"])
    return out


def test_resolver_gives_each_workflow_its_newest_classes(tmp_path: Path) -> None:
    got = run_scenario("resolver", tmp_path)
    assert got["problems"] == []
    assert got["names"] == {"A": "A1", "B": "B1"}
    assert got["add"] == 25
    assert got["inner"] == "inner of B1"  # nested types by dotted name
    assert got["namespace"] == "Namespace(name='Cs.Base')"
    assert got["newline"] == "\n"
    assert got["list_type"].startswith("List")
    assert got["quantapp_by_clr"] is None  # QuantApp.* for other languages is coflows.compat's
    assert got["after_reload"] == {"A": "A2", "B": "B1"}
    assert got["after_unload"] == "Namespace(name='Cs.Base.csBase')"
    assert got["other_still"] == "B1"


# ------------------------------------------------------------------------------ JVM.JVMObject

OBJECTS_CS = '''using System;
using System.Collections.Generic;

public class Objects
{
    public static string Members()
    {
        dynamic jb = JVM.Runtime.CreateInstance("javabase.javaBase");
        jb.getName = "renamed";                       // field set
        dynamic list = jb.getInterests();
        double age = (double)jb.getAge;
        string name = (string)jb.getName;
        dynamic cls = JVM.Runtime.GetClass("javabase.javaBase");
        dynamic other = cls();                          // a class is callable: a new instance
        bool same = jb.getName == "renamed";            // a Java String arrives as a .NET string
        return name + "|" + age + "|" + list[1].ToString() + "|" + (int)list.size() + "|" + other.getName.ToString()
            + "|" + same + "|" + jb.getName.GetType().FullName;
    }

    public static string Lists()
    {
        dynamic list = JVM.Runtime.CreateInstance("java.util.ArrayList");
        list.add("a");
        list.add(null);
        list.add("c");
        list[2] = "z";                                  // an index set (List.set)
        var parts = new List<string>();
        foreach (var x in list)                         // an Iterable; a Java null arrives as null
            parts.Add(x == null ? "null" : x.ToString());
        return string.Join(",", parts) + "|" + (int)list.size() + "|" + (bool)list.contains("z");
    }

    public static string ToPython()
    {
        dynamic jb = JVM.Runtime.CreateInstance("javabase.javaBase");
        return (string)Coflows.Host.Call("Helper.py", "Describe", jb);   // Python gets the Java object
    }

    public static string Missing()
    {
        dynamic jb = JVM.Runtime.CreateInstance("javabase.javaBase");
        try { jb.noSuchMethod(1); return "no error"; }
        catch (Coflows.CallException e) { return e.ErrorType + ": " + e.ErrorMessage; }
    }

    public static object JavaThrows()
    {
        dynamic list = JVM.Runtime.CreateInstance("java.util.ArrayList");
        return list.get(5);
    }

    public static string NoClass()
    {
        try { JVM.Runtime.CreateInstance("javabase.NoSuch"); return "no error"; }
        catch (Coflows.CallException e) { return e.ErrorMessage; }
    }

    private static List<object> kept = new List<object>();

    public static int Keep(int n)
    {
        for (int i = 0; i < n; i++)
            kept.Add(JVM.Runtime.CreateInstance("javabase.javaBase"));
        return kept.Count;
    }

    public static void Collect()
    {
        kept.Clear();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
    }

    public static int Touch()
    {
        dynamic jb = JVM.Runtime.CreateInstance("javabase.javaBase");
        return (int)jb.Add(1, 1);
    }
}
'''


def scenario_objects(tmp: Path) -> dict[str, Any]:
    from coflows import objects
    from coflows.errors import UserCodeError

    ws = new_workspace(tmp / "ws", wid=WID)
    ws.add_base("javabase/javaBase.java", _fixture("javaBase.java"))
    ws.add_query("Objects.cs", OBJECTS_CS)
    ws.add_query("Helper.py", "def Describe(o):\n    return type(o).__name__ + ':' + str(o.getName)\n")
    rt, problems = _runtime(ws.config_path)
    out: dict[str, Any] = {"problems": [p for ps in problems.values() for p in ps]}

    def call(fn: str, *args: Any) -> Any:
        return rt.call(f"Objects.cs/{fn}", *args, workflow=WID)

    out["members"] = call("Members")
    out["lists"] = call("Lists")
    out["to_python"] = call("ToPython")
    out["missing"] = call("Missing")
    out["no_class"] = call("NoClass")
    try:
        call("JavaThrows")
        out["java_throws"] = None
    except UserCodeError as e:
        out["java_throws"] = [e.type_name, e.language, e.message, "ArrayList" in e.stack]
    call("Collect")
    call("Touch")  # what earlier calls left is released now
    before = len(objects.HANDLES)
    call("Keep", 2000)
    out["grew"] = len(objects.HANDLES) - before
    call("Collect")
    call("Touch")  # the next call into Python releases what the finalizers queued
    out["left"] = len(objects.HANDLES) - before
    return out


def test_jvm_objects_from_csharp(tmp_path: Path) -> None:
    got = run_scenario("objects", tmp_path)
    assert got["problems"] == []
    assert got["members"] == "renamed|20.5|Java|2|a java base|True|System.String"
    assert got["lists"] == "a,null,z|3|True"
    assert got["to_python"] == "javabase.javaBase:a java base"
    assert got["missing"].startswith("ForeignError: ") and "'noSuchMethod'" in got["missing"]
    # a Java exception thrown under C# fails the call as the Java error it is, with Java's stack
    assert got["java_throws"][:2] == ["java.lang.IndexOutOfBoundsException", "java"]
    assert "5" in got["java_throws"][2] and got["java_throws"][3] is True
    assert "'javabase.NoSuch'" in got["no_class"] and "jvm" in got["no_class"]
    # each kept proxy holds a handle (a few collected earlier proxies are released meanwhile)
    assert got["grew"] >= 1990
    assert got["left"] < 100  # collected proxies released theirs


# ------------------------------------------------------------------------------ Newtonsoft.Json

JSON_CS = '''using Newtonsoft.Json.Linq;

public class UsesJson
{
    public static string Field(string json, string name)
    {
        var o = JObject.Parse(json);
        return o.ContainsKey(name) ? o[name].ToString() : "none";
    }
}
'''


def scenario_newtonsoft(tmp: Path) -> dict[str, Any]:
    from coflows.errors import CompileError

    ws = new_workspace(tmp / "ws", wid=WID)
    ws.add_query("UsesJson.cs", JSON_CS)
    rt, problems = _runtime(ws.config_path)
    out: dict[str, Any] = {"problems": [p for ps in problems.values() for p in ps]}
    out["field"] = rt.call("UsesJson.cs/Field", '{"Data": "x"}', "Data", workflow=WID)
    out["none"] = rt.call("UsesJson.cs/Field", '{"Data": "x"}', "Other", workflow=WID)
    # without Debian's Json.NET the compile error says what to install
    engine = rt.engines.get("csharp")
    engine.json_references = []
    wf = rt.registry.workflow(WID)
    try:
        engine.load(wf.ctx, wf.queries["UsesJson.cs"].source)
        out["missing"] = None
    except CompileError as e:
        out["missing"] = str(e)
    return out


def test_newtonsoft_json_in_csharp(tmp_path: Path) -> None:
    if not list(Path("/usr/lib/mono/gac/Newtonsoft.Json").glob("*/Newtonsoft.Json.dll")):
        pytest.skip("needs Debian's libnewtonsoft-json5.0-cil (bin/setup.sh installs it)")
    got = run_scenario("newtonsoft", tmp_path)
    assert got["problems"] == []
    assert (got["field"], got["none"]) == ("x", "none")  # JObject.ContainsKey on Json.NET 6
    assert got["missing"] is not None and "libnewtonsoft-json5.0-cil" in got["missing"]


# ------------------------------------------------------------------------------ F#/VB Base, mcs

FS_BASE = '''namespace Fs.Lib

type Calc() =
    member this.Name
        with get() : string = "calc"
    member this.Double x = 2 * x
    static member Version = "1"
'''

VB_BASE = '''Imports System

Namespace Vb.Lib
    Public Module Texts
        Public Function Shout(ByVal s As String) As String
            Return s.ToUpper()
        End Function
    End Module
End Namespace
'''

# `Fs` is a method of the class and the first part of a type name: Roslyn compiles this, mcs says CS0118
MIXED_CS = '''public class Mixed
{
    public static string Fs()
    {
        var calc = new Fs.Lib.Calc();
        return calc.Name + calc.Double(2).ToString();
    }

    public static string Loud() { return Vb.Lib.Texts.Shout("x"); }

    public static int Add(int x, int y) { return x + y; }
}
'''


def scenario_stubs(tmp: Path) -> dict[str, Any]:
    from coflows import objects
    from coflows.errors import UserCodeError

    ws = new_workspace(tmp / "ws", wid=WID)
    ws.add_base("fsLib/Calc.fs", FS_BASE)
    ws.add_base("vbLib/Texts.vb", VB_BASE)
    ws.add_query("Mixed.cs", MIXED_CS)
    rt, problems = _runtime(ws.config_path)
    out: dict[str, Any] = {"problems": [p for ps in problems.values() for p in ps]}
    out["add"] = rt.call("Mixed.cs/Add", 1, 2, workflow=WID)
    for fn in ("Fs", "Loud"):
        try:
            out[fn] = rt.call(f"Mixed.cs/{fn}", workflow=WID)
        except UserCodeError as e:
            out[fn] = f"{e.type_name}: {e.message}"
    try:
        objects.call_object(objects.resolve("Fs.Lib.Calc", WID), [])
        out["resolved"] = "no error"
    except Exception as e:  # noqa: BLE001
        out["resolved"] = str(getattr(e, "Message", e))
    return out


def test_fsharp_and_vb_base_types_stand_in_and_mcs_is_helped(tmp_path: Path) -> None:
    got = run_scenario("stubs", tmp_path)
    assert not any(p.startswith("Queries/") for p in got["problems"]), got["problems"]
    assert any("Calc.fs" in p and "no compiler" in p for p in got["problems"])  # still said at load
    assert got["add"] == 3  # the file compiles: its C# functions work
    assert got["Fs"].startswith("System.NotSupportedException: Fs.Lib.Calc is declared in Base/fsLib/Calc.fs, "
                                "written in F#")
    assert "list it under Bins" in got["Fs"]
    assert got["Loud"].startswith("System.NotSupportedException: Vb.Lib.Texts is declared in Base/vbLib/Texts.vb")
    assert "Base/fsLib/Calc.fs" in got["resolved"]  # other languages reach the stand-in too


def test_mcs_fix_qualifies_only_the_reported_name() -> None:
    from coflows.engines.clr.mcs_fixes import qualify_global, shadowed_name

    assert shadowed_name("CS0118", "`CsQuery.Fs()' is a `method' but a `type' was expected") == "Fs"
    assert shadowed_name("CS0246", "`CsQuery.Fs()' is a `method' but a `type' was expected") is None
    src = "class A {\n  object F() { return new Fs.Base.X(); }\n  int Fs() { return 1; }\n}"
    col = src.split("\n")[1].index("Fs.") + 1
    assert qualify_global(src, [(2, col, "Fs")]).split("\n")[1] == "  object F() { return new global::Fs.Base.X(); }"
    assert qualify_global(src, [(2, col + 1, "Fs")]) is None  # not at the start of the name
    assert qualify_global("var a = b.Fs.X;", [(1, 11, "Fs")]) is None  # the middle of a dotted name


def test_stub_parsers_read_declarations() -> None:
    from coflows.engines.clr.stubs import parse_fsharp, parse_vb

    (calc,) = parse_fsharp(FS_BASE)
    assert (calc.full_name, calc.static) == ("Fs.Lib.Calc", False)
    assert calc.members == {"Name": (False, False), "Double": (True, False), "Version": (False, True)}
    (auto,) = parse_fsharp("namespace N\ntype A() =\n    member val Name = 1 with get, set\n"
                           "    member inline this.Twice y = 2 * y\n    abstract member Run : int -> int\n")
    assert auto.members == {"Name": (False, False), "Twice": (True, False), "Run": (True, False)}
    (texts,) = parse_vb(VB_BASE)
    assert (texts.full_name, texts.static, texts.members) == ("Vb.Lib.Texts", True, {"Shout": (True, True)})


# ------------------------------------------------------------------------------ over HTTP

# an agent whose hooks reach Java and Python: names resolve in the agent's workflow on its threads
INTEROP_AGENT = '''using System;
using Python.Runtime;
using QuantApp.Engine;
using QuantApp.Kernel;

public class InteropAgent
{
    private static string fromFactory = JVM.Runtime.CreateInstance("javabase.javaBase").getName.ToString();

    public static FPKG pkg()
    {
        return new FPKG("$WID$-Interop", "$WID$", "Interop", "Java and Python from hooks", null,
            null, null, null, null,
            Utils.SetFunction("Body", new Body((object data) => {
                dynamic jb = JVM.Runtime.CreateInstance("javabase.javaBase");
                string py;
                using (Py.GIL())
                {
                    dynamic mod = Py.Import("Base.pyBase.pybase");
                    dynamic pb = mod.pybase();
                    py = pb.getName.ToString();
                }
                return fromFactory + "|" + jb.Add(1, 2).ToString() + "|" + py + "|" + User.ContextUser.FirstName;
            })),
            null, null);
    }
}
'''

PY_SPIN_CS = '''using Python.Runtime;

public class Spin
{
    public static int Python()
    {
        using (Py.GIL())
        {
            PythonEngine.Exec("while True: pass");
        }
        return 1;
    }

    public static int Add(int a, int b) { return a + b; }
}
'''


def test_time_limit_stops_python_under_py_gil(tmp_path: Path, start_server) -> None:
    """A stop that hits Python run by C# under Py.GIL() ends the call; the server lives on (pythonnet
    once ended the process making a Python type for the stop's exception while the stop was pending)."""
    ws = new_workspace(tmp_path / "ws", wid=WID)
    ws.config["Server"].update({"CallTimeout": 2, "Threads": 4})
    ws.save()
    ws.add_query("Spin.cs", PY_SPIN_CS)
    server = start_server(ws)
    for _ in range(3):  # the crash was a race (about one stop in two): several stops
        r = server.get(f"/flow/query/{WID}/Spin.cs/Python", timeout=60)
        assert r.status_code == 504, r.text
        r = server.get(f"/flow/query/{WID}/Spin.cs/Add?p[0]=1&p[1]=2", timeout=30)
        assert r.status_code == 200 and r.json() == 3, r.text
    time.sleep(2.5)  # past the watchdog's grace: a call that did not stop is written off by then
    log = server.output()
    assert "stopping thread" in log and "written off" not in log, log[-3000:]


def _make_users(ws: Workspace) -> dict[str, str]:
    from coflows.auth.store import UserStore
    from coflows.store import Database, database_url

    db = Database(database_url("sqlite", ws.config["Database"]["Connection"], ws.root))
    try:
        store = UserStore(db)
        store.add_user(ALICE, name="Alice Analyst")
        store.add_user(BOB, name="Bob Builder")
        store.grant(WID, ALICE, "write")  # the workflow's ID is its group
        store.grant(WID, BOB, "read")
        return {who: store.new_key(who, "test")[1] for who in (ALICE, BOB)}
    finally:
        db.dispose()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, dict[str, str]]]]:
    ws = new_workspace(tmp_path_factory.mktemp("compat_cs") / "ws", name="CsCompat", wid=WID, public=1,
                       Auth={"CacheSeconds": 0})
    ws.add_base("csBase/csBase.cs", _fixture("csBase.cs"))
    ws.write("Base/pyBase/pybase.py", _fixture("pybase.py"))
    ws.manifest["Base"].append({"Name": "Base/pyBase/pybase.py", "Content": "Base/pyBase/pybase.py"})
    ws.add_base("javabase/javaBase.java", _fixture("javaBase.java"))
    ws.add_query("CsCompat.cs", _fixture("CsCompat.cs"))
    ws.add_agent("CsCompatAgent.cs", _fixture("CsCompatAgent.cs"))
    ws.add_agent("InteropAgent.cs", INTEROP_AGENT)
    keys = _make_users(ws)
    headers = {"anonymous": {}, "alice": {"x-api-key": keys[ALICE]}, "bob": {"x-api-key": keys[BOB]},
               "admin": {"x-api-key": ADMIN_KEY}}
    server = Server(ws).start()
    try:
        yield server, headers
    finally:
        server.close()


def _get(server: Server, fn: str, who: dict[str, str], query: str = "") -> Any:
    return server.get(f"/flow/query/{WID}/CsCompat.cs/{fn}{query}", headers=who)


def test_query_functions_and_their_permissions(env) -> None:
    server, who = env
    r = _get(server, "getName", who["alice"])
    assert r.status_code == 200, (r.text, server.output()[-3000:])
    assert r.json() == "a name"
    assert _get(server, "getName", who["bob"]).status_code == 403  # Write needed (Bob has Read)
    assert _get(server, "Add", who["bob"], "?p[0]=1&p[1]=2").json() == 3  # Read is enough
    assert _get(server, "getName", who["anonymous"]).status_code == 401
    assert _get(server, "Add", who["anonymous"], "?p[0]=1&p[1]=2").json() == 3  # Public is Read


@pytest.mark.parametrize(("caller", "expected"), [("anonymous", "Anonymous READ"), ("bob", "Bob READ"),
                                                  ("alice", "Alice WRITE"), ("admin", "admin WRITE")])
def test_permission_context_and_context_user(env, caller: str, expected: str) -> None:
    server, who = env
    r = _get(server, "Permission", who[caller])
    assert r.status_code == 200, r.text
    assert r.json() == expected


def test_user_and_permission_by_api_key(env) -> None:
    server, who = env
    bob_key = who["bob"]["x-api-key"]
    r = _get(server, "ByKey", who["anonymous"], f"?p[0]={bob_key}")
    assert r.status_code == 200, r.text
    assert r.json() == "Bob Builder 1"
    assert _get(server, "ByKey", who["anonymous"], "?p[0]=nope").json() == "  -1"  # no such key: Denied


def test_python_from_csharp(env) -> None:
    server, who = env
    r = _get(server, "Python", who["anonymous"])
    assert r.status_code == 200, (r.text, server.output()[-3000:])
    # (int) on the Python float 20.5 truncates (pythonnet 3, as CoFlows' fork); foreach walks the list
    assert r.json() == "Python a python base will be 25 in 5 years and is interested in:\nC#\nPython"


def test_java_from_csharp(env) -> None:
    server, who = env
    r = _get(server, "Java", who["anonymous"])
    assert r.status_code == 200, (r.text, server.output()[-3000:])
    assert r.json() == "Java a java base will be 25 in 5 years and is interested in:\nC#\nJava"


def _agent(server: Server, who: dict[str, dict[str, str]], agent_id: str) -> dict[str, Any]:
    """The agent's listing once it has started (or failed to)."""
    deadline = time.monotonic() + 60
    agents: dict[str, Any] = {}
    while time.monotonic() < deadline:
        agents = {a["ID"]: a for a in server.get("/flow/agents", headers=who["admin"]).json()}
        if agents.get(agent_id, {}).get("State") in ("running", "error"):
            break
        time.sleep(0.2)
    assert agent_id in agents, sorted(agents)
    return agents[agent_id]


def test_concurrent_calls_into_java_and_python(env) -> None:
    """C# on many server threads at once, each reaching Java (handles, finalizers) and Python (Py.GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    server, who = env
    expected = {"Java": "Java a java base will be 25 in 5 years and is interested in:\nC#\nJava",
                "Python": "Python a python base will be 25 in 5 years and is interested in:\nC#\nPython"}

    def one(i: int) -> tuple[str, int, Any]:
        fn = "Java" if i % 2 else "Python"
        r = _get(server, fn, who["bob"])
        return fn, r.status_code, r.json()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(160)))
    wrong = [r for r in results if r[1] != 200 or r[2] != expected[r[0]]]
    assert wrong == [], wrong[:3]


def test_coflows_style_agent_answers_messages(env) -> None:
    server, who = env
    agent_id = f"{WID}-CsCompatAgent"
    agent = _agent(server, who, agent_id)
    assert agent["State"] == "running", agent
    assert agent["Name"] == "C# compat agent"
    r = server.post(f"/flow/agent/{agent_id}", json={"Function": "Hello", "Data": [1, 2]}, headers=who["admin"])
    assert r.status_code == 200, r.text
    assert json.loads(r.json()) == {"Function": "Hello", "Data": [1, 2]}  # Body returned the JSON text it got
    runs = server.get(f"/flow/agent/{agent_id}/runs", headers=who["admin"]).json()
    initial = [run for run in runs if run.get("Detail") == "Main"]
    assert initial and "C# compat initial execution @ " in initial[-1]["Output"]


def test_agent_hooks_reach_java_and_python(env) -> None:
    server, who = env
    agent = _agent(server, who, f"{WID}-Interop")
    assert agent["State"] == "running", agent.get("Error")
    r = server.post(f"/flow/agent/{WID}-Interop", json={"x": 1}, headers=who["alice"])
    assert r.status_code == 200, (r.text, server.output()[-3000:])
    assert r.json() == "a java base|3|a python base|Alice"


if __name__ == "__main__":
    name, tmp = sys.argv[1], Path(sys.argv[2])
    print(json.dumps(globals()[f"scenario_{name}"](tmp), default=str))
