"""M storage: one table of JSON entries per database, written in one transaction per call.

Schema (component "m", migrated automatically):

``m_entries(seq PK, topic, id, hash, value, version, created, updated)``

* ``(topic, id)`` is unique: entries are addressed by id (a GUID, as in CoFlows).
* ``(topic, hash)`` is unique: ``hash`` is a 128-bit BLAKE2b digest of the value's
  canonical JSON (sorted keys, no whitespace), so "is this value already in the
  set?" is an index lookup, never a scan, and two concurrent adds of an equal
  value cannot both insert (the loser retries and finds the winner's id).
* ``value`` is the canonical JSON text; ``version`` starts at 1 and grows by one
  on every exchange, so a writer that read version *n* can exchange on the
  condition that nobody wrote in between (compare-and-swap, `ConflictError`).
* ``seq`` keeps insertion order for listings.

Every write commits before the call returns; the changes are then published to
the in-process feed (`subscribe`). On PostgreSQL each write transaction also
issues ``NOTIFY coflows_m`` (delivered by Postgres only on commit) so the
feeds of other processes on the same database see the change (`_PgListener`, a `store.listen.PgListener`).

The change journal ``m_changes(seq PK, topic, entry_id, kind, version, author, origin, value, at)``
gets one row per change in the write's own transaction (one extra INSERT, the last statement
before the commit; not on SQLite: one process, nothing reads it). Its ``seq`` numbers changes
across processes: a NOTIFY names the seqs it carries, the listener remembers which it delivered
(`SeqTracker`) and, after its connection drops and comes back, reads the journal for the ones it
missed and publishes them in seq order, so each subscriber process sees every change exactly
once. Agents on replicas claim changes by the same numbers (coflows.agents.lease). The journal is pruned by age and count (`MStore.journal_hours`, `journal_rows`; config
``M.JournalHours``, ``M.JournalRows``); a listener disconnected for longer than that loses the
pruned part (logged). ``value`` is kept for removes only (the row is gone).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from coflows.errors import ArgumentError, CoflowsError, NotFoundError
from coflows.serialize import to_jsonable
from coflows.store import Database, Migration, migrate, register_migrations
from coflows.store.listen import PgListener

log = logging.getLogger("coflows.m")

ADD, EXCHANGE, REMOVE = 1, 3, 4  # CoFlows' CRUD types: Create, Update, Delete
CHANGE_NAMES = {ADD: "add", EXCHANGE: "exchange", REMOVE: "remove"}
MAX_TOPIC = 255
CHANNEL = "coflows_m"
_NOTIFY_BUDGET = 7000  # bytes per NOTIFY payload (Postgres allows < 8000)
_IN_CHUNK = 500  # values per IN (...) list


class ConflictError(CoflowsError):
    """A write lost a race: the entry changed (or left) since the writer read it, or the new
    value is already another entry of the topic. Re-read and retry."""

    http_status = 409


# --- schema -----------------------------------------------------------------------------------

metadata = sa.MetaData()
_BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER only

entries = sa.Table(
    "m_entries",
    metadata,
    sa.Column("seq", _BigInt, primary_key=True, autoincrement=True),
    sa.Column("topic", sa.String(MAX_TOPIC), nullable=False),
    sa.Column("id", sa.String(36), nullable=False),
    sa.Column("hash", sa.String(32), nullable=False),
    sa.Column("value", sa.Text(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("created", sa.Float(), nullable=False),
    sa.Column("updated", sa.Float(), nullable=False),
    sa.UniqueConstraint("topic", "id", name="uq_m_entries_topic_id"),
    sa.UniqueConstraint("topic", "hash", name="uq_m_entries_topic_hash"),
)


journal = sa.Table(
    "m_changes",
    metadata,
    sa.Column("seq", _BigInt, primary_key=True, autoincrement=True),
    sa.Column("topic", sa.String(MAX_TOPIC), nullable=False),
    sa.Column("entry_id", sa.String(36), nullable=False),
    sa.Column("kind", sa.SmallInteger(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("author", sa.String(255), nullable=True),
    sa.Column("origin", sa.String(32), nullable=False),  # the writing process (MStore.origin)
    sa.Column("value", sa.Text(), nullable=True),  # removes only: the removed value
    sa.Column("at", sa.Float(), nullable=False),
)


_ADD_PG = sa.text(
    "WITH ins AS (INSERT INTO m_entries (topic, id, hash, value, version, created, updated) "
    "VALUES (:topic, :id, :hash, :value, 1, :created, :updated) ON CONFLICT (topic, hash) DO NOTHING RETURNING id), "
    "j AS (INSERT INTO m_changes (topic, entry_id, kind, version, author, origin, value, at) "
    "SELECT :topic, id, 1, 1, CAST(:author AS TEXT), :origin, NULL, :created FROM ins RETURNING seq) "
    "SELECT seq, pg_notify(:channel, :head || CAST(seq AS TEXT) || :tail) FROM j")

_NEXTVALS_PG = sa.text("SELECT nextval(pg_get_serial_sequence('m_changes', 'seq')) FROM generate_series(1, :n) "
                       "ORDER BY 1")


def _create_v1(conn: sa.Connection) -> None:
    metadata.create_all(conn, tables=[entries], checkfirst=True)


def _create_v2(conn: sa.Connection) -> None:
    metadata.create_all(conn, tables=[journal], checkfirst=True)


register_migrations("m", [Migration(1, "m_entries: JSON entries per topic, unique by id and by value hash",
                                    _create_v1),
                          Migration(2, "m_changes: the change journal (replay after a lost connection)",
                                    _create_v2)])


# --- values -----------------------------------------------------------------------------------


_encoder = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                            default=to_jsonable)


def new_ids(n: int) -> list[str]:
    """`n` random GUIDs (version 4), made from one `os.urandom` call (uuid.uuid4() is slow in bulk)."""
    h = os.urandom(16 * n).hex()
    out = []
    for i in range(0, 32 * n, 32):
        out.append(f"{h[i:i + 8]}-{h[i + 8:i + 12]}-4{h[i + 13:i + 16]}-{_VARIANT[h[i + 16]]}{h[i + 17:i + 20]}-"
                   f"{h[i + 20:i + 32]}")
    return out


_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def canonical(value: Any) -> str:
    """The canonical JSON text of a value: what is stored, hashed and compared.

    Keys are sorted and there is no whitespace, so `{"a":1,"b":2}` and `{"b":2,"a":1}`
    are the same entry. Dates, decimals, dataclasses, ... convert as query results do;
    NaN and infinities are refused (they are not JSON).
    """
    try:
        return _encoder.encode(value)
    except ValueError as e:
        raise ArgumentError(f"M values must be JSON: {e}", "value") from None
    except TypeError as e:
        raise ArgumentError(f"M values must be JSON: {e}", "value") from None


def _json_kind(json_type: sa.ColumnElement[str]) -> sa.ColumnElement[str]:
    """SQLite's json_type with 'integer' and 'real' merged: filters compare numbers by value (as
    PostgreSQL's jsonb and Python do), while set membership compares canonical text (1 is not 1.0)."""
    return sa.func.replace(sa.func.replace(json_type, "integer", "number"), "real", "number")


