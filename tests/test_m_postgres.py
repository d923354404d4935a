"""Two real server processes on one PostgreSQL database: a change made through one reaches the
other's agents and websocket clients (LISTEN/NOTIFY)."""

from __future__ import annotations

import uuid

import pytest

from conftest import new_workspace
from test_m_harness import Live, admin, m_server, postgres, wait_for  # noqa: F401 - fixtures

pytestmark = pytest.mark.postgres

WATCHER = '''
def Add(id, value):
    print("add", id)

def Exchange(id, value):
    print("exchange", id, value["n"])

def Remove(id, value):
    print("remove", id, value["n"])

AGENT = {"ID": "watcher", "MID": "orders"}
'''


def test_changes_cross_processes(tmp_path, postgres, m_server):  # noqa: F811
    url = postgres.create_database(f"two_{uuid.uuid4().hex[:8]}")
    servers = []
    for name in ("a", "b"):
        ws = new_workspace(tmp_path / name, Database={"Type": "postgres", "Connection": url})
        ws.add_agent("Watcher.py", WATCHER)
        ws.manifest["Agents"][-1]["PerReplica"] = True  # one instance per server (else one owner runs it)
        ws.save()
        servers.append(m_server(ws))
    a, b = servers
    live = Live(b.ws_url())
    try:
        live.subscribe("orders")
        entry_id = a.post("/m/add?type=orders", json={"n": 1}, headers=admin).json()["ID"]
        assert live.changes(1) == [{"TopicID": "orders", "ID": entry_id, "Type": 1, "Value": {"n": 1},
                                    "Version": 1}]
        a.post("/m/exchange?type=orders", json={"ID": entry_id, "Value": {"n": 2}}, headers=admin)
        a.post("/m/remove?type=orders", json={"ID": entry_id}, headers=admin)
        assert [(c["Type"], c["Value"], c["Version"]) for c in live.changes(2)] == [(3, {"n": 2}, 2),
                                                                                    (4, {"n": 2}, 2)]
        # both agents saw every change, in order: B's through NOTIFY, A's locally (the runs table is
        # shared by the two processes; `Node` tells them apart)
        def by_node():
            runs = b.get("/flow/agent/watcher/runs", headers=admin).json()
            nodes: dict[str, list[str]] = {}
            for r in reversed(runs):
                if r["Hook"] != "Load":
                    nodes.setdefault(r["Node"], []).append(r["Output"])
            return nodes if len(nodes) == 2 and all(len(v) == 3 for v in nodes.values()) else None

        expected = [f"add {entry_id}\n", f"exchange {entry_id} 2\n", f"remove {entry_id} 2\n"]
        assert list(wait_for(by_node).values()) == [expected, expected]
        # and the other way round, in bulk
        b.post("/m/addmany?type=orders", json=[{"n": k} for k in range(10, 60)], headers=admin)
        live_a = Live(a.ws_url())
        try:
            live_a.subscribe("orders")
            b.post("/m/add?type=orders", json={"n": 99}, headers=admin)
            # the tail of the bulk may still be arriving when the client subscribes: read until 99,
            # which must come (within the timeout) and come after every bulk value it follows
            seen = []
            while not seen or seen[-1] != {"n": 99}:
                seen.append(live_a.changes(1)[0]["Value"])
                assert len(seen) <= 51, seen
            assert all(v["n"] < 99 for v in seen[:-1])
        finally:
            live_a.close()
        assert len(live.changes(51)) == 51
    finally:
        live.close()
    assert len(a.get("/m/data?type=orders").json()) == 51
