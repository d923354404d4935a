"""Flows through the real server: REST, SSE, the CLI, permissions and kill -9 recovery."""

import json
import os
import subprocess
import sys
import time

import httpx
import pytest

from conftest import ADMIN_KEY, new_workspace

DATA = '''
import os
import time

def fetch(n: int = 3):
    return list(range(n))

def clean(input):
    return [x * 2 for x in input[0]]

def enrich(fetch):
    return len(fetch)

def report(clean, enrich):
    return {"total": sum(clean), "count": enrich}

def echo(msg):
    return msg

def slow(marker: str, seconds: float = 1.5):
    with open(marker, "a") as f:
        f.write("ran\\n")
    time.sleep(seconds)
    return "slow done"

def after(input):
    return input
'''


@pytest.fixture
def flows_ws(tmp_path):
    ws = new_workspace(tmp_path / "ws", name="Flows")
    ws.add_query("Data.py", DATA)
    ws.manifest["Flows"] = [{"Name": "daily", "Spec": "fetch; (clean || enrich); report",
                             "Aliases": {"fetch": "Data.py/fetch", "clean": "Data.py/clean",
                                         "enrich": "Data.py/enrich", "report": "Data.py/report"}}]
    ws.save()
    return ws


def wait_run(server, run_id, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        run = server.get(f"/flows/runs/{run_id}").json()
        if run["state"] in ("finished", "failed", "cancelled"):
            return run
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} did not end: {run}")


def test_graph_string_named_flow_and_colonyos_json(flows_ws, start_server):
    s = start_server(flows_ws)
    r = s.post("/flows/Flows/runs", json={"spec": "Data.py/fetch; (Data.py/clean || Data.py/enrich); Data.py/report",
                                          "inputs": {"n": 4}})
    assert r.status_code == 201, r.text
    run = wait_run(s, r.json()["run_id"])
    assert run["state"] == "finished"
    outputs = {t["node"]: t["output"] for t in run["tasks"]}
    assert outputs == {"fetch": [0, 1, 2, 3], "clean": [0, 2, 4, 6], "enrich": 4, "report": {"total": 12, "count": 4}}
    assert all(t["attempts"] == 1 and t["started_at"] and t["finished_at"] for t in run["tasks"])

    r = s.post("/flows/Flows/runs", json={"flow": "daily"})
    assert wait_run(s, r.json()["run_id"])["tasks"][-1]["output"] == {"total": 6, "count": 3}

    colony = [
        {"nodename": "task_a", "funcname": "echo", "args": ["task_a"], "conditions": {"dependencies": []}},
        {"nodename": "task_b", "funcname": "echo", "args": ["task_b"], "conditions": {"dependencies": ["task_a"]}},
        {"nodename": "task_c", "funcname": "echo", "args": ["task_c"], "conditions": {"dependencies": ["task_a"]}},
        {"nodename": "task_d", "funcname": "echo", "args": ["task_d"],
         "conditions": {"dependencies": ["task_b", "task_c"]}},
    ]
    r = s.post("/flows/Flows/runs", json={"spec": colony, "aliases": {"echo": "Data.py/echo"}})
    run = wait_run(s, r.json()["run_id"])
    assert run["state"] == "finished" and [t["output"] for t in run["tasks"]] == ["task_a", "task_b", "task_c", "task_d"]
    listed = s.get("/flows/runs").json()
    assert len(listed) == 3 and all(x["state"] == "finished" for x in listed)


@pytest.mark.parametrize("body, status, text", [
    ({"spec": "Data.py/fetch; (Data.py/clean"}, 400, "line 1"),
    ({"spec": "Data.py/nope"}, 400, "unknown function"),
    ({"flow": "weekly"}, 404, "no flow named 'weekly'"),
    ({}, 400, "give 'spec'"),
])
def test_bad_specs_say_where(flows_ws, start_server, body, status, text):
    s = start_server(flows_ws)
    r = s.post("/flows/Flows/runs", json=body)
    assert r.status_code == status, r.text
    assert text in r.json()["error"]["message"]
    r = s.post("/flows/Flows/runs", content=b"{oops")
    assert r.status_code == 400 and "invalid JSON" in r.json()["error"]["message"]


