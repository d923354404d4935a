"""CoFlows-style Java: the "jvm" resolver, `app.quant.clr` (CLRRuntime, CLRObject) and Java agents.

In-process scenarios run in a child process (a process has one JVM for life: this file, run as
a script) and print their findings as JSON; the CoFlows-shaped queries and agents run over HTTP.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import ADMIN_KEY, run_script_scenario

HERE = Path(__file__).resolve().parent

pytestmark = pytest.mark.skipif(shutil.which("javac") is None, reason="needs a JDK")


def run_scenario(name: str, tmp_path: Path, timeout: float = 150) -> dict[str, Any]:
    return run_script_scenario(__file__, name, tmp_path, timeout)


def _runtime(config_path: Path) -> tuple[Any, Any]:
    from coflows.config import load_config
    from coflows.runtime import Runtime

    rt = Runtime(load_config(str(config_path)), with_database=False)
    return rt, rt.load()  # diagnostics by workflow


# ------------------------------------------------------------------------------ the "jvm" resolver

JAVA_BASE = '''package javabase;

import app.quant.clr.*;
import java.util.*;

public class javaBase {
    public javaBase() {}
    public String getName = "%s";
    public double getAge = 20.5;
    public List<String> getInterests() { return Arrays.asList("F#", "C#", "Java"); }
    public int Add(int x, int y) { return x + y; }
    public String viaPython() { return (String)CLRRuntime.CreateInstance("Base.pyBase.pybase.pybase").GetProperty("getName"); }
}
'''

PLAIN_QUERY = '''public class Plain {
    public static int One() { return 1; }
}
'''


def scenario_resolver(tmp: Path) -> dict[str, Any]:
    from conftest import new_workspace

    from coflows import objects

    wids = {"A": "aaaaaaaa-0000-0000-0000-000000000001", "B": "bbbbbbbb-0000-0000-0000-000000000001"}
    a = new_workspace(tmp / "a", name="A", wid=wids["A"])
    b = new_workspace(tmp / "b", name="B", wid=wids["B"])
    for ws, tag in ((a, "from A"), (b, "from B")):
        ws.add_base("javabase/javaBase.java", JAVA_BASE % tag)
        ws.add_query("Plain.java", PLAIN_QUERY)
    a.config["Workflow"] = ["mnt/package.json", str(b.mnt / "package.json")]
    a.save()
    rt, problems = _runtime(a.config_path)
    out: dict[str, Any] = {"problems": [p for ps in problems.values() for p in ps]}
    for tag, wid in wids.items():
        cls = objects.resolve("javabase.javaBase", wid)
        inst = objects.call_object(cls, [])
        out[tag] = {
            "name": str(objects.get_member(inst, "getName")),
            "add": int(objects.call_member(inst, "Add", [2, 3])),
            "query_class": str(objects.resolve("Plain", wid).One()),
            "gson_missing": isinstance(objects.resolve("com.google.gson.Gson", wid), objects.Namespace),
            "package": objects.resolve("javabase", wid) == objects.Namespace("javabase"),
            "jdk": str(objects.resolve("java.util.ArrayList", wid).class_.getName()),
        }
    with objects.loading(wids["B"]):
        out["loading"] = str(objects.get_member(objects.call_object(objects.resolve("javabase.javaBase"), []),
                                                "getName"))
    from coflows.engines.jvm import engine

    engine().unload_workflow(engine()._workflows[wids["A"]])  # what the runtime calls when a workflow goes
    out["after_unload"] = isinstance(objects.resolve("javabase.javaBase", wids["A"]), objects.Namespace)
    rt.close()
    return out


def test_resolver_gives_each_workflow_its_own_classes(tmp_path: Path) -> None:
    out = run_scenario("resolver", tmp_path)
    assert out["problems"] == []
    assert out["A"] == {"name": "from A", "add": 5, "query_class": "1", "gson_missing": True, "package": True,
                        "jdk": "java.util.ArrayList"}
    assert out["B"]["name"] == "from B"
    assert out["loading"] == "from B"
    assert out["after_unload"] is True


# ------------------------------------------------------------------------------ over HTTP

WID = "6a1f0c3e-7b2d-4e59-8c10-3d4e5f607182"
ALICE, BOB = "alice@example.com", "bob@example.com"  # Write and Read on the workflow
TOPIC = "java-compat-orders"

PY_BASE = """
class pybase:
    getName = "something"

    def _getAge(self):
        return 20.5

    getAge = property(fget=_getAge)

    def Add(self, x, y):
        return x + y

    def getInterests(self):
        return ["F#", "C#", "Java", "Python"]

    def Twice(self, f, x):
        return f(x) * 2

    def Same(self, other):
        return other is self

    def Big(self):
        return 2 ** 40

    def Nothing(self):
        return None

    def Flag(self):
        return True

    def Fails(self):
        raise KeyError("no such thing")

    stopped = False

    def Spin(self):
        try:
            while True:
                pass
        finally:
            pybase.stopped = True
