"""Agents reload live (issue 19 point 3): `AgentManager.sync` after package.json or agent files
change, and `POST /flow/agent/{id}/start` after an edit, start the current code and schedule."""

from __future__ import annotations

import time

from coflows.agents.component import manager_of
from coflows.workspace.manifest import load_manifest

from conftest import new_workspace
from test_m_harness import admin, m_server, runtime_of, wait_for  # noqa: F401 - fixtures

WID = "11111111-2222-3333-4444-555555555555"


def tick(version: str, schedule: str = "* * * ? * *", extra: str = "") -> str:
    """An agent whose Job prints and whose Body answers `version`."""
    return (f'AGENT = {{"ID": "tick", "Schedule": "{schedule}"}}\n{extra}'
            f'def Job(t, e):\n    print("job {version}")\n'
            f'def Body(data: dict):\n    return "{version}"\n')


WATCHER = '''AGENT = {"ID": "watcher", "MID": "orders"}
seen = []
def Add(id, value):
    print("added", value["item"])
def Body(data: dict):
    return "watching"
'''


def reread(ws, wf) -> None:
    """What the workspace watcher does before it calls `sync`: the manifest and its sources again."""
    wf.manifest = load_manifest(wf.manifest_path)
    wf.collect_sources()


def job_outputs(mgr, agent_id: str, since: float = 0.0) -> list[str]:
    return [r.output.strip() for r in mgr.runs(agent_id, 200)
            if r.hook == "Job" and r.status == "ok" and r.started >= since]


def body(mgr, agent_id: str) -> object:
    return mgr.body(agent_id, {}).result(30)


def test_sync_adds_edits_breaks_keeps_stopped_and_removes(tmp_path, runtime_of):  # noqa: F811
    ws = new_workspace(tmp_path / "ws")
    ws.add_agent("Tick.py", tick("v1"))
    rt = runtime_of(ws)
    mgr = manager_of(rt)
    assert rt.agents is mgr  # how the watcher reaches it
    wf = rt.registry.workflow(WID)
    wait_for(lambda: "job v1" in job_outputs(mgr, "tick"), timeout=15)

    # a new agent file and its manifest entry: listed, started, its M hook runs
    ws.add_agent("Watcher.py", WATCHER)
    reread(ws, wf)
    assert mgr.sync(wf) == []
    assert mgr.get("watcher").state == "running"
    from coflows.m import M
    M.Base("orders").Add({"item": "tea"})
    wait_for(lambda: any(r.hook == "Add" and "added tea" in (r.output or "") for r in mgr.runs("watcher")))
    assert body(mgr, "watcher") == "watching"

    # an edit of the schedule and the code: the new ones run, the old ones no more
    ws.write("Agents/Tick.py", tick("v2", "*/2 * * ? * *"))
    assert mgr.sync(wf) == []
    edited = time.time()
    status = mgr.get("tick").status()
    assert status["Schedule"] == "*/2 * * ? * *" and status["State"] == "running" and not status["Stale"]
    assert body(mgr, "tick") == "v2"
    wait_for(lambda: "job v2" in job_outputs(mgr, "tick", edited), timeout=15)
    time.sleep(2.5)
    assert "job v1" not in job_outputs(mgr, "tick", edited + 0.5)
    assert mgr.get("watcher").state == "running"  # the other agent was not touched

    # a broken edit: the previous version keeps running; the error names file and line, once
    ws.write("Agents/Tick.py", tick("v3", extra="def broken(:\n"))
    errors = mgr.sync(wf)
    assert len(errors) == 1 and "Agents/Tick.py:2" in errors[0] and "SyntaxError" in errors[0], errors
    status = mgr.get("tick").status()
    assert status["State"] == "running" and status["Stale"] and "Agents/Tick.py:2" in status["Error"]
    assert body(mgr, "tick") == "v2"
    assert mgr.sync(wf) == errors  # still reported, not rebuilt again
    stale_at = time.time()
    wait_for(lambda: "job v2" in job_outputs(mgr, "tick", stale_at), timeout=15)

    # stopped by the user: a fixed edit loads (Body answers the new code) but the agent stays stopped
    mgr.stop("tick")
    ws.write("Agents/Tick.py", tick("v4", "*/3 * * ? * *"))
    assert mgr.sync(wf) == []
    status = mgr.get("tick").status()
    assert status["State"] == "stopped" and not status["Stale"] and status["Error"] is None
    assert status["Schedule"] == "*/3 * * ? * *" and body(mgr, "tick") == "v4"

    # removed from package.json: stopped and no longer listed; its M hook no longer runs
    mgr.start("tick")
    ws.manifest["Agents"] = [a for a in ws.manifest["Agents"] if a["Name"] != "Watcher.py"]
    ws.save()
    reread(ws, wf)
    assert mgr.sync(wf) == []
    assert "watcher" not in mgr.runners and "tick" in mgr.runners
    assert [s["ID"] for s in (r.status() for r in mgr.runners.values())] == ["tick"]
    M.Base("orders").Add({"item": "scones"})
    added = time.time()
    wait_for(lambda: job_outputs(mgr, "tick", added), timeout=15)  # time for a hook to run
    assert not any("scones" in (r.output or "") for r in mgr.recorder.recent("watcher", 50))
    # the scheduled one too: its cron job is gone and its Job no longer runs
    ws.manifest["Agents"] = []
    ws.save()
    reread(ws, wf)
    assert mgr.sync(wf) == [] and mgr.runners == {}
    removed = time.time()
    assert mgr.scheduler.get_job("tick") is None
    time.sleep(2.5)
    assert not [r for r in mgr.recorder.recent("tick", 50) if r.hook == "Job" and r.started > removed]


