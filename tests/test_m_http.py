"""M over HTTP and the /live websocket, against a real server process."""

from __future__ import annotations

import pytest

from conftest import new_workspace
from test_m_harness import Live, admin, m_server  # noqa: F401 - fixture

ORDERS_QUERY = '''
from coflows.m import M

def PlaceOrder(item: str, qty: int):
    return M.Base("orders").Add({"item": item, "qty": qty})
'''


@pytest.fixture
def server(tmp_path, m_server):  # noqa: F811
    ws = new_workspace(tmp_path / "ws")  # Public may Read; admin writes
    ws.add_query("Orders.py", ORDERS_QUERY)
    return m_server(ws)


def test_rest_round_trip(server):
    r = server.post("/m/add?type=orders", json={"item": "tea", "qty": 2}, headers=admin)
    assert r.status_code == 200, r.text
    entry_id = r.json()["ID"]
    assert r.json()["Created"] is True
    again = server.post("/m/add?type=orders", json={"qty": 2, "item": "tea"}, headers=admin).json()
    assert again == {"ID": entry_id, "Created": False}
    ids = server.post("/m/addmany?type=orders", json=[{"item": "cake", "qty": 1}, {"item": "tea", "qty": 2}],
                      headers=admin).json()["IDs"]
    assert ids[1] == entry_id
    assert server.get("/m/data?type=orders").json() == [{"item": "tea", "qty": 2}, {"item": "cake", "qty": 1}]
    raw = server.get("/m/rawdata?type=orders").json()
    assert raw[0] == {"ID": "orders", "EntryID": entry_id, "Entry": {"item": "tea", "qty": 2}, "Version": 1}
    r = server.post("/m/exchange?type=orders", json={"ID": entry_id, "Value": {"item": "tea", "qty": 3},
                                                    "Version": 1}, headers=admin)
    assert r.json() == {"ID": entry_id, "Version": 2, "Entry": {"item": "tea", "qty": 3}}
    r = server.post("/m/exchange?type=orders", json={"Old": {"item": "cake", "qty": 1},
                                                    "Value": {"item": "cake", "qty": 4}}, headers=admin)
    assert r.status_code == 200 and r.json()["ID"] == ids[0]
    assert server.get(f"/m/entry?type=orders&id={entry_id}").json()["Version"] == 2
    assert server.post("/m/remove?type=orders", json={"ID": entry_id}, headers=admin).json() == {"Removed": True}
    assert server.post("/m/remove?type=orders", json={"Value": {"item": "cake", "qty": 4}},
                       headers=admin).status_code == 200
    assert server.get("/m/data?type=orders").json() == []
    assert server.get("/m/save?type=orders", headers=admin).json() == {"Saved": True}
    server.post("/m/add?type=other", json=1, headers=admin)
    assert {"Topic": "other", "Count": 1, "Level": "write"} in server.get("/m/topics", headers=admin).json()


def test_bad_input_is_a_400_that_names_the_problem(server):
    r = server.post("/m/add?type=orders", content=b'{"item": "tea",', headers=admin)
    assert r.status_code == 400 and "invalid JSON" in r.json()["error"]["message"]
    assert "line 1 column" in r.json()["error"]["message"]
    r = server.post("/m/add?type=orders", content=b"", headers=admin)
    assert r.status_code == 400 and "empty body" in r.json()["error"]["message"]
    r = server.post("/m/add", json=1, headers=admin)
    assert r.status_code == 400 and "'type'" in r.json()["error"]["message"]
    r = server.post("/m/addmany?type=orders", json={"not": "a list"}, headers=admin)
    assert r.status_code == 400 and "array" in r.json()["error"]["message"]
    r = server.post("/m/exchange?type=orders", json={"ID": "x"}, headers=admin)
    assert r.status_code == 400 and "'Value'" in r.json()["error"]["message"]
    r = server.post("/m/exchange?type=orders", json={"ID": "x", "Old": 1, "Value": 2}, headers=admin)
    assert r.status_code == 400 and "exactly one" in r.json()["error"]["message"]
    r = server.post("/m/exchange?type=orders", json={"ID": "x", "Value": 2, "Version": "1"}, headers=admin)
    assert r.status_code == 400 and "'Version'" in r.json()["error"]["message"]
    r = server.post("/m/add?type=orders", content=b'{"x": NaN}', headers=admin)
    assert r.status_code == 400 and "must be JSON" in r.json()["error"]["message"]
    r = server.post("/m/exchange?type=orders", json={"ID": "no-such-id", "Value": 2}, headers=admin)
    assert r.status_code == 404
    r = server.post("/m/remove?type=orders", json={"ID": "no-such-id"}, headers=admin)
    assert r.status_code == 404
    assert server.get("/m/entry?type=orders&id=no-such-id").status_code == 404
    # a topic nobody wrote to is empty, not an error
    assert server.get("/m/data?type=never-written").json() == []
    assert server.get("/m/rawdata?type=never-written").json() == []