"""

CS_BASE = """
namespace Cs.Base
{
    using System.Collections.Generic;

    public class csBase
    {
        public string getName = "something";
        private double _age = 20.0;
        public double getAge { get { return _age; } set { _age = value; } }
        public List<string> getInterests = new List<string>{ "F#", "C#", "Java" };
        public List<double> getScores = new List<double>{ 1.5, 2.5 };
        public int Add(int x, int y) => x + y;
    }
}
"""

# What /tmp/cfw/Queries/JavaQuery.java does, plus conversions and lifetimes.
JAVA_QUERY = r"""
import app.quant.clr.*;
import java.util.*;
import java.util.function.Function;

class JavaQuery
{
    public JavaQuery(){}

    /// <api name="getName">
    ///     <permissions><group id="$WID$" permission="write"/></permissions>
    /// </api>
    public static String getName() { return "something"; }

    /// <api name="Add">
    ///     <permissions><group id="$WID$" permission="read"/></permissions>
    /// </api>
    public static int Add(int x, int y) { return x + y; }

    /// <api name="Permission">
    ///     <permissions><group id="$WID$" permission="view"/></permissions>
    /// </api>
    public static String Permission()
    {
        CLRObject userClass = CLRRuntime.GetClass("QuantApp.Kernel.User");
        CLRObject user = (CLRObject)userClass.Invoke("GetContextUser");
        int permission = (int)userClass.Invoke("PermissionContext", "$WID$");
        switch(permission)
        {
            case 2: return user.GetProperty("FirstName") + " WRITE";
            case 1: return user.GetProperty("FirstName") + " READ";
            case 0: return user.GetProperty("FirstName") + " VIEW";
            default: return user.GetProperty("FirstName") + " DENIED";
        }
    }

    /// <api name="Cs">
    ///     <permissions><group id="$WID$" permission="view"/></permissions>
    /// </api>
    public static String Cs()
    {
        CLRObject csbase = CLRRuntime.CreateInstance("Cs.Base.csBase");
        Double age = (Double)csbase.GetProperty("getAge");
        String name = (String)csbase.GetProperty("getName");
        Integer age_in_5_years = (Integer)csbase.Invoke("Add", age.intValue(), 5);
        Iterable<Object> interests = (Iterable<Object>)csbase.GetProperty("getInterests");
        String result = "Cs " + name + " will be " + age_in_5_years + " in 5 years and is interested in: \n";
        for (Object interest : interests)
            result += interest + "\n";
        for (Object score : (Iterable<Object>)csbase.GetProperty("getScores"))
            age += (Double)score;  // .NET doubles in a list are Doubles too
        return age == 24.0 ? result : "wrong scores: " + age;
    }

    /// <api name="Python">
    ///     <permissions><group id="$WID$" permission="view"/></permissions>
    /// </api>
    public static Object Python()
    {
        return CLRRuntime.Python((x) -> {
            CLRObject pymod = CLRRuntime.PyImport("Base.pyBase.pybase");
            CLRObject pybase = (CLRObject)pymod.Invoke("pybase");
            Float age = (Float)pybase.GetProperty("getAge");
            String name = (String)pybase.GetProperty("getName");
            Iterable<Object> interests = (Iterable<Object>)pybase.Invoke("getInterests");
            Integer age_in_5_years = (Integer)pybase.Invoke("Add", age.intValue(), 5);
            String result = "Python " + name + " will be " + age_in_5_years + " in 5 years and is interested in: \n";
            for (Object interest : interests)
                result += interest + "\n";
            return result;
        });
    }

