"""The live log of a workflow (`/flow/logs/{wid}`) and an agent's "run now" (`/flow/agent/{id}/run`)
through a real server: who may read and run, the bounds, the SSE stream, redaction."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import pytest

from conftest import ADMIN_KEY, new_workspace
from ui_app import add_users

ADMIN = {"x-api-key": ADMIN_KEY}
WID = "11111111-2222-3333-4444-555555555555"
SAY = '''
import sys

def Say(text: str):
    print("said", text)
    return text

def Warn(text: str):
    print("warned", text, file=sys.stderr)
    return text

def Long(n: int):
    print("x" * n)
    return n

def Many(n: int):
    for i in range(n):
        print("line", i)
    return n
'''
TICK = '''
import time

AGENT = {"ID": "tick", "Name": "Tick", "Schedule": "0 0 3 ? * * @ Europe/Paris"}

def Job(t, e):
    print("tick", e, t.isoformat())
    if (open(__file__ + ".slow").read() if __import__("os").path.exists(__file__ + ".slow") else ""):
        time.sleep(3)
'''


@pytest.fixture
def server(tmp_path, start_server):
    ws = new_workspace(tmp_path / "ws", name="Talk", public=None)
    ws.add_query("Say.py", SAY)
    ws.add_agent("Tick.py", TICK)
    keys = add_users(ws, {"w@example.com": {"grants": {WID: "write"}}, "r@example.com": {"grants": {WID: "read"}},
                          "v@example.com": {"grants": {WID: "view"}}, "n@example.com": {}})
    s = start_server(ws)
    s.keys = {k.split("@")[0]: {"x-api-key": v} for k, v in keys.items()}
    s.ws = ws
    return s


def lines(s, headers: dict | None = None, **params: Any) -> list[dict]:
    r = s.get(f"/flow/logs/{WID}", params={"format": "json", **params}, headers=headers or ADMIN)
    assert r.status_code == 200, r.text
    return r.json()


def wait_for(fn, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_buffered_lines_levels_and_bounds(server):
    s = server
    assert s.get(f"/flow/query/{WID}/Say.py/Say?text=hello-1", headers=ADMIN).status_code == 200
    assert s.get(f"/flow/query/{WID}/Say.py/Warn?text=careful", headers=ADMIN).status_code == 200
    got = wait_for(lambda: [e for e in lines(s) if "careful" in e["line"]])
    said = [e for e in lines(s) if e["line"] == "said hello-1"]
    assert said and said[0]["tag"] == "Talk/Say.py/Say" and said[0]["function"] == "Say.py/Say"
    assert said[0]["workflow"] == WID and said[0]["level"] == "INFO" and said[0]["time"].endswith("+00:00")
    assert got[0]["level"] == "WARNING" and got[0]["line"] == "warned careful"
    # Read (not View) is needed; anonymous 401; other users 403; the name works as well as the ID
    assert len(lines(s, s.keys["r"], limit=1)) == 1
    assert s.get(f"/flow/logs/{WID}?format=json", headers=s.keys["v"]).status_code == 403
    assert s.get(f"/flow/logs/{WID}?format=json", headers=s.keys["n"]).status_code == 403
    assert s.get(f"/flow/logs/{WID}?format=json").status_code == 401
    assert s.get(f"/flow/logs/{WID}?format=json", headers={"x-api-key": "wrong"}).status_code == 401
    assert s.get("/flow/logs/Talk?format=json", headers=ADMIN).status_code == 200
    assert s.get("/flow/logs/nope?format=json", headers=ADMIN).status_code == 404
    for bad in ("limit=0", "limit=1001", "limit=x", "format=xml"):
        r = s.get(f"/flow/logs/{WID}?format=json&{bad}", headers=ADMIN)
        assert r.status_code == 400 and r.json()["error"]["parameter"] == bad.split("=")[0], bad
    # each line at most 4 KB; at most 1,000 lines kept
    s.get(f"/flow/query/{WID}/Say.py/Long?n=20000", headers=ADMIN)
    long = wait_for(lambda: [e for e in lines(s) if e["line"].startswith("xxxx")])
    assert len(long[0]["line"]) < 4200 and long[0]["line"].endswith("(line cut)")
    s.get(f"/flow/query/{WID}/Say.py/Many?n=1200", headers=ADMIN)
    wait_for(lambda: any(e["line"] == "line 1199" for e in lines(s, limit=5)))
    kept = lines(s, limit=1000)
    assert len(kept) == 1000 and kept[-1]["line"] == "line 1199" and kept[0]["line"] == "line 200"
    assert [e["seq"] for e in kept] == sorted(e["seq"] for e in kept)


def test_secrets_never_reach_the_log(server):
    s = server
    s.get(f"/flow/query/{WID}/Say.py/Say", params={"text": f"key={ADMIN_KEY} url=https://u:hunter2pass@feed/x"},
          headers=ADMIN)
    line = wait_for(lambda: [e for e in lines(s) if e["line"].startswith("said key=")])[0]["line"]
    assert ADMIN_KEY not in line and "hunter2pass" not in line and "***" in line


def read_sse(s, path: str, headers: dict, until: str, found: list, started: threading.Event) -> None:
    with httpx.Client(base_url=s.base, timeout=30) as c, c.stream("GET", path, headers=headers) as r:
        found.append(r.status_code)
        started.set()
        if r.status_code != 200:
            return
        for raw in r.iter_lines():
            if raw.startswith("data: "):
                found.append(json.loads(raw[6:]))
                if until in found[-1].get("line", ""):
                    return


def test_sse_backlog_then_live(server):
    s = server
    s.get(f"/flow/query/{WID}/Say.py/Say?text=before", headers=ADMIN)
    wait_for(lambda: any(e["line"] == "said before" for e in lines(s)))
    found: list = []
    started = threading.Event()
    t = threading.Thread(target=read_sse, args=(s, f"/flow/logs/{WID}", s.keys["r"], "after-9", found, started))
    t.start()
    assert started.wait(20)
    wait_for(lambda: any(isinstance(e, dict) and e["line"] == "said before" for e in found))
    for i in range(10):
        s.get(f"/flow/query/{WID}/Say.py/Say?text=after-{i}", headers=ADMIN)
    t.join(30)
    assert not t.is_alive()
    texts = [e["line"] for e in found[1:]]
    assert found[0] == 200 and texts.index("said before") < texts.index("said after-0")
    assert [x for x in texts if x.startswith("said after")] == [f"said after-{i}" for i in range(10)]
    # reconnecting with Last-Event-ID sends only what came after it
    last = [e for e in found[1:] if e["line"] == "said after-8"][0]["seq"]
    again: list = []
    read_sse(s, f"/flow/logs/{WID}", {**s.keys["r"], "Last-Event-ID": str(last)}, "after-9", again, threading.Event())
    assert [e["line"] for e in again[1:]] == ["said after-9"]


def test_sse_refuses_who_may_not_read(server):
    s = server
    for headers, status in ((None, 401), (s.keys["v"], 403), (s.keys["n"], 403), ({"x-api-key": "x"}, 401)):
        found: list = []
        read_sse(s, f"/flow/logs/{WID}", headers or {}, "", found, threading.Event())
        assert found == [status], headers


def test_run_now(server):
    s = server
    agents = {a["ID"]: a for a in s.get("/flow/agents", headers=s.keys["r"]).json()}
    tick = agents["tick"]
    assert tick["Level"] == "read" and len(tick["NextRuns"]) == 5
    assert all(t.endswith(("+01:00", "+02:00")) and "T03:00:00" in t for t in tick["NextRuns"])
    assert {a["ID"]: a["Level"] for a in s.get("/flow/agents", headers=s.keys["w"]).json()} == {"tick": "write"}
    assert s.get("/flow/agents", headers=s.keys["n"]).json() == []

    r = s.post("/flow/agent/tick/run", headers=s.keys["w"])
    assert r.status_code == 200, r.text
    run = r.json()
    assert run["Status"] == "ok" and run["Hook"] == "Job" and run["Output"].startswith("tick All ")
    assert "(run now)" in run["Detail"] and run["DurationMs"] >= 0
    assert s.get("/flow/agent/tick/runs", headers=s.keys["r"]).json()[0]["Output"] == run["Output"]
    # its print is in the workflow's live log too, tagged with the agent
    wait_for(lambda: [e for e in lines(s) if e["tag"] == "Talk/agent:Tick/Job" and e["line"].startswith("tick All")])

    assert s.post("/flow/agent/tick/run", headers=s.keys["r"]).status_code == 403
    assert s.post("/flow/agent/tick/run").status_code == 401
    assert s.post("/flow/agent/nope/run", headers=ADMIN).status_code == 404
    assert s.post("/flow/agent/tick/run?wait=maybe", headers=ADMIN).status_code == 400

    # one Job at a time: a second run while the first goes is 409; wait=false answers at once (202)
    (s.ws.mnt / "Agents" / "Tick.py.slow").write_text("1")
    r = s.post("/flow/agent/tick/run?wait=false", headers=ADMIN)
    assert r.status_code == 202 and r.json()["Status"] == "running"
    again = s.post("/flow/agent/tick/run", headers=ADMIN)
    assert again.status_code == 409 and "already going" in again.json()["error"]["message"]
    wait_for(lambda: s.get("/flow/agent/tick/runs", headers=ADMIN).json()[0]["Status"] == "ok")
    # a stopped agent runs now too; it then has no next fire times
    assert s.post("/flow/agent/tick/stop", headers=ADMIN).json()["NextRuns"] == []
    (s.ws.mnt / "Agents" / "Tick.py.slow").unlink()
    assert s.post("/flow/agent/tick/run", headers=ADMIN).json()["Status"] == "ok"


def test_javascript_console_and_two_workflows(tmp_path, start_server):
    """console.* of a JS query reaches its workflow's log (tagged by the engine with the workflow's
    name); a second workflow's lines stay in its own log."""
    pytest.importorskip("py_mini_racer")
    one = new_workspace(tmp_path / "one", name="One")
    one.add_query("Talk.js", "function Talk(w) { console.log('js said', w); console.warn('careful', w); return w }\n")
    other_wid = "99999999-2222-3333-4444-555555555555"
    two = new_workspace(tmp_path / "two", name="Two", wid=other_wid)
    two.add_query("Say.py", SAY)
    one.config["Workflow"] = [str(one.mnt / "package.json"), str(two.mnt / "package.json")]
    one.save()
    s = start_server(one)
    assert s.get(f"/flow/query/{WID}/Talk.js/Talk?w=hi", headers=ADMIN).json() == "hi"
    assert s.get(f"/flow/query/{other_wid}/Say.py/Say?text=elsewhere", headers=ADMIN).status_code == 200
    got = wait_for(lambda: [e for e in lines(s) if "careful hi" in e["line"]])
    mine = lines(s)
    said = [e for e in mine if e["line"] == "js said hi"]
    assert said and said[0]["tag"] == "One/Talk.js/Talk" and said[0]["function"] == "Talk.js/Talk"
    assert got[0]["level"] == "WARNING"
    assert not [e for e in mine if "elsewhere" in e["line"]]
    theirs = wait_for(lambda: s.get(f"/flow/logs/{other_wid}?format=json", headers=ADMIN).json())
    assert [e["line"] for e in theirs] == ["said elsewhere"] and theirs[0]["workflow"] == other_wid


