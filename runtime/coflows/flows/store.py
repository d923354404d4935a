"""Durable flow state: the `flow_runs` and `flow_tasks` tables and the transactions that change them.

Why a change set: the scheduler collects every state change of one wake-up
(tasks finished, children started, runs ended, dynamic nodes) into a `ChangeSet`
and writes it in ONE transaction, then announces it. That keeps the hot path to
one commit per scheduler turn however many tasks moved, and guarantees nothing
is announced before it is stored.

Times are seconds since the epoch (REAL); JSON values are stored as text so the
same tables work on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from coflows.store import Database, Migration, migrate, register_migrations

# States -------------------------------------------------------------------------------------------
PENDING = "pending"
RUNNING = "running"
FINISHED = "finished"
FAILED = "failed"
CANCELLED = "cancelled"
SKIPPED = "skipped"
INTERRUPTED = "interrupted"

TASK_STATES = (PENDING, RUNNING, FINISHED, FAILED, CANCELLED, SKIPPED, INTERRUPTED)
RUN_STATES = (PENDING, RUNNING, FINISHED, FAILED, CANCELLED, INTERRUPTED)
RUN_TERMINAL = frozenset({FINISHED, FAILED, CANCELLED})
TASK_DONE = frozenset({FINISHED, FAILED, CANCELLED, SKIPPED})
RUN_ACTIVE = (PENDING, RUNNING, INTERRUPTED)

# Tables -------------------------------------------------------------------------------------------
meta = sa.MetaData()

runs = sa.Table(
    "flow_runs",
    meta,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200)),
    sa.Column("workflow", sa.String(200)),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("inputs", sa.Text),  # JSON
    sa.Column("aliases", sa.Text),  # JSON: used to resolve names of nodes added while running
    sa.Column("spec", sa.Text),  # JSON: the spec as submitted (tasks are the live graph)
    sa.Column("format", sa.String(16)),
    sa.Column("error", sa.Text),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("started_at", sa.Float),
    sa.Column("finished_at", sa.Float),
    sa.Column("owner", sa.String(100)),  # engine driving the run
    sa.Column("lease_expires", sa.Float),
    sa.Column("generation", sa.Integer, nullable=False, default=0),  # +1 per rerun
    sa.Column("submitted_by", sa.String(200)),  # principal id of the last submit or rerun: tasks run as it
    sa.Index("ix_flow_runs_state", "state"),
    sa.Index("ix_flow_runs_created", "created_at"),
)

tasks = sa.Table(
    "flow_tasks",
    meta,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("flow_runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("node", sa.String(200), primary_key=True),
    sa.Column("seq", sa.Integer, nullable=False),  # creation order, for stable views and FIFO ties
    sa.Column("ref", sa.String(500), nullable=False),
    sa.Column("args", sa.Text),  # JSON
    sa.Column("kwargs", sa.Text),  # JSON
    sa.Column("deps", sa.Text),  # JSON list, in dependency order
    sa.Column("retries", sa.Integer, nullable=False, default=0),
    sa.Column("timeout", sa.Float),
    sa.Column("priority", sa.Integer, nullable=False, default=0),
    sa.Column("extra", sa.Text),  # JSON
    sa.Column("added_by", sa.String(200)),  # node that added this one while running
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),  # starts
    sa.Column("failures", sa.Integer, nullable=False, default=0),  # failed attempts since (re)submission
    sa.Column("output", sa.Text),  # JSON, the value passed on
    sa.Column("hints", sa.Text),  # JSON, cloudmesh display hints
    sa.Column("error", sa.Text),
    sa.Column("trace", sa.Text),
    sa.Column("started_at", sa.Float),
    sa.Column("finished_at", sa.Float),
    sa.Column("retry_at", sa.Float),
    sa.Column("lease_owner", sa.String(100)),
    sa.Column("lease_expires", sa.Float),
    sa.Index("ix_flow_tasks_lease", "lease_owner"),
)


def _create_v1(conn: sa.Connection) -> None:
    meta.create_all(conn, checkfirst=True)


def _submitted_by_v2(conn: sa.Connection) -> None:
    """Databases made before v2 lack `flow_runs.submitted_by` (v1 creates it on new ones)."""
    if "submitted_by" not in {c["name"] for c in sa.inspect(conn).get_columns("flow_runs")}:
        conn.execute(sa.text("ALTER TABLE flow_runs ADD COLUMN submitted_by VARCHAR(200)"))


register_migrations("flows", [Migration(1, "flow runs and tasks", _create_v1),
                              Migration(2, "who submitted a run", _submitted_by_v2)])


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


# Change sets --------------------------------------------------------------------------------------


@dataclass
class ChangeSet:
    """Everything one scheduler turn changes, written in one transaction, then announced."""

    new_runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    new_tasks: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    run_updates: dict[str, dict[str, Any]] = field(default_factory=dict)
    task_updates: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    def add_run(self, row: dict[str, Any]) -> None:
        self.new_runs[row["id"]] = row

    def add_task(self, row: dict[str, Any]) -> None:
        self.new_tasks[(row["run_id"], row["node"])] = row

    def update_run(self, run_id: str, **values: Any) -> None:
        target = self.new_runs.get(run_id)
        if target is None:
            target = self.run_updates.setdefault(run_id, {})
        target.update(values)

    def update_task(self, run_id: str, node: str, **values: Any) -> None:
        key = (run_id, node)
        target = self.new_tasks.get(key)
        if target is None:
            target = self.task_updates.setdefault(key, {})
        target.update(values)

    def __bool__(self) -> bool:
        return bool(self.new_runs or self.new_tasks or self.run_updates or self.task_updates)


class LeaseLost(Exception):
    """Runs this engine was driving are another engine's now: it took them over after our lease expired
    (our heartbeat stalled, or the database was out of reach for longer than the lease)."""

    def __init__(self, run_ids: set[str]) -> None:
        super().__init__(f"runs taken over by another engine: {sorted(run_ids)}")
        self.run_ids = run_ids


class FlowStore:
    """All SQL of the flow engine. The scheduler is the only writer of runs it owns."""

    def __init__(self, database: Database):
        self.db = database
        self.engine = database.engine
        migrate(self.engine)  # the flows component may have been registered after Database() ran
        self._update_cache: dict[tuple[str, tuple[str, ...]], sa.Update] = {}

    # writes ---------------------------------------------------------------------------------------
    def apply(self, cs: ChangeSet, owner: str | None = None, notify: bool = False) -> None:
        """Write one change set atomically; with `owner`, only if that engine still owns every run it
        changes (else `LeaseLost` and nothing is written): the fence that keeps an engine whose lease
        expired from recording a task another replica has taken over. `notify` (PostgreSQL): the
        change set's events go to the other replicas with the commit (`relay.py`)."""
        if not cs:
            return
        with self.engine.begin() as conn:
            if owner is not None:
                self._fence(conn, cs, owner)
            if notify and cs.events and owner is not None:
                from coflows.flows.relay import notify as send

                send(conn, owner, cs.events)
            if cs.new_runs:
                conn.execute(runs.insert(), list(cs.new_runs.values()))
            if cs.run_updates:
                self._updates(conn, runs, "id", ((k, v) for k, v in cs.run_updates.items()))
            if cs.new_tasks:
                rows = list(cs.new_tasks.values())
                columns = set().union(*(r.keys() for r in rows))
                conn.execute(tasks.insert(), [{c: r.get(c) for c in columns} for r in rows])
            if cs.task_updates:
                self._updates(conn, tasks, ("run_id", "node"), cs.task_updates.items())

    @staticmethod
    def _fence(conn: sa.Connection, cs: ChangeSet, owner: str) -> None:
        """Lock the stored runs `cs` changes (PostgreSQL: FOR UPDATE, so a takeover waits for this
        commit) and raise `LeaseLost` for those another engine owns."""
        touched = (set(cs.run_updates) | {k[0] for k in cs.task_updates} | {k[0] for k in cs.new_tasks}) - set(
            cs.new_runs)
        if not touched:
            return
        # on the hot path (every scheduler turn): plain SQL, no statement to build
        dialect = conn.dialect
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        ids = sorted(touched)
        sql = (f"SELECT id, owner FROM flow_runs WHERE id IN ({', '.join([mark] * len(ids))}) ORDER BY id"
               + (" FOR UPDATE" if dialect.name == "postgresql" else ""))
        rows = conn.exec_driver_sql(sql, tuple(ids)).all()
        lost = {run_id for run_id, run_owner in rows if run_owner != owner}
        if lost:
            raise LeaseLost(lost)

    def _updates(self, conn: sa.Connection, table: sa.Table, key: str | tuple[str, str],
                 items: Iterable[tuple[Any, dict[str, Any]]]) -> None:
        """Group updates by their column set and send each group as one executemany."""
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for k, values in items:
            cols = tuple(sorted(values))
            params = {f"v_{c}": values[c] for c in cols}
            if isinstance(key, tuple):
                params["k_run_id"], params["k_node"] = k
            else:
                params["k_id"] = k
            groups.setdefault(cols, []).append(params)
        for cols, params in groups.items():
            cache_key = (table.name, cols)
            stmt = self._update_cache.get(cache_key)
            if stmt is None:
                keys = key if isinstance(key, tuple) else (key,)
                stmt = table.update().where(*(table.c[k] == sa.bindparam(f"k_{k}") for k in keys)).values(
                    {c: sa.bindparam(f"v_{c}") for c in cols})
                self._update_cache[cache_key] = stmt
            conn.execute(stmt, params)

    def heartbeat(self, owner: str, expires: float) -> None:
        """Extend the leases of every run and running task this owner holds."""
        with self.engine.begin() as conn:
            conn.execute(runs.update().where(runs.c.owner == owner, runs.c.state.in_(RUN_ACTIVE))
                         .values(lease_expires=expires))
            conn.execute(tasks.update().where(tasks.c.lease_owner == owner, tasks.c.state == RUNNING)
                         .values(lease_expires=expires))

    def lost(self, owner: str, run_ids: list[str]) -> list[str]:
        """Which of these runs (driven here) the store no longer gives to `owner` (taken over, cancelled)."""
        if not run_ids:
            return []
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(sa.select(runs.c.id).where(
                runs.c.id.in_(run_ids), sa.or_(runs.c.owner.is_(None), runs.c.owner != owner)))]

    def claim(self, owner: str, now: float, expires: float, run_ids: list[str] | None = None,
              include_own: bool = True) -> list[str]:
        """Take over unfinished runs nobody drives: owner gone (lease expired), none, or (at start-up,
        `include_own`) this same owner id from before a restart.

        Compare-and-set per run, so two engines racing for a run cannot both win it.
        """
        free = [runs.c.owner.is_(None), runs.c.lease_expires < now]
        if include_own:
            free.append(runs.c.owner == owner)
        cond = sa.and_(runs.c.state.in_(RUN_ACTIVE), sa.or_(*free))
        if run_ids is not None:
            cond = sa.and_(cond, runs.c.id.in_(run_ids))
        with self.engine.begin() as conn:
            rows = conn.execute(sa.select(runs.c.id, runs.c.owner, runs.c.lease_expires).where(cond)
                                .order_by(runs.c.created_at)).all()
            won = []
            for run_id, old_owner, old_expires in rows:
                guard = [runs.c.id == run_id]
                guard.append(runs.c.owner.is_(None) if old_owner is None else runs.c.owner == old_owner)
                if old_expires is not None:
                    guard.append(runs.c.lease_expires == old_expires)
                res = conn.execute(runs.update().where(*guard).values(owner=owner, lease_expires=expires))
                if res.rowcount == 1:
                    won.append(run_id)
        return won

    def claim_terminal(self, run_id: str, owner: str, expires: float) -> bool:
        """Take a finished/failed/cancelled run for a re-run (compare-and-set on its state)."""
        with self.engine.begin() as conn:
            res = conn.execute(runs.update().where(runs.c.id == run_id, runs.c.state.in_(tuple(RUN_TERMINAL)))
                               .values(owner=owner, lease_expires=expires))
            return res.rowcount == 1

    def set_submitted_by(self, run_id: str, principal_id: str | None) -> None:
        """A rerun runs as the caller who asks for it: record who that is."""
        with self.engine.begin() as conn:
            conn.execute(runs.update().where(runs.c.id == run_id).values(submitted_by=principal_id))

    def cancel_unowned(self, run_id: str, now: float) -> bool:
        """Cancel a run that no live engine drives (e.g. interrupted, owner shut down)."""
        with self.engine.begin() as conn:
            res = conn.execute(runs.update().where(
                runs.c.id == run_id, runs.c.state.in_(RUN_ACTIVE),
                sa.or_(runs.c.owner.is_(None), runs.c.lease_expires < now))
                .values(state=CANCELLED, finished_at=now, owner=None, lease_expires=None))
            if res.rowcount != 1:
                return False
            conn.execute(tasks.update().where(tasks.c.run_id == run_id,
                                              tasks.c.state.in_((PENDING, RUNNING, INTERRUPTED)))
                         .values(state=CANCELLED, finished_at=now, lease_owner=None, lease_expires=None))
            return True

    # reads ----------------------------------------------------------------------------------------
    def run_row(self, run_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).mappings().first()
            return dict(row) if row else None

    def run_state(self, run_id: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(runs.c.state).where(runs.c.id == run_id)).scalar()

    def run_with_tasks(self, run_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).mappings().first()
            if row is None:
                return None
            rows = conn.execute(sa.select(tasks).where(tasks.c.run_id == run_id).order_by(tasks.c.seq)).mappings()
            return dict(row), [dict(r) for r in rows]

    def list_runs(self, limit: int, state: str | None,
                  workflows: list[str] | None = None) -> list[tuple[dict[str, Any], dict[str, int]]]:
        """Newest first; `workflows` given: only runs of those (filtered before the limit)."""
        with self.engine.connect() as conn:
            q = sa.select(runs).order_by(runs.c.created_at.desc()).limit(limit)
            if state is not None:
                q = q.where(runs.c.state == state)
            if workflows is not None:
                q = q.where(runs.c.workflow.in_(workflows))
            rows = [dict(r) for r in conn.execute(q).mappings()]
            counts: dict[str, dict[str, int]] = {r["id"]: {} for r in rows}
            if rows:
                q2 = (sa.select(tasks.c.run_id, tasks.c.state, sa.func.count())
                      .where(tasks.c.run_id.in_(list(counts))).group_by(tasks.c.run_id, tasks.c.state))
                for run_id, st, n in conn.execute(q2):
                    counts[run_id][st] = n
            return [(r, counts[r["id"]]) for r in rows]


def now() -> float:
    return time.time()