def test_version_conflict_is_409(server):
    entry_id = server.post("/m/add?type=stock", json={"sku": 1, "n": 5}, headers=admin).json()["ID"]
    ok = server.post("/m/exchange?type=stock", json={"ID": entry_id, "Value": {"sku": 1, "n": 4}, "Version": 1},
                     headers=admin)
    late = server.post("/m/exchange?type=stock", json={"ID": entry_id, "Value": {"sku": 1, "n": 3}, "Version": 1},
                       headers=admin)
    assert ok.status_code == 200 and late.status_code == 409
    assert late.json()["error"]["type"] == "ConflictError" and "version 2, not 1" in late.json()["error"]["message"]
    assert server.get("/m/data?type=stock").json() == [{"sku": 1, "n": 4}]


def test_permissions(server, tmp_path, m_server):  # noqa: F811
    # Public has Read: anonymous may read but not write
    assert server.get("/m/data?type=orders").status_code == 200
    r = server.post("/m/add?type=orders", json=1)
    assert r.status_code == 401
    assert server.post("/m/add?type=orders", json=1, headers={"x-api-key": "wrong"}).status_code == 401
    # no Public grant: anonymous may not read either
    private = m_server(new_workspace(tmp_path / "private", public=None))
    assert private.get("/m/data?type=orders").status_code == 401
    assert private.get("/m/data?type=orders", headers=admin).status_code == 200
    # Public Write: anonymous may write
    open_ws = m_server(new_workspace(tmp_path / "open", public=2))
    assert open_ws.post("/m/add?type=orders", json=1).status_code == 200


def test_a_query_writes_to_m(server):
    wid = "11111111-2222-3333-4444-555555555555"
    r = server.get(f"/flow/query/{wid}/Orders.py/PlaceOrder?item=scone&qty=3")
    assert r.status_code == 200, r.text
    assert server.get("/m/rawdata?type=orders").json()[0]["EntryID"] == r.json()


def test_writes_survive_kill_9(tmp_path, m_server):  # noqa: F811
    ws = new_workspace(tmp_path / "ws")
    ws.add_query("Orders.py", ORDERS_QUERY)
    s = m_server(ws)
    wid = "11111111-2222-3333-4444-555555555555"
    via_rest = s.post("/m/add?type=orders", json={"item": "rest"}, headers=admin).json()["ID"]
    via_query = s.get(f"/flow/query/{wid}/Orders.py/PlaceOrder?item=query&qty=1").json()
    s.kill()  # SIGKILL right after the calls returned: no shutdown, no Save()
    again = m_server(ws)
    ids = {e["EntryID"] for e in again.get("/m/rawdata?type=orders").json()}
    assert {via_rest, via_query} <= ids


def test_live_websocket_receives_changes(server):
    live = Live(server.ws_url())
    try:
        live.subscribe("orders")
        entry_id = server.post("/m/add?type=orders", json={"item": "tea"}, headers=admin).json()["ID"]
        server.post("/m/add?type=elsewhere", json={"item": "not for us"}, headers=admin)
        server.post("/m/exchange?type=orders", json={"ID": entry_id, "Value": {"item": "chai"}}, headers=admin)
        server.post("/m/remove?type=orders", json={"ID": entry_id}, headers=admin)
        got = live.changes(3)
        assert got == [
            {"TopicID": "orders", "ID": entry_id, "Type": 1, "Value": {"item": "tea"}, "Version": 1},
            {"TopicID": "orders", "ID": entry_id, "Type": 3, "Value": {"item": "chai"}, "Version": 2},
            {"TopicID": "orders", "ID": entry_id, "Type": 4, "Value": {"item": "chai"}, "Version": 2},
        ]
        # a client may write too (needs Write; this one is admin); its change comes back to it
        live.send({"Type": 14, "Content": {"TopicID": "orders", "Type": 1, "Value": {"item": "from ws"}}})
        assert live.changes(1)[0]["Value"] == {"item": "from ws"}
        assert server.get("/m/data?type=orders").json() == [{"item": "from ws"}]
        live.send("not json")
        assert live.recv()["Type"] == 0
    finally:
        live.close()


def test_live_checks_permissions(tmp_path, m_server):  # noqa: F811
    s = m_server(new_workspace(tmp_path / "private", public=None))
    live = Live(s.ws_url(key=None))
    try:
        live.send({"Type": 1, "Content": "orders"})
        msg = live.recv()
        assert msg["Type"] == 0 and "API key" in msg["Content"]["Error"]
        live.send({"Type": 14, "Content": {"TopicID": "orders", "Type": 1, "Value": 1}})
        assert live.recv()["Type"] == 0
    finally:
        live.close()
    assert s.get("/m/data?type=orders", headers=admin).json() == []
    from websockets.exceptions import InvalidStatus, ConnectionClosed

    with pytest.raises((InvalidStatus, ConnectionClosed, OSError)):
        bad = Live(s.ws_url(key="wrong"))
        bad.recv(timeout=5)