def value_hash(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def check_topic(topic: Any) -> str:
    if not isinstance(topic, str) or not topic:
        raise ArgumentError("an M topic must be a non-empty string", "topic")
    if len(topic) > MAX_TOPIC:
        raise ArgumentError(f"M topic longer than {MAX_TOPIC} characters", "topic")
    if "\x00" in topic:
        raise ArgumentError("an M topic must not contain NUL characters", "topic")
    return topic


@dataclass(slots=True)
class Change:
    """One committed change of a topic. `kind` is CoFlows' CRUD type: 1 add, 3 exchange, 4 remove.

    `value_json` is the entry's JSON text (for a remove, the removed value; `null` when a
    remote process removed a value too large to travel in the notification).
    `value` parses it afresh on every access, so subscribers never share a mutable object.
    `author` is the principal id of the writer (the call running when it wrote, see `writer()`;
    None when no call was running), so agents triggered by the change run as that caller.
    """

    topic: str
    id: str
    kind: int
    value_json: str
    version: int
    local: bool = True  # False: made by another process (Postgres NOTIFY)
    committed: float = 0.0  # time.perf_counter() right after the commit (in this process)
    notified: bool = False  # the NOTIFY was already sent with the write itself
    author: str | None = None  # the writer's principal id (a user's email, "root", "anonymous")
    seq: int = 0  # its number in the journal (m_changes.seq); 0 where unknown (SQLite bulk writes)

    @property
    def value(self) -> Any:
        return json.loads(self.value_json)

    @property
    def name(self) -> str:
        return CHANGE_NAMES[self.kind]


Subscriber = Callable[[Change], None]


def writer() -> str | None:
    """The principal id of the call running on this thread (the writer of a change), or None."""
    from coflows.context import current

    ctx = current()
    p = ctx.principal if ctx is not None else None
    return getattr(p, "id", None) if p is not None else None


# --- the store --------------------------------------------------------------------------------


_stores: weakref.WeakKeyDictionary[sa.Engine, MStore] = weakref.WeakKeyDictionary()
_stores_lock = threading.Lock()


class MStore:
    """M operations on one database, and its change feed. One per database engine per process."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.engine = database.engine
        self.dialect = self.engine.dialect.name
        self.origin = uuid.uuid4().hex
        self._subs: dict[str | None, list[Subscriber]] = {}
        self._subs_lock = threading.Lock()
        self._listener: _PgListener | None = None
        self._closed = False
        migrate(self.engine)  # our tables, even if this module was imported after the Database was made
        self._returning = bool(getattr(self.engine.dialect, "update_returning", False)
                               and getattr(self.engine.dialect, "delete_returning", False))
        self.journal_hours = 24.0  # journal rows kept this long ...
        self.journal_rows = 1_000_000  # ... and at most about this many
        self.prune_every = 2000  # changes written by this process between two prunes
        self._written = 0
        self.seen = SeqTracker()  # the journal seqs the listener delivered (Postgres)
        # SQLite: one process, nothing reads the journal (no listener, no agent leases): not written
        self.journaled = self.dialect != "sqlite"
        self.replayed = 0  # changes published from the journal after reconnects

    @classmethod
    def for_database(cls, database: Database) -> MStore:
        with _stores_lock:
            store = _stores.get(database.engine)
            if store is None:
                store = _stores[database.engine] = cls(database)
            return store

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    # -- reads --------------------------------------------------------------------------------
    def rows(self, topic: str, where: dict[str, Any] | None = None) -> list[sa.Row]:
        """(id, value, version) of every entry of a topic, in insertion order."""
        stmt = sa.select(entries.c.id, entries.c.value, entries.c.version).where(entries.c.topic == topic)
        if where:
            stmt = stmt.where(*self._filters(where))
        with self.engine.connect() as conn:
            return list(conn.execute(stmt.order_by(entries.c.seq)))

    def _filters(self, where: dict[str, Any]) -> list[sa.ColumnElement[bool]]:
        """Equality on top-level fields, evaluated by the database (SQLite and PostgreSQL).

        Numbers compare by value (`1` matches `1.0`), objects and arrays by content."""
        out = []
        for key, wanted in where.items():
            if not isinstance(key, str):
                raise ArgumentError("query filters are field names (strings)", "where")
            wanted_json = canonical(wanted)
            if self.dialect == "sqlite":
                path = "$." + json.dumps(key)
                # same JSON type, and json_extract gives the same SQL value for equal JSON values
                # (objects and arrays as minified text: stored values are canonical, so are literals)
                out.append(_json_kind(sa.func.json_type(entries.c.value, path))
                           == _json_kind(sa.func.json_type(sa.literal(wanted_json))))
                if wanted is not None:
                    out.append(sa.func.json_extract(entries.c.value, path)
                               == sa.func.json_extract(sa.literal(wanted_json), "$"))
            elif self.is_postgres:
                from sqlalchemy.dialects import postgresql

                doc = sa.cast(entries.c.value, postgresql.JSONB)
                out.append(doc[key] == sa.cast(sa.literal(wanted_json), postgresql.JSONB))
            else:
                raise ArgumentError(f"server-side filters are not supported on {self.dialect}; "
                                    "use a predicate", "where")
        return out

    def supports_filters(self) -> bool:
        return self.dialect in ("sqlite", "postgresql")

    def get(self, topic: str, entry_id: str) -> sa.Row | None:
        stmt = sa.select(entries.c.id, entries.c.value, entries.c.version).where(
            entries.c.topic == topic, entries.c.id == entry_id)
        with self.engine.connect() as conn:
            return conn.execute(stmt).first()

    def find(self, topic: str, value: Any) -> sa.Row | None:
        h = value_hash(canonical(value))
        stmt = sa.select(entries.c.id, entries.c.value, entries.c.version).where(
            entries.c.topic == topic, entries.c.hash == h)
        with self.engine.connect() as conn:
            return conn.execute(stmt).first()

    def count(self, topic: str) -> int:
        stmt = sa.select(sa.func.count()).select_from(entries).where(entries.c.topic == topic)
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def page(self, topic: str, offset: int, limit: int, search: str | None = None) -> tuple[int, list[sa.Row]]:
        """One page of a topic in insertion order: (matching entries in all, [(id, value, version, updated)]).

        `search`: case-insensitive substring of the entry's JSON text or of its id; `%`, `_` and the
        escape character match literally. The database filters, counts and slices: a page never loads
        the topic into memory (the web app's M browser pages through topics of any size)."""
        cond: list[sa.ColumnElement[bool]] = [entries.c.topic == topic]
        if search:
            cond.append(sa.or_(entries.c.value.icontains(search, autoescape=True),
                               entries.c.id.icontains(search, autoescape=True)))
        count = sa.select(sa.func.count()).select_from(entries).where(*cond)
        stmt = (sa.select(entries.c.id, entries.c.value, entries.c.version, entries.c.updated).where(*cond)
                .order_by(entries.c.seq).offset(offset).limit(limit))
        with self.engine.connect() as conn:
            total = int(conn.execute(count).scalar_one())
            rows = list(conn.execute(stmt)) if offset < total else []
        return total, rows

    def topics(self) -> list[tuple[str, int]]:
        stmt = sa.select(entries.c.topic, sa.func.count()).group_by(entries.c.topic).order_by(entries.c.topic)
        with self.engine.connect() as conn:
            return [(t, int(n)) for t, n in conn.execute(stmt)]

    # -- writes -------------------------------------------------------------------------------
    def _write(self, work: Callable[[sa.Connection], tuple[Any, list[Change]]], retries: int = 3) -> Any:
        """Run `work` in one transaction, NOTIFY (Postgres) inside it, publish after commit."""
        for attempt in range(retries + 1):
            try:
                with self.engine.begin() as conn:
                    result, changes = work(conn)
                    if changes and self.journaled and not all(c.notified for c in changes):
                        self._journal(conn, changes)  # last: the seq is taken just before the commit
                break
            except sa.exc.IntegrityError:
                # Another process inserted an equal value between our lookup and insert
                # (SQLite's BEGIN IMMEDIATE rules this out); the retry finds it.
                if attempt == retries:
                    raise
        if changes:
            now = time.perf_counter()
            for c in changes:
                c.committed = now
            self.publish(changes)
            self._written += len(changes)
            if self._written >= self.prune_every:
                self._written = 0
                self.prune_journal()
        return result

    def _journal(self, conn: sa.Connection, changes: list[Change]) -> None:
        """One journal row per change (in the write's transaction); on Postgres the NOTIFY too,
        naming the seqs. A single change costs one statement: the NOTIFY rides on its RETURNING."""
        at = time.time()
        rows = [{"topic": c.topic, "entry_id": c.id, "kind": c.kind, "version": c.version, "author": c.author,
                 "origin": self.origin, "value": c.value_json if c.kind == REMOVE else None, "at": at}
                for c in changes]
        if not self.is_postgres:
            self._insert_positional(conn, journal, list(rows[0]), [tuple(r.values()) for r in rows])
            return
        if len(rows) == 1:
            payloads = self._payloads(changes)
            if len(payloads) == 1:
                # the payload ends with ..."s":[0]}: splice in the seq the insert takes
                head, tail = payloads[0].rsplit("0]}", 1)
                note = sa.func.pg_notify(CHANNEL, sa.literal(head) + sa.cast(journal.c.seq, sa.Text)
                                         + sa.literal("]}" + tail))
                row = conn.execute(journal.insert().values(**rows[0]).returning(journal.c.seq, note)).one()
                changes[0].seq = int(row[0])
                return
        # many: take their seqs in one round trip, then COPY the rows (the fastest bulk path)
        seqs = [int(r[0]) for r in conn.execute(_NEXTVALS_PG, {"n": len(rows)})]
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            with cursor.copy(f"COPY m_changes (seq, {', '.join(rows[0])}) FROM STDIN") as copy:
                for c, seq, row in zip(changes, seqs, rows):
                    c.seq = seq
                    copy.write_row((seq, *row.values()))
        finally:
            cursor.close()
        self._notify(conn, changes)

    def _insert_positional(self, conn: sa.Connection, table: sa.Table, columns: list[str],
                           rows: list[tuple[Any, ...]]) -> None:
        mark = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(self.engine.dialect.paramstyle)
        if mark is None:
            conn.execute(table.insert(), [dict(zip(columns, r)) for r in rows])
            return
        conn.exec_driver_sql(f"INSERT INTO {table.name} ({', '.join(columns)}) "
                             f"VALUES ({', '.join([mark] * len(columns))})", rows)

    def max_seq(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.max(journal.c.seq))).scalar() or 0)

    def journal_since(self, tracker: SeqTracker, topic: str | None = None,
                      limit: int = 1000) -> list[sa.Row]:
        """Journal rows the tracker has not seen (above its high mark, or one of its gaps), in seq
        order, at most `limit` (call again for more: the tracker moves as they are taken)."""
        high, gaps = tracker.snapshot()
        cond: sa.ColumnElement[bool] = journal.c.seq > high
        if gaps:
            cond = sa.or_(cond, journal.c.seq.in_(sorted(gaps)[-_IN_CHUNK:]))
        stmt = sa.select(journal).where(cond)
        if topic is not None:
            stmt = stmt.where(journal.c.topic == topic)
        with self.engine.connect() as conn:
            return list(conn.execute(stmt.order_by(journal.c.seq).limit(limit)))

    def prune_journal(self) -> int:
        """Drop journal rows older than `journal_hours` or beyond the newest `journal_rows`
        (bounded work: the oldest few thousand rows per call)."""
        cutoff = time.time() - self.journal_hours * 3600
        try:
            with self.engine.begin() as conn:
                top = conn.execute(sa.select(sa.func.max(journal.c.seq))).scalar() or 0
                head = sa.select(journal.c.seq, journal.c.at).order_by(journal.c.seq).limit(5000).subquery()
                old = conn.execute(sa.select(sa.func.max(head.c.seq)).where(head.c.at < cutoff)).scalar() or 0
                upto = max(int(old), int(top) - self.journal_rows)
                if upto <= 0:
                    return 0
                return int(conn.execute(sa.delete(journal).where(journal.c.seq <= upto)).rowcount or 0)
        except sa.exc.SQLAlchemyError:
            log.exception("pruning the M change journal")
            return 0

    def add(self, topic: str, value: Any) -> tuple[str, bool]:
        """Add a value; returns (id, created). An equal value already present is not added again."""
        text = canonical(value)
        h = value_hash(text)
        upsert = self._insert_if_new()
        author = writer()

        def work(conn: sa.Connection) -> tuple[tuple[str, bool], list[Change]]:
            entry_id = new_ids(1)[0]
            now = time.time()
            row = dict(topic=topic, id=entry_id, hash=h, value=text, version=1, created=now, updated=now)
            change = Change(topic, entry_id, ADD, text, 1, author=author)
            if self.is_postgres and self.journaled:
                # one round trip: insert unless the value is there, journal it, NOTIFY with its seq
                head, tail = self._payloads([change])[0].rsplit("0]}", 1)
                got = conn.execute(_ADD_PG, {**row, "author": author, "origin": self.origin, "channel": CHANNEL,
                                             "head": head, "tail": "]}" + tail}).first()
                if got is not None:
                    change.seq, change.notified = int(got[0]), True
                    return (entry_id, True), [change]
            elif upsert is not None:
                # one statement: insert unless the value is there
                stmt = upsert(entries).values(**row).on_conflict_do_nothing(index_elements=["topic", "hash"])
                if conn.execute(stmt.returning(entries.c.id)).first() is not None:
                    return (entry_id, True), [change]
            found = conn.execute(sa.select(entries.c.id).where(entries.c.topic == topic, entries.c.hash == h)).first()
            if found is not None:
                return (found[0], False), []
            conn.execute(entries.insert().values(**row))
            return (entry_id, True), [change]

        return self._write(work)

    def _insert_if_new(self) -> Any:
        if self.dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        elif self.is_postgres:
            from sqlalchemy.dialects.postgresql import insert
        else:
            return None
        return insert

    def add_many(self, topic: str, values: Iterable[Any]) -> list[str]:
        """Add several values in one transaction; returns the id of each (existing ids for known values)."""
        texts = [canonical(v) for v in values]
        hashes = [value_hash(t) for t in texts]
        author = writer()

        def work(conn: sa.Connection) -> tuple[list[str], list[Change]]:
            known: dict[str, str] = {}
            unique = list(dict.fromkeys(hashes))
            for i in range(0, len(unique), _IN_CHUNK):
                chunk = unique[i:i + _IN_CHUNK]
                for h, entry_id in conn.execute(sa.select(entries.c.hash, entries.c.id).where(
                        entries.c.topic == topic, entries.c.hash.in_(chunk))):
                    known[h] = entry_id
            rows: list[tuple[Any, ...]] = []
            changes: list[Change] = []
            now = time.time()
            ids: list[str] = []
            fresh = iter(new_ids(len(unique) - len(known)))
            for text, h in zip(texts, hashes):
                entry_id = known.get(h)
                if entry_id is None:
                    entry_id = known[h] = next(fresh)
                    rows.append((topic, entry_id, h, text, 1, now, now))
                    changes.append(Change(topic, entry_id, ADD, text, 1, author=author))
                ids.append(entry_id)
            if rows:
                self._insert_rows(conn, rows)
            return ids, changes

        return self._write(work)

    _COLUMNS = ("topic", "id", "hash", "value", "version", "created", "updated")

    def _insert_rows(self, conn: sa.Connection, rows: list[tuple[Any, ...]]) -> None:
        """Bulk insert. Positional rows straight to the driver's executemany where its paramstyle
        is positional: SQLAlchemy's per-row parameter processing would otherwise cost as much as
        the insert itself (and these columns need no type processing)."""
        mark = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(self.engine.dialect.paramstyle)
        if mark is None:
            conn.execute(entries.insert(), [dict(zip(self._COLUMNS, r)) for r in rows])
            return
        sql = (f"INSERT INTO {entries.name} ({', '.join(self._COLUMNS)}) "
               f"VALUES ({', '.join([mark] * len(self._COLUMNS))})")
        conn.exec_driver_sql(sql, rows)

    def _resolve(self, conn: sa.Connection, topic: str, target: Any, by: str) -> sa.Row | None:
        """The row (id, version, value) a target names: an id, or a value (`by` = id | value | auto)."""
        cols = (entries.c.id, entries.c.version, entries.c.value)
        if by in ("id", "auto") and isinstance(target, str):
            row = conn.execute(sa.select(*cols).where(entries.c.topic == topic, entries.c.id == target)).first()
            if row is not None or by == "id":
                return row
        return conn.execute(sa.select(*cols).where(
            entries.c.topic == topic, entries.c.hash == value_hash(canonical(target)))).first()

    def exchange(self, topic: str, target: Any, new_value: Any, expected_version: int | None = None,
                 by: str = "auto") -> dict[str, Any]:
        """Replace an entry's value, keeping its id; returns {"id", "version", "value"}.

        `target` is an id or the old value (`by="auto"`: a string that is the id of an entry
        of the topic is an id, anything else a value). By value it is a compare-and-swap: if
        the old value is no longer there, `ConflictError`. With `expected_version`, the entry
        must still be at that version, else `ConflictError`.
        """
        text = canonical(new_value)
        h = value_hash(text)
        author = writer()

        def work(conn: sa.Connection) -> tuple[dict[str, Any], list[Change]]:
            row = self._resolve(conn, topic, target, by)
            if row is None:
                if by == "id" or (by == "auto" and isinstance(target, str) and expected_version is not None):
                    raise NotFoundError(f"no entry '{target}' in M topic '{topic}'")
                raise ConflictError(f"the old value is not in M topic '{topic}' (changed or removed by another "
                                    "writer, or never added); re-read and retry")
            entry_id, version = row[0], row[1]
            if expected_version is not None and version != expected_version:
                raise ConflictError(f"entry '{entry_id}' of M topic '{topic}' is at version {version}, "
                                    f"not {expected_version}: it changed since it was read; re-read and retry")
            other = conn.execute(sa.select(entries.c.id).where(
                entries.c.topic == topic, entries.c.hash == h, entries.c.id != entry_id)).first()
            if other is not None:
                raise ConflictError(f"the new value is already entry '{other[0]}' of M topic '{topic}' "
                                    "(an M set holds each value once)")
            try:
                n = conn.execute(sa.update(entries).where(
                    entries.c.topic == topic, entries.c.id == entry_id, entries.c.version == version).values(
                    value=text, hash=h, version=version + 1, updated=time.time())).rowcount
            except sa.exc.IntegrityError:
                raise ConflictError(f"the new value was just added to M topic '{topic}' by another writer") from None
            if n != 1:
                raise ConflictError(f"entry '{entry_id}' of M topic '{topic}' changed while being exchanged; "
                                    "re-read and retry")
            return ({"id": entry_id, "version": version + 1, "value": json.loads(text)},
                    [Change(topic, entry_id, EXCHANGE, text, version + 1, author=author)])

        try:
            return self._write(work, retries=0)
        except sa.exc.IntegrityError:
            raise ConflictError(f"the new value was just added to M topic '{topic}' by another writer") from None

    def remove(self, topic: str, target: Any, expected_version: int | None = None, by: str = "auto") -> bool:
        """Remove an entry by id or by value; False when there is no such entry."""
        author = writer()

        def work(conn: sa.Connection) -> tuple[bool, list[Change]]:
            row = self._resolve(conn, topic, target, by)
            if row is None:
                return False, []
            entry_id, version = row[0], row[1]
            if expected_version is not None and version != expected_version:
                raise ConflictError(f"entry '{entry_id}' of M topic '{topic}' is at version {version}, "
                                    f"not {expected_version}: it changed since it was read; re-read and retry")
            stmt = sa.delete(entries).where(entries.c.topic == topic, entries.c.id == entry_id)
            if self._returning:
                gone = conn.execute(stmt.returning(entries.c.value, entries.c.version)).first()
                if gone is None:
                    return False, []
                if expected_version is not None and gone[1] != expected_version:
                    raise ConflictError(f"entry '{entry_id}' of M topic '{topic}' changed while being removed")
                value, version = gone[0], gone[1]
            else:
                if conn.execute(stmt.where(entries.c.version == version)).rowcount != 1:
                    raise ConflictError(f"entry '{entry_id}' of M topic '{topic}' changed while being removed")
                value = row[2]
            return True, [Change(topic, entry_id, REMOVE, value, version, author=author)]

        return self._write(work, retries=0)

    def clear(self, topic: str) -> int:
        """Remove every entry of a topic (each removal is published); returns how many."""
        author = writer()

        def work(conn: sa.Connection) -> tuple[int, list[Change]]:
            rows = list(conn.execute(sa.select(entries.c.id, entries.c.value, entries.c.version).where(
                entries.c.topic == topic).order_by(entries.c.seq)))
            conn.execute(sa.delete(entries).where(entries.c.topic == topic))
            return len(rows), [Change(topic, r[0], REMOVE, r[1], r[2], author=author) for r in rows]

        return self._write(work, retries=0)

    # -- change feed --------------------------------------------------------------------------
    def subscribe(self, topic: str | None, callback: Subscriber) -> Callable[[], None]:
        """Call `callback(change)` after every committed change of `topic` (None: every topic).

        Callbacks run in the writer's thread (or the Postgres listener's) right after the
        commit: they must only hand the change on (queue it, submit it to a pool), never block.
        Returns a function that unsubscribes.
        """
        with self._subs_lock:
            self._subs = {**self._subs, topic: [*self._subs.get(topic, []), callback]}
        if self.is_postgres:
            self.start_listener(wait=False)

        def unsubscribe() -> None:
            with self._subs_lock:
                left = [c for c in self._subs.get(topic, []) if c is not callback]
                subs = dict(self._subs)
                if left:
                    subs[topic] = left
                else:
                    subs.pop(topic, None)
                self._subs = subs

        return unsubscribe

    def publish(self, changes: Sequence[Change]) -> None:
        subs = self._subs  # copy-on-write: read without the lock
        if not subs:
            return
        everyone = subs.get(None, ())
        for change in changes:
            for callback in (*subs.get(change.topic, ()), *everyone):
                try:
                    callback(change)
                except Exception:  # noqa: BLE001 - a subscriber must not break the writer
                    log.exception("M subscriber failed on %s of %s/%s", change.name, change.topic, change.id)

    # -- Postgres NOTIFY ------------------------------------------------------------------------
    def _notify(self, conn: sa.Connection, changes: list[Change]) -> None:
        for payload in self._payloads(changes):
            conn.execute(sa.select(sa.func.pg_notify(CHANNEL, payload)))

    def _payloads(self, changes: list[Change]) -> list[str]:
        """NOTIFY payloads (< 8000 bytes each): {"o": origin, "t": topic, "c": [[id, kind, version(, value)]],
        "s": [journal seq of each item]}, with "a": the writer's principal id when there is one (one writer
        per transaction). "s" is always the last key (`_journal` splices a seq into a single change's)."""
        payloads: list[str] = []
        by_topic: dict[tuple[str, str | None], list[Change]] = {}
        for c in changes:
            by_topic.setdefault((c.topic, c.author), []).append(c)
        for (topic, author), items in by_topic.items():
            base: dict[str, Any] = {"o": self.origin, "t": topic}
            if author is not None:
                base["a"] = author
            head = len(json.dumps(topic).encode()) + len(self.origin) + 40 + len(json.dumps(author).encode()) + 6
            chunk: list[list[Any]] = []
            seqs: list[int] = []
            size = head
            for c in items:
                item: list[Any] = [c.id, c.kind, c.version]
                cost = 80
                if c.kind == REMOVE:
                    vbytes = len(c.value_json.encode())
                    if vbytes + head + 60 <= _NOTIFY_BUDGET:  # else the receiver gets null
                        item.append(c.value_json)
                        cost += vbytes + vbytes // 8 + 8  # JSON escaping of the embedded text
                if chunk and size + cost > _NOTIFY_BUDGET:
                    payloads.append(json.dumps({**base, "c": chunk, "s": seqs}))
                    chunk, seqs, size = [], [], head
                chunk.append(item)
                seqs.append(c.seq)
                size += cost
            if chunk:
                payloads.append(json.dumps({**base, "c": chunk, "s": seqs}))
        out = []
        for payload in payloads:
            if len(payload.encode()) >= 7950:  # an escaping-heavy removed value: drop the value
                data = json.loads(payload)
                for item in data["c"]:
                    del item[3:]
                payload = json.dumps(data)
            out.append(payload)
        return out

    def start_listener(self, wait: bool = True) -> None:
        """Receive other processes' changes (Postgres only; idempotent). `wait`: until listening
        (at most 10 s), so that nothing committed after this call is missed."""
        if not self.is_postgres or self._closed:
            return
        with self._subs_lock:
            listener = self._listener
            if listener is None:
                listener = self._listener = _PgListener(self)
                listener.start()
        if wait and not listener.ready.wait(10):
            log.warning("M listener: not connected to PostgreSQL yet; other processes' changes arrive once it is")

    def receive(self, payload: str) -> None:
        """Publish the changes another process announced (reads the rows it names); changes whose
        seq this process has already delivered (a replay raced the notification) are skipped."""
        try:
            data = json.loads(payload)
        except ValueError:
            log.warning("ignoring a malformed %s notification", CHANNEL)
            return
        items = data.get("c") or []
        seqs = data.get("s") or [0] * len(items)
        fresh = [(item, seq) for item, seq in zip(items, seqs) if not seq or self.seen.take(seq)]
        if data.get("o") == self.origin or not fresh:
            return  # our own changes were published when they committed
        author = data.get("a")
        self._publish_remote(data["t"], [(i[0], i[1], i[2], i[3] if len(i) > 3 else "null", s) for i, s in fresh],
                             author if isinstance(author, str) else None)

    def replay(self) -> int:
        """Publish the journal's changes the listener has not delivered (after a reconnect), in seq
        order; returns how many were published."""
        published = 0
        while True:
            rows = self.journal_since(self.seen)
            if not rows:
                return published
            group: list[tuple[str, int, int, str, int]] = []
            key: tuple[str, str | None] | None = None
            for r in rows:
                if not self.seen.take(r.seq) or r.origin == self.origin:
                    continue
                if key is not None and key != (r.topic, r.author):
                    published += self._publish_remote(key[0], group, key[1])
                    group = []
                key = (r.topic, r.author)
                group.append((r.entry_id, r.kind, r.version, r.value or "null", r.seq))
            if group and key is not None:
                published += self._publish_remote(key[0], group, key[1])

    def journal_changes(self, rows: Sequence[sa.Row]) -> list[tuple[int, Change | None]]:
        """(seq, change) for journal rows, in their order; the change carries the entry's current
        value, None where the entry was removed or exchanged again since (a later row has it)."""
        out: list[tuple[int, Change | None]] = []
        current: dict[tuple[str, str], tuple[str, int]] = {}
        need: dict[str, list[str]] = {}
        for r in rows:
            if r.kind != REMOVE:
                need.setdefault(r.topic, []).append(r.entry_id)
        with self.engine.connect() as conn:
            for topic, ids in need.items():
                for i in range(0, len(ids), _IN_CHUNK):
                    for entry_id, value, version in conn.execute(
                            sa.select(entries.c.id, entries.c.value, entries.c.version).where(
                                entries.c.topic == topic, entries.c.id.in_(ids[i:i + _IN_CHUNK]))):
                        current[(topic, entry_id)] = (value, version)
        for r in rows:
            if r.kind == REMOVE:
                out.append((r.seq, Change(r.topic, r.entry_id, REMOVE, r.value or "null", r.version, False,
                                          author=r.author, seq=r.seq)))
                continue
            row = current.get((r.topic, r.entry_id))
            if row is None or (r.kind == EXCHANGE and row[1] > r.version):
                out.append((r.seq, None))
                continue
            out.append((r.seq, Change(r.topic, r.entry_id, r.kind, row[0], row[1], False, author=r.author,
                                      seq=r.seq)))
        return out

    def _publish_remote(self, topic: str, items: list[tuple[str, int, int, str, int]], author: str | None) -> int:
        """Publish another process's changes of one topic: (id, kind, version, removed value, seq)
        each; adds and exchanges carry the entry's current value (read here)."""
        need = [i[0] for i in items if i[1] != REMOVE]
        current: dict[str, tuple[str, int]] = {}
        if need:
            with self.engine.connect() as conn:
                for i in range(0, len(need), _IN_CHUNK):
                    for entry_id, value, version in conn.execute(
                            sa.select(entries.c.id, entries.c.value, entries.c.version).where(
                                entries.c.topic == topic, entries.c.id.in_(need[i:i + _IN_CHUNK]))):
                        current[entry_id] = (value, version)
        changes: list[Change] = []
        for entry_id, kind, version, removed, seq in items:
            if kind == REMOVE:
                changes.append(Change(topic, entry_id, REMOVE, removed, version, False, author=author, seq=seq))
                continue
            row = current.get(entry_id)
            if row is None:
                continue  # removed since: its removal follows
            if kind == EXCHANGE and row[1] > version:
                continue  # exchanged again since: that notification delivers the newer value
            changes.append(Change(topic, entry_id, kind, row[0], row[1], False, author=author, seq=seq))
        if changes:
            now = time.perf_counter()
            for c in changes:
                c.committed = now
            self.publish(changes)
        return len(changes)

    def close(self) -> None:
        self._closed = True
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()


