"""Agents in-process: definitions, hooks, schedules without overlap, run records, errors."""

from __future__ import annotations

import json
import time

import pytest
import sqlalchemy as sa

from coflows.agents.component import manager_of
from coflows.agents.definition import FPKG, AgentDefinition, AgentError, definition_from
from coflows.agents.runner import runs_table
from coflows.errors import UserCodeError
from coflows.m import m

from conftest import new_workspace
from test_m_harness import wait_for, runtime_of  # noqa: F401 - fixture

WID = "11111111-2222-3333-4444-555555555555"

RECORDER = '''
import time
from coflows.agents.definition import FPKG, Utils
events = []

def Load(values):
    events.append(("Load", values))

def Add(id, value):
    events.append(("Add", id, value, time.perf_counter()))

def Exchange(id, value):
    events.append(("Exchange", id, value))

def Remove(id, value):
    events.append(("Remove", id, value))

def Body(data):
    import json
    msg = json.loads(data)          # CoFlows passed JSON text
    events.append(("Body", msg))
    print("body got", msg)
    return {"echo": msg}

def pkg():
    return FPKG("$WID$-Recorder", "$WID$", "Recorder", "records everything", "orders",
                Utils.SetFunction("Load", Load), Utils.SetFunction("Add", Add), Exchange, Remove, Body,
                None, None)
'''



def events_of(runner):
    return runner.definition.hooks["Load"].__globals__["events"]


def test_m_hooks_run_in_commit_order_with_load_first(tmp_path, runtime_of):
    ws = new_workspace(tmp_path / "ws")
    ws.add_agent("Recorder.py", RECORDER)
    # an entry that exists before the server starts goes to Load
    from coflows.store import Database

    db = Database(f"sqlite:///{ws.mnt / 'database.db'}")
    m("orders", db).add({"item": "before"})
    db.dispose()
    rt = runtime_of(ws)
    runner = manager_of(rt).get(f"{WID}-Recorder")
    assert runner.state == "running"
    events = events_of(runner)
    wait_for(lambda: any(e[0] == "Body" for e in events) and any(e[0] == "Load" for e in events))
    assert ("Body", {"Function": "Main", "Data": "Initial Execution"}) in events  # startup message
    orders = m("orders")  # (changes made while Load reads the topic may reach both: at least once)
    i = orders.add({"item": "tea"})
    orders.exchange(i, {"item": "chai"})
    orders.remove(i)
    m("not-watched").add(1)
    wait_for(lambda: any(e[0] == "Remove" for e in events))
    m_events = [e[:3] for e in events if e[0] != "Body"]
    assert m_events == [("Load", [{"item": "before"}]), ("Add", i, {"item": "tea"}),
                        ("Exchange", i, {"item": "chai"}), ("Remove", i, {"item": "chai"})]


