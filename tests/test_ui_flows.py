"""The flow pages of the web app through a real server: the pages and vendor files over HTTP, and the
live DAG page in headless Chromium (tests/ui/*.mjs drive playwright-core with the system's chromium).
The submit form, the guest's login hint and the 404 page are in tests/test_ui_runs.py."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import httpx

from conftest import ADMIN_KEY, REPO, Server, new_workspace
from ui_app import browser_or_skip
from ui_app import run_ui as run_script

ARTIFACTS = REPO / "test-artifacts"
APP_MARK = '<div id="app">'  # the web app's one page (ui_static/app.html)

DATA = '''
import os
import time

def start(n: int = 3):
    return list(range(n))

def until(path: str, timeout: float = 60):
    deadline = time.time() + timeout
    while not os.path.exists(path):
        if time.time() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.02)

def wait(start, release: str, then: str = ""):
    """Runs until the file `release` exists (the test decides); with `then`, inserts a node
    before its children and waits for that file too."""
    until(release)
    if then:
        from coflows.flows import current_task

        ctx = current_task()
        ctx.insert_child("checked", ctx.ref.rsplit("/", 1)[0] + "/check")
        until(then)
    return {"waited_for": len(start)}

def check(input):
    return input[0]

def report(input):
    return {"value": {"ok": True, "got": input[0]}, "label": "the report", "color": "#1e88e5",
            "shape": "diamond", "status": "done!"}

def gate(release: str, n: int = 3):
    """A list of n items, once the file `release` exists."""
    until(release)
    return list(range(n))

def items(n: int = 3):
    return list(range(n))

def square(x):
    return x * x

def total(input):
    return sum(input[0])
'''

FAN_OUT = """
name: fan
nodes:
  many: {function: Data.py/gate, kwargs: {n: 125, release: RELEASE}}
  square: {function: Data.py/square, after: many, map: many}
  total: {function: Data.py/total, after: square}
  few: {function: Data.py/items, kwargs: {n: 5}}
  cube: {function: Data.py/square, after: few, map: few}
