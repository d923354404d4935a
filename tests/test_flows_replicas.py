"""Flows on three replicas behind HAProxy: a run submitted through the balancer, the replica driving
it killed with SIGKILL mid-run; another replica takes the run over once the lease expires and
finishes it, and no task's function ran to completion twice."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from pathlib import Path

import threading
import time

import pytest
import sqlalchemy as sa

from coflows.flows import CANCELLED, FINISHED, FlowEngine, PythonResolver
from coflows.flows.store import runs as runs_table
from coflows.store import Database
from replicas import Cluster, replica_workspace, wait_until
from test_m_harness import postgres  # noqa: F401 - fixture


SLOW = '''
import os
import time
import uuid

def work(name: str, folder: str, seconds: float = 1.5):
    """Marks its start, sleeps, marks its end: `done-*` files count the attempts that finished."""
    tag = f"{name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    open(os.path.join(folder, "start-" + tag), "w").close()
    time.sleep(seconds)
    open(os.path.join(folder, "done-" + tag), "w").close()
    return name
'''

LEASE = 3.0


def markers(folder: Path, kind: str) -> list[tuple[str, int]]:
    """(node, pid) of every `kind` marker."""
    out = []
    for p in folder.glob(f"{kind}-*"):
        _, node, pid, _ = p.name.split("-")
        out.append((node, int(pid)))
    return out


@pytest.fixture
def cluster(tmp_path, postgres):  # noqa: F811
    url = postgres.create_database(f"rf_{uuid.uuid4().hex[:8]}")
    ws = replica_workspace(tmp_path / "ws", url, Executor={"LeaseSeconds": LEASE})
    ws.add_query("Slow.py", SLOW)
    c = Cluster(ws, 3)
    try:
        yield c.start()
    finally:
        c.close()


@pytest.mark.postgres
@pytest.mark.slow
def test_killed_replica_run_finishes_elsewhere_no_task_finished_twice(tmp_path, cluster):
    folder = tmp_path / "marks"
    folder.mkdir()
    node = lambda name, *after: {"function": "Slow.py/work", "after": list(after),  # noqa: E731
                                 "kwargs": {"name": name, "folder": str(folder)}}
    spec = {"name": "slow", "nodes": {"a": node("a"), "b": node("b", "a"), "c": node("c", "a"),
                                      "d": node("d", "b", "c")}}
    r = cluster.client.post("/flows/Test/runs", json={"spec": spec, "format": "json"})
    assert r.status_code == 201, r.text
    run_id = r.json()["run_id"]

    # a has finished and b, c are running: kill the replica running them
    running = wait_until(lambda: {n for n, _ in markers(folder, "start")} >= {"b", "c"} and
                         markers(folder, "start"), timeout=60, what="b and c started")
    owner_pid = next(pid for n, pid in running if n == "b")
    killed = cluster.by_pid(owner_pid)
    cluster.kill(killed)
    assert not any(n in ("b", "c") for n, _ in markers(folder, "done")), "b or c ended before the kill"

    # the run is read through the balancer (the dead replica is skipped) until it ends
    def ended():
        run = cluster.client.get(f"/flows/runs/{run_id}").json()
        return run if run["state"] in ("finished", "failed", "cancelled") else None

    run = wait_until(ended, timeout=90, interval=0.25, what="the run ended")
    assert run["state"] == "finished", run
    assert {t["node"]: t["output"] for t in run["tasks"]} == {"a": "a", "b": "b", "c": "c", "d": "d"}

    done = Counter(n for n, _ in markers(folder, "done"))
    assert done == {"a": 1, "b": 1, "c": 1, "d": 1}  # no task's function finished twice
    starts = markers(folder, "start")
    resumed = {(n, pid) for n, pid in starts if n in ("b", "c")}
    assert {pid for _, pid in resumed if pid != owner_pid}, "b and c ran again on another replica"
    assert all(pid != owner_pid for n, pid in markers(folder, "done") if n in ("b", "c", "d"))
    attempts = {t["node"]: t["attempts"] for t in run["tasks"]}
    assert attempts["a"] == 1 and attempts["b"] == attempts["c"] == 2 and attempts["d"] == 1

    # nothing is left running or owned by anybody
    runs = cluster.client.get("/flows/runs").json()
    assert runs and all(x["state"] == "finished" for x in runs), runs


@pytest.mark.parametrize("a_notices", [False, True])
def test_an_engine_that_lost_its_lease_does_not_record_the_task(tmp_path, a_notices):
    """The fence: engine A's lease lapsed (a stalled heartbeat) and B took the run over; A's task
    then finishes, but A may no longer write the run, so B's attempt is the one recorded. With a
    short lease A's heartbeat notices the takeover first and drops the run at once."""
    release = threading.Event()
    calls: list[str] = []

    def step():
        calls.append("call")
        if len(calls) == 1:
            release.wait(10)  # A's attempt: still running when B takes over
            return "from A"
        return "from B"

    url = f"sqlite:///{tmp_path / 'flows.db'}"
    a_db, b_db = Database(url), Database(url)
    a = FlowEngine(a_db, PythonResolver({"S.py/step": step}), owner_id="A",
                   lease_seconds=0.3 if a_notices else 60).start()
    b = None
    try:
        run_id = a.submit("S.py/step")
        wait_until(lambda: calls, timeout=10, what="A started the task")
        with a_db.engine.begin() as conn:  # B's takeover, as `FlowStore.claim` does it after the lease expired
            conn.execute(sa.update(runs_table).where(runs_table.c.id == run_id)
                         .values(owner="B", lease_expires=time.time() + 60))
        if a_notices:  # before its task ends: A's heartbeat sees the run is B's and stops driving it
            wait_until(lambda: run_id not in a._runs, timeout=10, what="A's heartbeat dropped the run")
        b = FlowEngine(b_db, PythonResolver({"S.py/step": step}), owner_id="B", lease_seconds=60).start()
        view = b.wait(run_id, 10)
        assert view.state == FINISHED and view.task("step").output == "from B"
        release.set()  # A's attempt ends now: its outcome must not overwrite B's
        wait_until(lambda: run_id not in a._runs, timeout=10, what="A dropped the run")
        view = b.get(run_id)
        assert view.state == FINISHED and view.task("step").output == "from B" and view.task("step").attempts == 2
    finally:
        release.set()
        a.shutdown(0.5)
        if b is not None:
            b.shutdown(0.5)
        a_db.dispose()
        b_db.dispose()