def test_a_slow_stream_loses_lines_not_the_printer():
    """In process: a stream that does not read gets at most its queue, then a count of the dropped
    lines; the printing thread never waits; the ring buffer keeps the last `keep` lines."""
    import asyncio
    import logging
    from types import SimpleNamespace

    from coflows.server.logs import Subscriber, WorkflowLogs

    logs = WorkflowLogs(lambda: [SimpleNamespace(id="w1", name="Wf")], keep=50)
    logger = logging.getLogger("coflows.user.test-slow")
    logger.propagate = False
    logger.addHandler(logs)
    logger.setLevel(logging.INFO)

    async def scenario() -> tuple[list, int, list]:
        loop = asyncio.get_running_loop()
        sub = logs.subscribe("w1", loop)
        assert isinstance(sub, Subscriber)
        sub.maxsize = 10
        started = time.monotonic()
        for i in range(500):  # nothing reads meanwhile
            logger.info("[%s] %s", "Wf/Q.py/f", f"n{i}")
        logger.info("[%s] %s", "Unknown/Q.py/f", "nobody's")  # no such workflow: dropped
        logger.info("not tagged")
        assert time.monotonic() - started < 5
        events, dropped = await sub.take(5)
        logs.unsubscribe("w1", sub)
        return events, dropped, logs.recent("w1", 1000)

    events, dropped, kept = asyncio.run(scenario())
    assert [e["line"] for e in events] == [f"n{i}" for i in range(10)] and dropped == 490
    assert len(kept) == 50 and kept[-1]["line"] == "n499" and kept[0]["function"] == "Q.py/f"
    logger.removeHandler(logs)
