"""The handle table: integer ids for objects held by another language's proxies.

A proxy (a Java `CLRObject`, a JavaScript proxy, a C# `DynamicObject`) owns exactly one handle
and releases it when it is collected (Java's `Cleaner`, JavaScript's `FinalizationRegistry`,
.NET's finalizer). The table is bounded so that a runaway loop that keeps proxies alive fails
with a clear error instead of eating the server's memory.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

DEFAULT_LIMIT = 1_000_000


class StaleHandle(LookupError):
    """The handle was released (or never existed): the proxy outlived its object."""


class Handles:
    """Thread-safe id → object map; ids are never reused within a process."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self._objects: dict[int, Any] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.limit = limit

    def put(self, obj: Any) -> int:
        with self._lock:
            if len(self._objects) >= self.limit:
                raise MemoryError(
                    f"{len(self._objects)} foreign objects are alive across languages (limit {self.limit}): "
                    "proxies are being kept (in a list or a global?) faster than they are released")
            h = next(self._ids)
            self._objects[h] = obj
            return h

    def get(self, h: int) -> Any:
        try:
            return self._objects[h]
        except KeyError:
            raise StaleHandle(f"foreign object #{h} was released; keep the proxy, not its handle") from None

    def release(self, h: int) -> None:
        self._objects.pop(h, None)  # dict.pop is atomic under the GIL; a double release is harmless

    def __len__(self) -> int:
        return len(self._objects)


HANDLES = Handles()