def test_event_payloads_fit_a_notify_and_big_events_are_slimmed():
    from coflows.flows.relay import MAX_PAYLOAD, payloads

    events = [{"type": "task", "run_id": "r" * 32, "node": f"n{i}", "state": "finished", "hints": "h" * 300}
              for i in range(100)]
    events.append({"type": "run", "run_id": "r" * 32, "state": "pending", "nodes": [f"n{i}" for i in range(5000)]})
    out = payloads("owner-1", events)
    assert len(out) > 1 and all(len(p.encode()) <= MAX_PAYLOAD for p in out)
    back = [e for p in out for e in json.loads(p)["e"]]
    assert all(json.loads(p)["o"] == "owner-1" for p in out)
    assert back[:100] == events[:100]  # in order, whole
    assert back[100] == {"type": "run", "run_id": "r" * 32, "state": "pending", "slim": True}


@pytest.mark.postgres
def test_events_of_a_run_driven_elsewhere_reach_this_engines_listeners(postgres):  # noqa: F811
    """Replica B's listeners (an SSE stream behind a balancer) see the run replica A drives, and
    B.wait() returns when A's run ends."""
    url = postgres.create_database(f"relay_{uuid.uuid4().hex[:8]}")
    started, release = threading.Event(), threading.Event()

    def slow():
        started.set()
        release.wait(10)

    fns = {"S.py/one": lambda: 1, "S.py/two": lambda one: one + 1, "S.py/slow": slow}
    a_db, b_db = Database(url), Database(url)
    a = FlowEngine(a_db, PythonResolver(fns), owner_id="A").start()
    b = FlowEngine(b_db, PythonResolver(fns), owner_id="B").start()
    seen_a: list[dict] = []
    seen_b: list[dict] = []
    try:
        wait_until(lambda: b._relay is not None and b._relay.ready.is_set(), timeout=10, what="B listens")
        a.subscribe(seen_a.append)
        b.subscribe(seen_b.append)
        run_id = a.submit("S.py/one; S.py/two")
        assert b.wait(run_id, 10).state == FINISHED
        key = lambda e: (e["type"], e.get("node"), e["state"])  # noqa: E731
        wait_until(lambda: [key(e) for e in seen_b] == [key(e) for e in seen_a if e["run_id"] == run_id],
                   timeout=10, what="B saw every event of A's run")
        assert ("run", None, FINISHED) in [key(e) for e in seen_b]
        assert all(e["run_id"] == run_id for e in seen_b)
        # and the other way round; an engine never gets its own events twice
        other = b.submit("S.py/one")
        assert a.wait(other, 10).state == FINISHED
        wait_until(lambda: any(e["run_id"] == other and e["state"] == FINISHED and e["type"] == "run"
                               for e in seen_a), timeout=10, what="A saw B's run end")
        assert len([e for e in seen_b if e["run_id"] == run_id]) == len([e for e in seen_a if e["run_id"] == run_id])
        # a cancel asked of B reaches A, which drives the run
        slow = a.submit("S.py/slow")
        wait_until(lambda: started.is_set(), timeout=10, what="the slow task started on A")
        assert b.cancel(slow) is True
        assert a.get(slow).state == CANCELLED and b.wait(slow, 5).state == CANCELLED
    finally:
        release.set()
        a.shutdown(0.5)
        b.shutdown(0.5)
        a_db.dispose()
        b_db.dispose()