def test_private_workflow_needs_a_key(tmp_path, start_server):
    ws = new_workspace(tmp_path / "ws", name="Closed", public=None)
    ws.add_query("Data.py", DATA)
    s = start_server(ws)
    assert s.post("/flows/Closed/runs", json={"spec": "Data.py/fetch"}).status_code == 401
    r = s.post("/flows/Closed/runs", json={"spec": "Data.py/fetch"}, headers=s.admin())
    run_id = r.json()["run_id"]
    assert s.get(f"/flows/runs/{run_id}").status_code == 404  # invisible to anonymous callers
    assert s.get(f"/flows/runs/{run_id}", headers=s.admin()).status_code == 200


def test_live_events_stream(flows_ws, start_server):
    s = start_server(flows_ws)
    marker = flows_ws.root / "marker.txt"
    run_id = s.post("/flows/Flows/runs", json={
        "spec": [{"nodename": "a", "funcname": "Data.py/slow", "kwargs": {"marker": str(marker), "seconds": 0.5}},
                 {"nodename": "b", "funcname": "Data.py/after", "conditions": {"dependencies": ["a"]}}]}).json()["run_id"]
    events = []
    with httpx.stream("GET", f"{s.base}/flows/runs/{run_id}/events", timeout=30) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    kinds = [(e.get("node"), e.get("state")) for e in events[1:]]
    assert events[0]["id"] == run_id  # the snapshot first
    assert ("a", "finished") in kinds and ("b", "finished") in kinds
    assert kinds[-1] == (None, "finished")
    assert kinds.index(("a", "finished")) < kinds.index(("b", "running"))


def test_cli_submit_get_list(flows_ws, start_server):
    s = start_server(flows_ws)
    flows_ws.config["Cloud"] = {"Host": f"127.0.0.1:{s.port}", "SecretKey": ADMIN_KEY, "SSL": False}
    flows_ws.save()
    spec = flows_ws.root / "flow.yaml"
    spec.write_text("name: y\nnodes:\n  first: {function: Data.py/fetch, kwargs: {n: 2}}\n"
                    "  second: {function: Data.py/clean, depends_on: [first]}\n")

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "coflows", "flow", *args], capture_output=True,
                              text=True, cwd=flows_ws.root)

    r = cli("submit", "--spec", str(spec), "--wait")
    assert r.returncode == 0, r.stderr
    assert "finished" in r.stdout and "second" in r.stdout
    run_id = s.get("/flows/runs", headers=s.admin()).json()[0]["id"]
    r = cli("get", run_id, "--out", "second")
    assert json.loads(r.stdout) == [0, 2]
    assert run_id in cli("list").stdout
    r = cli("get", "no-such-run")
    assert r.returncode == 1 and "404" in r.stderr


def test_kill_9_mid_run_then_restart_completes_without_rerunning_finished_tasks(flows_ws, start_server):
    s = start_server(flows_ws)
    first, second = flows_ws.root / "first.txt", flows_ws.root / "second.txt"
    run_id = s.post("/flows/Flows/runs", json={"spec": [
        {"nodename": "quick", "funcname": "Data.py/slow", "kwargs": {"marker": str(first), "seconds": 0}},
        {"nodename": "long", "funcname": "Data.py/slow", "kwargs": {"marker": str(second), "seconds": 2},
         "conditions": {"dependencies": ["quick"]}}]}).json()["run_id"]
    deadline = time.time() + 10
    while not second.exists() and time.time() < deadline:
        time.sleep(0.02)
    assert second.exists(), "the long task never started"
    s.kill()  # SIGKILL while 'long' is running
    restarted = start_server(flows_ws)
    run = wait_run(restarted, run_id, timeout=60)
    assert run["state"] == "finished"
    assert first.read_text().count("ran") == 1  # finished before the crash: not run again
    assert second.read_text().count("ran") == 2  # interrupted: run again
