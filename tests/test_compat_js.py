"""CoFlows' JavaScript (Jint) code runs unmodified: synchronous host objects and CoFlows' agent shape.

Over HTTP (one real server: Mono, JVM, V8): a query file written like CoFlows' JavascriptQuery.js
(`let getName = 'something'` served as a function, `Add`, `Permission` through
`qkernel.User.ContextUser` / `PermissionContext` / `AccessType` for anonymous, Read and Write
callers, `Cs()` on a C# Base through `importNamespace('Cs.Base')` and `System.Environment.NewLine`,
a Java Base through `importNamespace('javabase')`, a Python Base through
`importNamespace('Base.pyBase.pybase')`), and an agent written like JavascriptAgent.js (`let pkg =
new qengine.FPKG(...)`, `jsWrapper`, `log`).

In-process: the proxy machinery on a Python object registered with `objects.register(None, …)`:
members, calls, `new`, `.length`/`Count`, indexing, iteration, `String()`, `JSON.stringify`,
errors, handles released through FinalizationRegistry, the size limit, a host call that blocks,
and a host call that calls back into its own context.
"""

from __future__ import annotations

import enum
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("py_mini_racer")

from coflows import objects
from coflows.config import parse_config
from coflows.runtime import Runtime
from conftest import ADMIN_KEY, Server, Workspace, new_workspace

WID = "7d3b2f3e-6a59-4f0e-9d55-0c1f0e2a4b61"  # the workflow's ID is its permission group, as in CoFlows
ALICE, BOB, CAROL = "alice@example.com", "bob@example.com", "carol@example.com"

CS_BASE = r'''
namespace Cs.Base
{
    using System.Collections.Generic;

    public class csBase
    {
        public string getName = "Ada";
        private double _age = 36.0;
        public double getAge { get { return _age; } set { _age = value; } }
        public List<string> getInterests = new List<string>{ "engines", "notes", "looms" };
        public int Add(int x, int y) => x + y;
    }
}
'''

JAVA_BASE = r'''
package javabase;

import java.util.*;

public class javaBase
{
    public javaBase() {}
    public String getName = "Grace";
    public double getAge = 45.0;
    public List<String> getInterests() { return Arrays.asList("compilers", "COBOL"); }
    public int Add(int x, int y) { return x + y; }
}
'''

PY_BASE = '''
class pybase:
    getName = "Guido"

    def _getAge(self):
        return 30.0

    getAge = property(fget=_getAge)

    def Add(self, x, y):
        return x + y

    def getInterests(self):
        return ["indentation", "batteries"]
'''

