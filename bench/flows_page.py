"""Time to render the web app's pages: the live DAG page (500 nodes against 50), and the first render of
the dashboard and of an M topic with 10,000 entries for a logged-in user, in one run.

A real coflows server (SQLite) runs three flows to the end: a layered 50-node DAG (the
baseline), a layered 500-node DAG (25 layers of 20, each node after two of the layer above)
and a 500-item map (drawn collapsed). Headless Chromium (playwright-core, /usr/bin/chromium)
then opens each run's page in interleaved rounds and reads, from the page itself, the time
from navigation start to the graph drawn (fetch of the run, dagre layout, cytoscape build, two
frames). Prints the medians, the layout share and the 500/50 ratio (no assertions), and saves
a screenshot of each page in test-artifacts/.

First render (bench/first_render.mjs): a user with Write on the workflow logs in (session cookie);
fresh tabs then open `/ui` (the dashboard: the workspace's workflows with their queries, agents
and latest runs) and `/ui/m/<topic>` (a topic of 10,000 entries, its first page of 50) in
interleaved rounds. Each page marks when its content is drawn (`window.coflowsApp.rendered`, two
animation frames after the commit); the time from navigation start to that mark is printed,
median over the rounds, against the targets (dashboard ≤ 1 s, M topic ≤ 1.5 s).

    .venv/bin/python bench/flows_page.py [--rounds 7]

Needs `npm ci` (bin/setup.sh) and chromium (bin/setup.sh --test).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _common import PY, REPO, free_port, python_env, stop, wait_ready, write_workspace  # noqa: E402

MAP500 = """
name: fan
nodes:
  src: {function: Noop.py/items, kwargs: {n: 500}}
  each: {function: Noop.py/one, after: src, map: src}
