"""Agents over HTTP: listing, messages (Body), start/stop, runs; and the example agent."""

from __future__ import annotations

import time
from pathlib import Path

from conftest import new_workspace
from test_m_harness import admin, m_server, wait_for  # noqa: F401 - fixture

REPO = Path(__file__).resolve().parent.parent
WID = "11111111-2222-3333-4444-555555555555"

ECHO = '''
def Body(data: dict):
    if data.get("fail"):
        raise ZeroDivisionError("no way")
    print("echo", data)
    return {"you said": data}

AGENT = {"ID": "echo", "Name": "Echo", "Schedule": "0 0 3 ? * *"}
def Job(t, e): pass
'''


def test_agents_routes(tmp_path, m_server):  # noqa: F811
    ws = new_workspace(tmp_path / "ws")  # Public may Read
    ws.add_agent("Echo.py", ECHO)
    ws.add_agent("Bad.py", 'AGENT = {"ID": "bad", "Schedule": "61 * * ? * *"}\ndef Job(t, e): pass\n')
    s = m_server(ws)
    agents = {a["ID"]: a for a in s.get("/flow/agents").json()}
    assert agents["echo"]["State"] == "running" and agents["echo"]["NextRun"]
    assert agents["echo"]["Hooks"] == ["Body", "Job"] and agents["echo"]["File"] == "Agents/Echo.py"
    assert agents["bad"]["State"] == "error"
    assert "agent 'bad'" in agents["bad"]["Error"] and "second" in agents["bad"]["Error"]

    r = s.post("/flow/agent/echo", json={"hello": 1}, headers=admin)
    assert r.status_code == 200 and r.json() == {"you said": {"hello": 1}}
    assert s.post("/flow/agent/echo", json={"hello": 1}).status_code == 401  # Write needed, not Read
    r = s.post("/flow/agent/echo", content=b"{oops", headers=admin)
    assert r.status_code == 400 and "invalid JSON" in r.json()["error"]["message"]
    r = s.post("/flow/agent/echo", json={"fail": True}, headers=admin)
    assert r.status_code == 500 and r.json()["error"]["type"] == "ZeroDivisionError"
    assert s.post("/flow/agent/nope", json={}, headers=admin).status_code == 404
    assert s.post("/flow/agent/bad", json={}, headers=admin).status_code == 409

    runs = s.get("/flow/agent/echo/runs").json()
    assert [r["Status"] for r in runs[:2]] == ["error", "ok"]
    assert runs[1]["Output"] == "echo {'hello': 1}\n" and runs[1]["Hook"] == "Body"
    assert runs[-1]["Detail"] == "Main"  # the start-up message

    assert s.post("/flow/agent/echo/stop", headers=admin).json()["State"] == "stopped"
    assert s.get("/flow/ActiveAgentToggle?id=echo").status_code == 401
    assert s.get("/flow/ActiveAgentToggle?id=echo", headers=admin).json()["State"] == "running"
    assert s.get("/flow/ActiveAgentToggle", headers=admin).status_code == 400
    r = s.post("/flow/agent/bad/start", headers=admin)
    assert r.status_code == 409 and "agent 'bad'" in r.json()["error"]["message"]
    private = m_server(new_workspace(tmp_path / "private", public=None))
    assert private.get("/flow/agents").json() == []


def test_example_agent_acknowledges_orders(tmp_path, m_server):  # noqa: F811
    ws = new_workspace(tmp_path / "ws")
    ws.add_agent("PythonAgent.py", (REPO / "mnt/Agents/PythonAgent.py").read_text())
    ws.add_query("Orders.py", "from coflows.m import M\n\n"
                              "def PlaceOrder(item: str, qty: int):\n"
                              "    return M.Base('orders').Add({'item': item, 'qty': qty})\n")
    s = m_server(ws)
    agent = f"{WID}-PythonAgent"
    assert [a["State"] for a in s.get("/flow/agents").json() if a["ID"] == agent] == ["running"]
    order = s.get(f"/flow/query/{WID}/Orders.py/PlaceOrder?item=tea&qty=2").json()
    status = wait_for(lambda: s.get("/m/data?type=order-status").json())
    assert status == [{"order": order, "item": "tea", "status": "received"}]
    assert s.post(f"/flow/agent/{agent}", json={}, headers=admin).json() == {"orders": 1, "acknowledged": 1}


def test_a_hook_that_never_returns_does_not_block_shutdown(tmp_path, m_server):  # noqa: F811
    ws = new_workspace(tmp_path / "ws")
    ws.add_agent("Forever.py", 'import time\nAGENT = {"ID": "forever"}\n'
                               'def Body(data):\n    while True:\n        time.sleep(0.1)\n')
    s = m_server(ws)
    wait_for(lambda: s.get("/flow/agents").json()[0]["Running"] == ["Body"])
    t0 = time.monotonic()
    s.stop()  # SIGTERM; the fixture would SIGKILL after 30 s
    assert time.monotonic() - t0 < 10
    assert "Application shutdown complete" in s.output()
