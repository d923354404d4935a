"""JavaScript agents (a `pkg()` factory in a `.js` agent file) and `M.Base(topic)` in JavaScript."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("py_mini_racer")

from coflows.agents.component import manager_of  # noqa: E402
from coflows.agents.definition import AgentDefinition  # noqa: E402
from coflows.m import m  # noqa: E402

from conftest import new_workspace  # noqa: E402
from test_m_harness import admin, m_server, wait_for, runtime_of  # noqa: E402,F401 - fixture

REPO = Path(__file__).resolve().parent.parent
WID = "11111111-2222-3333-4444-555555555555"

PLACE = '''
from coflows.m import M

def PlaceOrder(item: str, qty: int) -> str:
    return M.Base("orders").Add({"item": item, "qty": qty})
'''

# CoFlows style: hooks as functions, or as names of the file's functions; async hooks are awaited.
WATCHER = '''
let loaded = null
const jobs = []

function Load(values) { loaded = values }

async function Add(id, order) {
  console.log("got", id)
  await M.Base("acks").Add({order: id, item: order.item, status: "received"})
}

function Body(data) {
  if (data.Function === "Main") return "started"
  if (data.fail) throw new RangeError("bad message " + data.fail)
  return M.Base("acks").Count().then(n => ({acks: n, loaded, jobs: jobs.length, job: jobs[0], echo: data}))
}

function pkg() {
  return {
    ID: "$WID$-Watcher", WorkflowID: "$WID$", Name: "Watcher", Description: "acknowledges orders",
    MID: "orders",
    Load: Load,
    Add: "Add",
    Exchange: null,
    Remove: (id, value) => { throw new Error("cannot remove " + value.item) },
    Body,
    ScheduleCommand: "* * * ? * *",
    Job: (timestamp, type) => { jobs.push([timestamp instanceof Date, type]) },
  }
}
'''



def test_js_agent_hooks_in_process(tmp_path, runtime_of):
    ws = new_workspace(tmp_path / "ws")
    ws.add_query("Orders.py", PLACE)
    ws.add_agent("Watcher.js", WATCHER)
    rt = runtime_of(ws)
    manager = manager_of(rt)
    runner = manager.get(f"{WID}-Watcher")
    d = runner.definition
    assert isinstance(d, AgentDefinition) and runner.state == "running", runner.error
    assert (d.name, d.description, d.topic, d.schedule, d.language, d.source) == (
        "Watcher", "acknowledges orders", "orders", "* * * ? * *", "javascript", "Agents/Watcher.js")
    assert sorted(d.hooks) == ["Add", "Body", "Job", "Load", "Remove"]

    # Load runs first, with the topic's values (none yet)
    wait_for(lambda: manager.body(f"{WID}-Watcher", {}).result(10)["loaded"] is not None, interval=0.05)

    # a Python query adds to the topic: the JS Add hook writes to another topic
    order_id = rt.registry.call("Orders.py/PlaceOrder", "tea", 2)
    acks = m("acks")
    wait_for(lambda: acks.count() == 1)
    assert acks.list() == [{"order": order_id, "item": "tea", "status": "received"}]

    # Body answers (a Promise, awaited)
    result = manager.body(f"{WID}-Watcher", {"hello": 1}).result(10)
    assert result["acks"] == 1 and result["loaded"] == [] and result["echo"] == {"hello": 1}

    # Job on `* * * ? * *` runs within a few seconds, with a Date and the execution type
    r = wait_for(lambda: (x := manager.body(f"{WID}-Watcher", {}).result(10))["jobs"] >= 1 and x,
                 timeout=5, interval=0.2)
    assert r["job"] == [True, "All"]  # a Date and the default execution type

    # a hook that throws is a run with status error; the agent keeps running
    m("orders").remove(order_id)
    runs = wait_for(lambda: [r for r in manager.runs(f"{WID}-Watcher") if r.hook == "Remove"])
    assert runs[0].status == "error" and "Error: cannot remove tea" in runs[0].error
    with pytest.raises(Exception, match="bad message 7"):
        manager.body(f"{WID}-Watcher", {"fail": 7}).result(10)
    add = [r for r in manager.runs(f"{WID}-Watcher") if r.hook == "Add"]
    assert add and add[0].status == "ok" and add[0].output == f"got {order_id}\n"  # console.log → the run
    assert runner.state == "running"


def test_js_agent_factory_errors_and_declarative_form(tmp_path, runtime_of):
    ws = new_workspace(tmp_path / "ws")
    ws.add_agent("Broken.js", "function pkg() { throw new TypeError('no package today') }")
    ws.add_agent("NoFactory.js", "function Add(id, v) {}")
    ws.add_agent("BadHook.js", "function pkg() { return {ID: 'badhook', Add: 'Missing'} }")
    ws.add_agent("Unknown.js", "function pkg() { return {ID: 'unknown', Colour: 'red'} }")
    ws.add_agent("BadSchedule.js", "const pkg = () => ({ID: 'badsched', Job: () => 1, Schedule: '61 * * ? * *'})")
    # a custom factory name (package.json Exe), resolved asynchronously
    ws.add_agent("Custom.js", "async function make() { return {ID: 'custom', Body: d => d.x * 2} }", exe="make")
    # CoFlows' declarative form: AGENT and the file's hook functions
    ws.add_agent("Declared.js", "const AGENT = {ID: 'declared', Name: 'D'}\nfunction Body(d) { return 'hi ' + d.who }")
    rt = runtime_of(ws)
    manager = manager_of(rt)
    broken = manager.get(f"{WID}-Broken")
    assert broken.state == "error" and "pkg() failed: TypeError: no package today" in broken.error
    nofactory = manager.get(f"{WID}-NoFactory")
    assert nofactory.state == "error" and "neither a factory function pkg()" in nofactory.error
    badhook = manager.get(f"{WID}-BadHook")
    assert badhook.state == "error" and "'Missing' is not a function" in badhook.error
    assert manager.get("badsched").state == "error"
    unknown = manager.get(f"{WID}-Unknown")
    assert unknown.state == "error" and "unknown key 'Colour'" in unknown.error
    assert manager.body("custom", {"x": 21}).result(10) == 42
    assert manager.body("declared", {"who": "you"}).result(10) == "hi you"
    assert manager.get("declared").definition.name == "D"
    # a rebuilt context (after a limit, or a Base change) runs the factories again: hooks keep working
    jw = rt.registry.workflow(WID).ctx.state["javascript"]
    jw.rebuild(jw.ctx, "test")
    assert jw.restarts == 1
    assert manager.body("custom", {"x": 5}).result(10) == 10


def test_js_query_uses_m(tmp_path, runtime_of):
    ws = new_workspace(tmp_path / "ws")
    ws.add_query("Store.js", '''
async function Put(item) {
  const s = M.Base("things")
  const id = await s.Add({item})
  const again = await s.Add({item})
  return {id, same: id === again, value: await s.Get(id), count: await s.Count(), values: await s.Values()}
}
async function Swap(id, item) {
  const e = await M.Base("things").Exchange(id, {item})
  const gone = await coflows.m("things").Remove(id)
  return [e.value, gone, await M.Base("things").Get(id)]
}
async function Bad() { return await M.Base("").Add(1) }
''')
    rt = runtime_of(ws)
    r = rt.registry.call("Store.js/Put", "pen")
    assert r["same"] and r["value"] == {"item": "pen"} and r["count"] == 1 and r["values"] == [{"item": "pen"}]
    assert m("things").get(r["id"]) == {"item": "pen"}
    assert rt.registry.call("Store.js/Swap", r["id"], "ink") == [{"item": "ink"}, True, None]
    with pytest.raises(Exception, match="topic"):
        rt.registry.call("Store.js/Bad")


def test_js_agent_over_http(tmp_path, m_server):  # noqa: F811
    ws = new_workspace(tmp_path / "ws")
    ws.add_query("Orders.py", PLACE)
    ws.add_agent("Watcher.js", WATCHER)
    s = m_server(ws)
    agents = {a["ID"]: a for a in s.get("/flow/agents").json()}
    a = agents[f"{WID}-Watcher"]
    assert a["State"] == "running" and a["Language"] == "javascript" and a["MID"] == "orders"
    order_id = s.get(f"/flow/query/{WID}/Orders.py/PlaceOrder?item=cup&qty=1", headers=admin).json()
    r = wait_for(lambda: (x := s.post(f"/flow/agent/{WID}-Watcher", json={"q": 1}, headers=admin).json())
                 and x["acks"] == 1 and x["jobs"] >= 1 and x, timeout=8, interval=0.2)
    assert r["echo"] == {"q": 1}
    r = s.post(f"/flow/agent/{WID}-Watcher", json={"fail": 3}, headers=admin)
    assert r.status_code == 500 and r.json()["error"]["type"] == "RangeError"
    runs = s.get(f"/flow/agent/{WID}-Watcher/runs").json()
    assert runs[0]["Hook"] == "Body" and runs[0]["Status"] == "error" and "bad message 3" in runs[0]["Error"]
    adds = [x for x in runs if x["Hook"] == "Add"]
    assert adds and adds[0]["Status"] == "ok" and order_id in adds[0]["Detail"]


def test_example_js_agent_file_loads(tmp_path, runtime_of):
    ws = new_workspace(tmp_path / "ws")
    ws.add_query("PythonQuery.py", PLACE)
    ws.add_agent("JsAgent.js", (REPO / "mnt/Agents/JsAgent.js").read_text())
    rt = runtime_of(ws)
    manager = manager_of(rt)
    runner = manager.get(f"{WID}-JsAgent")
    assert runner.state == "running", runner.error
    assert runner.definition.topic == "orders"
    order_id = rt.registry.call("PythonQuery.py/PlaceOrder", "book", 3)
    status = m("order-status-js")
    wait_for(lambda: status.count() == 1)
    assert status.list()[0]["order"] == order_id
    answer = manager.body(f"{WID}-JsAgent", {}).result(10)
    assert answer == {"orders": 1, "acknowledged": 1}