# Written like CoFlows' JavascriptQuery.js (same APIs, our own values).
JS_QUERY = r'''
/// <info version="1.0.0">
///     <title>JavaScript compatibility</title>
/// </info>

var qengine = importNamespace('QuantApp.Engine')
var qkernel = importNamespace('QuantApp.Kernel')

/// <api name="getName">
///     <description>Function that returns a name</description>
///     <permissions>
///         <group id="$WID$" permission="write"/>
///     </permissions>
/// </api>
let getName = 'something'

/// <api name="Add">
///     <description>Function that adds two numbers</description>
///     <param name="x" type="integer">First number to add</param>
///     <param name="y" type="integer">Second number to add</param>
///     <permissions>
///         <group id="$WID$" permission="read"/>
///     </permissions>
/// </api>
let Add = function(x, y) {
        return x + y
    }

/// <api name="Permission">
///     <description>Function that returns a permission</description>
///     <permissions>
///         <group id="$WID$" permission="view"/>
///     </permissions>
/// </api>
let Permission = function() {
    var user = qkernel.User.ContextUser
    var permission = qkernel.User.PermissionContext("$WID$")
    switch(permission)
    {
        case qkernel.AccessType.Write:
            return user.FirstName + " WRITE"
        case qkernel.AccessType.Read:
            return user.FirstName + " READ"
        case qkernel.AccessType.View:
            return user.FirstName + " VIEW"
        default:
            return user.FirstName + " DENIED"
    }
}

var cbase = importNamespace('Cs.Base')

/// <api name="Cs">
///     <description>C# Interop sample</description>
///     <permissions>
///         <group id="$WID$" permission="view"/>
///     </permissions>
/// </api>
let Cs = function() {
    var csbase = cbase.csBase()
    var age_in_5_years = csbase.Add(csbase.getAge, 5)

    var result = "C# " + csbase.getName + " will be " + age_in_5_years + " in 5 years and is interested in:"
    var interests = csbase.getInterests

    for(var i = 0; i < interests.Count; i++)
        result += System.Environment.NewLine + interests[i]

    return result
}

/// <api name="CsObject">
///     <description>a .NET object as the answer: its JSON</description>
/// </api>
let CsObject = function() { var o = cbase.csBase(); o.getAge = 37.5; return o }

/// <api name="Sys">
///     <description>System is importNamespace('System')</description>
/// </api>
let Sys = function() { return [System.Environment.NewLine, System.Math.Max(3, 4), System.String.Join("-", ["a", "b"])] }

var jbase = importNamespace('javabase')

/// <api name="Java">
///     <description>Java interop from JavaScript</description>
/// </api>
let Java = function() {
    var j = new jbase.javaBase()
    var result = "Java " + j.getName + " will be " + j.Add(j.getAge, 5) + ":"
    var interests = j.getInterests()
    for (var i = 0; i < interests.length; i++)
        result += " " + interests[i]
    for (const x of interests) result += " " + x.toUpperCase()
    return result
}

/// <api name="Errors">
///     <description>host exceptions are JavaScript exceptions</description>
/// </api>
let Errors = function() {
    var t = f => { try { return f() } catch (e) { return e.name + ': ' + e.message } }
    return [t(() => System.Int32.Parse("x")), t(() => cbase.csBase().Add("a", 1)),
            t(() => importNamespace('java.lang.Integer').parseInt("zz")), t(() => { for (const x of cbase.csBase()) {} })]
}

var pbase = importNamespace('Base.pyBase.pybase')

/// <api name="Py">
///     <description>Python interop from JavaScript</description>
/// </api>
let Py = function() {
    var p = pbase.pybase()
    return "Python " + p.getName + " will be " + p.Add(p.getAge, 5) + ": " + p.getInterests().length
}
'''

# Written like CoFlows' JavascriptAgent.js: the package is a variable, not a factory.
JS_AGENT = r'''
var qengine = importNamespace('QuantApp.Engine')

let workspaceID = '$WID$'

let pkg = new qengine.FPKG(
    workspaceID + '-JsCompatAgent', //ID
    workspaceID, //Workflow ID
    'JS Compat Agent', //Name
    'Mirrors CoFlows JavascriptAgent.js', //Description
    null, //MID
    jsWrapper.Load('Load', function(data){ }),
    jsWrapper.Callback('Add', function(id, data){ }),
    jsWrapper.Callback('Exchange', function(id, data){ }),
    jsWrapper.Callback('Remove', function(id, data){ }),
    jsWrapper.Body('Body', function(data){
        if('Data' in data && data['Data'] == 'Initial Execution')
            log('     JS compat Initial Execute @ ' + Date(Date.now()).toString())
        return data
    }),
    '0 * * ? * *', //Cron Schedule
    jsWrapper.Job('Job', function(date, data){ })
    )
'''


def _make_users(ws: Workspace) -> dict[str, str]:
    from coflows.auth.store import UserStore
    from coflows.store import Database, database_url

    db = Database(database_url("sqlite", ws.config["Database"]["Connection"], ws.root))
    try:
        store = UserStore(db)
        store.add_user(ALICE, name="Alice Analyst")
        store.add_user(BOB, name="Bob Builder")
        store.add_user(CAROL, name="Carol Viewer")
        store.grant(WID, ALICE, "write")
        store.grant(WID, BOB, "read")
        store.grant(WID, CAROL, "view")
        return {who: store.new_key(who, "test")[1] for who in (ALICE, BOB, CAROL)}
    finally:
        db.dispose()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    ws = new_workspace(tmp_path_factory.mktemp("compatjs") / "ws", wid=WID, public=1, Auth={"CacheSeconds": 0})
    ws.add_base("csBase/csBase.cs", CS_BASE)
    ws.add_base("javabase/javaBase.java", JAVA_BASE)
    ws.write("Base/pyBase/pybase.py", PY_BASE)
    ws.manifest["Base"].append({"Name": "Base/pyBase/pybase.py", "Content": "Base/pyBase/pybase.py"})
    ws.add_query("JavascriptQuery.js", JS_QUERY)
    ws.add_agent("JavascriptAgent.js", JS_AGENT)
    keys = _make_users(ws)
    server = Server(ws).start()
    try:
        yield server, keys
    finally:
        server.close()