    public static Map<String, Object> Conversions()
    {
        CLRObject pybase = CLRRuntime.CreateInstance("Base.pyBase.pybase.pybase");
        Map<String, Object> m = new LinkedHashMap<>();
        Function<Object[], Object> plusOne = (a) -> (Integer)a[0] + 1;
        m.put("twice", (Integer)pybase.Invoke("Twice", plusOne, 20));
        m.put("same", (Boolean)pybase.Invoke("Same", pybase));
        m.put("big", (Long)pybase.Invoke("Big"));
        m.put("nothing", pybase.Invoke("Nothing") == null);
        m.put("flag", (Boolean)pybase.Invoke("Flag"));
        m.put("write", (Integer)CLRRuntime.GetClass("QuantApp.Kernel.AccessType").GetProperty("Write"));
        pybase.SetProperty("getName", "changed");
        m.put("set", (String)pybase.GetProperty("getName"));
        CLRObject list = (CLRObject)pybase.Invoke("getInterests");
        m.put("length", list.Length());
        m.put("item", (String)list.Item(1));
        m.put("toString", CLRRuntime.GetClass("QuantApp.Kernel.AccessType").GetProperty("Read").toString());
        try {
            pybase.Invoke("Fails");
            m.put("error", "none");
        } catch (CLRException e) {
            m.put("error", e.getMessage());
        }
        try {
            pybase.Invoke("Missing");
            m.put("missing", "none");
        } catch (CLRException e) {
            m.put("missing", e.getMessage());
        }
        try {
            Function<Object[], Object> throwing = (a) -> { throw new IllegalStateException("from the lambda"); };
            pybase.Invoke("Twice", throwing, 1);
            m.put("lambda", "none");
        } catch (IllegalStateException e) {
            m.put("lambda", e.getMessage());
        }
        try {
            CLRRuntime.GetClass("No.Such.Type");
            m.put("unknown", "none");
        } catch (CLRException e) {
            m.put("unknown", e.getMessage());
        }
        return m;
    }

    /// <api name="SpinInPython" timeout="1">
    /// </api>
    public static Object SpinInPython()
    {
        return CLRRuntime.CreateInstance("Base.pyBase.pybase.pybase").Invoke("Spin");
    }

    public static Object SpinStopped()
    {
        return CLRRuntime.GetClass("Base.pyBase.pybase.pybase").GetProperty("stopped");
    }

    /** Proxies as results: the JSON of the objects behind them. */
    public static Object[] Results()
    {
        CLRObject csbase = CLRRuntime.CreateInstance("Cs.Base.csBase");
        CLRObject pybase = CLRRuntime.CreateInstance("Base.pyBase.pybase.pybase");
        return new Object[] { csbase.GetProperty("getInterests"), pybase.Invoke("getInterests"), csbase };
    }

    /** CoFlows' M from Java: a Java map written, read back as a proxy of the stored value. */
    public static Object MRoundTrip()
    {
        CLRObject topic = (CLRObject)CLRRuntime.GetClass("QuantApp.Kernel.M").Invoke("Base", "java-compat-m");
        Map<String, Object> order = new HashMap<>();
        order.put("item", "tea");
        order.put("qty", 2);
        order.put("tags", Arrays.asList("hot", "green"));
        String id = (String)topic.Invoke("Add", order);
        CLRObject stored = (CLRObject)topic.Invoke("Get", id);
        return stored.Item("item") + " x" + stored.Item("qty") + " " + ((CLRObject)stored.Item("tags")).Item(1)
            + " (" + topic.Invoke("Count") + ")";
    }

    public static Object Uncaught()
    {
        return CLRRuntime.CreateInstance("Base.pyBase.pybase.pybase").Invoke("Missing");
    }

    /** From a thread the query starts: names still resolve in its workflow. */
    public static String FromThread() throws Exception
    {
        String[] out = new String[1];
        Thread t = new Thread(() -> {
            CLRObject csbase = CLRRuntime.CreateInstance("Cs.Base.csBase");
            CLRObject pymod = CLRRuntime.PyImport("Base.pyBase.pybase");
            out[0] = csbase.GetProperty("getName") + "/" + ((CLRObject)pymod.Invoke("pybase")).GetProperty("getName");
        });
        t.start();
        t.join();
        return out[0];
    }