@pytest.mark.postgres
@pytest.mark.slow
def test_dask_killed_replica_run_finishes_elsewhere(tmp_path, postgres):  # noqa: F811
    """The same with `Executor.Type: dask`: tasks run on the workers, so the attempt the killed
    replica had sent may still end there (its outcome is ignored: nobody records it); the run
    finishes on another replica, which records each task once."""
    import logging

    pytest.importorskip("distributed")
    from distributed import LocalCluster

    folder = tmp_path / "marks"
    folder.mkdir()
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as dask:
        url = postgres.create_database(f"rd_{uuid.uuid4().hex[:8]}")
        ws = replica_workspace(tmp_path / "ws", url, Executor={"Type": "dask", "Scheduler": dask.scheduler_address,
                                                               "LeaseSeconds": LEASE})
        ws.add_query("Slow.py", SLOW)
        cluster = Cluster(ws, 2)
        try:
            cluster.start()
            node = lambda name, *after: {"function": "Slow.py/work", "after": list(after),  # noqa: E731
                                         "kwargs": {"name": name, "folder": str(folder), "seconds": 2.0}}
            spec = {"name": "slow", "nodes": {"a": node("a"), "b": node("b", "a")}}
            r = cluster.client.post("/flows/Test/runs", json={"spec": spec, "format": "json"})
            assert r.status_code == 201, r.text
            run_id = r.json()["run_id"]
            wait_until(lambda: "b" in {n for n, _ in markers(folder, "start")}, timeout=60, what="b started")
            assert cluster.client.get(f"/flows/runs/{run_id}").json()["state"] == "running"
            # the replica driving the run: the one whose engine holds it (its owner id names its pid)
            victim = next(rep for rep in cluster.replicas if f":{rep.pid}:" in _owner_of(url, run_id))
            cluster.kill(victim)

            def ended():
                run = cluster.client.get(f"/flows/runs/{run_id}").json()
                return run if run["state"] in ("finished", "failed", "cancelled") else None

            run = wait_until(ended, timeout=90, interval=0.25, what="the run ended")
            assert run["state"] == "finished", run
            attempts = {t["node"]: t["attempts"] for t in run["tasks"]}
            assert attempts == {"a": 1, "b": 2}
            done = Counter(n for n, _ in markers(folder, "done"))
            print(f"dask: 'b' ran to its end {done['b']} time(s) (the killed replica's attempt on the worker "
                  "is not stopped)")
            assert done["a"] == 1 and done["b"] in (1, 2)
        finally:
            cluster.close()


def _owner_of(url: str, run_id: str) -> str:
    """flow_runs.owner of a run, read from the database."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(runs_table.c.owner).where(runs_table.c.id == run_id)).scalar() or ""
    finally:
        engine.dispose()