def test_add_hook_fires_within_milliseconds(tmp_path, runtime_of):
    ws = new_workspace(tmp_path / "ws")
    ws.add_agent("Recorder.py", RECORDER)
    rt = runtime_of(ws)
    runner = manager_of(rt).get(f"{WID}-Recorder")
    events = events_of(runner)
    orders = m("orders")
    orders.add({"warm": "up"})
    wait_for(lambda: any(e[0] == "Add" for e in events))
    latencies = []
    for k in range(20):
        before = len([e for e in events if e[0] == "Add"])
        t0 = time.perf_counter()
        orders.add({"k": k})
        wait_for(lambda: len([e for e in events if e[0] == "Add"]) > before, interval=0.0005)
        latencies.append(events[-1][3] - t0)
    latencies.sort()
    assert latencies[len(latencies) // 2] < 0.1, latencies  # median, robust on a busy machine
    assert max(latencies) < 1.0, latencies


def test_body_message_and_output_capture(tmp_path, runtime_of):
    ws = new_workspace(tmp_path / "ws")
    ws.add_agent("Recorder.py", RECORDER)
    ws.add_agent("Typed.py", '''
AGENT = {"ID": "typed", "Name": "Typed"}
def Body(data: dict):
    if data.get("fail"):
        raise ValueError("asked to fail")
    return {"keys": sorted(data)}
''')
    mgr = manager_of(runtime_of(ws))
    assert mgr.body(f"{WID}-Recorder", {"a": 1}).result(10) == {"echo": {"a": 1}}
    assert mgr.body("typed", {"b": 1, "a": 2}).result(10) == {"keys": ["a", "b"]}
    with pytest.raises(UserCodeError, match="asked to fail"):
        mgr.body("typed", {"fail": True}).result(10)
    runs = mgr.runs(f"{WID}-Recorder")
    body = [r for r in runs if r.hook == "Body" and r.detail == "message"][0]
    assert body.status == "ok" and body.output == "body got {'a': 1}\n"
    failed = [r for r in mgr.runs("typed") if r.status == "error"][0]
    assert "ValueError: asked to fail" in failed.error and "Typed.py" in failed.error


SLOW_JOB = '''
import threading, time
state = {"running": 0, "max": 0}
lock = threading.Lock()

def Job(timestamp, execution_type):
    with lock:
        state["running"] += 1
        state["max"] = max(state["max"], state["running"])
    print("job", execution_type)
    time.sleep(2.2)
    with lock:
        state["running"] -= 1

AGENT = {"ID": "slow", "Name": "Slow job", "Schedule": "Nightly|* * * ? * *"}
'''

FAILING_JOB = '''
def Job(timestamp, execution_type):
    print("about to fail at", timestamp.isoformat())
    raise RuntimeError("job broke")

AGENT = {"ID": "failing", "Schedule": "* * * ? * *"}
'''

SLOW_ADD = '''
import time
def Add(id, value):
    time.sleep(2)
AGENT = {"ID": "slow-add", "MID": "orders"}
'''

FAST_ADD = '''
import time
seen = []
def Add(id, value):
    seen.append(time.perf_counter())
AGENT = {"ID": "fast-add", "MID": "orders"}
'''


def test_schedules_never_overlap_errors_are_recorded_and_slow_hooks_do_not_delay_others(tmp_path, runtime_of):
    ws = new_workspace(tmp_path / "ws")
    ws.add_agent("Slow.py", SLOW_JOB)
    ws.add_agent("Failing.py", FAILING_JOB)
    ws.add_agent("SlowAdd.py", SLOW_ADD)
    ws.add_agent("FastAdd.py", FAST_ADD)
    mgr = manager_of(runtime_of(ws))
    slow = mgr.get("slow")
    fast_seen = mgr.get("fast-add").definition.hooks["Add"].__globals__["seen"]
    # while the slow Job and the slow Add run, another agent's Add still fires at once
    m("orders").add({"first": 1})
    wait_for(lambda: fast_seen, timeout=5)
    time.sleep(1.2)
    t0 = time.perf_counter()
    m("orders").add({"second": 2})
    wait_for(lambda: len(fast_seen) == 2, timeout=5, interval=0.001)
    assert fast_seen[1] - t0 < 0.5  # the slow Add (2 s) and slow Job (2.2 s) are still running
    time.sleep(3.2)
    runs = mgr.runs("slow", 100)
    statuses = [r.status for r in runs]
    assert statuses.count("skipped") >= 2, statuses
    assert "ok" in statuses or "running" in statuses
    assert slow.definition.hooks["Job"].__globals__["state"]["max"] == 1  # never two at once
    skipped = [r for r in runs if r.status == "skipped"][0]
    assert skipped.detail.startswith("Nightly ") and "still going" in skipped.detail
    done = [r for r in runs if r.status == "ok"]
    assert done and done[0].output == "job Nightly\n" and done[0].ended - done[0].started >= 2.0
    failing = mgr.runs("failing", 100)
    errors = [r for r in failing if r.status == "error"]
    assert len(errors) >= 3  # the schedule went on after the first error
    assert "RuntimeError: job broke" in errors[0].error and "Failing.py" in errors[0].error
    assert errors[0].output.startswith("about to fail at ")
    assert mgr.get("failing").state == "running"


def test_build_errors_are_per_agent_and_name_it(tmp_path, runtime_of):
    ws = new_workspace(tmp_path / "ws")
    ws.add_agent("Good.py", 'AGENT = {"ID": "good", "Schedule": "0 0 * ? * *"}\ndef Job(t, e): pass\n')
    ws.add_agent("BadCron.py", 'AGENT = {"ID": "bad-cron", "Schedule": "0 0 25 ? * *"}\ndef Job(t, e): pass\n')
    ws.add_agent("Syntax.py", "def pkg(:\n")
    ws.add_agent("Raises.py", "def pkg():\n    raise KeyError('no config')\n")
    ws.add_agent("Nothing.py", "x = 1\n")
    ws.add_agent("NotCallable.py", 'AGENT = {"ID": "nc", "Add": 42}\n')
    ws.add_agent("UnknownKey.py", 'AGENT = {"ID": "uk", "Shedule": "* * * ? * *"}\n')
    ws.add_agent("Dup.py", 'AGENT = {"ID": "good"}\n')
    mgr = manager_of(runtime_of(ws))
    assert mgr.get("good").state == "running"
    bad = mgr.get("bad-cron")
    assert bad.state == "error" and "agent 'bad-cron'" in bad.error and "hour" in bad.error
    assert "SyntaxError" in mgr.get(f"{WID}-Syntax").error and "Agents/Syntax.py:1" in mgr.get(f"{WID}-Syntax").error
    assert "KeyError" in mgr.get(f"{WID}-Raises").error and "pkg() failed" in mgr.get(f"{WID}-Raises").error
    assert "neither a factory 'pkg()' nor an AGENT dict" in mgr.get(f"{WID}-Nothing").error
    assert "agent 'nc': hook Add is a int" in mgr.get(f"{WID}-NotCallable").error
    assert "unknown key 'Shedule'" in mgr.get(f"{WID}-UnknownKey").error
    assert "duplicate agent ID" in mgr.get("good@Agents/Dup.py").error
    with pytest.raises(AgentError, match="not started"):
        mgr.body("bad-cron", {})
    # fix the file and start it again: it is rebuilt without a restart
    ws.write("Agents/BadCron.py", 'AGENT = {"ID": "bad-cron", "Schedule": "0 0 23 ? * *"}\ndef Job(t, e): pass\n')
    assert mgr.start("bad-cron").state == "running"
    assert mgr.get("bad-cron").next_run() is not None


def test_stop_and_start(tmp_path, runtime_of):
    ws = new_workspace(tmp_path / "ws")
    ws.add_agent("Recorder.py", RECORDER)
    mgr = manager_of(runtime_of(ws))
    agent_id = f"{WID}-Recorder"
    events = events_of(mgr.get(agent_id))
    wait_for(lambda: any(e[0] == "Load" for e in events))
    assert mgr.toggle(agent_id).state == "stopped"
    m("orders").add({"while": "stopped"})
    time.sleep(0.2)
    assert not any(e[0] == "Add" for e in events)
    assert mgr.start(agent_id).state == "running"
    wait_for(lambda: len([e for e in events if e[0] == "Load"]) == 2)  # Load again, with the entry
    assert events[-1] == ("Load", [{"while": "stopped"}])
    m("orders").add({"after": "start"})
    wait_for(lambda: any(e[0] == "Add" for e in events))


def test_runs_are_kept_up_to_a_limit(tmp_path, runtime_of):
    ws = new_workspace(tmp_path / "ws")
    ws.add_agent("Echo.py", 'AGENT = {"ID": "echo"}\ndef Body(data):\n    return data\n')
    rt = runtime_of(ws, keep_runs=20)
    mgr = manager_of(rt)
    for k in range(70):
        assert mgr.body("echo", {"k": k}).result(10) == json.dumps({"k": k})
    runs = mgr.runs("echo", 1000)
    assert len(runs) == 20 and runs[0].detail == "message"
    mgr.recorder.flush()
    with rt.database.engine.connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(runs_table)
                         .where(runs_table.c.agent_id == "echo")).scalar_one()
    assert 20 <= n <= 30