def _headers(keys: dict[str, str], who: str | None) -> dict[str, str]:
    if who is None:
        return {}
    return {"x-api-key": ADMIN_KEY if who == "admin" else keys[who]}


def _get(env: tuple[Server, dict[str, str]], path: str, who: str | None = "admin") -> Any:
    server, keys = env
    r = server.get(f"/flow/query/{WID}/JavascriptQuery.js/{path}", headers=_headers(keys, who))
    assert r.status_code == 200, (path, who, r.status_code, r.text, server.output()[-3000:])
    return r.json()


def test_query_file_loads_with_its_functions(env) -> None:
    server, _ = env
    r = server.get(f"/flow/query/{WID}/JavascriptQuery.js/Add?p[0]=1&p[1]=2", headers={"x-api-key": ADMIN_KEY})
    assert r.status_code == 200, server.output()[-3000:]
    assert r.json() == 3


def test_a_value_is_served_as_a_function(env) -> None:
    assert _get(env, "getName", ALICE) == "something"


# Carol's own grant is View, but the workflow's Public level (Read) is everyone's floor
@pytest.mark.parametrize("who,answer", [(None, "Anonymous READ"), (CAROL, "Carol READ"), (BOB, "Bob READ"),
                                        (ALICE, "Alice WRITE"), ("admin", "admin WRITE")])
def test_permission_through_quantapp_kernel(env, who: str | None, answer: str) -> None:
    assert _get(env, "Permission", who) == answer


@pytest.mark.parametrize("fn,allowed", [("getName", {ALICE}), ("Add?p[0]=1&p[1]=2", {None, ALICE, BOB, CAROL}),
                                        ("Permission", {None, ALICE, BOB, CAROL})])
def test_function_permissions_apply(env, fn: str, allowed: set[str | None]) -> None:
    server, keys = env
    for who in (None, CAROL, BOB, ALICE):
        r = server.get(f"/flow/query/{WID}/JavascriptQuery.js/{fn}", headers=_headers(keys, who))
        assert (r.status_code == 200) == (who in allowed), (fn, who, r.status_code, r.text)


def test_csharp_base_through_import_namespace(env) -> None:
    # csbase.Add(csbase.getAge, 5): getAge is a double (36.0) passed to Add(int, int), as CoFlows allowed
    assert _get(env, "Cs", None) == "C# Ada will be 41 in 5 years and is interested in:\nengines\nnotes\nlooms"


def test_a_dotnet_object_answers_its_json(env) -> None:
    assert _get(env, "CsObject") == {"getName": "Ada", "getAge": 37.5, "getInterests": ["engines", "notes", "looms"]}


def test_system_is_the_dotnet_namespace(env) -> None:
    assert _get(env, "Sys") == ["\n", 4, "a-b"]


def test_host_exceptions_are_javascript_exceptions(env) -> None:
    dotnet, overload, java, iterate = _get(env, "Errors")
    assert dotnet == "FormatException: Input string was not in a correct format."  # no .NET stack trace
    assert overload.startswith("TypeError: csBase.Add: ")
    assert java == 'java.lang.NumberFormatException: For input string: "zz"'
    assert iterate == "TypeError: csBase is not iterable"


def test_java_base_through_import_namespace(env) -> None:
    assert _get(env, "Java") == "Java Grace will be 50: compilers COBOL COMPILERS COBOL"


def test_python_base_through_import_namespace(env) -> None:
    assert _get(env, "Py") == "Python Guido will be 35: 2"


