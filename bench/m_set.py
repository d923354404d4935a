"""M set throughput and change→hook latency. Prints figures and ratios only.

    .venv/bin/python bench/m_set.py [--n 20000] [--single 2000] [--samples 1000] [--url sqlite:///...]

Throughput: M's `add` (one transaction per call) and `add_many` (one transaction) against raw
SQLAlchemy Core inserts into the same database in the same run, on two baseline tables:

* `raw_json`: what one would write by hand to keep JSON rows with ids: (seq, topic, id, value),
  unique (topic, id); the baseline pays `json.dumps` and `uuid4` per row, as M pays its own.
* `raw_same`: the very schema of `m_entries` (both unique indexes), with the hashes computed
  outside the timing: the cost of the data alone, without any of M's work.

M does more than either: canonical JSON, a value hash, a lookup for values already present, the
change feed. Rounds alternate M and raw, each into a fresh topic; the median of the rounds is shown.
Target: add_many ≥ 0.5× raw_json.

Latency: an agent's Add hook (the real path: commit → feed → agent mailbox → thread pool → hook,
with its run recorded) timed from just before `add()` is called and from the commit. Target: p50 ≤ 5 ms.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

from coflows.agents.definition import AgentDefinition
from coflows.agents.runner import AgentRunner, DaemonPool, RunRecorder
from coflows.m import m
from coflows.m.store import MStore, entries
from coflows.store import Database


def value(i: int, k: int) -> dict:
    return {"order": i, "round": k, "item": "tea", "qty": i % 7, "price": 2.5, "note": "x" * 40}


def baselines(engine: sa.Engine) -> tuple[sa.Table, sa.Table]:
    meta = sa.MetaData()
    raw_json = sa.Table("bench_raw_json", meta,
                        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
                        sa.Column("topic", sa.String(255), nullable=False),
                        sa.Column("id", sa.String(36), nullable=False),
                        sa.Column("value", sa.Text, nullable=False),
                        sa.UniqueConstraint("topic", "id"))
    raw_same = sa.Table("bench_raw_same", meta,
                        *[sa.Column(c.name, c.type, primary_key=c.primary_key, autoincrement=c.autoincrement,
                                    nullable=c.nullable) for c in entries.columns],
                        sa.UniqueConstraint("topic", "id"), sa.UniqueConstraint("topic", "hash"))
    meta.drop_all(engine)
    meta.create_all(engine)
    return raw_json, raw_same


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def throughput(db: Database, n: int, single: int, rounds: int) -> None:
    engine = db.engine
    raw_json, raw_same = baselines(engine)
    res: dict[str, list[float]] = {k: [] for k in ("m_many", "json_many", "same_many", "m_one", "json_one")}
    for k in range(rounds):
        topic = f"bench-{uuid.uuid4().hex[:8]}"
        values = [value(i, k) for i in range(n)]
        # add_many vs one executemany
        t = time.perf_counter()
        m(topic, db).add_many(values)
        res["m_many"].append(rate(n, time.perf_counter() - t))
        t = time.perf_counter()
        rows = [{"topic": topic, "id": str(uuid.uuid4()), "value": json.dumps(v)} for v in values]
        with engine.begin() as conn:
            conn.execute(raw_json.insert(), rows)
        res["json_many"].append(rate(n, time.perf_counter() - t))
        texts = [json.dumps(v, sort_keys=True, separators=(",", ":")) for v in values]
        prepared = [{"topic": topic, "id": str(uuid.uuid4()), "hash": hashlib.blake2b(x.encode(), digest_size=16)
                     .hexdigest(), "value": x, "version": 1, "created": 0.0, "updated": 0.0} for x in texts]
        t = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(raw_same.insert(), prepared)
        res["same_many"].append(rate(n, time.perf_counter() - t))
        # single adds: one transaction each
        few = [value(i, 1000 + k) for i in range(single)]
        s = m(topic + "-one", db)
        t = time.perf_counter()
        for v in few:
            s.add(v)
        res["m_one"].append(rate(single, time.perf_counter() - t))
        t = time.perf_counter()
        for v in few:
            with engine.begin() as conn:
                conn.execute(raw_json.insert().values(topic=topic + "-one", id=str(uuid.uuid4()), value=json.dumps(v)))
        res["json_one"].append(rate(single, time.perf_counter() - t))
    med = {k: statistics.median(v) for k, v in res.items()}
    print(f"database: {engine.dialect.name} ({engine.url.render_as_string(hide_password=True)})")
    print(f"add_many  ({n} values, median of {rounds}): M {med['m_many']:>9,.0f}/s   "
          f"raw_json {med['json_many']:>9,.0f}/s   raw_same {med['same_many']:>9,.0f}/s")
    print(f"  ratio M / raw_json = {med['m_many'] / med['json_many']:.2f}   "
          f"M / raw_same = {med['m_many'] / med['same_many']:.2f}   (target ≥ 0.5 vs raw_json)")
    print(f"add       ({single} calls, one transaction each): M {med['m_one']:>9,.0f}/s   "
          f"raw_json {med['json_one']:>9,.0f}/s")
    print(f"  ratio M / raw_json = {med['m_one'] / med['json_one']:.2f}")


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def latency(db: Database, samples: int) -> None:
    from apscheduler.schedulers.background import BackgroundScheduler

    topic = f"latency-{uuid.uuid4().hex[:8]}"
    store = MStore.for_database(db)
    committed: dict[str, float] = {}
    store.subscribe(topic, lambda c: committed.__setitem__(c.id, c.committed))
    fired: dict[str, float] = {}
    done = threading.Event()

    def add_hook(entry_id: str, _value: object) -> None:
        fired[entry_id] = time.perf_counter()
        done.set()

    pool = DaemonPool(8, "bench-agent")
    recorder = RunRecorder(db)
    runner = AgentRunner(AgentDefinition(id="bench", name="bench", workflow_id="bench", topic=topic,
                                         hooks={"Add": add_hook}),
                         workflow_name="bench", schedule=None, pool=pool, scheduler=BackgroundScheduler(),
                         recorder=recorder, store_of=lambda: store)
    runner.start()
    s = m(topic, db)
    from_call: list[float] = []
    from_commit: list[float] = []
    for i in range(samples + 50):
        done.clear()
        t0 = time.perf_counter()
        entry_id = s.add({"i": i})
        if not done.wait(5):
            raise RuntimeError("the hook did not fire")
        if i >= 50:  # warm-up
            from_call.append((fired[entry_id] - t0) * 1000)
            from_commit.append((fired[entry_id] - committed[entry_id]) * 1000)
        time.sleep(0.001)
    runner.stop()
    recorder.close()
    pool.shutdown()
    print(f"change→hook latency ({samples} adds, in-process, {db.engine.dialect.name}):")
    print(f"  from add() call: p50 {pct(from_call, 50):.3f} ms   p99 {pct(from_call, 99):.3f} ms   "
          f"max {max(from_call):.3f} ms")
    print(f"  from commit:     p50 {pct(from_commit, 50):.3f} ms   p99 {pct(from_commit, 99):.3f} ms   "
          f"max {max(from_commit):.3f} ms   (target p50 ≤ 5 ms)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000, help="values per add_many round")
    ap.add_argument("--single", type=int, default=2000, help="single add() calls per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--samples", type=int, default=1000, help="latency samples")
    ap.add_argument("--url", default=None, help="database URL (default: a fresh SQLite file)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(args.url or f"sqlite:///{Path(tmp) / 'bench.db'}")
        throughput(db, args.n, args.single, args.rounds)
        latency(db, args.samples)
        MStore.for_database(db).close()
        db.dispose()


if __name__ == "__main__":
    main()