class SeqTracker:
    """Which journal seqs were taken (delivered, handled): all up to `high` except `gaps`.

    Seqs are taken at insert time but become visible at commit, so a later seq can arrive first;
    the ones skipped over are kept as gaps (with when they were noticed) until they arrive or age
    out (`horizon` seconds: a rolled-back write leaves a gap for ever). Bounded: at most
    `max_gaps`, the oldest dropped. Thread-safe. `dump`/`load`: JSON for an agent's cursor."""

    def __init__(self, high: int = 0, gaps: dict[int, float] | None = None, *, horizon: float = 120.0,
                 max_gaps: int = 10_000) -> None:
        self.high = high
        self.gaps: dict[int, float] = dict(gaps or {})
        self.horizon = horizon
        self.max_gaps = max_gaps
        self._lock = threading.Lock()

    def start_at(self, high: int, present: Iterable[int] = (), window: int = 1000) -> None:
        """Begin after `high`: seqs in the last `window` below it that are not `present` (committed)
        may still commit, so they are gaps."""
        present_set = set(present)
        now = time.time()
        with self._lock:
            self.high = high
            self.gaps = {s: now for s in range(max(1, high - window + 1), high) if s not in present_set}

    def take(self, seq: int) -> bool:
        """Mark `seq` taken; False when it already was (skip it)."""
        with self._lock:
            if seq > self.high:
                now = time.time()
                for s in range(max(self.high + 1, seq - self.max_gaps), seq):
                    self.gaps[s] = now
                self.high = seq
                if len(self.gaps) > self.max_gaps:
                    for s in sorted(self.gaps)[:len(self.gaps) - self.max_gaps]:
                        del self.gaps[s]
                return True
            return self.gaps.pop(seq, None) is not None

    def expire(self, now: float | None = None) -> None:
        """Forget gaps older than the horizon (rolled-back writes)."""
        limit = (time.time() if now is None else now) - self.horizon
        with self._lock:
            if self.gaps and min(self.gaps.values()) < limit:
                self.gaps = {s: t for s, t in self.gaps.items() if t >= limit}

    def snapshot(self) -> tuple[int, set[int]]:
        with self._lock:
            return self.high, set(self.gaps)

    def dump(self) -> str:
        with self._lock:
            return json.dumps({"h": self.high, "g": [[s, round(t, 3)] for s, t in sorted(self.gaps.items())]})

    @classmethod
    def load(cls, text: str | None, **kw: Any) -> SeqTracker:
        data = json.loads(text) if text else {}
        return cls(int(data.get("h", 0)), {int(s): float(t) for s, t in data.get("g", [])}, **kw)