    public static Map<String, Object> JavaBase()
    {
        CLRObject jb = CLRRuntime.CreateInstance("javabase.javaBase");
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("name", (String)jb.GetProperty("getName"));
        m.put("age", (Double)jb.GetProperty("getAge"));
        m.put("add", (Integer)jb.Invoke("Add", 2, 3));
        List<String> interests = new ArrayList<>();
        for (Object i : (Iterable<Object>)jb.Invoke("getInterests")) interests.add((String)i);
        m.put("interests", interests);
        m.put("viaPython", (String)jb.Invoke("viaPython"));  // Base uses app.quant.clr too
        return m;
    }

    static final List<CLRObject> KEPT = new ArrayList<>();

    /** Proxies made in a loop; `keep` of them stay referenced until Drop(), the rest are garbage at once. */
    public static int Churn(int n, int keep)
    {
        for (int i = 0; i < n; i++) {
            CLRObject user = CLRRuntime.GetClass("QuantApp.Kernel.User");
            CLRObject pybase = CLRRuntime.CreateInstance("Base.pyBase.pybase.pybase");
            for (Object x : (Iterable<Object>)pybase.Invoke("getInterests")) { }
            if (i < keep) { KEPT.add(user); KEPT.add(pybase); }
        }
        return n;
    }

    public static int Drop()
    {
        int n = KEPT.size();
        KEPT.clear();
        return n;
    }

    public static boolean Collect() throws InterruptedException
    {
        System.gc();
        Thread.sleep(50);  // the Cleaner's thread runs after the collection
        return true;
    }
}
"""

PY_QUERY = """
import gc

from coflows import objects


def Handles() -> int:
    gc.collect()
    return len(objects.HANDLES)


def Touch(item: str) -> str:
    import coflows

    topic = coflows.m("%s")
    entry = topic.add({"item": item, "status": "new"})
    topic.exchange_id(entry, {"item": item, "status": "changed"})
    return entry
""" % TOPIC

# What /tmp/cfw/Agents/JavaAgent.java does (with a topic, so that its M hooks fire).
JAVA_AGENT = """
import app.quant.clr.*;

import java.time.*;
import java.util.*;

import javabase.*;
import com.google.gson.Gson;

class JavaAgent
{
    public JavaAgent(){}

    private static String workspaceID = "$WID$";
    public static Object pkg()
    {
        CLRObject Utils = CLRRuntime.GetClass("QuantApp.Engine.Utils");
        CLRObject M = CLRRuntime.GetClass("QuantApp.Kernel.M");

        return CLRRuntime.CreateInstance("QuantApp.Engine.FPKG",
            workspaceID + "-JavaAgent",
            workspaceID,
            "Java Agent",
            "Java Agent Sample",
            "%s",
            Utils.Invoke("SetFunction", "Load", CLRRuntime.CreateDelegate("QuantApp.Engine.Load", (x) -> {
                System.out.println("Java Agent Load " + x.length);
                return 0;
            })),
            Utils.Invoke("SetFunction", "Add", CLRRuntime.CreateDelegate("QuantApp.Kernel.MCallback", (x) -> {
                return 0;
            })),
            Utils.Invoke("SetFunction", "Exchange", CLRRuntime.CreateDelegate("QuantApp.Kernel.MCallback", (x) -> {
                String id = (String)x[0];
                Object data = x[1];
                System.out.println("Java Agent Exchange " + id + " " + ((Map)data).get("status"));
                return 0;
            })),
            Utils.Invoke("SetFunction", "Remove", CLRRuntime.CreateDelegate("QuantApp.Kernel.MCallback", (x) -> {
                return 0;
            })),
            Utils.Invoke("SetFunction", "Body", CLRRuntime.CreateDelegate("QuantApp.Engine.Body", (x) -> {
                Object data = x[0];
                Map map = new Gson().fromJson(data.toString(), Map.class);
                if(map.containsKey("Data") && map.get("Data").equals("Initial Execution"))
                    System.out.println("     Java Initial Execute @ " + (new Date()));
                return data;
            })),
            "0 * * ? * *",
            Utils.Invoke("SetFunction", "Job", CLRRuntime.CreateDelegate("QuantApp.Engine.Job", (x) -> {
                Object date = x[0];
                String command = (String)x[1];
                System.out.println("Java Agent Job " + date.getClass().getSimpleName() + " " + command);
                return 0;
            }))
        );
    }
}
""" % TOPIC

# Today's form keeps working next to it.
FPKG_AGENT = """
import java.util.*;

