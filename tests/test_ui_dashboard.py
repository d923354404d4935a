"""The web app's entry: `/` → the login page, then the dashboard (Playwright, headless Chromium)."""

from __future__ import annotations

import httpx

from conftest import new_workspace
from ui_app import PASSWORD, add_users, browser_or_skip, run_ui

CALC = "def Add(x: int, y: int) -> int:\n    return x + y\n"


def test_pages_are_served_to_anyone_and_hold_no_data(tmp_path, start_server):
    ws = new_workspace(tmp_path / "ws", public=None)
    s = start_server(ws)
    r = httpx.get(s.base + "/", follow_redirects=False)
    assert r.status_code in (302, 307) and r.headers["location"] == "/ui"
    for path in ("/ui", "/ui/login", "/ui/m/some-topic", "/ui/workflows/x/queries/a/b.py", "/ui/admin"):
        page = httpx.get(s.base + path)
        assert page.status_code == 200 and "<div id=\"app\">" in page.text, path
    assert httpx.get(s.base + "/ui/static/app.js").headers["content-type"].startswith("text/javascript")
    assert httpx.get(s.base + "/ui/static/pages/login.js").status_code == 200
    for bad in ("/ui/static/..%2F..%2Fapp.py", "/ui/static/../ui.py", "/ui/static/.hidden", "/ui/static/nope.js"):
        assert httpx.get(s.base + bad).status_code == 404, bad
    assert httpx.get(s.base + "/ui/vendor/preact.mjs").status_code == 200
    health = httpx.get(s.base + "/health").json()
    assert health["login"] == {"password": True, "oidc": False} and health["uptime_s"] >= 0


def test_login_then_dashboard(tmp_path, start_server):
    browser_or_skip()
    ws = new_workspace(tmp_path / "ws", name="Calc", public=None)
    ws.add_query("Calc.py", CALC)
    add_users(ws, {"ada@example.com": {"name": "Ada", "grants": {ws.manifest["ID"]: "read"}}})
    s = start_server(ws)
    out = run_ui("dashboard.mjs", {"base": s.base, "email": "ada@example.com", "password": PASSWORD})
    assert out["anonymous"]["url"] == "/ui" and out["anonymous"]["title"] == "Log in · coflows"
    assert "wrong email or password" in out["wrong"].lower()
    assert out["dashboard"]["cards"] == ["Calc"]
    assert "Calc.py" in out["dashboard"]["queries"]
    assert "ok" in out["dashboard"]["health"] and out["dashboard"]["user"] == "Ada"
    assert out["basics"]["title"] == "Dashboard · coflows" and out["basics"]["main"] == 1
    assert out["basics"]["h1"] == ["Dashboard"] and not out["basics"]["overflowX"]
    assert not out["narrow"]["overflowX"] and out["narrowMenu"] is True
    assert out["problems"] == []
