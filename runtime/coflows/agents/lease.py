"""Agent ownership across replicas: one lease per agent in the database, with a fencing token.

Replicas on one database run every agent's code, but only the holder of an agent's lease runs its
Job firings, its Load hook and its M hooks; the others keep it on standby. Table
``agent_leases(agent_id PK, owner, fence, expires, cursor)``:

* ``owner`` is the holding process (`AgentManager.owner_id`), ``expires`` a time in the
  database's clock (no skew between replicas), ``fence`` a counter bumped on every takeover.
* A holder renews every ``seconds / 4``, each time to ``0.75 * seconds`` ahead; a lease not renewed
  in time is taken by the next replica that polls (every ``min(1, seconds / 5)``), which bumps
  ``fence``: a dead owner's agents are taken over within ``seconds``.
* Everything an owner commits on an agent's behalf (a firing's claim, the M cursor) checks
  ``(owner, fence)`` in the same transaction (`_fenced`, an UPDATE that locks the row until the
  commit), so an old owner that paused past its lease cannot act once another took over.
* ``cursor`` is the agent's M low mark: a journal seq (`m_changes.seq`) at or below which every
  change of its topic has been handled (or was written before the agent first started).

``agent_firings(agent_id, scheduled)`` is unique: a cron firing is claimed once (insert-or-skip)
whichever replica fires it, so a takeover at the boundary cannot run it twice. Kept for
`FIRINGS_KEEP_HOURS`.

``agent_handled(agent_id, seq, fence, done)``: the M changes above the low mark an owner claimed
(`claim_change`, fenced, insert-or-skip) and finished (`finish_change`, with the run record). Seqs
are taken at insert but visible at commit, so changes arrive out of seq order: a single cursor
number could not say which are done; these rows can. A new owner replays the journal's changes of
the topic above the low mark that have no row, or a row not done (its owner died mid-hook: that
hook runs again). The low mark advances to the journal's top as of `HORIZON` seconds ago (a write
not committed by then never will be), and rows at or below it are deleted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

import sqlalchemy as sa

from coflows.store import Migration, migrate, register_migrations

log = logging.getLogger("coflows.agents.lease")

FIRINGS_KEEP_HOURS = 24.0

metadata = sa.MetaData()
_BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

leases = sa.Table(
    "agent_leases",
    metadata,
    sa.Column("agent_id", sa.String(255), primary_key=True),
    sa.Column("owner", sa.String(255), nullable=True),
    sa.Column("fence", _BigInt, nullable=False),
    sa.Column("expires", sa.Float(), nullable=False),
    sa.Column("cursor", sa.Text(), nullable=True),
)

firings = sa.Table(
    "agent_firings",
    metadata,
    sa.Column("agent_id", sa.String(255), primary_key=True),
    sa.Column("scheduled", sa.String(40), primary_key=True),  # ISO time of the firing (to the second)
    sa.Column("owner", sa.String(255), nullable=False),
    sa.Column("fence", _BigInt, nullable=False),
    sa.Column("at", sa.Float(), nullable=False),
    sa.Index("ix_agent_firings_at", "at"),
)

handled = sa.Table(
    "agent_handled",
    metadata,
    sa.Column("agent_id", sa.String(255), primary_key=True),
    sa.Column("seq", _BigInt, primary_key=True, autoincrement=False),
    sa.Column("fence", _BigInt, nullable=False),
    sa.Column("done", sa.Boolean(), nullable=False),
)

TERM = 0.75  # a lease is taken or renewed for this fraction of LeaseSeconds ...
VALID = 0.65  # ... and its holder trusts it for this fraction after the renewal began
HORIZON = 120.0  # seconds: a journal seq not committed this long after it was taken never will be

_FINISH_PG = sa.text(
    "WITH u AS (UPDATE agent_handled SET done = true WHERE agent_id = :a AND seq = :s) "
    "INSERT INTO agent_runs (agent_id, hook, started, ended, status, error, output, detail, node) "
    "VALUES (:agent_id, :hook, :started, :ended, :status, :error, :output, :detail, :node)")

register_migrations("agent_leases", [Migration(
    1, "agent_leases, agent_firings, agent_handled: agents owned by one replica, each firing and change once",
    lambda conn: metadata.create_all(conn, tables=[leases, firings, handled], checkfirst=True))])


def db_now(dialect: str) -> sa.ColumnElement[float]:
    """Seconds since the epoch by the database's clock."""
    if dialect == "postgresql":
        return sa.cast(sa.func.extract("epoch", sa.func.clock_timestamp()), sa.Float)
    if dialect == "sqlite":
        return (sa.func.julianday("now") - 2440587.5) * 86400.0
    return sa.literal(time.time())


