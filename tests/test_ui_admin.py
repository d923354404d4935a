"""The admin page and the profile page in a real browser (Playwright, headless Chromium), checked from
outside with httpx: the key an admin mints works and sees the workflow; a normal user's forced admin
request is refused; a user's own key works until revoked; a changed password replaces the old one."""

from __future__ import annotations

import datetime as dt

import httpx

from conftest import new_workspace
from ui_app import PASSWORD, add_users, browser_or_skip, run_ui

HELLO = "def hello():\n    return 'hi'\n"
NEW_PASSWORD = "a brand new password"


def _workspace(tmp_path):
    ws = new_workspace(tmp_path / "ws", name="Books", public=None, Auth={"CacheSeconds": 30})
    ws.add_query("Hello.py", HELLO)
    return ws


def test_admin_page_manages_users_groups_and_keys(tmp_path, start_server):
    browser_or_skip()
    ws = _workspace(tmp_path)
    wid = ws.manifest["ID"]
    keys = add_users(ws, {"root@example.com": {"name": "Root", "admin": True}, "joe@example.com": {"name": "Joe"}})
    s = start_server(ws)
    out = run_ui("admin.mjs", {"base": s.base, "admin": "root@example.com", "normal": "joe@example.com",
                               "password": PASSWORD, "workflow": wid, "newPassword": "newbie password"})
    assert out["basics"]["title"] == "Admin · coflows" and out["basics"]["h1"] == ["Admin"]
    assert out["basics"]["main"] == 1 and not out["basics"]["overflowX"]
    assert "newbie@example.com" in out["added"] and "Newbie" in out["added"]
    assert "Books: read" not in out["grantedRow"] and f"{wid}: read until" in out["grantedRow"]
    assert "newbie@example.com: read until" in out["groupRow"]
    assert out["key"].startswith("cfk_") and out["copied"] == out["key"] and out["keyRows"] == 1 and out["keyGone"]
    assert "temp@example.com" in out["confirm"] and out["removed"]
    assert not out["narrow"]["overflowX"] and out["narrowMenu"] is True
    assert out["problems"] == []

    # from outside: the minted key works and sees the workflow, with Read until the chosen day
    newbie = {"x-api-key": out["key"]}
    assert httpx.get(f"{s.base}/flow/query/{wid}/Hello.py/hello", headers=newbie).json() == "hi"
    assert [w["id"] for w in httpx.get(f"{s.base}/flow/workflows", headers=newbie).json()] == [wid]
    me = httpx.get(f"{s.base}/auth/me", headers=newbie).json()
    [group] = [g for g in me["groups"] if g["id"] == wid]
    expires = dt.datetime.fromisoformat(group["expires"])
    assert group["level"] == "read" and expires.astimezone().date().isoformat() == out["until"]
    # the password the admin set logs in; the removed user is gone; the group exists
    assert httpx.post(f"{s.base}/auth/login", json={"email": "newbie@example.com",
                                                   "password": "newbie password"}).status_code == 200
    users = {u["id"] for u in httpx.get(f"{s.base}/auth/users", headers={"x-api-key": keys["root@example.com"]}).json()}
    assert "temp@example.com" not in users and "newbie@example.com" in users

    # a normal user: no Admin link, the page says so, the forced requests are refused (session and key)
    assert "Admin" not in out["normalNav"]
    assert "admins only" in out["normalText"] and out["normalBasics"]["h1"] == ["Admin"]
    assert out["forced"]["status"] == 403 and out["forced"]["body"]["error"]["type"] == "PermissionDenied"
    r = httpx.post(f"{s.base}/auth/users", json={"email": "intruder@example.com"},
                   headers={"x-api-key": keys["joe@example.com"]})
    assert r.status_code == 403
    assert "intruder@example.com" not in users | {u["id"] for u in httpx.get(
        f"{s.base}/auth/users", headers={"x-api-key": keys["root@example.com"]}).json()}
    assert out["normalProblems"] == []


def test_profile_keys_and_password(tmp_path, start_server):
    browser_or_skip()
    ws = _workspace(tmp_path)
    wid = ws.manifest["ID"]
    add_users(ws, {"ann@example.com": {"name": "Ann", "grants": {wid: "read"}}})
    # a second membership with an expiry, shown in local time
    from coflows.auth.store import UserStore
    from coflows.store import Database

    db = Database(f"sqlite:///{ws.root / 'mnt' / 'database.db'}")
    until = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(days=10)
    UserStore(db).grant("Team", "ann@example.com", "view", until.timestamp())
    db.dispose()
    s = start_server(ws)
    base = {"base": s.base, "email": "ann@example.com", "password": PASSWORD, "newPassword": NEW_PASSWORD}

    out = run_ui("profile.mjs", {**base, "phase": "key", "expires": until.isoformat()})
    assert out["basics"]["title"] == "Profile · coflows" and out["basics"]["h1"] == ["Profile"]
    assert "ann@example.com" in out["identity"] and "Ann" in out["identity"] and "a login session" in out["identity"]
    groups = {row.split("\t")[0]: row for row in out["groups"]}
    assert "read" in groups[wid] and "never" in groups[wid]
    assert "view" in groups["Team"] and out["localExpiry"] in groups["Team"]
    key = out["key"]
    assert key.startswith("cfk_") and out["copied"] == key and out["focusedKey"] == "one-time-key"
    [row] = [r for r in out["keyRows"] if "laptop" in r]  # (add_users made a first key)
    assert len(out["keyRows"]) == 2 and "active" in row
    assert key not in out["afterReload"]  # shown once
    assert not out["narrow"]["overflowX"] and out["problems"] == []

    # the key works over HTTP, as Ann
    assert httpx.get(f"{s.base}/flow/query/{wid}/Hello.py/hello", headers={"x-api-key": key}).json() == "hi"

    out = run_ui("profile.mjs", {**base, "phase": "revoke"})
    assert "revoked" in out["revokedRow"]
    assert httpx.get(f"{s.base}/auth/me", headers={"x-api-key": key}).status_code == 401  # revoked, at once
    assert "current" in out["wrongCurrent"].lower()
    assert "changed" in out["changed"] and out["stillIn"] == 200
    assert out["problems"] == []
    assert httpx.post(f"{s.base}/auth/login", json={"email": "ann@example.com", "password": PASSWORD}).status_code == 401
    assert httpx.post(f"{s.base}/auth/login", json={"email": "ann@example.com",
                                                   "password": NEW_PASSWORD}).status_code == 200
