"""Mistakes are refused, not accepted silently: exit 2, a message naming the file and the field, nothing created."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ADMIN_KEY, new_workspace

QUERY = "def F():\n    return 1\n"

AGENT = '''from coflows.agents.definition import FPKG

def Job(timestamp, execution_type):
    pass

def pkg():
    return FPKG("{id}", "$WID$", "{name}", "", None, None, None, None, None, None, {schedule!r}, Job)
'''


def run(ws, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "coflows", *args], capture_output=True, text=True,
                          cwd=ws.root, timeout=timeout)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` with its contents: to show a failed build wrote nothing."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def agent(ws, file: str, *, agent_id: str, schedule: str = "0 * * ? * *", exe: str = "pkg", text: str | None = None):
    ws.add_agent(file, text or AGENT.format(id=agent_id, name=Path(file).stem, schedule=schedule), exe=exe)


def assert_refused(r: subprocess.CompletedProcess, *needles: str) -> None:
    assert r.returncode == 2, r.stdout + r.stderr
    for n in needles:
        assert n in r.stderr, (n, r.stderr)
    assert "Traceback" not in r.stdout + r.stderr


def test_duplicate_query_id_is_refused(tmp_path):
    ws = new_workspace(tmp_path / "ws")
    ws.add_query("A.py", QUERY, query_id="Same.py")
    ws.add_query("B.py", QUERY, query_id="Same.py")
    before = snapshot(ws.root)
    r = run(ws, "build", "local")
    assert_refused(r, f"{ws.mnt / 'package.json'}: Queries[1].ID: duplicate query ID 'Same.py' (also Queries[0])")
    assert snapshot(ws.root) == before  # no database, no .coflows, package.json untouched


def test_a_scanned_file_clashing_with_a_listed_id_is_refused(tmp_path):
    ws = new_workspace(tmp_path / "ws")
    ws.add_query("sub/a.py", QUERY, query_id="a.py")  # listed under the ID a new Queries/a.py would get
    ws.write("Queries/a.py", QUERY)
    before = snapshot(ws.root)
    r = run(ws, "build", "local")
    assert_refused(r, "Queries[1].ID: duplicate query ID 'a.py' (also Queries[0])")
    assert snapshot(ws.root) == before


def test_duplicate_agent_name_is_refused(tmp_path):
    ws = new_workspace(tmp_path / "ws")
    agent(ws, "Ag.py", agent_id="one")
    ws.manifest["Agents"].append(dict(ws.manifest["Agents"][0]))
    ws.save()
    before = snapshot(ws.root)
    r = run(ws, "build", "local")
    assert_refused(r, "Agents[1].Name: duplicate agent name 'Ag.py' (also Agents[0])")
    assert snapshot(ws.root) == before


def test_missing_database_directory_is_refused_and_not_created(tmp_path):
    ws = new_workspace(tmp_path / "ws", Database={"Type": "sqlite", "Connection": "no/such/dir/db.sqlite"})
    ws.add_query("A.py", QUERY)
    before = snapshot(ws.root)
    r = run(ws, "build", "local")
    assert_refused(r, f"{ws.config_path}: Database.Connection: directory '{ws.root / 'no/such/dir'}' does not exist")
    assert not (ws.root / "no").exists()
    assert snapshot(ws.root) == before


@pytest.mark.parametrize("case, needles", [
    ("bad cron", ["Agents/Ag.py: ScheduleCommand: agent 'ag-1': schedule '0 99 * ? * *': field minute: "
                  "value 99 out of range 0-59"]),
    ("missing factory", ["package.json: Agents[0].Exe: Agents/Ag.py: no function 'make()'"]),
    ("failing factory", ["package.json: Agents[0].Exe: Agents/Ag.py: pkg() failed: ", "no factory today"]),
    ("duplicate id", ["Agents/Ag2.py: ID: duplicate agent ID 'ag-1' (also ", "Agents/Ag.py)"]),
    ("id with a slash", ["package.json: Agents[0].Exe: agent in Agents/Ag.py: ID 'a/b': must be at most 255 "
                         "characters, without '/'"]),
])
def test_bad_agents_fail_the_build(tmp_path, case, needles):
    ws = new_workspace(tmp_path / "ws")
    ws.add_query("A.py", QUERY)
    if case == "bad cron":
        agent(ws, "Ag.py", agent_id="ag-1", schedule="0 99 * ? * *")
    elif case == "missing factory":
        agent(ws, "Ag.py", agent_id="ag-1", exe="make")
    elif case == "failing factory":
        agent(ws, "Ag.py", agent_id="ag-1", text="def pkg():\n    raise RuntimeError('no factory today')\n")
    elif case == "id with a slash":
        agent(ws, "Ag.py", agent_id="a/b")
    else:
        agent(ws, "Ag.py", agent_id="ag-1")
        agent(ws, "Ag2.py", agent_id="ag-1")
    r = run(ws, "build", "local")
    assert_refused(r, *needles)
    assert not (ws.mnt / "database.db").exists() and not (ws.mnt / ".coflows" / "secret_key").exists()


def test_good_agents_build(tmp_path):
    ws = new_workspace(tmp_path / "ws")
    agent(ws, "Ag.py", agent_id="ag-1")
    r = run(ws, "build", "local")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ag-1" in r.stdout and "Success" in r.stdout
    assert not (ws.mnt / "database.db").exists()  # the build opens no database


def test_server_refuses_to_start_on_a_duplicate_id_or_a_missing_database_folder(tmp_path):
    dup = new_workspace(tmp_path / "dup")
    dup.add_query("A.py", QUERY, query_id="Same.py")
    dup.add_query("B.py", QUERY, query_id="Same.py")
    nodir = new_workspace(tmp_path / "nodir", Database={"Type": "sqlite", "Connection": "gone/db.sqlite"})
    for ws, needle in ((dup, "Queries[1].ID: duplicate query ID 'Same.py'"),
                       (nodir, "Database.Connection: directory")):
        before = snapshot(ws.root)
        r = run(ws, "server", str(ws.config_path), "--port", "0", timeout=120)
        assert_refused(r, needle)
        assert snapshot(ws.root) == before


def test_server_serves_the_rest_when_an_agent_is_bad(tmp_path, start_server):
    """Not a refusal at start: the bad agent is in state error with its reason; the rest serves."""
    ws = new_workspace(tmp_path / "ws")
    ws.add_query("A.py", QUERY)
    agent(ws, "Bad.py", agent_id="bad-1", schedule="not a cron")
    agent(ws, "Good.py", agent_id="good-1")
    s = start_server(ws)
    assert s.get(f"/flow/query/{ws.manifest['ID']}/A.py/F").json() == 1
    agents = {a["ID"]: a for a in s.get("/flow/agents", headers={"x-api-key": ADMIN_KEY}).json()}
    assert agents["good-1"]["State"] != "error"
    assert agents["bad-1"]["State"] == "error"
    assert "schedule 'not a cron': expected 6 or 7 fields" in agents["bad-1"]["Error"]


def test_add_query_refuses_an_id_already_listed(tmp_path):
    ws = new_workspace(tmp_path / "ws")
    ws.add_query("sub/N.py", QUERY, query_id="N.py")
    r = run(ws, "add", "query", "py", "N", "--config", str(ws.config_path))
    assert r.returncode == 2 and "already listed" in r.stderr
    assert not (ws.mnt / "Queries" / "N.py").exists()
    assert json.loads((ws.mnt / "package.json").read_text())["Queries"] == ws.manifest["Queries"]