"""


def make_ws(root: Path, public: int | None = 1):
    ws = new_workspace(root, name="Ui", public=public)
    ws.add_query("Data.py", DATA)
    return ws


def wait_state(server, run_id: str, node: str, state: str, timeout: float = 30) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        run = server.get(f"/flows/runs/{run_id}", headers=server.admin()).json()
        if next(t for t in run["tasks"] if t["node"] == node)["state"] == state:
            return run
        time.sleep(0.05)
    raise AssertionError(f"{node} of {run_id} never became {state}")


def submit(server, spec, **more) -> str:
    r = server.post("/flows/Ui/runs", json={"spec": spec, **more}, headers=server.admin())
    assert r.status_code == 201, r.text
    return r.json()["run_id"]


# -- HTTP: pages, vendor files, 404, auth ---------------------------------------------------------

def test_pages_and_vendor_files_over_http(tmp_path, start_server):
    s = start_server(make_ws(tmp_path / "ws"))
    run_id = submit(s, "Data.py/start; Data.py/square")  # square(x) gets nothing: fails, still a run

    r = s.get("/ui/flows")  # the app's page: pages/flows.js draws the list in the browser
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert APP_MARK in r.text and "/ui/static/app.js" in r.text

    r = s.get(f"/ui/flows/runs/{run_id}")  # the workflow is public: anonymous callers get the page
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html") and APP_MARK in r.text

    for name, marker in [("cytoscape.mjs", "cytoscape"), ("dagre.mjs", "graphlib")]:
        r = s.get(f"/ui/vendor/{name}")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/javascript")
        assert marker in r.text and "export" in r.text  # the ES module build, not the UMD one
    for name in ["pages/run.js", "pages/flows.js", "flows/dag.js", "flows/model.js", "flows/states.js",
                 "flows/common.js"]:
        r = s.get(f"/ui/static/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript"), name
    assert s.get("/ui/static/flows/flows.css").headers["content-type"].startswith("text/css")
    # the run page's drawing code imports the vendor files the server serves
    dag = s.get("/ui/static/flows/dag.js").text
    assert 'from "/ui/vendor/cytoscape.mjs"' in dag and 'from "/ui/vendor/dagre.mjs"' in dag
    for gone in ["runs.html", "run.html", "runs.js", "run.js", "api.js", "ui.css"]:  # ported into the app
        assert s.get(f"/ui/static/{gone}").status_code == 404, gone

    assert s.get("/ui/vendor/react.js").status_code == 404           # only the listed files
    assert s.get("/ui/vendor/..%2Fpackage.json").status_code == 404  # never the rest of node_modules
    assert s.get("/ui/static/..%2Fui.py").status_code == 404

    r = s.get("/ui/flows/runs/no-such-run")  # 404, and the app's page says so (the browser test reads it)
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html") and APP_MARK in r.text


def test_the_run_page_follows_the_api_permissions(tmp_path, start_server):
    s = start_server(make_ws(tmp_path / "ws", public=None))
    run_id = submit(s, "Data.py/start")
    page = f"/ui/flows/runs/{run_id}"
    r = s.get(page)
    assert r.status_code == 404 and APP_MARK in r.text  # invisible to anonymous callers, as in the API
    assert s.get(f"/flows/runs/{run_id}").status_code == 404
    assert s.get(f"{page}?_cokey={ADMIN_KEY}").status_code == 200
    assert s.get(page, headers=s.admin()).status_code == 200
    assert s.get(f"{page}?_cokey=wrong").status_code == 401  # a bad key is refused, never downgraded
    assert s.get("/ui/vendor/cytoscape.mjs").status_code == 200  # assets hold no data: no key needed


def test_missing_node_modules_is_a_clear_503(tmp_path, start_server):
    empty = tmp_path / "no_node_modules"
    empty.mkdir()
    s = start_server(make_ws(tmp_path / "ws"), env={"COFLOWS_NODE_MODULES": str(empty)})
    run_id = submit(s, "Data.py/start")
    # every page of the app is Preact from npm, the list of runs too
    for path in ["/ui/vendor/cytoscape.mjs", f"/ui/flows/runs/{run_id}", "/ui/flows"]:
        r = s.get(path)
        assert r.status_code == 503 and "bin/setup.sh" in r.text and "npm ci" in r.text, path


# -- the live page in Chromium ----------------------------------------------------------------------

def test_live_page_shows_a_node_turn_from_running_to_finished(tmp_path, start_server):
    browser_or_skip()
    ws = make_ws(tmp_path / "ws", public=None)  # private: the page must carry the key to fetch and SSE
    s = start_server(ws)
    release, then = tmp_path / "release", tmp_path / "then"
    run_id = submit(s, [
        {"nodename": "start", "funcname": "Data.py/start"},
        {"nodename": "wait", "funcname": "Data.py/wait", "kwargs": {"release": str(release), "then": str(then)},
         "conditions": {"dependencies": ["start"]}},
        {"nodename": "report", "funcname": "Data.py/report", "conditions": {"dependencies": ["wait"]}},
    ])
    wait_state(s, run_id, "wait", "running")
    map_release = tmp_path / "map-release"
    fan_id = submit(s, FAN_OUT.replace("RELEASE", json.dumps(str(map_release))))
    ARTIFACTS.mkdir(exist_ok=True)
    shot, running_shot = ARTIFACTS / "ui-flow-run.png", ARTIFACTS / "ui-flow-running.png"
    map_shot, list_shot = ARTIFACTS / "ui-flow-map.png", ARTIFACTS / "ui-flow-runs.png"
    for p in (shot, running_shot, map_shot, list_shot):
        p.unlink(missing_ok=True)

    out = run_script("live_run.mjs", {
        "url": f"{s.base}/ui/flows/runs/{run_id}?_cokey={ADMIN_KEY}", "node": "wait", "release": str(release),
        "then": str(then), "hinted": "report", "screenshot": str(shot), "runningScreenshot": str(running_shot),
        "mapUrl": f"{s.base}/ui/flows/runs/{fan_id}?_cokey={ADMIN_KEY}", "mapNodes": ["square", "square[7]", "cube"],
        "mapScreenshot": str(map_shot), "mapRelease": str(map_release),
        "listUrl": f"{s.base}/ui/flows?_cokey={ADMIN_KEY}", "runId": run_id, "listScreenshot": str(list_shot),
    })

    assert out["problems"] == []
    assert out["before"]["state"] == "running" and out["before"]["row"] == "running"
    assert out["before"]["drawn"]["state"] == "running" and out["before"]["drawn"]["color"] == "#ffa500"
    assert out["after"]["state"] == "finished" and out["after"]["row"] == "finished"
    assert out["after"]["drawn"]["state"] == "finished" and out["after"]["drawn"]["color"] == "#2e9d4f"
    # live, in the same document: one navigation, and the change came over the event stream
    assert out["navigations"] == 1 and out["after"]["sameDocument"] and out["after"]["opens"] == 1
    seen = [(state, source) for node, state, source, _ in out["after"]["history"] if node == "wait"]
    assert seen[0][0] == "running" and ("finished", "sse") in seen, seen
    # a node inserted by the running task arrives as a graph event and rewires the drawing
    ins = out["inserted"]
    assert sorted(ins["loads"]) == ["fetch", "fetch", "snapshot"]  # the reads at connection only: the event did it
    assert ins["checked"]["after"] == ["wait"] and ins["report"]["after"] == ["checked"]
    assert ins["drawnReport"]["parents"] == ["checked"] and ins["drawnChecked"]["parents"] == ["wait"]
    # cloudmesh display hints of the last task's result: label, colour, shape, status
    hinted = out["hinted"]
    assert hinted["label"] == "the report\ndone!" and hinted["color"] == "#1e88e5" and hinted["shape"] == "diamond"
    # the details panel, opened by a click on the canvas, with what was stored
    d = out["details"]
    assert d["title"] == "wait" and d["state"] == "finished" and d["attempts"].startswith("1")
    assert json.loads(d["output"]) == {"waited_for": 3}
    assert d["started"] and d["finished"] and d["function"].endswith("Data.py/wait")
    assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert running_shot.stat().st_size > 10_000
    # before the map expands it is one plain node; its items then arrive live, as graph events
    assert out["mapBefore"]["square"]["items"] is None and out["mapBefore"]["square[7]"] is None
    arrived = {node for node, state, source, _ in out["mapHistory"] if source == "sse"}
    assert {"square[0]", "square[124]"} <= arrived
    # a map's items: 125 collapse to one node with a count, 5 are drawn inside their map's box
    square, item, cube = (out["map"][n] for n in ["square", "square[7]", "cube"])
    assert square["collapsed"] and square["items"] == 125 and "×125" in square["label"]
    assert item["drawn"] == "square"  # an item of a collapsed map is drawn as its map
    assert cube["group"] and cube["children"] == 5 and cube["items"] == 5
    assert out["mapRows"] == 125 + 5 + 5  # the table still lists every task
    assert map_shot.stat().st_size > 10_000
    # the list of runs: both runs, their states and task counts, links that keep the key
    listed = {r["id"]: r for r in out["list"]}
    assert set(listed) == {run_id, fan_id}
    assert listed[run_id]["state"] == "finished" and "4 finished" in listed[run_id]["tasks"]
    assert listed[run_id]["href"] == f"/ui/flows/runs/{run_id}?_cokey={ADMIN_KEY}"
    assert list_shot.stat().st_size > 5_000


def test_live_page_catches_up_after_the_server_restarts(tmp_path, start_server):
    """SIGKILL the server while the page follows a run; a new server on the same port resumes the
    run; the page's event stream reconnects, it reads the run once, and follows it to the end."""
    browser_or_skip()
    ws = make_ws(tmp_path / "ws")
    s = start_server(ws)
    release, ready = tmp_path / "release", tmp_path / "ready"
    run_id = submit(s, [
        {"nodename": "start", "funcname": "Data.py/start"},
        {"nodename": "wait", "funcname": "Data.py/wait", "kwargs": {"release": str(release)},
         "conditions": {"dependencies": ["start"]}},
    ])
    wait_state(s, run_id, "wait", "running")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "ui-flow-reconnected.png"
    shot.unlink(missing_ok=True)
    args = {"url": f"{s.base}/ui/flows/runs/{run_id}", "node": "wait", "ready": str(ready),
            "release": str(release), "screenshot": str(shot)}
    proc = subprocess.Popen(["node", str(REPO / "tests" / "ui" / "reconnect.mjs"), json.dumps(args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    again = None
    try:
        deadline = time.time() + 30
        while not ready.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert ready.exists(), proc.communicate()
        s.kill()
        again = Server(ws)  # same port, so the page's EventSource finds it again
        again.port, again.base = s.port, s.base
        again.client = httpx.Client(base_url=s.base, timeout=60)
        again.start()
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        if again is not None:
            again.stop()
    assert proc.returncode == 0, stderr
    out = json.loads(stdout.strip().splitlines()[-1])
    assert "error" not in out, out["error"]
    assert out["problems"] == []
    assert "reconnecting" in out["offline"]
    assert out["navigations"] == 1 and out["opens"] >= 2
    assert out["state"] == "finished" and out["row"] == "finished"
    # caught up by reading the run once on reconnection (and the snapshot the stream starts with)
    assert out["loads"].count("refetch") == out["opens"] - 1 and "snapshot" in out["loads"], out["loads"]
    assert out["attempts"] == "2"  # the restarted server ran the interrupted task again
    assert shot.stat().st_size > 10_000