def test_agent_written_like_coflows(env) -> None:
    server, _ = env
    admin = {"x-api-key": ADMIN_KEY}
    agents = {a["ID"]: a for a in server.get("/flow/agents", headers=admin).json()}
    a = agents.get(f"{WID}-JsCompatAgent")
    assert a is not None, (list(agents), server.output()[-3000:])
    assert a["Name"] == "JS Compat Agent" and a["Language"] == "javascript", a
    assert a["State"] == "running", a
    # Body gets the message as a parsed object ('Data' in data) and answers it
    r = server.post(f"/flow/agent/{WID}-JsCompatAgent", json={"Data": "hello", "n": 1}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json() == {"Data": "hello", "n": 1}
    # the first Body run (CoFlows' "Initial Execution") logged through log(...)
    deadline = time.monotonic() + 15
    while True:
        runs = server.get(f"/flow/agent/{WID}-JsCompatAgent/runs", headers=admin).json()
        main = [x for x in runs if x["Hook"] == "Body" and "Initial Execute" in (x["Output"] or "")]
        if main or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert main and main[0]["Status"] == "ok", runs


# -- the proxy machinery, in-process, on a Python object of our own ---------------------------------
class Level(enum.IntEnum):
    Low = 1
    High = 2


class Thing:
    """A host object with the shapes CoFlows code uses: fields, a property, a list, methods."""

    made = 0

    def __init__(self, name: str = "thing") -> None:
        Thing.made += 1
        self.getName = name
        self.getAge = 20.0
        self.getInterests = ["a", "b", "c"]
        self.table = {"k": "v"}
        self.level = Level.High

    @property
    def Upper(self) -> str:
        return self.getName.upper()

    def Add(self, x: int, y: int) -> int:
        if not isinstance(x, int):
            raise TypeError("No method matches given arguments for Add")  # as pythonnet says it
        return x + y

    def Fail(self) -> None:
        raise ValueError("thing failed on purpose")

    def Key(self) -> Any:
        return {}["nope"]

    def Odd(self) -> dict[str, float]:
        return {"nan": float("nan"), "one": 1.0}

    def Echo(self, v: Any) -> Any:
        return v

    def Other(self) -> Thing:
        return Thing("other")

    def Big(self, n: int) -> str:
        return "x" * n

    sleeping = threading.Event()
    wake = threading.Event()

    def Sleep(self, seconds: float) -> str:
        Thing.sleeping.set()
        Thing.wake.wait(seconds)
        return "slept"

    def CallBack(self, runtime: Any) -> Any:  # calls JavaScript of the same workflow
        return runtime.registry.call("Host.js/Plain")

    def __str__(self) -> str:
        return f"Thing({self.getName})"


class TestNs:
    Thing = Thing
    Level = Level
    count = 3


HOST_JS = r'''
var t = importNamespace('TestObjects')
var rt = importNamespace('TestRuntime')
function Plain() { return 'plain' }
function Members() {
  var x = t.Thing('ann')
  return [x.getName, x.getAge, x.Upper, x.Add(x.getAge, 5), x.getInterests.length, x.getInterests.Count,
          x.getInterests[1], x.table.k, x.level === t.Level.High, t.count, typeof x.missing]
}
function Construct() { var x = new t.Thing('bob'); x.getName = 'bo'; return [x.getName, String(x), `${x}`] }
function Iterate() { var out = []; for (const s of t.Thing().getInterests) out.push(s); return out }
function Json() { return [JSON.stringify(t.Thing('j')), t.Thing('r')] }
function Chain() { return t.Thing().Other().Other().getName }
function Args() { var x = t.Thing(); return x.Echo(x) === undefined ? 'undef' : [x.Echo({a: [1, 2]}), String(x.Echo(x.Other()))] }
function Fail() { try { t.Thing().Fail(); return 'no error' } catch (e) { return e.name + ': ' + e.message } }
function Key() { try { t.Thing().Key(); return 'no error' } catch (e) { return e.name + ': ' + e.message } }
function Odd() { return [JSON.stringify(t.Thing().Odd()), t.Thing().Odd().nan] }
function Unknown() { try { return importNamespace('No.Such').Thing() } catch (e) { return e.name + ': ' + e.message } }
function Big(n) { try { return t.Thing().Big(n).length } catch (e) { return e.name + ': ' + e.message } }
function Sleep(s) { try { return t.Thing().Sleep(s) } catch (e) { return e.name + ': ' + e.message } }
/** @timeout 120 */
function SleepLong(s) { return t.Thing().Sleep(s) }
function Reenter() { try { return t.Thing().CallBack(rt.runtime) } catch (e) { return e.name + ': ' + e.message } }
function Many(n) { var x = t.Thing(); var s = 0; for (var i = 0; i < n; i++) s += x.getAge; return s }
function Garbage(n) { for (var i = 0; i < n; i++) t.Thing(); return n }
function System_() { return System.Environment.NewLine }
function MPut(x) {  // CoFlows' M through QuantApp.Kernel, synchronously (no await)
  var m = importNamespace('QuantApp.Kernel').M.Base('js-sync-topic')
  var id = m.Add({item: x, tags: ['a']})
  return [typeof id, m.Count(), m.Get(id).item]
}
/// <api name="Doc">
///   <description>a documented host object is served (as its JSON)</description>
/// </api>
var Doc = t.Thing('doc')
'''


class _RuntimeHolder:
    runtime: Runtime | None = None


@contextmanager
def _host_runtime(root: Path, isolates: int) -> Iterator[Runtime]:
    holder = _RuntimeHolder()
    names = {"TestObjects": TestNs, "TestRuntime": holder}
    objects.register(None, "test", names.get)
    ws = new_workspace(root / "ws")
    ws.add_query("Host.js", HOST_JS)
    cfg = parse_config({"Workflow": [str(ws.mnt / "package.json")], "Database": {"Connection": ":memory:"},
                        "Engines": {"JsIsolates": isolates, "JsTimeoutSeconds": 3}}, "test", ws.root)
    rt = Runtime(cfg)
    rt.load()
    holder.runtime = rt
    try:
        yield rt
    finally:
        rt.close()
        objects.unregister(None, "test")


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Runtime]:
    """One JavaScript isolate: a call back into the workflow's JavaScript meets the waiting context."""
    with _host_runtime(tmp_path, 1) as rt:
        yield rt


