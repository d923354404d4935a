"""A small versioned migration scheme, so no user ever runs a manual schema step.

Each component (`m`, `agents`, `flows`, `users`, ...) registers an ordered list
of migrations. `migrate(engine)` applies, in one transaction per step, every
step whose number is above the component's version recorded in
`coflows_schema`. Steps are plain functions of a SQLAlchemy `Connection`, so
they can use `MetaData.create_all` or `ALTER TABLE` alike.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[sa.Connection], None]


_registry: dict[str, list[Migration]] = {}
_lock = threading.Lock()

_meta = sa.MetaData()
schema_versions = sa.Table(
    "coflows_schema",
    _meta,
    sa.Column("component", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)


def register_migrations(component: str, migrations: list[Migration]) -> None:
    """Declare the migrations of one component (idempotent: re-registering replaces)."""
    versions = [m.version for m in migrations]
    if versions != sorted(set(versions)) or (versions and versions[0] < 1):
        raise ValueError(f"migrations of {component!r} must have increasing versions from 1: {versions}")
    with _lock:
        _registry[component] = list(migrations)


def migrate(engine: sa.Engine) -> dict[str, int]:
    """Bring every registered component up to date; returns the resulting versions."""
    _meta.create_all(engine, checkfirst=True)
    result: dict[str, int] = {}
    with _lock:
        components = dict(_registry)
    for component, migrations in components.items():
        with engine.begin() as conn:
            row = conn.execute(
                sa.select(schema_versions.c.version).where(schema_versions.c.component == component)
            ).first()
            current = row[0] if row else 0
        for step in migrations:
            if step.version <= current:
                continue
            with engine.begin() as conn:
                step.apply(conn)
                if current == 0:
                    conn.execute(sa.insert(schema_versions).values(component=component, version=step.version))
                else:
                    conn.execute(
                        sa.update(schema_versions)
                        .where(schema_versions.c.component == component)
                        .values(version=step.version)
                    )
                current = step.version
        result[component] = current
    return result