public class PlainAgent {
    public static coflows.FPKG pkg() {
        return coflows.FPKG.builder().id("$WID$-PlainAgent").name("Plain")
            .body(data -> "plain:" + data).build();
    }
}
"""

# A factory that returns a proxy of something else: the agent is in error, saying what it got.
BAD_AGENT = """
import app.quant.clr.*;

class BadAgent {
    public static Object pkg() { return CLRRuntime.GetClass("QuantApp.Kernel.User"); }
}
"""

GSON = {"ID": "com.google.code.gson:gson", "Version": "2.10.1"}


def _make_users(ws: Any) -> dict[str, str]:
    from coflows.auth.store import UserStore
    from coflows.store import Database, database_url

    db = Database(database_url("sqlite", ws.config["Database"]["Connection"], ws.root))
    try:
        store = UserStore(db)
        store.add_user(ALICE, name="Alice Analyst")
        store.add_user(BOB, name="Bob Builder")
        store.grant(WID, ALICE, "write")
        store.grant(WID, BOB, "read")
        return {who: store.new_key(who, "test")[1] for who in (ALICE, BOB)}
    finally:
        db.dispose()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from conftest import Server, new_workspace

    ws = new_workspace(tmp_path_factory.mktemp("compatjava") / "ws", name="CompatJava", wid=WID, public=1,
                       Auth={"CacheSeconds": 0})
    ws.add_base("javabase/javaBase.java", JAVA_BASE % "something")
    ws.add_base("csBase/csBase.cs", CS_BASE)
    ws.write("Base/pyBase/pybase.py", PY_BASE)
    ws.manifest["Base"].append({"Name": "Base/pyBase/pybase.py", "Content": "Base/pyBase/pybase.py"})
    ws.add_query("JavaQuery.java", JAVA_QUERY)
    ws.add_query("PyQuery.py", PY_QUERY)
    ws.add_agent("JavaAgent.java", JAVA_AGENT)
    ws.add_agent("PlainAgent.java", FPKG_AGENT)
    ws.add_agent("BadAgent.java", BAD_AGENT)
    ws.manifest["Jars"] = [GSON]
    ws.save()
    try:
        from coflows.packages.maven import resolve_jars

        resolve_jars([GSON], ws.mnt)
    except Exception as e:  # noqa: BLE001 - no network: the agent cannot compile
        pytest.skip(f"cannot fetch Gson from Maven Central: {e}")
    keys = _make_users(ws)
    server = Server(ws).start(timeout=180)
    try:
        yield server, keys
    finally:
        server.close()


def _q(server: Any, fn: str, key: str | None = ADMIN_KEY, **params: Any) -> Any:
    headers = {"x-api-key": key} if key else {}
    r = server.get(f"/flow/query/{WID}/JavaQuery.java/{fn}", params=params, headers=headers)
    assert r.status_code == 200, (fn, r.status_code, r.text, server.output()[-3000:])
    return r.json()


def test_queries_like_coflows_example(env: Any) -> None:
    server, keys = env
    assert _q(server, "getName", keys[ALICE]) == "something"
    assert _q(server, "Add", keys[BOB], x=2, y=3) == 5
    assert _q(server, "Cs", None) == "Cs something will be 25 in 5 years and is interested in: \nF#\nC#\nJava\n"
    assert _q(server, "Python", None) == ("Python something will be 25 in 5 years and is interested in: \n"
                                   "F#\nC#\nJava\nPython\n")


@pytest.mark.parametrize("who, expected", [(None, "Anonymous READ"), (BOB, "Bob READ"), (ALICE, "Alice WRITE")])
def test_permission_per_caller(env: Any, who: str | None, expected: str) -> None:
    server, keys = env
    assert _q(server, "Permission", keys[who] if who else None) == expected


def test_function_permissions_still_apply(env: Any) -> None:
    server, keys = env
    r = server.get(f"/flow/query/{WID}/JavaQuery.java/getName", headers={"x-api-key": keys[BOB]})
    assert r.status_code in (401, 403), r.text  # getName wants write; Bob reads


def test_concurrent_calls(env: Any) -> None:
    """Java → C# and Java → Python from several threads at once (each call its own proxies)."""
    from concurrent.futures import ThreadPoolExecutor

    server, _ = env
    expected = {"Cs": _q(server, "Cs"), "Python": _q(server, "Python")}
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda fn: (fn, _q(server, fn)), ["Cs", "Python"] * 16))
    assert all(result == expected[fn] for fn, result in got)


