"""The example workspace in mnt/ works as the README says."""

import json
import shutil
from pathlib import Path

import pytest

from conftest import Workspace

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def example(tmp_path):
    """A copy of mnt/ with its own database, served like `bin/server.sh` serves it."""
    shutil.copytree(REPO / "mnt", tmp_path / "mnt",
                    ignore=shutil.ignore_patterns("database.db*", ".coflows", "pip", "jars", "nugets"))
    config = json.loads((REPO / "coflows_config.json").read_text())
    config["Server"]["SecretKey"] = "example-admin"
    manifest = json.loads((tmp_path / "mnt" / "package.json").read_text())
    ws = Workspace(tmp_path, manifest, config)
    ws.config_path.write_text(json.dumps(config))
    return ws


def test_readme_calls(example, start_server):
    s = start_server(example)
    base = "/flow/query/Example/PythonQuery.py"
    assert s.get(f"{base}/Add?p[0]=1&p[1]=2").json() == 3
    assert s.get(f"{base}/Add?x=1&y=2").json() == 3
    assert s.post(f"{base}/Add", json={"x": 1, "y": 2}).json() == 3
    assert s.get(f"{base}/Prices.csv?days=3").text.splitlines()[0] == "date,price,volume"
    assert s.get(f"{base}/Hello?name=you").json() == "Hello from Base, you!"
    r = s.get(f"{base}/Fail")
    assert r.status_code == 500 and r.json()["error"]["type"] == "ValueError"


def test_example_flow(example, start_server):
    s = start_server(example)
    run_id = s.post("/flows/Example/runs", json={"flow": "prices-report"}).json()["run_id"]
    import time
    deadline = time.time() + 30
    while (run := s.get(f"/flows/runs/{run_id}").json())["state"] not in ("finished", "failed"):
        assert time.time() < deadline
        time.sleep(0.05)
    assert run["state"] == "finished", run
    report = next(t for t in run["tasks"] if t["node"] == "Report")
    assert report["output"] == {"summary": {"days": 5, "average": 102.5}, "trend": [1.5, 2.5, 3.5]}
    assert report["hints"] == {"color": "green", "label": "average 102.50"}


def test_agents_in_every_language_acknowledge_an_order(example, start_server):
    import time

    s = start_server(example)
    admin = {"x-api-key": example.config["Server"]["SecretKey"]}
    listed = s.get("/flow/agents", headers=admin).json()
    assert isinstance(listed, list), listed
    agents = {a["ID"]: a for a in listed}
    assert {a["Language"] for a in agents.values()} == {"python", "csharp", "java", "javascript"}
    assert all(a["State"] == "running" for a in agents.values()), agents
    order_id = s.get("/flow/query/Example/PythonQuery.py/PlaceOrder?item=book&qty=2").json()
    topics = ["order-status", "order-status-cs", "order-status-java", "order-status-js"]
    deadline = time.time() + 20
    seen: dict[str, list] = {}
    while time.time() < deadline:
        seen = {t: s.get(f"/m/data?type={t}", headers=admin).json() for t in topics}
        if all(seen.values()):
            break
        time.sleep(0.1)
    assert all(seen.values()), seen
    assert any(order_id in str(v) for v in seen["order-status"])