def _js_workflow(rt: Runtime) -> Any:
    """The JavaScript engine's state for the workflow (its V8 context and the context's bridge)."""
    return rt.engines.get("javascript")._workflows[rt.registry.default_workflow().id]


def _call(rt: Runtime, fn: str, *args: Any) -> Any:
    return rt.registry.call(f"Host.js/{fn}", *args)


def test_members_calls_and_values(host) -> None:
    assert _call(host, "Members") == ["ann", 20.0, "ANN", 25, 3, 3, "b", "v", True, 3, "undefined"]


def test_new_set_and_to_string(host) -> None:
    assert _call(host, "Construct") == ["bo", "Thing(bo)", "Thing(bo)"]


def test_iteration_and_chains(host) -> None:
    assert _call(host, "Iterate") == ["a", "b", "c"]
    assert _call(host, "Chain") == "other"


def test_json_of_a_host_object(host) -> None:
    shape = {"getName": "r", "getAge": 20.0, "getInterests": ["a", "b", "c"], "table": {"k": "v"}, "level": 2}
    text, value = _call(host, "Json")
    assert json.loads(text) == {**shape, "getName": "j"}
    assert value == shape  # a query returning a host object answers its JSON


def test_nan_is_null_as_the_server_writes_it(host) -> None:
    assert _call(host, "Odd") == ['{"nan":null,"one":1}', None]


def test_arguments_cross_as_objects_and_values(host) -> None:
    assert _call(host, "Args") == [{"a": [1, 2]}, "Thing(other)"]


def test_errors_name_the_member(host) -> None:
    assert _call(host, "Fail") == "ValueError: thing failed on purpose"
    assert _call(host, "Key") == "KeyError: 'nope'"  # the method's own error, not a name lookup
    got = _call(host, "Unknown")
    assert got.startswith("ReferenceError: ") and "No.Such.Thing" in got and "looked in" in got


def test_size_limit_is_a_clear_error(host) -> None:
    assert _call(host, "Big", 1000) == 1000
    got = _call(host, "Big", 600_000)
    assert got.startswith("RangeError: ") and "600" in got and "channel holds" in got


def test_a_blocked_host_call_ends_at_the_call_deadline(host) -> None:
    got = _call(host, "Sleep", 10)
    assert got.startswith("TimeoutError: ") and "time limit" in got
    assert _call(host, "Sleep", 0) == "slept"  # a fresh worker serves the next call