def test_conversions_both_ways(env: Any) -> None:
    server, _ = env
    got = _q(server, "Conversions")
    assert got["twice"] == 42  # a Java lambda called from Python: (20 + 1) * 2
    assert got["same"] is True  # a CLRObject argument is the object behind it
    assert got["big"] == 2 ** 40 and got["nothing"] is True and got["flag"] is True
    assert got["write"] == 2  # an IntEnum is an Integer
    assert got["set"] == "changed"
    assert got["length"] == 4 and got["item"] == "C#"
    assert got["toString"] == "AccessType.Read" or got["toString"] == "1", got["toString"]
    assert "KeyError" in got["error"] and "no such thing" in got["error"]
    assert "Missing" in got["missing"] and "pybase" in got["missing"]
    assert "No.Such.Type" in got["unknown"]
    assert got["lambda"] == "from the lambda"  # a Java exception crosses Python and comes back as itself


def test_uncaught_failure_names_the_member(env: Any) -> None:
    server, _ = env
    r = server.get(f"/flow/query/{WID}/JavaQuery.java/Uncaught", headers={"x-api-key": ADMIN_KEY})
    assert r.status_code == 500, r.text
    err = r.json()["error"]
    assert err["type"] == "app.quant.clr.CLRException", err
    assert "pybase has no member 'Missing'" in err["message"], err


def test_names_resolve_from_threads_java_code_starts(env: Any) -> None:
    server, _ = env
    assert _q(server, "FromThread") == "something/something"


def test_time_limit_stops_python_called_from_java(env: Any) -> None:
    """The call's limit stops Python code that Java called (CallStopped in it, then Java's interrupt)."""
    server, _ = env
    r = server.get(f"/flow/query/{WID}/JavaQuery.java/SpinInPython", headers={"x-api-key": ADMIN_KEY})
    assert r.status_code == 504 and r.json()["error"]["type"] == "CallTimeout", r.text
    assert _wait(lambda: _q(server, "SpinStopped"), 10) is True  # the Python loop ended: CallStopped reached it
    assert "written off" not in server.output()  # so its thread went back to the pool
    assert _q(server, "Python", None).startswith("Python something")


def test_proxies_as_results(env: Any) -> None:
    server, _ = env
    cs_list, py_list, cs_object = _q(server, "Results")
    assert cs_list == ["F#", "C#", "Java"] and py_list == ["F#", "C#", "Java", "Python"]
    assert cs_object["getName"] == "something" and cs_object["getAge"] == 20.0, cs_object


def test_m_from_java_through_clr_runtime(env: Any) -> None:
    server, _ = env
    assert _q(server, "MRoundTrip") == "tea x2 green (1)"
    assert server.get("/m/data?type=java-compat-m", headers={"x-api-key": ADMIN_KEY}).json() == [
        {"item": "tea", "qty": 2, "tags": ["hot", "green"]}]


def test_java_base_through_clr_runtime(env: Any) -> None:
    server, _ = env
    assert _q(server, "JavaBase") == {"name": "something", "age": 20.5, "add": 5,
                                      "interests": ["F#", "C#", "Java"], "viaPython": "something"}