def _insert(dialect: str):  # noqa: ANN202 - a dialect's insert (with on_conflict_do_nothing)
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


class LeaseTable:
    """The lease operations of one process (`owner`) on one database."""

    def __init__(self, engine: sa.Engine, owner: str, seconds: float = 10.0) -> None:
        self.engine = engine
        self.owner = owner
        self.seconds = seconds
        self.term = seconds * TERM  # how far ahead a take or a renewal sets `expires`
        self.dialect = engine.dialect.name
        migrate(engine)

    def _now(self) -> sa.ColumnElement[float]:
        return db_now(self.dialect)

    def acquire(self, agent_id: str) -> int | None:
        """Take the lease if nobody holds it (or its holder let it expire); returns the new fence."""
        now = self._now()
        with self.engine.begin() as conn:
            ins = _insert(self.dialect)(leases).values(agent_id=agent_id, owner=self.owner, fence=1,
                                                       expires=now + self.term)
            row = conn.execute(ins.on_conflict_do_nothing(index_elements=["agent_id"])
                               .returning(leases.c.fence)).first()
            if row is not None:
                return int(row[0])
            row = conn.execute(sa.update(leases).where(leases.c.agent_id == agent_id, leases.c.expires < now)
                               .values(owner=self.owner, fence=leases.c.fence + 1, expires=now + self.term)
                               .returning(leases.c.fence)).first()
            return int(row[0]) if row is not None else None

    def expired(self, agent_ids: Iterable[str]) -> list[str]:
        """Which of these agents have no lease or an expired one (cheap: one SELECT)."""
        ids = list(agent_ids)
        if not ids:
            return []
        with self.engine.connect() as conn:
            live = {r[0] for r in conn.execute(sa.select(leases.c.agent_id).where(
                leases.c.agent_id.in_(ids), leases.c.expires >= self._now()))}
        return [a for a in ids if a not in live]

    def renew(self, held: dict[str, int]) -> set[str]:
        """Extend the leases still ours at these fences; returns the agent ids renewed."""
        if not held:
            return set()
        stmt = (sa.update(leases).where(leases.c.owner == self.owner,
                                        sa.tuple_(leases.c.agent_id, leases.c.fence).in_(list(held.items())))
                .values(expires=self._now() + self.term).returning(leases.c.agent_id))
        with self.engine.begin() as conn:
            return {r[0] for r in conn.execute(stmt)}

    def release(self, agent_id: str, fence: int) -> None:
        """Let another replica take the lease at once (graceful stop)."""
        with self.engine.begin() as conn:
            conn.execute(sa.update(leases).where(leases.c.agent_id == agent_id, leases.c.owner == self.owner,
                                                 leases.c.fence == fence).values(expires=0.0))

    def _fenced(self, conn: sa.Connection, agent_id: str, fence: int, **values: object) -> bool:
        """True while (owner, fence) still hold the lease; locks its row until `conn` commits, so a
        takeover waits for (or invalidates) what this transaction does."""
        stmt = sa.update(leases).where(leases.c.agent_id == agent_id, leases.c.owner == self.owner,
                                       leases.c.fence == fence)
        return conn.execute(stmt.values(**(values or {"fence": leases.c.fence}))).rowcount == 1

    def claim_firing(self, agent_id: str, fence: int, scheduled: str) -> bool:
        """Claim one cron firing: False if the lease is lost or the firing was claimed already."""
        with self.engine.begin() as conn:
            if not self._fenced(conn, agent_id, fence):
                return False
            stmt = _insert(self.dialect)(firings).values(agent_id=agent_id, scheduled=scheduled, owner=self.owner,
                                                         fence=fence, at=time.time())
            return conn.execute(stmt.on_conflict_do_nothing(index_elements=["agent_id", "scheduled"])
                                .returning(firings.c.agent_id)).first() is not None

    def low_mark(self, agent_id: str, fence: int, start: Callable[[], int]) -> int:
        """The agent's M low mark; the first owner ever sets it to `start()` (the journal's top)."""
        with self.engine.begin() as conn:
            text = conn.execute(sa.select(leases.c.cursor).where(leases.c.agent_id == agent_id)).scalar()
            if text:
                return int(text)
            low = start()
            self._fenced(conn, agent_id, fence, cursor=str(low))
            return low

    def advance(self, agent_id: str, fence: int, low: int) -> bool:
        """Move the low mark up to `low` and forget the handled rows at or below it."""
        with self.engine.begin() as conn:
            if not self._fenced(conn, agent_id, fence, cursor=str(low)):
                return False
            conn.execute(sa.delete(handled).where(handled.c.agent_id == agent_id, handled.c.seq <= low))
            return True

    def claim_change(self, agent_id: str, fence: int, seq: int) -> bool:
        """Claim one M change for this owner: True if nobody has (or a dead owner left it unfinished)."""
        with self.engine.begin() as conn:
            if not self._fenced(conn, agent_id, fence):
                return False
            ins = _insert(self.dialect)(handled).values(agent_id=agent_id, seq=seq, fence=fence, done=False)
            if conn.execute(ins.on_conflict_do_nothing(index_elements=["agent_id", "seq"])
                            .returning(handled.c.seq)).first() is not None:
                return True
            return conn.execute(sa.update(handled).where(
                handled.c.agent_id == agent_id, handled.c.seq == seq, handled.c.done.is_(False),
                handled.c.fence < fence).values(fence=fence)).rowcount == 1

    def finish_change(self, agent_id: str, seq: int, run: dict[str, object] | None = None) -> None:
        """Mark a claimed change done, with its run record (an `agent_runs` row) in the same
        transaction. Not fenced: the hook did run, whoever owns the agent now. On PostgreSQL one
        autocommitted statement: the window between a hook's effect and this commit (where a kill
        makes the next owner run the hook again) is one round trip."""
        from coflows.agents.runner import runs_table

        if self.dialect == "postgresql" and run is not None:
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(_FINISH_PG, {"a": agent_id, "s": seq, **run})
            return
        with self.engine.begin() as conn:
            conn.execute(sa.update(handled).where(handled.c.agent_id == agent_id, handled.c.seq == seq)
                         .values(done=True))
            if run is not None:
                conn.execute(runs_table.insert().values(**run))

    def pending(self, agent_id: str, topic: str, low: int, after: int, limit: int = 500) -> list[sa.Row]:
        """Journal rows of `topic` above the low mark (and above `after`) not handled to the end."""
        from coflows.m.store import journal

        h = handled.alias("h")
        stmt = (sa.select(journal).select_from(journal.outerjoin(
            h, sa.and_(h.c.agent_id == agent_id, h.c.seq == journal.c.seq)))
            .where(journal.c.topic == topic, journal.c.seq > max(low, after),
                   sa.or_(h.c.seq.is_(None), h.c.done.is_(False)))
            .order_by(journal.c.seq).limit(limit))
        with self.engine.connect() as conn:
            return list(conn.execute(stmt))

    def holders(self) -> dict[str, tuple[str | None, int, bool]]:
        """agent id -> (owner, fence, live) of every lease."""
        now = self._now()
        with self.engine.connect() as conn:
            return {r[0]: (r[1], int(r[2]), bool(r[3])) for r in conn.execute(
                sa.select(leases.c.agent_id, leases.c.owner, leases.c.fence, leases.c.expires >= now))}

    def prune_firings(self, hours: float = FIRINGS_KEEP_HOURS) -> int:
        with self.engine.begin() as conn:
            return int(conn.execute(sa.delete(firings).where(firings.c.at < time.time() - hours * 3600)).rowcount
                       or 0)


