"""The workflow page and the query page: their API routes (`/flow/workflows/{wid}`, `/flow/source/...`)
over HTTP, then both pages in headless Chromium as a Read user and a View-only user."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import new_workspace
from ui_app import PASSWORD, add_users, browser_or_skip, run_ui

README = "# Calculator\n\nAdds **numbers** and draws series.\n\n<script>window.pwned = 1</script>\n"
CALC = '''
def Add(x: int, y: int) -> int:
    """Adds two integers."""
    return x + y

def Records() -> list:
    """A list of records."""
    return [{"name": "a", "value": 1.5}, {"name": "b", "value": 2.5}, {"name": "c", "value": 4}]

def Series(n: int = 8) -> list:
    """A numeric series."""
    return [i * i for i in range(n)]

def Hello(name: str = "world") -> str:
    return "hello " + name

def Fail():
    raise ValueError("this function fails")

### <api name="Secret">
###   <permissions><group id="Admins" permission="read"/></permissions>
### </api>
def Secret():
    return "secret"
'''
BROKEN = "def ok():\n    return 1\n\ndef broken(:\n    return 2\n"
READER, VIEWER, WRITER = "ada@example.com", "vic@example.com", "wes@example.com"


def make(tmp_path: Path):
    ws = new_workspace(tmp_path / "ws", name="Calc", public=None)
    ws.write("README.md", README)
    ws.add_query("Calc.py", CALC)
    ws.add_query("Broken.py", BROKEN)
    ws.write("Files/data.csv", "a,b\n1,2\n")
    ws.write("Files/secret.db", "not listed")
    ws.manifest["Files"] = [{"Name": "data.csv", "Content": "Files/data.csv"},
                            {"Name": "db", "Content": "Files/secret.db"},
                            {"Name": "config", "Content": "../coflows_config.json"}]
    ws.manifest["Pips"] = [{"ID": "six"}]
    ws.manifest["Flows"] = [{"Name": "daily", "Spec": "Calc.py/Series"}]
    ws.manifest["Permissions"].append({"ID": "someone@example.com", "Permission": 1})
    ws.save()
    wid = ws.manifest["ID"]
    keys = add_users(ws, {READER: {"name": "Ada", "grants": {wid: "read"}},
                          VIEWER: {"name": "Vic", "grants": {wid: "view"}},
                          WRITER: {"name": "Wes", "grants": {wid: "write"}}})
    return ws, wid, keys


@pytest.fixture
def calc(tmp_path, start_server):
    ws, wid, keys = make(tmp_path)
    return start_server(ws), wid, keys


def test_the_workflow_route_shows_the_page_data_by_level(calc):
    s, wid, keys = calc
    assert s.get(f"/flow/workflows/{wid}").status_code == 401
    assert s.get("/flow/workflows/nope", headers=s.admin()).status_code == 404
    view = s.get(f"/flow/workflows/{wid}", headers={"x-api-key": keys[VIEWER]}).json()
    assert view["name"] == "Calc" and view["level"] == 0
    assert view["readme"]["text"].startswith("# Calculator") and view["readme"]["truncated"] is False
    by_id = {q["id"]: q for q in view["queries"]}
    assert set(by_id["Calc.py"]["functions"]) >= {"Add", "Records", "Series", "Hello"}
    assert by_id["Calc.py"]["errors"] == []
    err = by_id["Broken.py"]["errors"][0]
    assert err["file"] == "Queries/Broken.py" and err["line"] == 4 and "SyntaxError" in err["message"]
    paths = [f["path"] for f in view["files"]["items"]]
    assert "Files/data.csv" in paths and "Queries/Calc.py" in paths
    assert not any(p.endswith(".db") or "coflows_config" in p or p.startswith("..") for p in paths)
    assert view["packages"]["pips"] == ["six"] and view["flows"][0]["name"] == "daily"
    assert view["permissions"] is None  # they name people: Write only
    write = s.get(f"/flow/workflows/{wid}", headers={"x-api-key": keys[WRITER]}).json()
    assert {"id": "someone@example.com", "level": 1} in write["permissions"]
    assert s.get(f"/flow/workflows/{wid}", headers=s.admin()).json()["permissions"]
    # by name too, as every other route
    assert s.get("/flow/workflows/Calc", headers={"x-api-key": keys[READER]}).json()["id"] == wid


def test_the_readme_is_capped(tmp_path, start_server):
    ws = new_workspace(tmp_path / "ws", name="Big")
    ws.write("README.md", "x" * (300 * 1024))
    s = start_server(ws)
    readme = s.get(f"/flow/workflows/{ws.manifest['ID']}", headers=s.admin()).json()["readme"]
    assert readme["truncated"] is True and len(readme["text"]) == 256 * 1024 and readme["size"] == 300 * 1024


def test_the_source_route_needs_read_and_names_error_lines(calc):
    s, wid, keys = calc
    reader = {"x-api-key": keys[READER]}
    assert s.get(f"/flow/source/{wid}/Calc.py").status_code == 401
    assert s.get(f"/flow/source/{wid}/Calc.py", headers={"x-api-key": keys[VIEWER]}).status_code == 403
    src = s.get(f"/flow/source/{wid}/Calc.py", headers=reader).json()
    assert "def Add(x: int, y: int)" in src["text"] and src["language"] == "python" and src["errors"] == []
    fns = {f["name"]: f for f in src["functions"]}
    assert fns["Secret"]["permissions"] == [{"group": "Admins", "level": 1}] and fns["Add"]["permissions"] is None
    broken = s.get(f"/flow/source/{wid}/Broken.py", headers=reader).json()
    assert broken["text"] == BROKEN and broken["errors"][0]["line"] == 4
    assert broken["errors"][0]["column"] is not None
    assert s.get(f"/flow/source/{wid}/Nope.py", headers=reader).status_code == 404
    assert s.get("/flow/source/nope/Calc.py", headers=s.admin()).status_code == 404
    for bad in ("../package.json", "..%2Fpackage.json", "Queries/../../coflows_config.json", "%2Fetc%2Fpasswd",
                "Calc.py/../../package.json", "..%2F..%2Fcoflows_config.json"):
        r = s.get(f"/flow/source/{wid}/{bad}", headers=s.admin())
        # a client may fold `..` before sending (then another route answers): never a file's content
        assert r.status_code in (404, 307), (bad, r.status_code, r.text[:200])
        assert "SecretKey" not in r.text and '"Queries"' not in r.text and "root:" not in r.text


def test_a_query_file_outside_the_folder_is_not_read(tmp_path, start_server):
    ws = new_workspace(tmp_path / "ws", name="Out")
    (tmp_path / "ws" / "outside.py").write_text("def f():\n    return 1\n")
    ws.manifest["Queries"].append({"Name": "Out.py", "Content": "../outside.py", "ID": "Out.py"})
    ws.save()
    s = start_server(ws)
    r = s.get(f"/flow/source/{ws.manifest['ID']}/Out.py", headers=s.admin())
    assert r.status_code == 404 and "def f" not in r.text


def test_workflow_and_query_pages(calc):
    browser_or_skip()
    s, wid, keys = calc
    out = run_ui("workflow.mjs", {"base": s.base, "email": READER, "password": PASSWORD, "wid": wid}, timeout=180)
    wf = out["workflow"]
    assert wf["basics"]["title"] == "Calc · coflows" and wf["basics"]["h1"] == ["Calc"]
    assert wf["basics"]["main"] == 1 and not wf["basics"]["overflowX"]
    assert wf["readmeHeading"] == "Calculator" and wf["scriptInReadme"] is False
    assert {"Calc.py", "Broken.py"} <= set(wf["queries"])
    assert any("Queries/Broken.py:4" in e for e in wf["errors"]), wf["errors"]
    assert "six" in wf["packages"] and "data.csv" in wf["files"]
    assert wf["permissionsShown"] is False
    assert wf["agentsLink"] == f"/ui/agents?workflow={wid}" and wf["flowsLink"] == f"/ui/flows?workflow={wid}"
    assert out["keyboardTo"] == f"/ui/workflows/{wid}/queries/Calc.py"  # Enter on the focused link
    assert not out["workflowNarrow"]["overflowX"]
    assert out["problems"] == []

    out = run_ui("query.mjs", {"base": s.base, "email": READER, "password": PASSWORD, "wid": wid,
                               "viewer": VIEWER}, timeout=180)
    q = out["query"]
    assert q["basics"]["title"].startswith("Calc.py") and q["basics"]["main"] == 1
    assert q["add"] == "3"
    assert q["recordsHeaders"] == ["name", "value"] and q["recordsRows"] == 3
    assert q["seriesCanvas"] is True
    assert f"/flow/query/{wid}/Calc.py/Add" in q["curl"] and "x-api-key: $KEY" in q["curl"]
    assert q["hello"] == "hello Ada"
    assert "this function fails" in q["failError"]
    assert "Admins" in q["secretPermissions"] and q["secretForms"] == 0
    assert not out["narrow"]["overflowX"]
    b = out["broken"]
    assert b["markedLines"] == [4] and "SyntaxError" in b["errorText"]
    v = out["viewer"]
    assert v["forms"] == 0 and "Read" in v["message"]
    assert v["forced"] == 403 and v["source"] == 0
    assert out["problems"] == [] and out["viewerProblems"] == []
    assert q["recordsChart"] is True and q["sourceLines"] >= 20


def test_package_json_readme_never_reads_outside_the_folder(tmp_path, start_server):
    ws = new_workspace(tmp_path / "ws", name="Out")
    ws.manifest["ReadMe"] = "../coflows_config.json"
    ws.save()
    s = start_server(ws)
    view = s.get(f"/flow/workflows/{ws.manifest['ID']}", headers=s.admin())
    assert view.status_code == 200 and view.json()["readme"] is None and "SecretKey" not in view.text