def test_a_new_agent_that_does_not_build_is_listed_in_error(tmp_path, runtime_of):  # noqa: F811
    ws = new_workspace(tmp_path / "ws")
    rt = runtime_of(ws)
    mgr = manager_of(rt)
    wf = rt.registry.workflow(WID)
    ws.add_agent("Bad.py", 'AGENT = {"ID": "bad", "Schedule": "61 * * ? * *"}\ndef Job(t, e): pass\n')
    reread(ws, wf)
    errors = mgr.sync(wf)
    assert len(errors) == 1 and "second" in errors[0]
    assert mgr.get("bad").state == "error"
    ws.write("Agents/Bad.py", 'AGENT = {"ID": "bad", "Schedule": "1 * * ? * *"}\ndef Job(t, e): pass\n')
    assert mgr.sync(wf) == []
    assert mgr.get("bad").state == "running"  # it never ran: fixed, it starts


def test_start_after_an_edit_starts_the_current_code_and_schedule(tmp_path, m_server):  # noqa: F811
    ws = new_workspace(tmp_path / "ws")
    ws.add_agent("Tick.py", tick("v1", "0 0 1 * * ?"))
    s = m_server(ws)
    assert s.post("/flow/agent/tick", json={}, headers=admin).json() == "v1"
    assert s.post("/flow/agent/tick/stop", headers=admin).json()["State"] == "stopped"
    ws.write("Agents/Tick.py", tick("v2", "0 0 2 * * ?"))
    r = s.post("/flow/agent/tick/start", headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["State"] == "running" and r.json()["Schedule"] == "0 0 2 * * ?"
    assert s.post("/flow/agent/tick", json={}, headers=admin).json() == "v2"
    # a running agent whose file changed: start reloads it
    ws.write("Agents/Tick.py", tick("v3", "0 0 3 * * ?"))
    assert s.post("/flow/agent/tick/start", headers=admin).json()["Schedule"] == "0 0 3 * * ?"
    assert s.post("/flow/agent/tick", json={}, headers=admin).json() == "v3"
    # a broken edit: start answers 409 with file:line; the previous version still answers
    ws.write("Agents/Tick.py", tick("v4", extra="def broken(:\n"))
    s.post("/flow/agent/tick/stop", headers=admin)
    r = s.post("/flow/agent/tick/start", headers=admin)
    assert r.status_code == 409 and "Agents/Tick.py:2" in r.json()["error"]["message"], r.text
    listed = {a["ID"]: a for a in s.get("/flow/agents").json()}["tick"]
    assert listed["State"] == "stopped" and listed["Stale"] and "Agents/Tick.py:2" in listed["Error"]
    assert s.post("/flow/agent/tick", json={}, headers=admin).json() == "v3"


CS = '''using System;
using Coflows;
public class CsTick {
    public static object Body(object data) { return "%s"; }
    public static void Job(DateTime t, string e) { }
    public static FPKG pkg() {
        return new FPKG("cs-tick", "$WID$", "CsTick", "", null, null, null, null, null, new Body(Body),
                        "%s", new Job(Job));
    }
}
'''
JAVA = '''import coflows.FPKG;
import java.time.ZonedDateTime;
public class JavaTick {
    public static Object Body(Object data) { return "%s"; }
    public static void Job(ZonedDateTime t, String e) { }
    public static FPKG pkg() {
        return new FPKG("java-tick", "$WID$", "JavaTick", "", null, null, null, null, null, JavaTick::Body,
                        "%s", JavaTick::Job);
    }
}
'''
JS = '''function pkg() {
    return {ID: "js-tick", Name: "JsTick", ScheduleCommand: "%s", Body: data => "%s", Job: (t, e) => null};
}
'''


def test_csharp_java_and_javascript_agents_reload_their_edits(tmp_path, m_server):  # noqa: F811
    ws = new_workspace(tmp_path / "ws")
    files = {"cs-tick": ("CsTick.cs", lambda v, c: CS % (v, c)),
             "java-tick": ("JavaTick.java", lambda v, c: JAVA % (v, c)),
             "js-tick": ("JsTick.js", lambda v, c: JS % (c, v))}
    for name, make in files.values():
        ws.add_agent(name, make("v1", "0 0 1 * * ?"))
    s = m_server(ws)
    for agent_id, (name, make) in files.items():
        assert s.post(f"/flow/agent/{agent_id}", json={}, headers=admin).json() == "v1", agent_id
        ws.write(f"Agents/{name}", make("v2", "0 0 2 * * ?"))
        r = s.post(f"/flow/agent/{agent_id}/start", headers=admin)
        assert r.status_code == 200, r.text
        assert r.json()["Schedule"] == "0 0 2 * * ?" and r.json()["State"] == "running"
        assert s.post(f"/flow/agent/{agent_id}", json={}, headers=admin).json() == "v2", agent_id


def test_a_hook_in_flight_finishes_on_the_old_code(tmp_path, runtime_of):  # noqa: F811
    ws = new_workspace(tmp_path / "ws")
    slow = 'import time\nAGENT = {"ID": "slow"}\ndef Body(data: dict):\n    time.sleep(1.5)\n    return "%s"\n'
    ws.add_agent("Slow.py", slow % "v1")
    rt = runtime_of(ws)
    mgr = manager_of(rt)
    wf = rt.registry.workflow(WID)
    wait_for(lambda: not mgr.get("slow").running_runs())  # the start's Body "Main"
    in_flight = mgr.body("slow", {})
    wait_for(lambda: mgr.get("slow").running_runs())
    ws.write("Agents/Slow.py", slow % "v2-new")
    assert mgr.sync(wf) == []
    assert in_flight.result(30) == "v1"  # not dropped: it ended on the code it started with
    assert body(mgr, "slow") == "v2-new"


def test_javascript_agent_keeps_its_hooks_when_an_edit_is_refused(tmp_path, m_server):  # noqa: F811
    """JS hooks live in the file's scope: a refused edit must not leave the running agent calling it.
    (Over a server: V8 started in the test process before Mono would crash a later C# test.)"""
    ws = new_workspace(tmp_path / "ws")
    ws.add_agent("JsTick.js", 'function pkg() { return {ID: "js-tick", Body: data => "v1"}; }\n')
    s = m_server(ws)

    def answer() -> object:
        r = s.post("/flow/agent/js-tick", json={}, headers=admin)
        return r.json() if r.status_code == 200 else r.text

    def status() -> dict:
        return {a["ID"]: a for a in s.get("/flow/agents", headers=admin).json()}["js-tick"]

    assert answer() == "v1"
    ws.write("Agents/JsTick.js", 'function pkg() { throw new Error("no package " + 1); }\n')
    # (the watcher may see the file half-written first: wait for the complete edit's error)
    wait_for(lambda: status()["Stale"] and "no package 1" in status()["Error"], timeout=30)
    assert "Agents/JsTick.js:1" in status()["Error"], status()
    assert answer() == "v1"
    ws.write("Agents/JsTick.js", 'function pkg() { return {ID: "js-tick", ScheduleCommand: "99 * * ? * *", '
                                 'Body: data => "v3"}; }\n')
    wait_for(lambda: "field second" in (status()["Error"] or ""), timeout=30)
    assert answer() == "v1" and status()["Stale"]
    ws.write("Agents/JsTick.js", 'function pkg() { return {ID: "js-tick", Body: data => "v4"}; }\n')
    # the hook answers v4 once the file is evaluated, a moment before the manager ends the swap:
    # wait for the settled state, not only the answer
    wait_for(lambda: answer() == "v4" and not status()["Stale"] and status()["Error"] is None, timeout=30)
    assert answer() == "v4" and not status()["Stale"] and status()["Error"] is None


PY = '''AGENT = {"ID": "py-tick", "Schedule": "%s"}
def Job(t, e):
    print("job")
def Body(data: dict):
    return "%s"
'''


def test_the_watcher_reloads_edited_agents_in_four_languages(tmp_path, m_server):  # noqa: F811
    """Through the workspace watcher only (no start, no sync call): save the file, the agent reloads."""
    ws = new_workspace(tmp_path / "ws")
    files = {"py-tick": ("PyTick.py", lambda v, c: PY % (c, v)),
             "cs-tick": ("CsTick.cs", lambda v, c: CS % (v, c)),
             "java-tick": ("JavaTick.java", lambda v, c: JAVA % (v, c)),
             "js-tick": ("JsTick.js", lambda v, c: JS % (c, v))}
    for name, make in files.values():
        ws.add_agent(name, make("v1", "0 0 1 * * ?"))
    s = m_server(ws)

    def listed() -> dict:
        return {a["ID"]: a for a in s.get("/flow/agents", headers=admin).json()}

    def answer(agent_id: str) -> object:
        r = s.post(f"/flow/agent/{agent_id}", json={}, headers=admin)
        return r.json() if r.status_code == 200 else r.text

    s.post("/flow/agent/java-tick/stop", headers=admin)  # stopped by the user: stays stopped
    for agent_id, (name, make) in files.items():
        assert answer(agent_id) == "v1", agent_id
        ws.write(f"Agents/{name}", make("v2", "0 0 2 * * ?"))
    for agent_id in files:
        wait_for(lambda a=agent_id: answer(a) == "v2", timeout=60)
        status = listed()[agent_id]
        assert status["Schedule"] == "0 0 2 * * ?" and not status["Stale"], status
        assert status["State"] == ("stopped" if agent_id == "java-tick" else "running"), status
    # broken edits (a Python syntax error, a C# compile error): the previous versions run on
    ws.write("Agents/PyTick.py", PY % ("0 0 3 * * ?", "v3") + "def broken(:\n")
    ws.write("Agents/CsTick.cs", CS.replace("return", "retur n", 1) % ("v3", "0 0 3 * * ?"))
    # (the watcher may see a file half-written first: wait for the complete edits' errors)
    wait_for(lambda: "SyntaxError" in str(listed()["py-tick"]["Error"])
             and "CS1525" in str(listed()["cs-tick"]["Error"]), timeout=60)
    agents = listed()
    assert "Agents/PyTick.py:6" in agents["py-tick"]["Error"], agents["py-tick"]
    assert "Agents/CsTick.cs:4" in agents["cs-tick"]["Error"], agents["cs-tick"]
    for agent_id in ("py-tick", "cs-tick"):
        assert agents[agent_id]["State"] == "running" and agents[agent_id]["Schedule"] == "0 0 2 * * ?"
        assert answer(agent_id) == "v2"
    problems = s.get("/flow/workflows", headers=admin).json()
    assert "Agents/PyTick.py:6" in str(problems), problems
    assert s.output().count("Agents/PyTick.py:6") == 1, s.output()  # logged once for the edit
