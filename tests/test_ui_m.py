"""The M browser (`/ui/m`, `/ui/m/<topic>`) in headless Chromium: paging, search, add / edit / remove
for a Write user, live updates from another client, and no write controls (and a 403) for a Read user."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from conftest import ADMIN_KEY, new_workspace
from ui_app import PASSWORD, add_users, browser_or_skip, run_ui

WID = "11111111-2222-3333-4444-555555555555"
TOPIC = f"{WID}-orders"
WRITER, READER = "walt@example.com", "rita@example.com"
ADMIN = {"x-api-key": ADMIN_KEY}


def write_when_ready(base: str, signal: Path, done: dict) -> None:
    """Another client: once the page says it is live, add an entry over HTTP with the admin key."""
    deadline = time.monotonic() + 120
    while not signal.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    if signal.exists():
        r = httpx.post(f"{base}/m/add", params={"type": TOPIC}, json={"from": "another client"}, headers=ADMIN)
        done["status"] = r.status_code


def test_m_browser(tmp_path, start_server):
    browser_or_skip()
    ws = new_workspace(tmp_path / "ws", name="Shop", wid=WID, public=None)
    keys = add_users(ws, {WRITER: {"name": "Walt", "grants": {WID: "write"}},
                          READER: {"name": "Rita", "grants": {WID: "read"}}})
    s = start_server(ws)
    r = s.post(f"/m/addmany?type={TOPIC}", json=[{"n": i, "name": f"item {i}"} for i in range(250)], headers=ADMIN)
    assert r.status_code == 200, r.text
    signal = tmp_path / "live-ready"
    done: dict = {}
    writer = threading.Thread(target=write_when_ready, args=(s.base, signal, done), daemon=True)
    writer.start()
    out = run_ui("m.mjs", {"base": s.base, "topic": TOPIC, "signal": str(signal), "readerKey": keys[READER],
                           "writer": {"email": WRITER, "password": PASSWORD},
                           "reader": {"email": READER, "password": PASSWORD}}, timeout=240)
    writer.join(5)
    assert done == {"status": 200}

    # the topic list, the topic page's basics
    assert [TOPIC, "250", "write"] in out["topics"]
    assert out["topicsBasics"]["title"] == "M topics · coflows" and out["topicsBasics"]["h1"] == ["M topics"]
    assert out["basics"]["title"] == f"M: {TOPIC} · coflows" and out["basics"]["main"] == 1
    assert out["basics"]["h1"] == [f"M: {TOPIC}"] and not out["basics"]["overflowX"]
    # pages of 50, then 100; next / previous with the keyboard; the URL keeps the page
    assert out["first"] == {"range": "1–50 of 250", "rows": 50, "firstValue": '{"n":0,"name":"item 0"}'}
    assert out["page2"] == {"firstValue": '{"n":100,"name":"item 100"}', "rows": 100}
    assert out["page3"] == {"rows": 50, "nextDisabled": True}
    assert "offset=100" in out["url"] and "limit=100" in out["url"]
    # search: the server's substring match
    assert len(out["search"]) == 11 and all("item 7" in v for v in out["search"])
    # add through the form (invalid JSON is caught before sending)
    assert out["invalid"].startswith("Not JSON")
    assert out["added"] == "201–251 of 251"
    # another client's entry arrived live: flashed, announced, no reload
    assert out["live"] == {"range": "201–252 of 252", "sameDocument": True}
    assert out["liveRow"] == 1
    assert "1 new entry" in out["announce"]
    # edit (exchange) and remove (after a confirmation, which takes the focus)
    assert out["edited"][0] == '{"edited":true,"from":"another client"}' and out["edited"][1] == "2"
    assert out["confirmFocused"] == "Yes, remove"
    assert out["afterRemove"] == "201–251 of 251"
    values = [e["value"] for e in s.get(f"/m/entries?type={TOPIC}&offset=240", headers=ADMIN).json()["entries"]]
    assert {"from": "another client", "edited": True} in values and {"added": "by the form"} not in values
    # narrow
    assert not out["narrow"]["overflowX"] and out["narrowMenu"] is True
    assert out["problems"] == []

    # the reader: no write controls; a forced write with the session (and CSRF token) or the key is refused
    reader = out["reader"]
    assert not {"Edit", "Remove", "Add", "Save", "Yes, remove"} & set(reader["buttons"]), reader["buttons"]
    assert reader["textareas"] == 0 and reader["add"] is False and "Actions" not in reader["headers"]
    assert "your level: read" in reader["level"]
    assert out["readerProblems"] == []
    assert out["keyed"] == {"range": "1–50 of 251", "buttons": ["Previous", "Next"], "problems": []}
    assert out["forced"]["status"] == 403 and out["forced"]["body"]["error"]["type"] == "PermissionDenied"
    r = httpx.post(f"{s.base}/m/add", params={"type": TOPIC}, json={"forced": True}, headers={"x-api-key": keys[READER]})
    assert r.status_code == 403
    assert s.get(f"/m/entries?type={TOPIC}&q=forced", headers=ADMIN).json()["total"] == 0