"""
NOOP = "def noop():\n    return 1\n\ndef items(n: int):\n    return list(range(n))\n\ndef one(x):\n    return x\n"


def layered(layers: int, width: int) -> list[dict]:
    """ColonyOS-style nodes: `layers` × `width`, each node after two nodes of the layer above."""
    nodes = []
    for k in range(layers):
        for i in range(width):
            deps = [f"n{k - 1}_{i}", f"n{k - 1}_{(i + 1) % width}"] if k else []
            nodes.append({"nodename": f"n{k}_{i}", "funcname": "Noop.py/noop",
                          "conditions": {"dependencies": sorted(set(deps))}})
    return nodes


def run_to_end(client: httpx.Client, spec: object) -> str:
    r = client.post("/flows/Bench/runs", json={"spec": spec})
    r.raise_for_status()
    run_id = r.json()["run_id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        run = client.get(f"/flows/runs/{run_id}").json()
        if run["state"] in ("finished", "failed", "cancelled"):
            assert run["state"] == "finished", run.get("error")
            return run_id
        time.sleep(0.2)
    raise RuntimeError(f"run {run_id} did not finish")


EMAIL, PASSWORD = "bench@example.com", "bench password 1"
M_ENTRIES = 10_000
TARGETS = {"dashboard": 1000.0, "m10k": 1500.0}


def add_user(config: Path, workflow_id: str) -> None:
    """A user with Write on the workflow, made in the database before the server starts."""
    from coflows.auth.store import UserStore
    from coflows.config import load_config
    from coflows.store import Database, database_url

    cfg = load_config(str(config))
    db = Database(database_url(cfg.database.type, cfg.database.connection, cfg.base_dir))
    try:
        store = UserStore(db)
        store.add_user(EMAIL, "Bench", password=PASSWORD, admin=False)
        store.grant(workflow_id, EMAIL, "write")
    finally:
        db.dispose()


def fill_topic(client: httpx.Client, topic: str, n: int) -> None:
    for start in range(0, n, 2000):
        r = client.post("/m/addmany", params={"type": topic},
                        json=[{"n": i, "item": f"item {i}", "qty": i % 7, "note": "x" * (i % 40)}
                              for i in range(start, min(n, start + 2000))])
        r.raise_for_status()


def median(samples: list[dict], key: str) -> float:
    return statistics.median(s[key] for s in samples)


def measure(rounds: int = 7) -> dict[str, dict[str, list[dict]]]:
    """Run the three flows on a fresh server, fill an M topic, and time the pages in Chromium:
    {"dag": samples per run page, "first": samples per app page}."""
    if not (REPO / "node_modules" / "playwright-core").is_dir():
        raise SystemExit("node_modules missing: run bin/setup.sh (npm ci)")
    with tempfile.TemporaryDirectory(prefix="coflows-bench-page-") as tmp:
        config = write_workspace(Path(tmp), "Bench", {"Noop.py": NOOP})
        workflow_id = json.loads((Path(tmp) / "mnt" / "package.json").read_text())["ID"]
        add_user(config, workflow_id)
        topic = f"{workflow_id}-orders"
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen([PY, "-m", "coflows", "server", str(config), "--port", str(port)], cwd=tmp,
                                env=python_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_ready(f"{base}/health", proc)
            with httpx.Client(base_url=base, timeout=60, headers={"x-api-key": "bench"}) as client:
                fill_topic(client, topic, M_ENTRIES)
                runs = {
                    "dag50": run_to_end(client, layered(5, 10)),
                    "dag500": run_to_end(client, layered(25, 20)),
                    "map500": run_to_end(client, MAP500),
                }
            shots = REPO / "test-artifacts"
            shots.mkdir(exist_ok=True)
            urls = {name: f"{base}/ui/flows/runs/{rid}" for name, rid in runs.items()}
            proc_js = subprocess.run(["node", str(REPO / "tests" / "ui" / "render_time.mjs"),
                                      json.dumps({"urls": urls, "rounds": rounds, "warmup": 1,
                                                  "screenshotDir": str(shots)})],
                                     capture_output=True, text=True, cwd=REPO, timeout=600)
            if proc_js.returncode != 0:
                raise SystemExit(proc_js.stderr)
            dag = json.loads(proc_js.stdout.strip().splitlines()[-1])
            pages = {"dashboard": {"url": f"{base}/ui", "marker": "dashboard"},
                     "m10k": {"url": f"{base}/ui/m/{topic}", "marker": "m"}}
            first_js = subprocess.run(["node", str(REPO / "bench" / "first_render.mjs"),
                                       json.dumps({"base": base, "email": EMAIL, "password": PASSWORD, "pages": pages,
                                                   "rounds": rounds, "warmup": 1, "screenshotDir": str(shots)})],
                                      capture_output=True, text=True, cwd=REPO, timeout=600)
            if first_js.returncode != 0:
                raise SystemExit(first_js.stderr)
            return {"dag": dag, "first": json.loads(first_js.stdout.strip().splitlines()[-1])}
        finally:
            stop(proc)


def report(results: dict[str, dict[str, list[dict]]], rounds: int) -> None:
    samples = results["dag"]
    print(f"DAG page render in headless Chromium, median of {rounds} rounds (ms; navigation start → drawn)")
    print(f"{'run':8} {'tasks':>6} {'ready':>8} {'fetch':>8} {'layout':>8} {'(dagre':>8} {'cy add':>8} {'fit)':>8} {'wall':>8}")
    for name, s in samples.items():
        print(f"{name:8} {s[0]['nodes']:>6} {median(s, 'readyMs'):>8.1f} {median(s, 'fetchMs'):>8.1f} "
              f"{median(s, 'layoutMs'):>8.1f} {median(s, 'dagreMs'):>8.1f} {median(s, 'drawMs'):>8.1f} {median(s, 'fitMs'):>8.1f} "
              f"{median(s, 'wallMs'):>8.1f}")
    ratio = median(samples["dag500"], "readyMs") / median(samples["dag50"], "readyMs")
    print(f"dag500 / dag50 ready time: {ratio:.2f}x (10x the tasks)")
    print(f"screenshots: {REPO / 'test-artifacts'}/ui-dag50.png, ui-dag500.png, ui-map500.png")
    first = results["first"]
    print()
    print(f"First render for a logged-in user, median of {rounds} rounds (ms from navigation start)")
    print(f"{'page':10} {'shows':>14} {'html':>8} {'dom':>8} {'rendered':>9} {'target':>8}  {'wall':>8}")
    for name, s in first.items():
        rows = s[0]["rows"]
        shows = {"dashboard": f"{rows} workflow{'s' * (rows != 1)}", "m10k": f"{rows} of {M_ENTRIES:,}"}
        got, target = median(s, "renderedMs"), TARGETS[name]
        print(f"{name:10} {shows.get(name, rows):>14} {median(s, 'responseMs'):>8.1f} {median(s, 'domMs'):>8.1f} {got:>9.1f} "
              f"{'≤ ' + format(target, '.0f'):>8}  {median(s, 'wallMs'):>8.1f}  {'ok' if got <= target else 'OVER'}")
    print(f"screenshots: {REPO / 'test-artifacts'}/ui-first-dashboard.png, ui-first-m10k.png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    opts = ap.parse_args()
    report(measure(opts.rounds), opts.rounds)


if __name__ == "__main__":
    main()