class _PgListener(PgListener):
    """LISTEN coflows_m; after a reconnect, replays from the journal what it missed while
    disconnected (`MStore.replay`)."""

    def __init__(self, store: MStore) -> None:
        super().__init__(store.engine, CHANNEL, "coflows-m-listen")
        self.store = store
        self.started = False  # listened once: later connections replay what they missed
        self._last_expire = time.monotonic()

    def _begin(self) -> None:
        """First connection: deliver what commits from now on (LISTEN is on). The last journal
        seqs not committed yet are gaps, so a write in flight now is still delivered."""
        store = self.store
        with store.engine.connect() as conn:
            high = int(conn.execute(sa.select(sa.func.max(journal.c.seq))).scalar() or 0)
            present = [r[0] for r in conn.execute(sa.select(journal.c.seq).where(journal.c.seq > high - 1000))]
        store.seen.start_at(high, present)
        self.started = True

    def connected(self, first: bool) -> None:
        if not self.started:
            self._begin()
        else:
            n = self.store.replay()
            self.store.replayed += n
            log.warning("M listener: reconnected to PostgreSQL; replayed %d missed changes", n)

    def note(self, payload: str) -> None:
        self.store.receive(payload)

    def idle(self) -> None:
        if time.monotonic() - self._last_expire > 10:
            self._last_expire = time.monotonic()
            self.store.seen.expire()
