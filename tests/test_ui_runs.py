"""The flow runs page of the web app in headless Chromium: a logged-in Read user submits flows from
the form (a declared flow with inputs, and a spec) and sees them finish on their pages; a bad spec
is refused on the form; 1280 and 390 px; a guest sees the login hint, never "No flow runs yet",
on a private workflow's list, and "no flow run … that you may see" on its run's page."""

from __future__ import annotations

import json

from test_ui_flows import DATA, submit
from conftest import REPO, new_workspace
from ui_app import PASSWORD, add_users, browser_or_skip, run_ui

ARTIFACTS = REPO / "test-artifacts"


def test_submit_a_flow_from_the_form_and_the_guest_hint(tmp_path, start_server):
    browser_or_skip()
    ws = new_workspace(tmp_path / "ws", name="Ui", public=None)  # private: a guest may see none of its runs
    ws.add_query("Data.py", DATA)
    ws.manifest["Flows"] = [{"Name": "sum", "Spec": "Data.py/items; Data.py/total"}]
    ws.save()
    wid = ws.manifest["ID"]
    add_users(ws, {"ada@example.com": {"name": "Ada", "grants": {wid: "read"}}})
    s = start_server(ws)
    for name in ("ui-flows", "ui-flows-390", "ui-flow-submitted"):
        (ARTIFACTS / f"{name}.png").unlink(missing_ok=True)

    out = run_ui("runs.mjs", {"base": s.base, "email": "ada@example.com", "password": PASSWORD,
                              "workflow": wid, "flow": "sum", "inputs": {"n": 4}})

    assert out["problems"] == [] and out["guestProblems"] == []
    assert "No flow runs yet" in out["empty"]  # a user who may read the workflow: the list is truly empty
    assert out["agentRuns"] == "/ui/agents"
    # the declared flow, with its inputs, ran to the end on its page; the details show the output
    d = out["declared"]
    assert d["nodes"] == ["items", "total"] and d["states"] == {"items": "finished", "total": "finished"}
    assert d["runState"] == "finished" and json.loads(d["output"]) == 6  # sum(range(4))
    assert d["basics"]["main"] == 1 and d["basics"]["title"].endswith("· coflows") and len(d["basics"]["h1"]) == 1
    run = s.get(f"/flows/runs/{d['id']}", headers=s.admin()).json()
    assert run["workflow"] == wid and run["submitted_by"] == "ada@example.com"  # sent with her session
    # the spec from the textarea, with its name
    sp = out["spec"]
    assert sp["nodes"] == ["start", "check"] and sp["runState"] == "finished" and "from the form" in sp["h1"]
    # a bad spec: the server's reason on the form, no navigation
    assert "Nope.py" in out["refused"] and out["refusedUrl"] == "/ui/flows"
    # the list of that workflow: both runs, finished, with their task counts and links
    listed = {r["id"]: r for r in out["list"]}
    assert set(listed) == {d["id"], sp["id"]}
    assert listed[d["id"]]["state"] == "finished" and "2 finished" in listed[d["id"]]["tasks"]
    assert listed[sp["id"]]["name"] == "from the form"
    assert listed[d["id"]]["href"] == f"/ui/flows/runs/{d['id']}"
    assert out["basics"]["title"] == "Flow runs · coflows" and out["basics"]["h1"] == ["Flow runs"]
    assert not out["basics"]["overflowX"] and not out["narrow"]["overflowX"] and out["narrowMenu"] is True
    assert not out["narrowRun"]["overflowX"]
    # the guest: the runs exist, but are not theirs to see; the page says to log in
    g = out["guestList"]
    assert g["rows"] == 0 and not g["empty"] and "No flow runs yet" not in g["text"]
    assert "log in" in g["hint"].lower()
    assert f"no flow run {d['id']} that you may see" in out["guestRun"]["text"].lower()
    assert "log in" in out["guestRun"]["hint"].lower()
    for name in ("ui-flows", "ui-flows-390", "ui-flow-submitted"):
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 5_000, name


def test_the_api_refuses_a_submit_the_form_would_not_offer(tmp_path, start_server):
    """The form only sends POST /flows/{wid}/runs: a caller without Read there is refused by the API."""
    ws = new_workspace(tmp_path / "ws", name="Ui", public=None)
    ws.add_query("Data.py", DATA)
    ws.save()
    keys = add_users(ws, {"bob@example.com": {"grants": {ws.manifest["ID"]: "view"}}})
    s = start_server(ws)
    r = s.post(f"/flows/{ws.manifest['ID']}/runs", json={"spec": "Data.py/start"},
               headers={"x-api-key": keys["bob@example.com"]})
    assert r.status_code == 403, r.text
    assert submit(s, "Data.py/start")  # the admin may
