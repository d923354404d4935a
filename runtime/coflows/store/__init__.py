"""Storage through SQLAlchemy 2: one database per server (SQLite by default, or PostgreSQL)."""

from coflows.store.db import Database, database_url, make_engine
from coflows.store.schema import Migration, migrate, register_migrations

__all__ = ["Database", "Migration", "database_url", "make_engine", "migrate", "register_migrations"]