def test_proxies_release_their_handles(env: Any) -> None:
    import time

    server, _ = env

    def handles() -> int:
        r = server.get(f"/flow/query/{WID}/PyQuery.py/Handles")
        assert r.status_code == 200, r.text
        return r.json()

    _q(server, "Churn", n=10, keep=0)  # warm: classes loaded, caches filled
    _q(server, "Collect")
    before = handles()
    assert _q(server, "Churn", n=3000, keep=500) == 3000
    during = handles()
    assert during >= before + 1000  # the 1000 kept proxies hold their objects
    assert _q(server, "Drop") == 1000
    deadline = time.monotonic() + 60  # a bound for the loop, not a timing assertion
    after = during
    while time.monotonic() < deadline:
        _q(server, "Collect")
        after = handles()
        if after <= before + 10:
            break
    assert after <= before + 10, (before, during, after)


def _runs(server: Any, agent: str) -> list[dict[str, Any]]:
    from conftest import ADMIN_KEY

    r = server.get(f"/flow/agent/{agent}/runs?limit=100", headers={"x-api-key": ADMIN_KEY})
    assert r.status_code == 200, r.text
    return r.json()


def _wait(fn: Any, timeout: float = 30) -> Any:
    import time

    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def test_coflows_java_agent(env: Any) -> None:
    from conftest import ADMIN_KEY

    server, _ = env
    agent = f"{WID}-JavaAgent"
    listed = [a for a in server.get("/flow/agents", headers={"x-api-key": ADMIN_KEY}).json() if a["ID"] == agent]
    assert listed and listed[0]["State"] == "running", listed
    assert listed[0]["Name"] == "Java Agent" and listed[0]["Language"] == "java"
    loaded = _wait(lambda: [r for r in _runs(server, agent) if r["Hook"] == "Load"])
    assert loaded and loaded[0]["Status"] == "ok" and loaded[0]["Output"].startswith("Java Agent Load"), loaded
    main = _wait(lambda: [r for r in _runs(server, agent) if r["Hook"] == "Body" and r["Detail"] == "Main"])
    assert main and main[0]["Status"] == "ok" and "Java Initial Execute" in main[0]["Output"], main
    r = server.post(f"/flow/agent/{agent}", json={"Data": "hello", "n": 1}, headers={"x-api-key": ADMIN_KEY})
    assert r.status_code == 200, r.text
    assert json.loads(r.json()) == {"Data": "hello", "n": 1}  # Body got the JSON text and gave it back
    entry = server.get(f"/flow/query/{WID}/PyQuery.py/Touch", params={"item": "tea"}).json()
    exchanged = _wait(lambda: [r for r in _runs(server, agent) if r["Hook"] == "Exchange"])
    assert exchanged and exchanged[0]["Status"] == "ok", exchanged
    assert exchanged[0]["Output"].strip() == f"Java Agent Exchange {entry} changed"


def test_coflows_java_agent_job(env: Any) -> None:
    server, _ = env
    r = server.post(f"/flow/agent/{WID}-JavaAgent/run?wait=true", headers={"x-api-key": ADMIN_KEY})
    assert r.status_code == 200, r.text
    run = r.json()
    assert run["Hook"] == "Job" and run["Status"] == "ok", run
    assert run["Output"].startswith("Java Agent Job ZonedDateTime "), run  # then the execution type


def test_factory_returning_something_else(env: Any) -> None:
    server, _ = env
    agents = server.get("/flow/agents", headers={"x-api-key": ADMIN_KEY}).json()
    bad = [a for a in agents if a["ID"] == f"{WID}-BadAgent"]
    assert bad and bad[0]["State"] == "error", agents
    assert "Agents/BadAgent.java" in bad[0]["Error"] and "QuantApp.Engine.FPKG" in bad[0]["Error"], bad


def test_coflows_fpkg_agent_still_works(env: Any) -> None:
    from conftest import ADMIN_KEY

    server, _ = env
    r = server.post(f"/flow/agent/{WID}-PlainAgent", json={"a": 1}, headers={"x-api-key": ADMIN_KEY})
    assert r.status_code == 200, r.text
    assert r.json() == 'plain:{"a":1}'


if __name__ == "__main__":
    result = globals()[f"scenario_{sys.argv[1]}"](Path(sys.argv[2]))
    print(json.dumps(result))