class LeaseKeeper(threading.Thread):
    """This replica's leases: takes the ones it wants when free, renews the ones it holds.

    `on_gain(agent_id, fence)` / `on_lose(agent_id)` are called from this thread. A lease counts as
    held locally only until `seconds * VALID` after the start of its last successful renewal (the
    database holds it until `seconds * TERM` after), so a replica cut off from the database (or
    paused) stops acting before another can take over."""

    def __init__(self, table: LeaseTable, on_gain: Callable[[str, int], None],
                 on_lose: Callable[[str], None]) -> None:
        super().__init__(name="coflows-agent-leases", daemon=True)
        self.table = table
        self.seconds = table.seconds
        self.on_gain, self.on_lose = on_gain, on_lose
        self._wanted: set[str] = set()
        self._held: dict[str, tuple[int, float]] = {}  # agent id -> (fence, valid until: monotonic)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._halt = threading.Event()
        self.holders: dict[str, tuple[str | None, int, bool]] = {}  # last seen, for status
        self._last_renew = 0.0
        self._last_prune = 0.0

    # -- what this replica wants ----------------------------------------------------------------
    def want(self, agent_id: str) -> None:
        with self._lock:
            self._wanted.add(agent_id)
        self._wake.set()

    def unwant(self, agent_id: str) -> None:
        """Stop wanting the lease; release it if held (another replica takes it at once)."""
        with self._lock:
            self._wanted.discard(agent_id)
            held = self._held.pop(agent_id, None)
        if held is not None:
            self._lose(agent_id)
            try:
                self.table.release(agent_id, held[0])
            except sa.exc.SQLAlchemyError:
                log.exception("releasing the lease of agent %s", agent_id)

    def fence(self, agent_id: str) -> int | None:
        """The fence while this replica holds the agent's lease (locally still valid), else None."""
        held = self._held.get(agent_id)
        if held is None or time.monotonic() >= held[1]:
            return None
        return held[0]

    def owner_of(self, agent_id: str) -> str | None:
        if self.fence(agent_id) is not None:
            return self.table.owner
        h = self.holders.get(agent_id)
        return h[0] if h is not None and h[2] else None

    # -- the loop -------------------------------------------------------------------------------
    def stop(self) -> None:
        self._halt.set()
        self._wake.set()
        self.join(5)
        with self._lock:
            held, self._held = dict(self._held), {}
        for agent_id, (fence, _) in held.items():
            try:
                self.table.release(agent_id, fence)
            except sa.exc.SQLAlchemyError:
                pass

    def run(self) -> None:
        poll = min(1.0, self.seconds / 5)
        while not self._halt.is_set():
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the database may be away for a while: keep trying
                log.exception("agent leases: renewing or taking failed")
            self._wake.wait(poll)
            self._wake.clear()

    def tick(self) -> None:
        now = time.monotonic()
        # 1. leases whose local validity ran out (renewals failing): stop acting
        for agent_id in [a for a, (_, until) in list(self._held.items()) if until <= now]:
            with self._lock:
                self._held.pop(agent_id, None)
            log.warning("agent %s: lease not renewed in time; standing by", agent_id)
            self._lose(agent_id)
        # 2. renew
        if self._held and now - self._last_renew >= self.seconds / 4:
            started = time.monotonic()
            held = {a: f for a, (f, _) in self._held.items()}
            kept = self.table.renew(held)
            self._last_renew = started
            with self._lock:
                for agent_id, fence in held.items():
                    if agent_id in kept and agent_id in self._held:
                        self._held[agent_id] = (fence, started + self.seconds * VALID)
                lost = [a for a in held if a not in kept and self._held.pop(a, None) is not None]
            for agent_id in lost:
                log.warning("agent %s: lease taken over by another replica; standing by", agent_id)
                self._lose(agent_id)
        # 3. take the free ones we want
        with self._lock:
            candidates = [a for a in self._wanted if a not in self._held]
        for agent_id in self.table.expired(candidates):
            started = time.monotonic()
            fence = self.table.acquire(agent_id)
            if fence is None:
                continue
            with self._lock:
                if agent_id not in self._wanted:  # stopped meanwhile
                    self.table.release(agent_id, fence)
                    continue
                self._held[agent_id] = (fence, started + self.seconds * VALID)
            log.info("agent %s: lease taken (fence %d)", agent_id, fence)
            try:
                self.on_gain(agent_id, fence)
            except Exception:  # noqa: BLE001
                log.exception("agent %s: starting as owner", agent_id)
        # 4. who holds what (status), prune old firings now and then
        if now - self._last_prune > 60:
            self._last_prune = now
            self.table.prune_firings()
        self.holders = self.table.holders()

    def _lose(self, agent_id: str) -> None:
        try:
            self.on_lose(agent_id)
        except Exception:  # noqa: BLE001
            log.exception("agent %s: standing by", agent_id)
