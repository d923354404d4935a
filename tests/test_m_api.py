"""The M set API in-process, on SQLite and (when it can start) PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
import uuid

import pytest
import sqlalchemy as sa

import coflows.m as cm
from coflows.errors import ArgumentError, CoflowsError, NotFoundError
from coflows.m import M, ConflictError, m
from coflows.m.store import ADD, EXCHANGE, REMOVE, MStore
from coflows.store import Database

from test_m_harness import postgres  # noqa: F401 - fixture


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, tmp_path):
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'm.db'}")
    else:
        pg = request.getfixturevalue("postgres")
        database = Database(pg.create_database(f"api_{uuid.uuid4().hex[:10]}"))
    yield database
    MStore.for_database(database).close()
    database.dispose()


def topic() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def test_add_is_a_set_by_canonical_json(db):
    s = m(topic(), db)
    a = s.add({"b": 2, "a": [1, {"y": 1, "x": 2}]})
    assert s.add({"a": [1, {"x": 2, "y": 1}], "b": 2}) == a  # key order does not matter
    assert s.add({"a": [{"x": 2, "y": 1}, 1], "b": 2}) != a  # list order does
    assert s.add("text") != s.add(["text"])
    assert s.add(1) != s.add(True) != s.add(1.5)
    assert len(s) == 7 and s.count() == 7
    assert {"b": 2, "a": [1, {"y": 1, "x": 2}]} in s and {"nope": 1} not in s


def test_add_many_returns_ids_in_order_and_reuses_existing(db):
    s = m(topic(), db)
    first = s.add({"n": 1})
    ids = s.add_many([{"n": 0}, {"n": 1}, {"n": 2}, {"n": 0}])
    assert ids[1] == first and ids[0] == ids[3] and len(set(ids)) == 3
    assert s.list() == [{"n": 1}, {"n": 0}, {"n": 2}]  # insertion order
    assert s.add_many([]) == []
    many = s.add_many({"i": i} for i in range(1500))  # more than one IN chunk
    assert len(set(many)) == 1500 and s.add_many([{"i": 1499}, {"i": 3}]) == [many[1499], many[3]]


def test_get_entry_find_key_values_entries(db):
    s = m(topic(), db)
    i = s.add({"item": "tea"})
    assert s.get(i) == {"item": "tea"} and s[i] == {"item": "tea"}
    assert s.get("missing") is None and s.entry("missing") is None
    with pytest.raises(KeyError):
        s["missing"]
    assert s.entry(i) == {"id": i, "value": {"item": "tea"}, "version": 1}
    assert s.find({"item": "tea"}) == s.entry(i) and s.find({"item": "x"}) is None
    assert s.key_values() == {i: {"item": "tea"}}
    assert s.entries() == [{"id": i, "value": {"item": "tea"}, "version": 1}]
    assert list(s) == [{"item": "tea"}]


def test_exchange_by_id_by_value_and_versions(db):
    s = m(topic(), db)
    i = s.add({"qty": 1})
    assert s.exchange(i, {"qty": 2}) == {"id": i, "version": 2, "value": {"qty": 2}}
    assert s.exchange({"qty": 2}, {"qty": 3})["version"] == 3  # by value: compare-and-swap
    with pytest.raises(ConflictError, match="not in M topic"):
        s.exchange({"qty": 2}, {"qty": 4})  # the old value is gone
    with pytest.raises(ConflictError, match="version 3, not 2"):
        s.exchange(i, {"qty": 5}, expected_version=2)
    assert s.exchange(i, {"qty": 5}, expected_version=3)["version"] == 4
    other = s.add({"qty": 9})
    with pytest.raises(ConflictError, match=f"already entry '{other}'"):
        s.exchange(i, {"qty": 9})
    with pytest.raises(NotFoundError):
        s.exchange_id("no-such-id", {"qty": 1})
    assert s.entry(i) == {"id": i, "value": {"qty": 5}, "version": 4}
    # a string value that is not an id is a value
    t = s.add("hello")
    assert s.exchange("hello", "world")["id"] == t and s.get(t) == "world"


def test_remove_by_id_and_by_value(db):
    s = m(topic(), db)
    a = s.add({"a": 1})
    s.add({"b": 1})
    assert s.remove(a) is True and s.remove(a) is False
    assert s.remove({"b": 1}) is True and s.remove({"b": 1}) is False
    c = s.add({"c": 1})
    s.exchange(c, {"c": 2})
    with pytest.raises(ConflictError):
        s.remove(c, expected_version=1)
    assert s.remove_id(c, expected_version=2) and len(s) == 0
    s.add_many([1, 2, 3])
    assert s.clear() == 3 and s.list() == []


def test_query_predicate_and_server_side_filters(db):
    s = m(topic(), db)
    s.add_many([{"item": "tea", "qty": 1, "paid": True}, {"item": "tea", "qty": 5, "paid": False},
                {"item": "cake", "qty": 2, "paid": True, "tags": {"b": 1, "a": 2}}, {"item": None}, "plain"])
    assert s.query(lambda v: isinstance(v, dict) and (v.get("qty") or 0) > 1) == [
        {"item": "tea", "qty": 5, "paid": False}, {"item": "cake", "qty": 2, "paid": True, "tags": {"a": 2, "b": 1}}]
    assert [v["qty"] for v in s.query(where={"item": "tea"})] == [1, 5]
    assert [v["qty"] for v in s.query(where={"paid": True})] == [1, 2]
    assert [v["qty"] for v in s.query(where={"item": "tea", "paid": False})] == [5]
    assert [v["qty"] for v in s.query(where={"qty": 1.0})] == [1]  # filters compare numbers by value
    assert s.query(where={"paid": 1}) == []  # true is not 1
    assert s.query(where={"tags": {"a": 2, "b": 1}})[0]["item"] == "cake"
    assert s.query(where={"item": None}) == [{"item": None}]
    assert s.query(lambda v: v["qty"] > 1, where={"item": "tea"}) == [{"item": "tea", "qty": 5, "paid": False}]
    assert s[lambda v: v == "plain"] == ["plain"]


def test_values_must_be_json(db):
    s = m(topic(), db)
    with pytest.raises(ArgumentError, match="must be JSON"):
        s.add({"x": float("nan")})
    i = s.add({"when": dt.date(2024, 1, 2)})  # converted as query results are
    assert s.get(i) == {"when": "2024-01-02"}
    with pytest.raises(ArgumentError):
        m("", db)
    with pytest.raises(ArgumentError):
        m("x" * 256, db)


def test_coflows_names(db):
    t = topic()
    base = M.Base(t, database=db)
    i = base.Add({"x": 1})
    base += {"x": 2}
    assert base.Get(i) == {"x": 1} and base.Count() == 2
    base.Exchange(i, {"x": 3})
    base -= {"x": 2}
    base.Save()  # no-op: already durable
    assert base.Query(lambda v: v["x"] > 0) == [{"x": 3}]
    assert [e["value"] for e in base.RawEntries()] == [{"x": 3}] and base.KeyValues() == {i: {"x": 3}}
    assert cm(t, db).list() == [{"x": 3}]  # the package is callable
    assert base.Remove(i) and base.Count() == 0


def test_changes_are_published_after_commit(db):
    store = MStore.for_database(db)
    t = topic()
    seen = []

    def on_change(change):
        # after commit: a fresh connection sees the new state
        seen.append((change.kind, change.value, change.version, m(t, db).get(change.id)))

    stop = store.subscribe(t, on_change)
    s = m(t, db)
    i = s.add({"v": 1})
    s.add({"v": 1})  # no change: already there
    s.exchange(i, {"v": 2})
    s.remove(i)
    m(topic(), db).add({"other": 1})  # another topic
    stop()
    s.add({"v": 3})  # unsubscribed
    assert seen == [(ADD, {"v": 1}, 1, {"v": 1}), (EXCHANGE, {"v": 2}, 2, {"v": 2}), (REMOVE, {"v": 2}, 2, None)]


def test_failed_write_publishes_nothing(db):
    store = MStore.for_database(db)
    t = topic()
    seen = []
    store.subscribe(t, seen.append)
    s = m(t, db)
    i = s.add(1)
    with pytest.raises(ConflictError):
        s.exchange(i, 2, expected_version=7)
    assert [c.kind for c in seen] == [ADD] and s.get(i) == 1


def test_concurrent_exchanges_conflict_instead_of_losing_a_write(db):
    s = m(topic(), db)
    i = s.add({"n": 0})
    version = s.entry(i)["version"]
    barrier = threading.Barrier(8)
    results = []

    def writer(k):
        barrier.wait()
        try:
            s.exchange(i, {"n": k}, expected_version=version)
            results.append(("ok", k))
        except ConflictError:
            results.append(("conflict", k))

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(1, 9)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    winners = [k for r, k in results if r == "ok"]
    assert len(winners) == 1 and len(results) == 8
    assert s.entry(i) == {"id": i, "value": {"n": winners[0]}, "version": version + 1}


def test_concurrent_value_exchanges_are_compare_and_swap(db):
    s = m(topic(), db)
    s.add({"state": "new"})
    barrier = threading.Barrier(6)
    outcomes = []

    def writer(k):
        barrier.wait()
        try:
            s.exchange({"state": "new"}, {"state": "taken", "by": k})
            outcomes.append(k)
        except ConflictError:
            pass

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(6)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(outcomes) == 1 and s.list() == [{"state": "taken", "by": outcomes[0]}]


def test_concurrent_adds_of_one_value_make_one_entry(db):
    s = m(topic(), db)
    barrier = threading.Barrier(8)
    ids = []

    def adder():
        barrier.wait()
        ids.append(s.add({"same": True}))

    threads = [threading.Thread(target=adder) for _ in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(set(ids)) == 1 and len(s) == 1


def test_schema_is_migrated_automatically(db):
    with db.engine.connect() as conn:
        version = conn.execute(sa.text("SELECT version FROM coflows_schema WHERE component = 'm'")).scalar_one()
    assert version == 2  # 1: m_entries, 2: m_changes (the change journal)


def test_without_a_runtime_the_api_says_so():
    with pytest.raises(CoflowsError, match="no coflows runtime"):
        m("orders").add(1)


def test_entries_survive_reopening_the_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'durable.db'}"
    first = Database(url)
    i = m("orders", first).add({"keep": True})
    MStore.for_database(first).close()
    first.dispose()
    second = Database(url)
    assert m("orders", second).entry(i) == {"id": i, "value": {"keep": True}, "version": 1}
    second.dispose()
