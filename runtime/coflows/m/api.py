"""The M set API: `coflows.m(topic)` (snake_case) and CoFlows' `M.Base(topic)` (PascalCase aliases).

Every method takes and returns JSON-able values, so other languages can wrap it thinly.
Every write is durable when the call returns; `save()` is a no-op kept for CoFlows code.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from coflows.errors import CoflowsError
from coflows.m.store import MStore, check_topic
from coflows.store import Database

Predicate = Callable[[Any], bool]


def _store(database: Database | None) -> MStore:
    if database is None:
        from coflows.runtime import current_runtime

        database = current_runtime().database
        if database is None:
            raise CoflowsError("M needs a database: this runtime was started without one")
    return MStore.for_database(database)


class MSet:
    """The entries of one M topic: a persistent set of JSON values, each with an id and a version.

    The database is the process's runtime's (`coflows.runtime.current_runtime()`) unless one is
    given. The object holds no data: every call reads or writes the database.
    """

    __slots__ = ("topic", "_database")

    def __init__(self, topic: str, database: Database | None = None) -> None:
        self.topic = check_topic(topic)
        self._database = database

    @property
    def store(self) -> MStore:
        return _store(self._database)

    def __repr__(self) -> str:
        return f"M({self.topic!r})"

    # -- writes -------------------------------------------------------------------------------
    def add(self, value: Any) -> str:
        """Add a value; returns its id. Adding a value equal to an entry returns that entry's id."""
        return self.store.add(self.topic, value)[0]

    def add_many(self, values: Iterable[Any]) -> list[str]:
        """Add several values in one transaction; returns one id per value, in order."""
        return self.store.add_many(self.topic, values)

    def exchange(self, id_or_old_value: Any, new_value: Any, expected_version: int | None = None) -> dict[str, Any]:
        """Replace an entry (by id, or by its current value) with `new_value`, keeping its id.

        Returns `{"id", "version", "value"}`. By value it is a compare-and-swap; with
        `expected_version` the entry must not have changed since that version. Either way a
        lost race raises `ConflictError` instead of silently overwriting.
        """
        return self.store.exchange(self.topic, id_or_old_value, new_value, expected_version)

    def exchange_id(self, entry_id: str, new_value: Any, expected_version: int | None = None) -> dict[str, Any]:
        """`exchange` where the first argument is always an id (never a string value)."""
        return self.store.exchange(self.topic, entry_id, new_value, expected_version, by="id")

    def remove(self, id_or_value: Any, expected_version: int | None = None) -> bool:
        """Remove an entry by id or by value; False when there is no such entry."""
        return self.store.remove(self.topic, id_or_value, expected_version)

    def remove_id(self, entry_id: str, expected_version: int | None = None) -> bool:
        return self.store.remove(self.topic, entry_id, expected_version, by="id")

    def clear(self) -> int:
        """Remove every entry (each removal is published); returns how many were removed."""
        return self.store.clear(self.topic)

    def save(self) -> None:
        """No-op: every write is already committed (CoFlows needed `Save()`)."""

    # -- reads --------------------------------------------------------------------------------
    def get(self, entry_id: str) -> Any:
        """The value of an entry, or None."""
        row = self.store.get(self.topic, entry_id)
        return None if row is None else json.loads(row[1])

    def entry(self, entry_id: str) -> dict[str, Any] | None:
        """`{"id", "value", "version"}` of an entry, or None."""
        row = self.store.get(self.topic, entry_id)
        return None if row is None else {"id": row[0], "value": json.loads(row[1]), "version": row[2]}

    def find(self, value: Any) -> dict[str, Any] | None:
        """The entry whose value equals `value` (an index lookup), or None."""
        row = self.store.find(self.topic, value)
        return None if row is None else {"id": row[0], "value": json.loads(row[1]), "version": row[2]}

    def list(self) -> list[Any]:
        """Every value, in insertion order."""
        return [json.loads(r[1]) for r in self.store.rows(self.topic)]

    def entries(self, where: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Every entry as `{"id", "value", "version"}`, in insertion order."""
        return [{"id": r[0], "value": json.loads(r[1]), "version": r[2]} for r in self.store.rows(self.topic, where)]

    def key_values(self) -> dict[str, Any]:
        """`{id: value}` for every entry."""
        return {r[0]: json.loads(r[1]) for r in self.store.rows(self.topic)}

    def query(self, predicate: Predicate | None = None, where: dict[str, Any] | None = None) -> list[Any]:
        """Values matching `where` (equality on top-level fields, evaluated by the database on
        SQLite and PostgreSQL) and then `predicate` (a Python function of the value: a scan)."""
        values = (json.loads(r[1]) for r in self.store.rows(self.topic, where))
        if predicate is None:
            return list(values)
        return [v for v in values if predicate(v)]

    def count(self) -> int:
        return self.store.count(self.topic)

    def __len__(self) -> int:
        return self.count()

    def __iter__(self) -> Iterator[Any]:
        return iter(self.list())

    def __contains__(self, value: Any) -> bool:
        return self.store.find(self.topic, value) is not None

    def __getitem__(self, key: Any) -> Any:
        """`m[id]` → value (KeyError if absent); `m[predicate]` → matching values."""
        if callable(key):
            return self.query(key)
        row = self.store.get(self.topic, key)
        if row is None:
            raise KeyError(key)
        return json.loads(row[1])

    def __iadd__(self, value: Any) -> MSet:
        self.add(value)
        return self

    def __isub__(self, value: Any) -> MSet:
        self.remove(value)
        return self

    # -- CoFlows names ------------------------------------------------------------------------
    Add = add
    AddMany = add_many
    Exchange = exchange
    ExchangeID = exchange_id
    Remove = remove
    RemoveID = remove_id
    Get = get
    Find = find
    Query = query
    List = list
    Entries = entries
    RawEntries = entries
    KeyValues = key_values
    Count = count
    Save = save
    Clear = clear
    Delete = clear


class M(MSet):
    """CoFlows' name: `M.Base("orders").Add({...})`; `M("orders")` works too."""

    __slots__ = ()

    @classmethod
    def Base(cls, topic: str, type: Any = None, database: Database | None = None) -> M:  # noqa: A002, N802
        """The M set of `topic` (`type` is accepted for CoFlows code and ignored: values are JSON)."""
        return cls(topic, database)


def m(topic: str, database: Database | None = None) -> MSet:
    """The M set of `topic`: `coflows.m("orders").add({...})`."""
    return MSet(topic, database)
