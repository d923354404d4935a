"""Agents on replicas sharing one PostgreSQL database: leases (take, renew, expire, fence), cron
firings claimed once, M changes handled once; and real servers: one cron agent and one M agent
over three replicas, the owner killed with SIGKILL, every firing and change exactly once."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from coflows.agents.lease import LeaseKeeper, LeaseTable, firings, leases
from coflows.store import Database
from conftest import new_workspace
from test_m_harness import admin, m_server, postgres, wait_for  # noqa: F401 - fixtures


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request, tmp_path):
    if request.param == "sqlite":
        return Database(f"sqlite:///{tmp_path / 'l.db'}").engine
    pg = request.getfixturevalue("postgres")
    return Database(pg.create_database(f"l_{uuid.uuid4().hex[:8]}")).engine


# --- the lease table ----------------------------------------------------------------------------


def test_take_renew_expire_and_fence(engine):
    a, b = LeaseTable(engine, "a", seconds=1.0), LeaseTable(engine, "b", seconds=1.0)
    assert a.acquire("ag") == 1
    assert b.acquire("ag") is None  # held and live
    assert a.renew({"ag": 1}) == {"ag"}
    assert b.expired(["ag", "other"]) == ["other"]
    time.sleep(1.3)  # a stops renewing: expired
    assert b.expired(["ag"]) == ["ag"]
    assert b.acquire("ag") == 2  # taken over: the fence moves on
    assert a.renew({"ag": 1}) == set()  # a's renewal is refused ...
    assert not a.claim_firing("ag", 1, "2026-01-01T00:00:00+00:00")  # ... and so is anything it does
    assert b.claim_firing("ag", 2, "2026-01-01T00:00:00+00:00")
    assert not b.claim_firing("ag", 2, "2026-01-01T00:00:00+00:00")  # once per scheduled time
    assert b.claim_firing("ag", 2, "2026-01-01T00:00:01+00:00")
    b.release("ag", 2)
    assert a.acquire("ag") == 3  # released: free at once
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(firings)).scalar() == 2
        assert conn.execute(sa.select(leases.c.owner, leases.c.fence)).all() == [("a", 3)]


def test_changes_are_claimed_once_and_unfinished_ones_go_to_the_next_owner(engine):
    a, b = LeaseTable(engine, "a", seconds=0.5), LeaseTable(engine, "b", seconds=0.5)
    assert a.acquire("ag") == 1
    assert a.low_mark("ag", 1, lambda: 10) == 10
    assert a.claim_change("ag", 1, 11) and not a.claim_change("ag", 1, 11)
    a.finish_change("ag", 11)
    assert a.claim_change("ag", 1, 12)  # a dies before finishing 12
    time.sleep(0.7)
    assert b.acquire("ag") == 2
    assert b.low_mark("ag", 2, lambda: 99) == 10  # kept: not the journal's top
    assert not b.claim_change("ag", 2, 11)  # done by a
    assert b.claim_change("ag", 2, 12)  # unfinished by a dead owner: runs again here
    assert not a.claim_change("ag", 1, 13)  # the old fence can claim nothing
    assert b.advance("ag", 2, 12) and not a.advance("ag", 1, 50)
    assert b.low_mark("ag", 2, lambda: 0) == 12


def test_keeper_takes_free_leases_and_stands_by_when_taken(engine):
    events: list[tuple[str, str]] = []
    table = LeaseTable(engine, "k", seconds=1.0)
    keeper = LeaseKeeper(table, lambda a, f: events.append(("gain", a)), lambda a: events.append(("lose", a)))
    keeper.start()
    try:
        keeper.want("x")
        wait_for(lambda: keeper.fence("x") == 1)
        assert keeper.owner_of("x") == "k"
        # someone else forces the lease (as if ours had expired): the keeper notices and stands by
        with engine.begin() as conn:
            conn.execute(sa.update(leases).values(owner="other", fence=leases.c.fence + 1,
                                                  expires=time.time() + 3600))
        wait_for(lambda: ("lose", "x") in events, timeout=5)
        assert keeper.fence("x") is None
        keeper.unwant("x")
    finally:
        keeper.stop()
    assert events[0] == ("gain", "x")


# --- real servers on one database ---------------------------------------------------------------

CRON = '''
import json, os, uuid
from coflows.m import M

def Job(stamp, execution_type):
    M.Base("ticks").Add({"t": stamp.isoformat(), "pid": os.getpid(), "n": uuid.uuid4().hex})

AGENT = {"ID": "ticker", "ScheduleCommand": "* * * * * *"}
'''

WATCH = '''
import os, time
from coflows.m import M

OUT = os.environ["COFLOWS_TEST_HANDLED"]

def Add(id, value):
    if value.get("hang") and not os.path.exists(OUT + ".hanging"):  # the first owner hangs here: the
        open(OUT + ".hanging", "w").write(str(os.getpid()))  # test kills it before it records the change
        time.sleep(60)
    with open(OUT, "a") as f:
        f.write(f"{id} {os.getpid()}\\n")

AGENT = {"ID": "watch", "MID": "jobs"}
'''


@pytest.mark.postgres
def test_three_replicas_run_each_firing_and_change_once(tmp_path: Path, postgres, m_server):  # noqa: F811
    url = postgres.create_database(f"rep_{uuid.uuid4().hex[:8]}")
    handled = tmp_path / "handled.txt"
    servers = []
    for name in ("a", "b", "c"):
        ws = new_workspace(tmp_path / name, Database={"Type": "postgres", "Connection": url},
                           Agents={"LeaseSeconds": 3})
        ws.add_agent("Ticker.py", CRON)
        ws.add_agent("Watch.py", WATCH)
        servers.append(m_server(ws, env={"COFLOWS_TEST_HANDLED": str(handled)}))
    engine = Database(url).engine

    def lease_owner(agent: str) -> str | None:
        with engine.connect() as conn:
            return conn.execute(sa.select(leases.c.owner).where(leases.c.agent_id == agent)).scalar()

    wait_for(lambda: lease_owner("ticker") and lease_owner("watch"), timeout=20)
    statuses = [{a["ID"]: a for a in s.get("/flow/agents", headers=admin).json()} for s in servers]
    assert sum(not st["ticker"]["Standby"] for st in statuses) == 1  # one owner, two on standby
    assert {st["ticker"]["Owner"] for st in statuses} == {lease_owner("ticker")}

    # M changes: 150 adds spread over the replicas, then one that hangs the owner's hook
    def add(i: int, value: dict) -> str:
        return servers[i % 3].post("/m/add?type=jobs", json=value, headers=admin).json()["ID"]

    ids = [add(i, {"i": i}) for i in range(150)]
    ids.append(add(0, {"hang": True}))
    hanging = Path(str(handled) + ".hanging")
    wait_for(hanging.exists, timeout=30)
    watch_pid = int(hanging.read_text())
    time.sleep(2.5)  # some firings on the first owner
    # kill the owner of the watcher (it may own the ticker too) with SIGKILL, mid-hook
    victim = next(s for s in servers if s.child_pid() == watch_pid or s.proc.pid == watch_pid)
    killed_at = time.time()
    victim.kill()
    alive = [s for s in servers if s is not victim]
    ids += [alive[i % 2].post("/m/add?type=jobs", json={"i": i}, headers=admin).json()["ID"]
            for i in range(150, 300)]
    # the new owner runs the interrupted change (the dead owner never recorded it) and the rest
    wait_for(lambda: set(ids) <= {ln.split()[0] for ln in handled.read_text().splitlines()}, timeout=90)
    def stamps() -> list[float]:
        return [dt.datetime.fromisoformat(t["t"]).timestamp() for t in alive[0].get("/m/data?type=ticks").json()]

    wait_for(lambda: max(stamps()) > killed_at + 6, timeout=60)  # firings go on on the new owner
    time.sleep(2)  # a duplicate change or firing would show up now

    lines = [ln.split() for ln in handled.read_text().splitlines()]
    counts = Counter(entry for entry, _ in lines)
    assert all(counts[i] == 1 for i in ids), [(i, counts[i]) for i in ids if counts[i] != 1]
    assert set(counts) == set(ids)
    assert {pid for entry, pid in lines if entry == ids[150]} != {str(watch_pid)}
    ticks = alive[0].get("/m/data?type=ticks").json()
    per_second = Counter(t["t"] for t in ticks)
    assert per_second and max(per_second.values()) == 1, [t for t, n in per_second.items() if n > 1]
    seconds = sorted(dt.datetime.fromisoformat(t).timestamp() for t in per_second)
    gaps = [b - a for a, b in zip(seconds, seconds[1:])]
    assert max(gaps) <= 3 + 2, gaps  # lease time + the keeper's poll (and a second of rounding)
    after = [t for t in ticks if dt.datetime.fromisoformat(t["t"]).timestamp() > killed_at + 6]
    assert after and watch_pid not in {t["pid"] for t in after}
    with engine.connect() as conn:
        claimed = conn.execute(sa.select(sa.func.count()).select_from(firings)
                               .where(firings.c.agent_id == "ticker")).scalar()
    assert claimed == len(per_second)
    runs = alive[0].get("/flow/agent/watch/runs?limit=200", headers=admin).json()
    assert len([r for r in runs if r["Hook"] == "Add" and r["Status"] == "ok"]) >= 150  # recorded with the claims
    # the new owner of the watcher replayed what the dead one had not finished (at least the hung one)
    logs = "".join(s.output() for s in alive)
    assert "agent watch: replayed" in logs and "M changes no owner had handled" in logs
    victim_ticks = [dt.datetime.fromisoformat(t["t"]).timestamp() for t in ticks if t["pid"] == watch_pid]
    assert victim_ticks  # the first replica took both leases: the kill tested the ticker's takeover too
    resumed = min(dt.datetime.fromisoformat(t["t"]).timestamp() for t in after) if after else None
    print(f"firings: {len(per_second)}, largest gap {max(gaps):.0f} s; the victim's last firing "
          f"{killed_at - max(victim_ticks, default=killed_at):.1f} s before the kill")
    print(f"takeover: ticker fires again {min(t for t in seconds if t > killed_at) - killed_at:.1f} s after "
          f"the kill (lease 3 s); {resumed is not None}")
