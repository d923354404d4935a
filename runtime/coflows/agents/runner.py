"""Running one agent: its hooks on the call pool, its schedule without overlap, its runs recorded.

* Every hook runs on the runtime's call pool (`coflows.calls`) under its time limit (a Python
  hook's `@coflows.timeout`, else `Server.CallTimeout`); a hook past it is stopped and its run
  recorded as an error (`CallTimeout`). The agent's own pool only orders and waits.

* M hooks (Add/Exchange/Remove) of one agent run one at a time, in commit order, through the
  agent's mailbox; `Load` is the mailbox's first item. The writer only appends to the mailbox.
  A hook runs as the change's writer (`coflows.user()` in the hook is who wrote the entry).
* `Job` never overlaps with itself: a firing while the previous run is still going is recorded
  as `skipped` and dropped.
* `Body` runs whenever called (messages are request/response).
* Every invocation is a run: agent, hook, start, end, status (ok | error | skipped), error,
  captured output (print inside the hook) and a detail (entry id, execution type, ...). The
  last `keep` runs per agent are kept (table `agent_runs`, component "agents").
* With a lease keeper (replicas on PostgreSQL, `coflows.agents.lease`) the agent is *standby*
  until this replica holds its lease: firings and M changes are ignored; on gaining the lease it
  runs Load, then replays from the journal the M changes no owner finished, and from then claims
  each change (fenced, once per agent) before its hook and marks it done with the run record.
  A firing runs only if this replica claims it (`agent_firings`, unique per scheduled second).
"""

from __future__ import annotations

import collections
import datetime as dt
import io
import json
import logging
import os
import queue
import socket
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from coflows.agents.definition import M_HOOKS, MAIN_MESSAGE, AgentDefinition
from coflows.agents.schedule import DEFAULT_EXECUTION_TYPE, Schedule
from coflows.calls.timeout import declared_timeout
from coflows.context import CallContext, TaggedStream, call_context
from coflows.errors import CoflowsError
from coflows.m.store import ADD, EXCHANGE, REMOVE, Change, MStore
from coflows.permissions import Principal, principal_from_id
from coflows.store import Database, Migration, migrate, register_migrations

if TYPE_CHECKING:
    from apscheduler.schedulers.base import BaseScheduler

    from coflows.agents.lease import LeaseKeeper
    from coflows.calls import Calls

log = logging.getLogger("coflows.agents")

OK, ERROR, SKIPPED, RUNNING = "ok", "error", "skipped", "running"
MAX_OUTPUT = 64 * 1024  # characters of captured output kept per run
_HOOK_OF = {ADD: "Add", EXCHANGE: "Exchange", REMOVE: "Remove"}

# --- runs table ---------------------------------------------------------------------------------

