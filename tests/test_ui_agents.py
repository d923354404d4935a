"""The agents page and the live log page in headless Chromium, logged in as real users: a Write user
runs, stops and starts an agent; a Read user has no such buttons and the API refuses the forced
request; a query's print arrives live on the log page, tagged with its function."""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx

from conftest import new_workspace
from ui_app import PASSWORD, add_users, browser_or_skip, run_ui

WID = "11111111-2222-3333-4444-555555555555"
TICK = '''
AGENT = {"ID": "tick", "Name": "Tick", "MID": "ticks", "Schedule": "0 0 3 ? * * @ Europe/Paris"}

def Job(t, e):
    print("tick", e, t.isoformat())
'''
SAY = '''
def Say(text: str):
    """Prints `said <text>`."""
    print("said", text)
    return text
'''


def workspace(tmp_path):
    ws = new_workspace(tmp_path / "ws", name="Clock", public=None)
    ws.add_agent("Tick.py", TICK)
    ws.add_query("Say.py", SAY)
    keys = add_users(ws, {"writer@example.com": {"name": "Wren", "grants": {WID: "write"}},
                          "reader@example.com": {"name": "Reed", "grants": {WID: "read"}}})
    return ws, keys


def test_agents_page(tmp_path, start_server, monkeypatch):
    browser_or_skip()
    monkeypatch.setenv("TZ", "America/New_York")  # the browser's zone (Chromium reads TZ)
    ws, keys = workspace(tmp_path)
    s = start_server(ws)
    out = run_ui("agents.mjs", {"base": s.base, "writer": "writer@example.com", "reader": "reader@example.com",
                                "password": PASSWORD, "agent": "tick", "workflow": WID}, timeout=180)
    before = out["before"]
    assert before["name"] == "Tick" and before["state"] == "running" and before["topic"] == "/ui/m/ticks"
    assert before["schedule"] == "0 0 3 ? * * @ Europe/Paris" and before["hooks"] == ["Job"]
    assert before["buttons"] == ["Stop", "Run now"]
    # five next fire times: 03:00 in Paris, shown in the browser's zone
    assert len(before["nextRuns"]) == 5 and before["zone"] == "America/New_York"
    for t in before["nextRuns"]:
        paris = datetime.fromisoformat(t["iso"])
        assert (paris.hour, paris.minute) == (3, 0)
        assert paris.astimezone(ZoneInfo("America/New_York")).strftime("%H:%M:%S") in t["shown"]
    assert out["tabbedToRunNow"]
    run = out["afterRun"]["runs"][0]
    assert run[0] == "Job" and run[2] == "ok" and "(run now)" in run[4]
    assert out["output"].startswith("tick All ")
    assert len(out["afterRun"]["runs"]) == len(before["runs"]) + 1
    # the run went through the API as the writer, and is recorded with its output
    runs = s.get("/flow/agent/tick/runs", headers={"x-api-key": keys["reader@example.com"]}).json()
    assert runs[0]["Output"] == out["output"].rstrip("\n") + "\n" and runs[0]["Status"] == "ok"
    assert out["stopped"]["state"] == "stopped" and out["stopped"]["nextRuns"] == []
    assert out["stopped"]["buttons"] == ["Start", "Run now"]
    assert out["started"]["state"] == "running" and len(out["started"]["nextRuns"]) == 5
    b = out["basics"]
    assert b["title"] == "Agents · coflows" and b["main"] == 1 and b["h1"] == ["Agents"] and not b["overflowX"]
    assert not out["narrow"]["overflowX"] and out["narrowMenu"] is True
    assert out["problems"] == []
    # the Read user: the runs, no Write controls; the forced request is refused
    assert out["readerUrl"] == f"/ui/agents?workflow={WID}"
    assert out["reader"]["buttons"] == [] and out["reader"]["runs"] and out["reader"]["state"] == "running"
    assert out["readerProblems"] == []
    assert out["forced"]["status"] == 403 and out["forced"]["body"]["error"]["type"] == "PermissionDenied"
    r = httpx.post(s.base + "/flow/agent/tick/run", headers={"x-api-key": keys["reader@example.com"]})
    assert r.status_code == 403
    assert s.get("/flow/agent/tick/runs", headers=s.admin()).json()[0]["Status"] == "ok"  # no new run


def test_logs_page(tmp_path, start_server):
    browser_or_skip()
    ws, keys = workspace(tmp_path)
    s = start_server(ws)
    reader = {"x-api-key": keys["reader@example.com"]}
    before = f"before-{time.time_ns()}"
    assert s.get(f"/flow/query/{WID}/Say.py/Say", params={"text": before}, headers=reader).status_code == 200
    out = run_ui("logs.mjs", {"base": s.base, "email": "reader@example.com", "password": PASSWORD,
                              "key": keys["reader@example.com"], "wid": WID, "before": before}, timeout=180)
    assert out["url"] == f"/ui/logs?workflow={WID}" and out["options"] == ["Clock"]
    live = [line for line in out["lines"] if line["text"].startswith("said live-")]
    assert len(live) == 1 and live[0]["fn"] == "Say.py/Say"
    assert any(line["text"] == f"said {before}" for line in out["lines"])  # the buffered line came first
    assert [line["text"] for line in out["filtered"]] == [live[0]["text"]]
    assert out["whilePaused"] == {"shown": False, "state": "live · 1 held", "pressed": "true"}
    assert out["resumed"] is True
    assert out["region"]["role"] == "log" and out["region"]["live"] == "polite"
    b = out["basics"]
    assert b["title"] == "Logs · coflows" and b["h1"] == ["Logs"] and b["main"] == 1 and not b["overflowX"]
    assert not out["narrow"]["overflowX"]
    assert out["problems"] == []
