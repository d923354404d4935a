"""C# agents (`Coflows.FPKG` from a `pkg()` factory) and the C# M binding (`Coflows.M.Base`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from coflows.agents.component import manager_of
from coflows.errors import UserCodeError
from coflows.m import m

from conftest import new_workspace
from test_m_harness import (  # noqa: F401 - fixtures
    ORDERS_PY, check_example_agent_over_http, m_server, runtime_of, wait_for,
)

REPO = Path(__file__).resolve().parent.parent
WID = "11111111-2222-3333-4444-555555555555"

AGENT = '''
using System;
using System.Collections.Generic;
using Coflows;

public class Watcher
{
    static int jobs;

    public static void Load(object[] values)
    {
        M.Base("loaded").Add(new Dictionary<string, object> { { "n", values.Length } });
        Console.WriteLine("loaded " + values.Length);
    }

    public static void Add(string id, object data)
    {
        var d = (Dictionary<string, object>)data;
        M.Base("seen").Add(new Dictionary<string, object> {
            { "id", id }, { "item", d["item"] }, { "qty", (long)d["qty"] * 10 } });
    }

    public static void Exchange(string id, object data)
    {
        throw new InvalidOperationException("cannot exchange " + id);
    }

    public static object Body(object data)
    {
        var msg = Json.Parse((string)data) as Dictionary<string, object>;
        if (msg != null && msg.ContainsKey("Function"))
            return "started";
        return new Dictionary<string, object> { { "seen", M.Base("seen").Count() }, { "got", msg }, { "jobs", jobs } };
    }

    public static void Job(DateTime timestamp, string executionType)
    {
        jobs++;
        M.Base("jobs").Add(new Dictionary<string, object> { { "kind", executionType },
                                                            { "utc", timestamp.Kind == DateTimeKind.Utc } });
    }

    public static FPKG pkg()
    {
        return new FPKG("$WID$-Watcher", "$WID$", "Watcher", "test agent", "orders",
            Utils.SetFunction("Load", new Load(Load)), Utils.SetFunction("Add", new MCallback(Add)),
            new MCallback(Exchange), null, new Body(Body), "* * * ? * *", new Job(Job));
    }
}
'''

INITIALIZER = '''
using Coflows;

public class Other
{
    public static object Reply(object data) { return "reply:" + data; }

    public static FPKG Make()
    {
        return new FPKG { ID = "init-agent", Name = "Initializer", Body = Reply };
    }
}
'''

ORDERS_CS = '''
using System;
using System.Collections.Generic;
using Coflows;

public class Point
{
    public string Name { get; set; }
    public double X { get; set; }
    public int[] Tags { get; set; }
}

public class OrdersCs
{
    public static string Place(string item, int qty)
    {
        return M.Base("orders").Add(new Dictionary<string, object> { { "item", item }, { "qty", qty } });
    }

    public static object RoundTrip()
    {
        var set = M.Base("cs-points");
        string a = set.Add(new Point { Name = "a", X = 1.5, Tags = new[] { 1, 2 } });
        string b = set.Add(new List<object> { 1, "two", true, null });
        string c = set.Add("plain text");
        var got = (Dictionary<string, object>)set.Get(a);
        var exchanged = set.Exchange(c, "new text");
        bool removed = set.Remove(b);
        var found = set.Find("new text");
        return new Dictionary<string, object> {
            { "got", got }, { "name", set.Get<string>(c) }, { "count", set.Count() },
            { "values", set.Values() }, { "exchanged", exchanged["id"].Equals(c) }, { "removed", removed },
            { "found", found["id"] }, { "c", c }, { "missing", set.Get("no-such-id") },
            { "tagsType", ((List<object>)got["Tags"])[0].GetType().Name } };
    }

    public static string Bad() { return M.Base("").Add(1); }

    public static string Missing()
    {
        try { M.Base("cs-points").ExchangeID("no-such-id", 1); return "no error"; }
        catch (CallException e) { return e.Language + ":" + e.ErrorType; }
    }
}
'''



def test_csharp_agent_hooks_in_process(tmp_path, runtime_of):
    ws = new_workspace(tmp_path / "ws")
    ws.add_agent("Watcher.cs", AGENT)
    ws.add_agent("Init.cs", INITIALIZER, exe="Make")
    ws.add_query("Orders.py", ORDERS_PY)
    ws.add_query("OrdersCs.cs", ORDERS_CS)
    rt = runtime_of(ws)
    mgr = manager_of(rt)
    agent = f"{WID}-Watcher"
    runner = mgr.get(agent)
    assert runner.state == "running", runner.error
    st = runner.status()
    assert st["Language"] == "csharp" and st["MID"] == "orders" and st["Schedule"] == "* * * ? * *"
    assert st["Hooks"] == ["Load", "Add", "Exchange", "Body", "Job"] and st["File"] == "Agents/Watcher.cs"
    wait_for(lambda: m("loaded").list() == [{"n": 0}])

    # Add fires for a Python query's write and for C# code's write (Coflows.M from a C# query)
    py_id = rt.registry.call("Orders.py/PlaceOrder", "tea", 2)
    cs_id = rt.registry.call("OrdersCs.cs/Place", "cake", 3)
    seen = wait_for(lambda: (lambda v: v if len(v) == 2 else None)(m("seen").list()))
    assert seen == [{"id": py_id, "item": "tea", "qty": 20}, {"id": cs_id, "item": "cake", "qty": 30}]

    # Body: JSON text in, a converted value out; the startup message ran too
    assert mgr.body(agent, {"a": [1, 2]}).result(10)["got"] == {"a": [1, 2]}
    runs = mgr.runs(agent, 200)
    assert any(r.hook == "Body" and r.detail == "Main" and r.status == "ok" for r in runs)
    assert [r.output for r in runs if r.hook == "Load"] == ["loaded 0\n"]  # Console output is captured

    # Job on "* * * ? * *": at least once within a few seconds, with a UTC DateTime and "All"
    jobs = wait_for(lambda: m("jobs").list(), timeout=5)
    assert jobs[0] == {"kind": "All", "utc": True}

    # a hook that throws is recorded as an error with the C# type, message and file:line
    m("orders").exchange(py_id, {"item": "chai", "qty": 1})
    failed = wait_for(lambda: [r for r in mgr.runs(agent, 200) if r.hook == "Exchange" and r.status == "error"])
    assert "System.InvalidOperationException: cannot exchange " + py_id in failed[0].error
    assert "Agents/Watcher.cs" in failed[0].error
    assert runner.state == "running"

    # the object-initializer form, with a factory named by `Exe`
    init = mgr.get("init-agent")
    assert init.state == "running" and init.definition.name == "Initializer"
    assert mgr.body("init-agent", "x").result(10) == 'reply:"x"'


def test_csharp_m_binding_round_trips_values(tmp_path, runtime_of):
    ws = new_workspace(tmp_path / "ws")
    ws.add_query("OrdersCs.cs", ORDERS_CS)
    rt = runtime_of(ws)
    r = rt.registry.call("OrdersCs.cs/RoundTrip")
    assert r["got"] == {"Name": "a", "X": 1.5, "Tags": [1, 2]}
    assert r["tagsType"] == "Int64"
    assert r["name"] == "new text" and r["exchanged"] is True and r["removed"] is True
    assert r["count"] == 2 and r["found"] == r["c"] and r["missing"] is None
    assert r["values"] == [{"Name": "a", "X": 1.5, "Tags": [1, 2]}, "new text"]
    assert m("cs-points").list() == r["values"]  # Python sees what C# wrote
    with pytest.raises(UserCodeError) as e:
        rt.registry.call("OrdersCs.cs/Bad")
    assert e.value.type_name == "System.ArgumentException" and "topic" in e.value.message
    assert rt.registry.call("OrdersCs.cs/Missing").startswith("coflows:")  # a CallException in C#


def test_csharp_agent_factory_errors(tmp_path, runtime_of):
    ws = new_workspace(tmp_path / "ws")
    ws.add_agent("NoPkg.cs", "public class NoPkg { public static int F() { return 1; } }")
    ws.add_agent("Throws.cs", "public class Throws { public static Coflows.FPKG pkg() {"
                              " throw new System.ArgumentException(\"bad agent\"); } }")
    ws.add_agent("Wrong.cs", "public class Wrong { public static object pkg() { return 42; } }")
    ws.add_agent("BadSchedule.cs", "using Coflows; public class BadSchedule { public static FPKG pkg() {"
                                   " return new FPKG { ID = \"bs\", ScheduleCommand = \"61 * * ? * *\","
                                   " Job = (t, e) => {} }; } }")
    mgr = manager_of(runtime_of(ws))
    errors = {r.definition.source: (r.state, r.error) for r in mgr.runners.values()}
    assert errors["Agents/NoPkg.cs"][0] == "error" and "'pkg()'" in errors["Agents/NoPkg.cs"][1]
    assert "System.ArgumentException: bad agent" in errors["Agents/Throws.cs"][1]
    assert "expected a Coflows.FPKG" in errors["Agents/Wrong.cs"][1]
    assert errors["Agents/BadSchedule.cs"][0] == "error"


def test_example_csharp_agent_over_http(tmp_path, m_server):  # noqa: F811
    check_example_agent_over_http(tmp_path / "ws", m_server, "CSharpAgent.cs", "csharp", "C#", "order-status-cs")
