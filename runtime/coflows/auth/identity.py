"""From a credential (API key, session token, stored principal id) to a Principal, cached.

Why a cache: a request authenticated by a user's API key must cost about what the admin key
costs (bench/http_query.py measures the ratio), so the digest → Principal answer is kept for
`ttl` seconds, and never past the earliest expiry of a membership it includes. Changes made
through this process (grants, revocations, password changes) drop the cache at once; changes made
by another process (the CLI, another replica) are seen within `ttl`.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

from coflows.auth.credentials import KEY_PREFIX, SESSION_PREFIX, digest
from coflows.auth.store import UserStore
from coflows.permissions import Principal

MISS = object()  # not in the cache: ask `resolve_*` (which reads the database) in a thread


class _TTLCache:
    """A bounded LRU of key → (value, valid until)."""

    def __init__(self, size: int) -> None:
        self._data: OrderedDict[str, tuple[Any, float]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: str, now: float) -> Any:
        item = self._data.get(key)
        if item is None or item[1] <= now:
            return MISS
        return item[0]

    def put(self, key: str, value: Any, until: float) -> None:
        with self._lock:
            self._data[key] = (value, until)
            self._data.move_to_end(key)
            while len(self._data) > self._size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


class Identities:
    """Cached lookups of users' principals by API key, session token or id."""

    def __init__(self, store: UserStore, ttl: float = 5.0, size: int = 10_000) -> None:
        self.store = store
        self.ttl = ttl
        self._keys = _TTLCache(size)  # key digest → Principal | None (unknown or revoked)
        self._sessions = _TTLCache(size)  # session digest → (Principal, csrf) | None
        self._ids = _TTLCache(size)  # user id → Principal | None
        self._used: dict[str, float] = {}  # key digest → last use, written in batches
        self._used_lock = threading.Lock()
        self._last_flush = time.monotonic()

    def invalidate(self) -> None:
        """Forget every cached answer (after any change of users, memberships, keys or sessions)."""
        self._keys.clear()
        self._sessions.clear()
        self._ids.clear()

    # -- API keys -----------------------------------------------------------------------------
    def cached_key(self, key: str) -> Any:
        """A Principal, None (not a valid key) or MISS; never touches the database."""
        if not key.startswith(KEY_PREFIX):
            return None
        d = digest(key)
        found = self._keys.get(d, time.time())
        if found is not MISS and found is not None:
            self._used[d] = time.time()
        return found

    def resolve_key(self, key: str) -> Principal | None:
        if not key.startswith(KEY_PREFIX):
            return None
        d = digest(key)
        now = time.time()
        found = self._keys.get(d, now)
        if found is MISS:
            uid = self.store.key_user(d)
            resolved = self.store.principal(uid, now) if uid else None
            found = resolved[0] if resolved else None
            until = min(now + self.ttl, resolved[1]) if resolved else now + self.ttl
            self._keys.put(d, found, until)
        if found is not None:
            self._used[d] = now
        return found

    def flush_usage(self) -> None:
        """Write keys' last-used times (called every few seconds off the event loop)."""
        with self._used_lock:
            used, self._used = self._used, {}
        self.store.touch_keys(used)

    # -- sessions -----------------------------------------------------------------------------
    def cached_session(self, token: str) -> Any:
        if not token.startswith(SESSION_PREFIX):
            return None
        return self._sessions.get(digest(token), time.time())

    def resolve_session(self, token: str) -> tuple[Principal, str] | None:
        """(Principal, CSRF token) of a live session, or None."""
        if not token.startswith(SESSION_PREFIX):
            return None
        d = digest(token)
        now = time.time()
        found = self._sessions.get(d, now)
        if found is MISS:
            found, until = None, now + self.ttl
            live = self.store.session(d)
            if live is not None:
                resolved = self.store.principal(live[0], now)
                if resolved is not None:
                    found = (resolved[0], live[1])
                    until = min(until, resolved[1], live[2])
            self._sessions.put(d, found, until)
        return found

    # -- stored ids (flow runs' submitters) -----------------------------------------------------
    def by_id(self, uid: str) -> Principal | None:
        now = time.time()
        found = self._ids.get(uid, now)
        if found is MISS:
            resolved = self.store.principal(uid, now)
            found = resolved[0] if resolved else None
            self._ids.put(uid, found, min(now + self.ttl, resolved[1]) if resolved else now + self.ttl)
        return found