metadata = sa.MetaData()
runs_table = sa.Table(
    "agent_runs",
    metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("agent_id", sa.String(255), nullable=False),
    sa.Column("hook", sa.String(16), nullable=False),
    sa.Column("started", sa.Float(), nullable=False),
    sa.Column("ended", sa.Float(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("output", sa.Text(), nullable=True),
    sa.Column("detail", sa.Text(), nullable=True),
    sa.Column("node", sa.String(255), nullable=True),  # host/pid: replicas on one database share the table
    sa.Index("ix_agent_runs_agent_seq", "agent_id", "seq"),
)

register_migrations("agents", [Migration(1, "agent_runs: one row per hook invocation",
                                         lambda conn: metadata.create_all(conn, tables=[runs_table]))])


NODE = f"{socket.gethostname()}/{os.getpid()}"


def _iso(t: float | None) -> str | None:
    return None if t is None else dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class RunRecord:
    agent_id: str
    hook: str
    started: float
    ended: float | None = None
    status: str = RUNNING
    error: str | None = None
    output: str | None = None
    detail: str | None = None
    node: str = NODE

    def to_json(self) -> dict[str, Any]:
        return {"Agent": self.agent_id, "Hook": self.hook, "Started": _iso(self.started), "Ended": _iso(self.ended),
                "DurationMs": None if self.ended is None else round((self.ended - self.started) * 1000, 3),
                "Status": self.status, "Error": self.error, "Output": self.output or "", "Detail": self.detail,
                "Node": self.node}


class RunRecorder:
    """Writes finished runs in batches from a background thread and keeps the last `keep` per agent."""

    def __init__(self, database: Database | None, keep: int = 200) -> None:
        self.database = database
        self.keep = keep
        self._pending: list[RunRecord] = []
        self._cond = threading.Condition()
        self._busy = False
        self._prune_due = False
        self._stopping = False
        self._since_prune: collections.Counter[str] = collections.Counter()
        self._memory: dict[str, collections.deque[RunRecord]] = {}
        if database is not None:
            migrate(database.engine)
        self._thread = threading.Thread(target=self._loop, name="coflows-agent-runs", daemon=True)
        self._thread.start()

    def record(self, rec: RunRecord) -> None:
        if self.database is None:
            with self._cond:
                self._memory.setdefault(rec.agent_id, collections.deque(maxlen=self.keep)).append(rec)
            return
        with self._cond:
            self._pending.append(rec)
            self._cond.notify()

    def flush(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while (self._pending or self._busy) and not self._stopping:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._cond.wait(left)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._prune_due and not self._stopping:
                    self._cond.wait()
                if not self._pending and self._stopping:
                    return
                batch, self._pending = self._pending, []
                self._prune_due = False
                self._busy = True
            try:
                self._write(batch)
            except Exception:  # noqa: BLE001 - losing run records must not stop agents
                log.exception("could not record %d agent runs", len(batch))
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
            time.sleep(0.02)  # let a burst gather into one transaction

    def _write(self, batch: list[RunRecord]) -> None:
        assert self.database is not None
        rows = [{"agent_id": r.agent_id, "hook": r.hook, "started": r.started, "ended": r.ended or r.started,
                 "status": r.status, "error": r.error, "output": r.output, "detail": r.detail, "node": r.node}
                for r in batch]
        with self.database.engine.begin() as conn:
            if rows:
                conn.execute(runs_table.insert(), rows)
            with self._cond:  # `row_now` counts from other threads
                for r in batch:
                    self._since_prune[r.agent_id] += 1
                due = [a for a, n in self._since_prune.items() if n >= max(10, self.keep // 10)]
                for agent_id in due:
                    del self._since_prune[agent_id]
            for agent_id in due:
                cutoff = (sa.select(runs_table.c.seq).where(runs_table.c.agent_id == agent_id)
                          .order_by(runs_table.c.seq.desc()).limit(1).offset(self.keep).scalar_subquery())
                conn.execute(sa.delete(runs_table).where(runs_table.c.agent_id == agent_id,
                                                         runs_table.c.seq <= cutoff))

    def row_now(self, rec: RunRecord) -> dict[str, Any]:
        """The `agent_runs` row of a finished run the caller writes itself (an M hook's run, with its
        claim marked done); counted for pruning with the next batch."""
        with self._cond:
            self._since_prune[rec.agent_id] += 1
            if self._since_prune[rec.agent_id] >= max(10, self.keep // 10):
                self._prune_due = True  # the writer thread prunes (there may be no batch to ride on)
                self._cond.notify()
        return {"agent_id": rec.agent_id, "hook": rec.hook, "started": rec.started, "ended": rec.ended or rec.started,
                "status": rec.status, "error": rec.error, "output": rec.output, "detail": rec.detail, "node": rec.node}

    def recent(self, agent_id: str, limit: int) -> list[RunRecord]:
        """The newest runs of an agent, newest first."""
        limit = max(1, min(limit, self.keep))
        if self.database is None:
            with self._cond:
                return list(reversed(self._memory.get(agent_id, ())))[:limit]
        self.flush()
        stmt = (sa.select(runs_table).where(runs_table.c.agent_id == agent_id)
                .order_by(runs_table.c.seq.desc()).limit(limit))
        with self.database.engine.connect() as conn:
            return [RunRecord(r.agent_id, r.hook, r.started, r.ended, r.status, r.error, r.output, r.detail,
                              r.node or "") for r in conn.execute(stmt)]

    def close(self) -> None:
        self.flush(5)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(5)


# --- thread pool ----------------------------------------------------------------------------------


class DaemonPool:
    """A thread pool of daemon threads: a hook that never returns (a CoFlows "Main" loop, a hung
    call) cannot keep the server from exiting, as `ThreadPoolExecutor`'s joined workers would.
    Threads start on demand, up to `max_workers`, and stay."""

    def __init__(self, max_workers: int, prefix: str) -> None:
        self.max_workers = max_workers
        self.prefix = prefix
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._shutdown = False

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        if self._shutdown:
            raise RuntimeError("the agent pool is shut down")
        future: Future = Future()
        self._queue.put((future, fn, args, kwargs))
        if not self._idle.acquire(blocking=False):
            with self._lock:
                if len(self._threads) < self.max_workers:
                    t = threading.Thread(target=self._work, name=f"{self.prefix}-{len(self._threads)}", daemon=True)
                    self._threads.append(t)
                    t.start()
        return future

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, fn, args, kwargs = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as e:  # noqa: BLE001
                    future.set_exception(e)
            del item, future, fn, args, kwargs
            self._idle.release()

    def shutdown(self) -> None:
        """Cancel queued work and let idle threads end (running hooks are not waited for)."""
        self._shutdown = True
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[0].cancel()
        for _ in self._threads:
            self._queue.put(None)


# --- output capture -----------------------------------------------------------------------------

_capture = threading.local()


class _CapturingStream(TaggedStream):
    """`TaggedStream` that also copies what a hook prints into the hook's run record."""

    def write(self, s: str) -> int:
        buf: io.StringIO | None = getattr(_capture, "buf", None)
        if buf is not None and buf.tell() < MAX_OUTPUT:
            buf.write(s)
        return super().write(s)


def install_capture() -> None:
    """Idempotent; keeps the tagging of `coflows.context.install_output_capture`."""
    for name, level in (("stdout", logging.INFO), ("stderr", logging.WARNING)):
        current = getattr(sys, name)
        if isinstance(current, _CapturingStream):
            continue
        real = current._real if isinstance(current, TaggedStream) else current  # noqa: SLF001
        setattr(sys, name, _CapturingStream(real, level))


def _flush_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001
            pass


# --- one agent ----------------------------------------------------------------------------------


class AgentRunner:
    """The live state of one agent. `state`: running | stopped | error."""

    def __init__(self, definition: AgentDefinition, *, workflow_name: str, schedule: Schedule | None,
                 pool: DaemonPool, scheduler: BaseScheduler, recorder: RunRecorder,
                 store_of: Callable[[], MStore | None], calls: Calls | None = None,
                 keeper: LeaseKeeper | None = None) -> None:
        self.definition = definition
        self.calls = calls  # the runtime's call pool: hooks run there, under their time limit
        self.workflow_name = workflow_name
        self.schedule = schedule
        self.pool = pool
        self.scheduler = scheduler
        self.recorder = recorder
        self._store_of = store_of
        self.state = "stopped"
        self.error: str | None = None
        self.stale: str | None = None  # an edit of its source that did not build: this version runs on
        self._lock = threading.Lock()
        self._mailbox: collections.deque[tuple[str, Any]] = collections.deque()
        self._draining = False
        self._job_running = False
        self._unsubscribe: Callable[[], None] | None = None
        self._running: dict[int, RunRecord] = {}
        self._next_runs: tuple[dt.datetime, list[str], int] | None = None  # see `next_runs`
        self.keeper = keeper  # None: this replica runs the agent (SQLite, no database, PerReplica)
        self._low: int | None = None  # the M low mark (with a keeper, while owner; see agents/lease.py)
        self._fence: int | None = None  # the lease's fence while owner
        self._checkpoints: collections.deque[tuple[float, int]] = collections.deque()
        self._gained_once = False

    @property
    def id(self) -> str:
        return self.definition.id

    @property
    def active(self) -> bool:
        return self.state == "running"

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self, initial: bool = False) -> None:
        """Subscribe to the topic, schedule Job, queue Load (and at first start, Body "Main")."""
        d = self.definition
        with self._lock:
            if self.state == "running":
                return
            store = self._store_of() if d.topic else None
            if d.topic and store is None:
                raise CoflowsError(f"agent '{d.id}' watches M topic '{d.topic}' but the server has no database")
            self.state = "running"
            self.error = None
        if "Load" in d.hooks and self.keeper is None:
            self._enqueue(("Load", None))
        if store is not None and any(h in d.hooks for h in M_HOOKS):
            self._unsubscribe = store.subscribe(d.topic, self._on_change)
        if initial and "Body" in d.hooks and self.keeper is None:
            self.pool.submit(self.invoke, "Body", (dict(MAIN_MESSAGE),), "Main")
        self._initial = initial
        if self.schedule is not None and "Job" in d.hooks:
            self.scheduler.add_job(self._fire, trigger=self.schedule.trigger(), id=d.id, name=d.name,
                                   replace_existing=True, coalesce=True, max_instances=4, misfire_grace_time=30)
        if self.keeper is not None:
            self.keeper.want(d.id)  # owner once the lease is ours (`gain`); standby until then
        log.info("agent %s (%s) started%s%s", d.id, d.name, f", watching M '{d.topic}'" if d.topic else "",
                 f", schedule '{d.schedule}'" if self.schedule else "")

    def stop(self) -> None:
        with self._lock:
            if self.state != "running":
                return
            self.state = "stopped"
            self._mailbox.clear()
            self._fence = None
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        try:
            self.scheduler.remove_job(self.id)
        except Exception:  # noqa: BLE001 - JobLookupError: not scheduled
            pass
        if self.keeper is not None:
            self.keeper.unwant(self.id)  # another replica takes over at once
        log.info("agent %s stopped", self.id)

    def next_run(self) -> str | None:
        if not self.active or self.schedule is None:
            return None
        try:
            job = self.scheduler.get_job(self.id)
        except Exception:  # noqa: BLE001
            return None
        when = getattr(job, "next_run_time", None) if job is not None else None
        return when.isoformat() if when else None

    # -- ownership (with a lease keeper) -----------------------------------------------------------
    def owner(self) -> bool:
        """Whether this replica runs the agent's Job, Load and M hooks now."""
        return self.keeper is None or (self._fence is not None and self.keeper.fence(self.id) == self._fence)

    def gain(self, fence: int) -> None:
        """This replica took the lease: Load, then the changes no owner handled to the end (the
        journal, above the low mark), then live ones. Called by the lease keeper's thread."""
        store = self._store_of() if self.definition.topic else None
        low: int | None = None
        if store is not None and self.keeper is not None and any(h in self.definition.hooks for h in M_HOOKS):
            low = self.keeper.table.low_mark(self.id, fence, store.max_seq)
        with self._lock:
            if self.state != "running":
                return
            self._low, self._fence = low, fence
            self._checkpoints = collections.deque()
            self._mailbox.clear()
            initial, self._gained_once = not self._gained_once and getattr(self, "_initial", False), True
        log.info("agent %s: owner on this replica (fence %d)", self.id, fence)
        if "Load" in self.definition.hooks:
            self._enqueue(("Load", None))
        if low is not None:
            self._enqueue(("replay", None))
        if initial and "Body" in self.definition.hooks:
            self.pool.submit(self.invoke, "Body", (dict(MAIN_MESSAGE),), "Main")

    def lose(self) -> None:
        """Another replica owns the agent now (or ours expired): stand by. Pending changes are
        dropped: the new owner replays them from the cursor."""
        with self._lock:
            self._fence = None
            self._mailbox.clear()

    # -- M hooks ------------------------------------------------------------------------------
    def _on_change(self, change: Change) -> None:
        """In the writer's thread, after commit: only queue (on standby: nothing)."""
        if _HOOK_OF[change.kind] in self.definition.hooks and (self.keeper is None or self._fence is not None):
            self._enqueue(("change", change))

    def _enqueue(self, item: tuple[str, Any]) -> None:
        with self._lock:
            self._mailbox.append(item)
            if self._draining:
                return
            self._draining = True
        self.pool.submit(self._drain)

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._mailbox or self.state != "running":
                    self._draining = False
                    return
                kind, payload = self._mailbox.popleft()
            if self.keeper is not None and not self.owner():
                continue  # lost the lease meanwhile
            if kind == "Load":
                self.invoke("Load", (self._load_values(),))
            elif kind == "replay":
                self._replay()
            else:
                self._handle(payload)

    def _handle(self, change: Change) -> None:
        """Run the change's hook as its writer (their current groups; None: no caller). With a lease:
        only if this owner claims it (nobody handled it: exactly once), marked done with its run."""
        fence, low = self._fence, self._low
        if self.keeper is None or fence is None or low is None or not change.seq:
            self.invoke(_HOOK_OF[change.kind], (change.id, change.value), f"{change.id} v{change.version}",
                        _writer(change.author))
            return
        if change.seq <= low:
            return  # below the low mark: handled long ago
        table = self.keeper.table
        try:
            if not table.claim_change(self.id, fence, change.seq):
                if self._fence == fence and self.keeper.fence(self.id) != fence:
                    self.lose()
                return  # handled already (replayed, or by the previous owner), or the lease is lost
        except sa.exc.SQLAlchemyError:
            log.exception("agent %s: claiming M change %s", self.id, change.seq)
            return
        rec = RunRecord(self.id, _HOOK_OF[change.kind], time.time(), detail=f"{change.id} v{change.version}")
        self.invoke(rec.hook, (change.id, change.value), rec.detail, _writer(change.author), record=rec,
                    defer_record=True)
        try:
            table.finish_change(self.id, change.seq, self.recorder.row_now(rec))
        except sa.exc.SQLAlchemyError:
            log.exception("agent %s: recording M change %s as handled", self.id, change.seq)
            self.recorder.record(rec)
        self._checkpoint()

    def _checkpoint(self) -> None:
        """Every 30 s note the journal's top; move the low mark to the newest note older than the
        horizon (writes below it have all committed or never will)."""
        from coflows.agents.lease import HORIZON

        store, fence, low = self._store_of(), self._fence, self._low
        if store is None or fence is None or low is None or self.keeper is None:
            return
        now = time.monotonic()
        marks = self._checkpoints
        if not marks or now - marks[-1][0] >= 30:
            marks.append((now, store.max_seq()))
        new_low = None
        while marks and now - marks[0][0] >= HORIZON:
            new_low = marks.popleft()[1]
        if new_low is not None and new_low > low:
            if self.keeper.table.advance(self.id, fence, new_low):
                self._low = new_low

    def _replay(self) -> None:
        """The journal's changes of the topic above the low mark not handled to the end, in seq order."""
        store = self._store_of()
        fence, low = self._fence, self._low
        topic = self.definition.topic
        if store is None or fence is None or low is None or topic is None or self.keeper is None:
            return
        replayed, after = 0, low
        while self.owner():
            rows = self.keeper.table.pending(self.id, topic, low, after)
            if not rows:
                break
            after = rows[-1].seq
            for seq, change in store.journal_changes(rows):
                if not self.owner():
                    return
                if change is None or _HOOK_OF[change.kind] not in self.definition.hooks:
                    continue  # gone or exchanged since (a later row has it), or no hook for it
                self._handle(change)
                replayed += 1
        if replayed:
            log.info("agent %s: replayed %d M changes no owner had handled", self.id, replayed)

    def _load_values(self) -> list[Any] | None:
        topic = self.definition.topic
        store = self._store_of() if topic else None
        if store is None:
            return None
        return [json.loads(r[1]) for r in store.rows(topic)]

    # -- Job ----------------------------------------------------------------------------------
    def _fire(self) -> None:
        """APScheduler's job: hands the run to the pool unless the previous one is still going."""
        assert self.schedule is not None
        now = dt.datetime.now(dt.timezone.utc)
        part = self.schedule.match(now)
        execution_type = (part.execution_type if part else None) or DEFAULT_EXECUTION_TYPE
        stamp = (now + dt.timedelta(microseconds=500_000)).replace(microsecond=0).astimezone(self.schedule.timezone)
        with self._lock:
            if self.state != "running":
                return
        if self.keeper is not None:
            fence = self._fence
            if fence is None or not self.owner():
                return  # standby
            scheduled = stamp.astimezone(dt.timezone.utc).isoformat()
            try:
                if not self.keeper.table.claim_firing(self.id, fence, scheduled):
                    return  # claimed by another replica (a takeover at the boundary), or lost the lease
            except sa.exc.SQLAlchemyError:
                log.exception("agent %s: claiming the firing at %s", self.id, stamp)
                return
        with self._lock:
            if self.state != "running":
                return
            if self._job_running:
                t = time.time()
                self.recorder.record(RunRecord(self.id, "Job", t, t, SKIPPED, None, None,
                                               f"{execution_type} {stamp.isoformat()}: previous run still going"))
                log.warning("agent %s: Job at %s skipped: the previous run is still going", self.id, stamp)
                return
            self._job_running = True
        try:
            self.pool.submit(self._job, stamp, execution_type)
        except RuntimeError:  # pool shut down
            with self._lock:
                self._job_running = False

    def _job(self, stamp: dt.datetime, execution_type: str) -> None:
        try:
            self.invoke("Job", (stamp, execution_type), f"{execution_type} {stamp.isoformat()}")
        finally:
            with self._lock:
                self._job_running = False

    def run_now(self, principal: Any = None) -> tuple[RunRecord, Future]:
        """Run Job at once, as `principal` (the web app's "Run now"), whether or not the agent is
        started. Refused (AgentError, 409) without a Job hook, in state error, or while a Job run
        is going (scheduled or not: Job never overlaps itself). Returns the run's record (filled in
        as it goes) and a future that is done when the run is."""
        from coflows.agents.definition import AgentError

        if "Job" not in self.definition.hooks:
            raise AgentError(f"agent '{self.id}' has no Job hook")
        zone = self.schedule.timezone if self.schedule is not None else dt.timezone.utc
        stamp = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).astimezone(zone)
        detail = f"{DEFAULT_EXECUTION_TYPE} {stamp.isoformat()} (run now)"
        with self._lock:
            if self.state == "error":
                raise AgentError(f"agent '{self.id}' is not started: {self.error}")
            if self._job_running:
                raise AgentError(f"agent '{self.id}': a Job run is already going")
            self._job_running = True
        rec = RunRecord(self.id, "Job", time.time(), detail=detail)
        self._running[id(rec)] = rec  # listed as running from now, before a pool thread takes it

        def run() -> None:
            try:
                self.invoke("Job", (stamp, DEFAULT_EXECUTION_TYPE), detail, principal, record=rec)
            finally:
                with self._lock:
                    self._job_running = False

        try:
            return rec, self.pool.submit(run)
        except RuntimeError:  # pool shut down
            self._running.pop(id(rec), None)
            with self._lock:
                self._job_running = False
            raise AgentError(f"agent '{self.id}': the server is stopping") from None

    def next_runs(self, n: int = 5) -> list[str]:
        """The next `n` fire times (ISO, in the schedule's zone, with its offset) while started; the
        list is kept until its first time passes, so listing agents stays cheap."""
        if not self.active or self.schedule is None or "Job" not in self.definition.hooks:
            return []
        now = dt.datetime.now(dt.timezone.utc)
        cached = self._next_runs
        if cached is None or cached[0] <= now or cached[2] < n:
            times = [t for t, _ in self.schedule.next_fire_times(now, n)]
            # valid until the first time passes (none left: look again in a minute)
            cached = self._next_runs = (times[0] if times else now + dt.timedelta(minutes=1),
                                        [t.isoformat() for t in times], n)
        return cached[1][:n]

    # -- Body ---------------------------------------------------------------------------------
    def body(self, data: Any, principal: Any = None) -> Future:
        """Call Body on the pool; the future holds its result or raises its error."""
        return self.pool.submit(self.invoke, "Body", (data,), "message", principal, True)

    # -- every hook ---------------------------------------------------------------------------
    def invoke(self, hook: str, args: tuple[Any, ...], detail: str | None = None, principal: Any = None,
               raise_errors: bool = False, record: RunRecord | None = None, defer_record: bool = False) -> Any:
        """Call a hook in this thread, recording the run (into `record` when given: the caller of
        `run_now` holds it; `defer_record`: the caller writes it); errors are recorded and logged."""
        fn = self.definition.hooks.get(hook)
        if fn is None:
            return None
        rec = record if record is not None else RunRecord(self.id, hook, time.time(), detail=detail)
        rec.started = time.time()
        key = id(rec)
        self._running[key] = rec
        buf = io.StringIO()
        ctx = CallContext(self.definition.workflow_id, f"agent:{self.definition.name}", hook, principal,
                          self.workflow_name)

        def run_hook() -> Any:  # on the call pool's thread: capture and context are per thread
            previous = getattr(_capture, "buf", None)
            _capture.buf = buf
            try:
                with call_context(ctx):
                    try:
                        return fn(*args)
                    finally:
                        _flush_streams()
            finally:
                _capture.buf = previous

        try:
            if self.calls is None:
                result = run_hook()
            else:
                label = f"agent {self.id} {hook}"
                result = self.calls.run(run_hook, label=label, timeout=declared_timeout(fn))
            rec.status = OK
            return result
        except Exception as e:  # noqa: BLE001 - user code may raise anything
            err = e if isinstance(e, CoflowsError) else _user_error(e)
            stack = getattr(err, "stack", "")
            rec.status = ERROR
            rec.error = f"{err}\n{stack}".rstrip()
            log.error("agent %s: %s failed: %s", self.id, hook, rec.error)
            if raise_errors:
                raise err from e
            return None
        finally:
            rec.ended = time.time()
            text = buf.getvalue()
            rec.output = text if len(text) <= MAX_OUTPUT else text[:MAX_OUTPUT] + "\n… (output truncated)"
            self._running.pop(key, None)
            if not defer_record:
                self.recorder.record(rec)

    def running_runs(self) -> list[RunRecord]:
        return list(self._running.values())

    def status(self) -> dict[str, Any]:
        d = self.definition
        return {"ID": d.id, "Name": d.name, "Description": d.description, "WorkflowID": d.workflow_id,
                "Workflow": self.workflow_name, "File": d.source, "Language": d.language, "MID": d.topic,
                "Schedule": d.schedule, "State": self.state, "Error": self.error or self.stale,
                "Stale": self.stale is not None,
                "Hooks": [h for h in ("Load", "Add", "Exchange", "Remove", "Body", "Job") if h in d.hooks],
                "NextRun": self.next_run(), "NextRuns": self.next_runs(),
                "Running": [r.hook for r in self.running_runs()],
                "Owner": NODE if self.keeper is None else self.keeper.owner_of(d.id),
                "Standby": self.active and not self.owner()}


def _writer(author: str | None) -> Principal | None:
    """The principal an M hook runs as: the change's writer with their current groups. A failed
    lookup (database unreachable) gives the bare id, which has no grants beyond Public."""
    if not author:
        return None
    try:
        return principal_from_id(author)
    except Exception:  # noqa: BLE001 - the hook still runs, never with more than the writer had
        log.exception("looking up %s, the writer of an M change", author)
        return Principal(author)


def _user_error(e: BaseException) -> CoflowsError:
    from coflows.engines.python import user_code_error

    return user_code_error(e)
