"""`GET /m/entries`: one page of an M topic, searched in SQL (the web app's M browser reads it)."""

from __future__ import annotations

import pytest

from conftest import new_workspace
from test_m_harness import admin, m_server  # noqa: F401 - fixture
from ui_app import add_users

WID = "11111111-2222-3333-4444-555555555555"
TOPIC = f"{WID}-orders"


@pytest.fixture
def server(tmp_path, m_server):  # noqa: F811
    ws = new_workspace(tmp_path / "ws", public=None)
    keys = add_users(ws, {"rita@example.com": {"grants": {WID: "read"}},
                          "walt@example.com": {"grants": {WID: "write"}},
                          "nobody@example.com": {}})
    s = m_server(ws)
    s.keys = keys
    r = s.post(f"/m/addmany?type={TOPIC}", json=[{"n": i, "name": f"item {i}"} for i in range(250)], headers=admin)
    assert r.status_code == 200, r.text
    return s


def page(s, headers=admin, **params):
    return s.get("/m/entries", params={"type": TOPIC, **params}, headers=headers)


def test_pages_in_insertion_order_with_the_total(server):
    first = page(server, limit=100).json()
    assert first["total"] == 250 and first["offset"] == 0 and first["limit"] == 100
    assert [e["value"]["n"] for e in first["entries"]] == list(range(100))
    e = first["entries"][0]
    assert set(e) == {"id", "value", "version", "updated"} and e["version"] == 1 and e["updated"].endswith("Z")
    last = page(server, offset=200, limit=100).json()
    assert [e["value"]["n"] for e in last["entries"]] == list(range(200, 250))
    assert page(server).json()["limit"] == 100  # the default
    beyond = page(server, offset=250).json()
    assert beyond["entries"] == [] and beyond["total"] == 250
    assert page(server, offset=10**9).json()["entries"] == []
    # ids match the legacy listing; the old shape of /m/rawdata is unchanged
    raw = server.get(f"/m/rawdata?type={TOPIC}", headers=admin).json()
    assert raw[0] == {"ID": TOPIC, "EntryID": first["entries"][0]["id"], "Entry": {"n": 0, "name": "item 0"},
                      "Version": 1}
    assert page(server, type="never-written").json()["total"] == 0


@pytest.mark.parametrize(("params", "name"), [
    ({"limit": "0"}, "limit"), ({"limit": "1001"}, "limit"), ({"limit": "abc"}, "limit"),
    ({"offset": "-1"}, "offset"), ({"offset": "x"}, "offset"), ({"q": "x" * 201}, "q"),
])
def test_bad_bounds_are_a_400_naming_the_parameter(server, params, name):
    r = page(server, **params)
    assert r.status_code == 400, r.text
    assert f"'{name}'" in r.json()["error"]["message"]


def test_bounds_that_are_allowed(server):
    assert len(page(server, limit=1).json()["entries"]) == 1
    assert len(page(server, limit=1000).json()["entries"]) == 250


def test_search_is_a_case_insensitive_substring_with_literal_wildcards(server):
    values = [{"s": "100% sure"}, {"s": "100 percent"}, {"s": "snake_case"}, {"s": "snakeXcase"},
              {"s": "back\\slash"}, {"s": "TEA time"}]
    assert server.post(f"/m/addmany?type={TOPIC}", json=values, headers=admin).status_code == 200

    def found(q):
        return [e["value"] for e in page(server, q=q, limit=1000).json()["entries"]]

    assert found("100%") == [{"s": "100% sure"}]  # % is not "anything"
    assert found("e_c") == [{"s": "snake_case"}]  # _ is not "any character"
    assert found("%") == [{"s": "100% sure"}]
    assert found("tea TIME") == [{"s": "TEA time"}]
    assert found('"n":7,') == [{"n": 7, "name": "item 7"}]  # the entry's canonical JSON text
    r = page(server, q="item 1", limit=5).json()
    assert r["total"] == 111 and r["q"] == "item 1"  # 1, 10-19, 100-199
    assert [e["value"]["n"] for e in r["entries"]] == [1, 10, 11, 12, 13]
    assert [e["value"]["n"] for e in page(server, q="item 1", offset=110).json()["entries"]] == [199]
    entry_id = page(server, limit=1).json()["entries"][0]["id"]
    assert [e["id"] for e in page(server, q=entry_id).json()["entries"]] == [entry_id]
    assert page(server, q="no such text").json() == {**page(server, q="no such text").json(), "total": 0,
                                                      "entries": []}


def test_levels_as_the_other_reads_and_the_callers_level_in_the_answer(server):
    assert page(server, headers={}).status_code == 401
    assert page(server, headers={"x-api-key": server.keys["nobody@example.com"]}).status_code == 403
    read = page(server, headers={"x-api-key": server.keys["rita@example.com"]})
    assert read.status_code == 200 and read.json()["level"] == "read"
    assert page(server, headers={"x-api-key": server.keys["walt@example.com"]}).json()["level"] == "write"
    assert page(server).json()["level"] == "write"  # the admin key
    topics = server.get("/m/topics", headers={"x-api-key": server.keys["rita@example.com"]}).json()
    assert {"Topic": TOPIC, "Count": 250, "Level": "read"} in topics
    topics = server.get("/m/topics", headers={"x-api-key": server.keys["walt@example.com"]}).json()
    assert {"Topic": TOPIC, "Count": 250, "Level": "write"} in topics
    assert server.get("/m/topics", headers={"x-api-key": server.keys["nobody@example.com"]}).json() == []
