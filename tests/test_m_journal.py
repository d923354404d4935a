"""M's change journal (`m_changes`): one row per change in the write's transaction, seqs on the
published changes, pruning, the seq tracker, and the Postgres listener's replay after its
connection is killed (every change still reaches the subscriber exactly once, in order)."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import sqlalchemy as sa

from coflows.m.store import ADD, EXCHANGE, REMOVE, MStore, SeqTracker, journal
from coflows.store import Database
from test_m_harness import postgres, wait_for  # noqa: F401 - fixture


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, tmp_path):
    if request.param == "sqlite":
        return Database(f"sqlite:///{tmp_path / 'm.db'}")
    pg = request.getfixturevalue("postgres")
    return Database(pg.create_database(f"j_{uuid.uuid4().hex[:8]}"))


def journal_rows(db: Database) -> list[sa.Row]:
    with db.engine.connect() as conn:
        return list(conn.execute(sa.select(journal).order_by(journal.c.seq)))


def test_every_write_is_journaled_in_order(db):
    store = MStore(db)
    store.journaled = True  # SQLite skips it by default (no reader there); the same code either way
    seen = []
    store.subscribe("t", seen.append)
    a, _ = store.add("t", {"n": 1})
    store.exchange("t", a, {"n": 2})
    ids = store.add_many("t", [{"n": 3}, {"n": 4}])
    store.add("t", {"n": 3})  # already there: no change, no row
    store.remove("t", a)
    rows = journal_rows(db)
    assert [(r.entry_id, r.kind, r.version) for r in rows] == [
        (a, ADD, 1), (a, EXCHANGE, 2), (ids[0], ADD, 1), (ids[1], ADD, 1), (a, REMOVE, 2)]
    assert rows[-1].value == '{"n":2}' and rows[0].value is None  # values kept for removes only
    assert all(r.origin == store.origin for r in rows)
    if store.is_postgres:  # the published changes carry their journal seqs
        assert [c.seq for c in seen] == [r.seq for r in rows]
    store.close()


def test_a_failed_write_leaves_no_journal_row(db):
    store = MStore(db)
    store.journaled = True
    a, _ = store.add("t", {"n": 1})
    store.add("t", {"n": 2})
    with pytest.raises(Exception):
        store.exchange("t", a, {"n": 2})  # the new value is another entry: conflict
    assert len(journal_rows(db)) == 2
    store.close()


def test_pruning_keeps_the_journal_bounded(db):
    store = MStore(db)
    store.journaled = True
    store.journal_rows, store.prune_every = 50, 40
    for k in range(6):
        store.add_many("t", [{"k": k, "i": i} for i in range(30)])
    assert len(journal_rows(db)) <= 50 + 40
    store.journal_hours = 0.0  # everything is too old now
    store.prune_journal()
    assert journal_rows(db) == []
    store.close()


def test_seq_tracker():
    t = SeqTracker(horizon=60)
    assert t.take(1) and t.take(2) and not t.take(2)
    assert t.take(5)  # 3 and 4 were skipped over: gaps until they come
    assert t.snapshot() == (5, {3, 4})
    assert t.take(4) and not t.take(4) and t.snapshot() == (5, {3})
    again = SeqTracker.load(t.dump())
    assert again.snapshot() == (5, {3}) and again.take(3) and not again.take(3)
    t.expire(now=time.time() + 120)  # a gap older than the horizon: a rolled-back write
    assert t.snapshot() == (5, set()) and not t.take(3)
    t.start_at(100, present=[97, 99], window=5)
    assert t.snapshot() == (100, {96, 98}) and t.take(98) and not t.take(97)
    small = SeqTracker(max_gaps=3)
    small.take(1)
    small.take(10)  # 8 gaps: only the newest 3 kept
    assert small.snapshot() == (10, {7, 8, 9})


def terminate(url_db: Database, pid: int) -> None:
    with url_db.engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})


@pytest.mark.postgres
def test_listener_replays_what_it_missed_while_disconnected(postgres):  # noqa: F811
    """A subscriber process (store A) and a writer process (store B) on one database: A's listening
    connection is killed three times while B writes; A still gets every change once, in order."""
    url = postgres.create_database(f"jr_{uuid.uuid4().hex[:8]}")
    a, b = MStore(Database(url)), MStore(Database(url))
    got: list[tuple[str, int]] = []
    a.subscribe("t", lambda c: got.append((c.id, c.kind)))
    a.start_listener()
    assert a._listener is not None
    written: list[tuple[str, int]] = []
    done = threading.Event()

    def write() -> None:
        for i in range(600):
            if i % 50 == 7:
                ids = b.add_many("t", [{"bulk": i, "j": j} for j in range(5)])
                written.extend((x, ADD) for x in ids)
            else:
                entry_id, _ = b.add("t", {"i": i})
                written.append((entry_id, ADD))
                if i % 10 == 3:
                    b.exchange("t", entry_id, {"i": i, "x": 1})
                    written.append((entry_id, EXCHANGE))
            time.sleep(0.005)
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    pids = []
    for _ in range(3):
        time.sleep(0.4)
        pid = wait_for(lambda: a._listener.pid if a._listener.ready.is_set() else None)
        pids.append(pid)
        a._listener.ready.clear()
        terminate(b.database, pid)
        wait_for(lambda: a._listener.pid != pid and a._listener.ready.is_set(), timeout=30)
    writer.join()
    wait_for(lambda: len(got) >= len(written), timeout=30)
    time.sleep(0.5)  # anything extra (a duplicate) would arrive now
    # exchanges are delivered with the entry's current value; an add may come after its exchange
    # was committed, so compare what each change was, in order
    assert got == written
    assert a.replayed > 0  # some changes came from the journal, not from NOTIFY
    assert len(set(pids)) == 3
    a.close()
    b.close()


@pytest.mark.postgres
def test_replay_with_concurrent_writers_delivers_each_change_once(postgres):  # noqa: F811
    """Three writers at once (commits out of seq order: gaps) while the listener is killed twice."""
    url = postgres.create_database(f"jc_{uuid.uuid4().hex[:8]}")
    a = MStore(Database(url))
    writers = [MStore(Database(url)) for _ in range(3)]
    got: list[str] = []
    a.subscribe(None, lambda c: got.append(c.id))
    a.start_listener()
    written: list[str] = []
    lock = threading.Lock()

    def write(store: MStore, k: int) -> None:
        for i in range(250):
            entry_id, _ = store.add(f"t{k}", {"i": i})
            with lock:
                written.append(entry_id)

    threads = [threading.Thread(target=write, args=(w, k)) for k, w in enumerate(writers)]
    for t in threads:
        t.start()
    for _ in range(2):
        time.sleep(0.3)
        pid = wait_for(lambda: a._listener.pid if a._listener.ready.is_set() else None)
        a._listener.ready.clear()
        terminate(writers[0].database, pid)
        wait_for(lambda: a._listener.pid != pid and a._listener.ready.is_set(), timeout=30)
    for t in threads:
        t.join()
    wait_for(lambda: len(got) >= len(written), timeout=30)
    time.sleep(0.5)
    assert sorted(got) == sorted(written) and len(set(got)) == len(got) == 750
    assert a.replayed > 0
    a.close()
    for w in writers:
        w.close()