def test_definition_shapes():
    def add(i, v):
        pass

    positional = definition_from(FPKG("A", "W", "Name", "Desc", "topic", None, add, None, None, None,
                                      "0 * * ? * *", None), workflow_id="W", default_id="d", default_name="n")
    assert (positional.id, positional.name, positional.topic, positional.schedule) == ("A", "Name", "topic",
                                                                                        "0 * * ? * *")
    assert positional.hooks == {"Add": add}
    as_dict = definition_from({"id": "B", "mid": "t", "schedule": "", "add": add}, workflow_id="W",
                              default_id="d", default_name="n")
    assert (as_dict.id, as_dict.name, as_dict.topic, as_dict.schedule) == ("B", "n", "t", None)
    defaults = definition_from({}, workflow_id="W", default_id="W-x", default_name="x")
    assert defaults.id == "W-x" and defaults.hooks == {}
    with pytest.raises(AgentError, match="expected FPKG"):
        definition_from(42, workflow_id="W", default_id="d", default_name="n")
    with pytest.raises(AgentError, match="MID must be a string"):
        definition_from({"MID": 3}, workflow_id="W", default_id="d", default_name="n")
    with pytest.raises(AgentError, match="unknown hook"):
        AgentDefinition(id="x", name="x", workflow_id="W", hooks={"OnAdd": add})


def test_install_is_idempotent(tmp_path, runtime_of):
    from coflows.agents.component import install as install_agents
    from coflows.m.component import install as install_m

    rt = runtime_of(new_workspace(tmp_path / "ws"))
    startups = len(rt.startups)
    assert install_m(rt) == [] and install_agents(rt) == [] and len(rt.startups) == startups