def test_closing_a_context_that_waits_for_a_host_call(host) -> None:
    """A rebuild (or shutdown) does not wait for a host call in progress: the V8 thread blocked in it
    is released at once (the call, which never finished, is retried in the new context)."""
    jw = _js_workflow(host)
    old = jw.ctx
    Thing.sleeping.clear()
    Thing.wake.clear()
    outcome: list[Any] = []
    caller = threading.Thread(target=lambda: outcome.append(_try(lambda: _call(host, "SleepLong", 60))))
    caller.start()
    try:
        assert Thing.sleeping.wait(30)
        jw.rebuild(old, "test: closing while a host call waits")
        assert old.closed and not Thing.wake.is_set()  # closed while the host call still sleeps
    finally:
        Thing.wake.set()
        caller.join(30)
    assert outcome == ["slept"]
    assert jw.ctx is not old and _call(host, "Plain") == "plain"


def _try(fn: Any) -> Any:
    try:
        return fn()
    except BaseException as e:  # noqa: BLE001 - the test looks at it
        return e


def test_reentrant_call_fails_clearly(host) -> None:
    got = _call(host, "Reenter")
    assert "ReentrantCall" in got or "Reentrant" in got, got
    assert _call(host, "Plain") == "plain"


def test_reentrant_call_is_served_by_another_isolate(tmp_path: Path) -> None:
    with _host_runtime(tmp_path, 2) as rt:
        assert _call(rt, "Reenter") == "plain"


def _released_soon(rt: Runtime, bridge: Any) -> None:
    """The registry's callbacks run as a task after the GC; the ids ride along with the next host call."""
    deadline = time.monotonic() + 60
    while len(bridge.owned) >= 100 and time.monotonic() < deadline:
        _call(rt, "Members")
        time.sleep(0.05)
    assert len(bridge.owned) < 100, len(bridge.owned)


def test_handles_are_released_after_gc(host) -> None:
    before = len(objects.HANDLES)
    assert _call(host, "Garbage", 3000) == 3000
    jw = _js_workflow(host)
    bridge = jw.ctx.objects[1]
    assert len(bridge.owned) >= 3000
    jw.ctx.collect_garbage(force=True)  # FinalizationRegistry runs after V8's full GC
    _released_soon(host, bridge)
    assert len(objects.HANDLES) < before + 100


def test_many_handles_make_the_context_collect(host) -> None:
    """Past PRESSURE_HANDLES live handles, the context asks V8 for a full GC after the call: the
    proxies the call dropped are released without anyone calling collect_garbage."""
    from coflows.engines.js.objects import PRESSURE_HANDLES

    bridge = _js_workflow(host).ctx.objects[1]
    assert _call(host, "Garbage", PRESSURE_HANDLES) == PRESSURE_HANDLES  # two handles each: class, instance
    _released_soon(host, bridge)


def test_host_objects_held_at_top_level_are_not_functions(host) -> None:
    fns = host.registry.default_workflow().queries["Host.js"].functions
    assert "t" not in fns and "rt" not in fns  # var t = importNamespace(...)
    assert {"Plain", "Members", "Doc"} <= set(fns)
    assert _call(host, "Doc") == {"getName": "doc", "getAge": 20.0, "getInterests": ["a", "b", "c"],
                                  "table": {"k": "v"}, "level": 2}


def test_m_through_quantapp_kernel_synchronously(host) -> None:
    assert _call(host, "MPut", "pen") == ["string", 1, "pen"]


def test_system_environment_newline(host) -> None:
    import os

    assert _call(host, "System_") == os.linesep


def test_closing_the_context_releases_its_handles(host) -> None:
    _call(host, "Members")
    jw = _js_workflow(host)
    bridge = jw.ctx.objects[1]
    assert bridge.owned
    held = set(bridge.owned)
    jw.rebuild(jw.ctx, "test")
    assert not bridge.owned
    for h in held:
        with pytest.raises(objects.StaleHandle):
            objects.HANDLES.get(h)
    assert _call(host, "Members")[0] == "ann"  # the new context works


def test_cost_of_a_synchronous_property_get(host, capsys) -> None:
    _call(host, "Many", 100)
    n = 5000
    t = time.perf_counter()
    assert _call(host, "Many", n) == 20.0 * n
    per = (time.perf_counter() - t) / n * 1e6
    with capsys.disabled():
        print(f"\n[js sync] {per:.1f} us per host property get")
