"""Engine creation: SQLite in WAL mode (the embedded default) or a server database.

Why WAL with `synchronous=NORMAL`: a committed transaction survives the
process being killed (the tests kill -9 the server), and readers never block
the writer. Set `COFLOWS_SQLITE_SYNCHRONOUS=FULL` to survive power loss too,
at the price of an fsync per commit.

The SQLite file is created 0600 before SQLite opens it (its WAL, shared-memory
and journal files take its mode), and its folder is never created: a missing
one is a configuration mistake, reported with the setting's name.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event

from coflows.errors import ConfigError

log = logging.getLogger("coflows.store")


def database_url(db_type: str, connection: str, base_dir: Path) -> str:
    """Turn CoFlows' `Database {Type, Connection}` into a SQLAlchemy URL.

    For sqlite, `Connection` is a file path (relative to `base_dir`), `:memory:`
    or a full `sqlite:///` URL. For postgres and mssql it is a SQLAlchemy URL or,
    for postgres, a libpq key=value string.
    """
    db_type = (db_type or "sqlite").lower()
    connection = connection or ""
    if "://" in connection:
        return connection
    if db_type == "sqlite":
        if connection in ("", ":memory:"):
            return "sqlite://" if connection == ":memory:" else f"sqlite:///{base_dir / 'mnt' / 'database.db'}"
        path = Path(connection)
        if not path.is_absolute():
            path = base_dir / path
        return f"sqlite:///{path}"
    if db_type in ("postgres", "postgresql"):
        # libpq key=value form: "host=... dbname=... user=..."
        return "postgresql+psycopg:///?" + "&".join(
            part.replace(" ", "") for part in connection.split() if "=" in part
        ) if connection else "postgresql+psycopg:///coflows"
    if db_type == "mssql":
        return f"mssql+pyodbc:///?odbc_connect={connection}"
    raise ConfigError(f"Database.Type: unknown database type {db_type!r} (expected sqlite, postgres or mssql)")


SQLITE_SIDECARS = ("-wal", "-shm", "-journal")


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for other databases and in-memory ones."""
    if not url.startswith("sqlite"):
        return None
    parsed = sa.engine.make_url(url)
    name = parsed.database or ""
    if name in ("", ":memory:") or name.startswith("file:") or parsed.query.get("mode") == "memory":
        return None
    return Path(name)


def check_database_dir(url: str, where: str = "Database.Connection") -> None:
    """A SQLite file's folder must exist: a mistyped path fails here instead of creating a tree.

    `where` names the setting (`coflows_config.json: Database.Connection`).
    """
    path = sqlite_file(url)
    if path is not None and not path.parent.is_dir():
        raise ConfigError(f"{where}: directory '{path.parent}' does not exist (create it, or point "
                          f"Database.Connection at a file in an existing folder)")


def secure_sqlite_file(path: Path) -> None:
    """Create the database file 0600 (owner only) before SQLite opens it, and narrow an existing one.

    Why before: SQLite creates its `-wal`, `-shm` and journal files with the mode of
    the database file, so they follow. Existing sidecars are narrowed too.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    for p in (path, *(path.with_name(path.name + s) for s in SQLITE_SIDECARS)):
        try:
            if p.stat().st_mode & 0o077:
                os.chmod(p, 0o600)
        except FileNotFoundError:
            continue
        except OSError as e:  # not our file: say so rather than fail the server
            log.warning("%s: cannot make it private (mode 0600): %s", p, e.strerror)


def make_engine(url: str, where: str = "Database.Connection") -> sa.Engine:
    """Create a SQLAlchemy engine with the pragmas and pool settings coflows relies on."""
    if url.startswith("sqlite"):
        path = sqlite_file(url)
        if path is not None:
            check_database_dir(url, where)
            secure_sqlite_file(path)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        synchronous = os.environ.get("COFLOWS_SQLITE_SYNCHRONOUS", "NORMAL")

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # noqa: ANN001
            # Let SQLAlchemy own transactions; pysqlite's implicit BEGIN is off.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={synchronous}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):  # noqa: ANN001
            # IMMEDIATE takes the write lock up front, so two writers queue instead of deadlocking.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


@dataclass
class Database:
    """The server's database: its URL and engine, with the schema brought up to date."""

    url: str
    where: str = "Database.Connection"  # the setting named in errors: "<config file>: Database.Connection"
    engine: sa.Engine = field(init=False)

    def __post_init__(self) -> None:
        from coflows.store.schema import migrate

        self.engine = make_engine(self.url, self.where)
        migrate(self.engine)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def dispose(self) -> None:
        self.engine.dispose()
