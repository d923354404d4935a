"""Java agents (`coflows.FPKG` from a `pkg()` factory) and the Java M binding (`coflows.M.Base`).

The in-process scenario runs in a child process (this file as a script): a process has one JVM
for life, and the pytest process must not start one (engine start order). The example agent is
tested over HTTP with a real server.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from test_m_harness import ORDERS_PY, check_example_agent_over_http, m_server  # noqa: F401 - fixture

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WID = "11111111-2222-3333-4444-555555555555"

pytestmark = pytest.mark.skipif(shutil.which("javac") is None, reason="needs a JDK")

AGENT = '''
import coflows.*;
import java.time.ZonedDateTime;
import java.util.*;

public class Watcher {
    static int jobs;

    public static void Load(Object[] values) {
        M.Base("loaded").add(Map.of("n", values.length));
        System.out.println("loaded " + values.length);
    }

    public static void Add(String id, Object data) {
        Map<?, ?> d = (Map<?, ?>) data;
        Map<String, Object> seen = new LinkedHashMap<>();
        seen.put("id", id);
        seen.put("item", d.get("item"));
        seen.put("qty", ((Long) d.get("qty")) * 10);
        seen.put("wf", Host.workflowId());
        M.Base("seen").add(seen);
    }

    public static void Exchange(String id, Object data) {
        throw new IllegalStateException("cannot exchange " + id);
    }

    public static Object Body(Object data) {
        Object msg = Agent.parse(data);
        if (msg instanceof Map && ((Map<?, ?>) msg).containsKey("Function")) return "started";
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("seen", M.Base("seen").count());
        out.put("got", msg);
        out.put("text", data instanceof String);
        return out;
    }

    public static void Job(ZonedDateTime timestamp, String executionType) {
        jobs++;
        M.Base("jobs").add(Map.of("kind", executionType, "zone", timestamp.getZone().getId(),
                                  "year", timestamp.getYear() > 2000));
    }

    public static FPKG pkg() {
        return new FPKG("$WID$-Watcher", "$WID$", "Watcher", "test agent", "orders",
            Watcher::Load, Watcher::Add, Watcher::Exchange, null, Watcher::Body, "* * * ? * *", Watcher::Job);
    }
}
'''

BUILT = '''
import coflows.*;

public class Built {
    public static FPKG Make() {
        return FPKG.builder().id("built-agent").name("Built").body(d -> "reply:" + d).build();
    }
}
'''

ORDERS_JAVA = '''
import coflows.*;
import java.util.*;

public class OrdersJava {
    public static class Point {
        public String name;
        public double x;
        public List<Integer> tags;
    }

    public static String Place(String item, int qty) {
        return M.Base("orders").Add(Map.of("item", item, "qty", qty));
    }

    public static Map<String, Object> RoundTrip() {
        M set = M.Base("java-points");
        Point p = new Point();
        p.name = "a"; p.x = 1.5; p.tags = List.of(1, 2);
        String a = set.add(p);
        String b = set.add(Arrays.asList(1L, "two", true, null));
        String c = set.add("plain text");
        Map<?, ?> got = (Map<?, ?>) set.get(a);
        Point bound = set.get(a, Point.class);
        Map<?, ?> exchanged = set.exchange(c, "new text");
        boolean removed = set.remove(b);
        Map<?, ?> found = set.find("new text");
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("got", got);
        out.put("bound", bound.name + ":" + bound.x + ":" + bound.tags);
        out.put("exchanged", exchanged.get("id").equals(c));
        out.put("removed", removed);
        out.put("count", set.count());
        out.put("values", set.Values());
        out.put("found", found.get("id").equals(c));
        out.put("missing", set.get("no-such-id"));
        out.put("tagType", ((List<?>) got.get("tags")).get(0).getClass().getSimpleName());
        return out;
    }

    public static String Bad() {
        try { M.Base("java-points").exchange("no-such-id", 1); return "no error"; }
        catch (CoflowsException e) { return e.getLanguage() + ":" + e.getType(); }
    }
}
'''

ERRORS = {
    "NoPkg.java": "public class NoPkg { public static int F() { return 1; } }",
    "Throws.java": "public class Throws { public static coflows.FPKG pkg() {"
                   " throw new IllegalArgumentException(\"bad agent\"); } }",
    "Wrong.java": "public class Wrong { public static Object pkg() { return 42; } }",
    "BadSchedule.java": "import coflows.*; public class BadSchedule { public static FPKG pkg() {"
                        " return FPKG.builder().id(\"bs\").schedule(\"61 * * ? * *\").job((t, e) -> {}).build(); } }",
}


def run_scenario(name: str, tmp_path: Path, timeout: float = 120) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, name, str(tmp_path)], cwd=HERE, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "PYTHONPATH": str(HERE)})
    assert proc.returncode == 0, f"scenario {name} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------ scenario (child)

def scenario_hooks(tmp: Path) -> dict[str, Any]:
    from coflows.agents.component import manager_of
    from coflows.m import m

    from conftest import new_workspace
    from test_m_harness import in_process_runtime, wait_for

    ws = new_workspace(tmp / "ws")
    ws.add_agent("Watcher.java", AGENT)
    ws.add_agent("Built.java", BUILT, exe="Make")
    for name, text in ERRORS.items():
        ws.add_agent(name, text)
    ws.add_query("Orders.py", ORDERS_PY)
    ws.add_query("OrdersJava.java", ORDERS_JAVA)
    rt = in_process_runtime(ws)
    out: dict[str, Any] = {}
    try:
        mgr = manager_of(rt)
        agent = f"{WID}-Watcher"
        runner = mgr.get(agent)
        out["state"], out["error"] = runner.state, runner.error
        out["status"] = {k: runner.status()[k] for k in ("Language", "MID", "Schedule", "Hooks", "File")}
        out["loaded"] = wait_for(lambda: m("loaded").list())
        py_id = rt.registry.call("Orders.py/PlaceOrder", "tea", 2)
        java_id = rt.registry.call("OrdersJava.java/Place", "cake", 3)
        out["ids"] = [py_id, java_id]
        out["seen"] = wait_for(lambda: (lambda v: v if len(v) == 2 else None)(m("seen").list()))
        out["body"] = mgr.body(agent, {"a": [1, 2]}).result(10)
        out["main"] = [r.status for r in mgr.runs(agent, 200) if r.hook == "Body" and r.detail == "Main"]
        out["load_output"] = [r.output for r in mgr.runs(agent, 200) if r.hook == "Load"]
        out["jobs"] = wait_for(lambda: m("jobs").list(), timeout=5)
        m("orders").exchange(py_id, {"item": "chai", "qty": 1})
        failed = wait_for(lambda: [r for r in mgr.runs(agent, 200) if r.hook == "Exchange" and r.status == "error"])
        out["exchange_error"] = failed[0].error
        out["state_after"] = runner.state
        built = mgr.get("built-agent")
        out["built"] = [built.state, built.definition.name, mgr.body("built-agent", "x").result(10)]
        out["errors"] = {r.definition.source: [r.state, r.error] for r in mgr.runners.values()
                         if r.definition.source.split("/")[-1] in ERRORS}
        out["roundtrip"] = rt.registry.call("OrdersJava.java/RoundTrip")
        out["python_view"] = m("java-points").list()
        out["bad"] = rt.registry.call("OrdersJava.java/Bad")
    finally:
        rt.close()
    return out


@pytest.fixture(scope="module")
def hooks(tmp_path_factory) -> dict[str, Any]:
    return run_scenario("hooks", tmp_path_factory.mktemp("jvm-agents"))


def test_java_agent_hooks_in_process(hooks):
    r = hooks
    assert r["state"] == "running", r["error"]
    assert r["status"] == {"Language": "java", "MID": "orders", "Schedule": "* * * ? * *",
                           "Hooks": ["Load", "Add", "Exchange", "Body", "Job"], "File": "Agents/Watcher.java"}
    assert r["loaded"] == [{"n": 0}]
    # Add fires for a Python query's write and for Java code's write (coflows.M from a Java query)
    py_id, java_id = r["ids"]
    assert r["seen"] == [{"id": py_id, "item": "tea", "qty": 20, "wf": WID},
                         {"id": java_id, "item": "cake", "qty": 30, "wf": WID}]
    # Body: JSON text in, a converted value out; the startup message ran too
    assert r["body"] == {"seen": 2, "got": {"a": [1, 2]}, "text": True}
    assert r["main"] == ["ok"]
    assert r["load_output"] == ["loaded 0\n"]  # System.out is captured
    # Job on "* * * ? * *": at least once within a few seconds, with a UTC ZonedDateTime
    assert r["jobs"][0] == {"kind": "All", "zone": "UTC", "year": True}
    # a hook that throws is recorded as an error with the Java type, message and stack
    assert "java.lang.IllegalStateException: cannot exchange " + py_id in r["exchange_error"]
    assert "Watcher.java" in r["exchange_error"]
    assert r["state_after"] == "running"
    # a factory named by Exe, the builder, a lambda Body
    assert r["built"] == ["running", "Built", 'reply:"x"']
    errors = r["errors"]
    assert errors["Agents/NoPkg.java"][0] == "error" and "'pkg()'" in errors["Agents/NoPkg.java"][1]
    assert "java.lang.IllegalArgumentException: bad agent" in errors["Agents/Throws.java"][1]
    assert "expected a coflows.FPKG" in errors["Agents/Wrong.java"][1]
    assert errors["Agents/BadSchedule.java"][0] == "error"


def test_java_m_binding_round_trips_values(hooks):
    r = hooks
    rt = r["roundtrip"]
    assert rt["got"] == {"name": "a", "x": 1.5, "tags": [1, 2]}
    assert rt["bound"] == "a:1.5:[1, 2]" and rt["tagType"] == "Long"
    assert rt["exchanged"] is True and rt["removed"] is True and rt["found"] is True
    assert rt["count"] == 2 and rt["missing"] is None
    assert rt["values"] == [{"name": "a", "x": 1.5, "tags": [1, 2]}, "new text"]
    assert r["python_view"] == rt["values"]  # Python sees what Java wrote
    assert r["bad"].startswith("coflows:")  # a CoflowsException in Java


def test_example_java_agent_over_http(tmp_path, m_server):  # noqa: F811
    check_example_agent_over_http(tmp_path / "ws", m_server, "JavaAgent.java", "java", "Java", "order-status-java")


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    result = {"hooks": scenario_hooks}[sys.argv[1]](Path(sys.argv[2]))
    print(json.dumps(result, default=str))
