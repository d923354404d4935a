"""LISTEN on a PostgreSQL channel from a thread of its own, reconnecting after errors.

Why one class: the M change feed and the flow-event relay need the same loop (a dedicated
connection outside the pool, autocommit, LISTEN, read notifications in batches, back off and
reconnect when the connection drops); they differ only in what they do on (re)connect and with
each payload.
"""

from __future__ import annotations

import logging
import threading

import sqlalchemy as sa

log = logging.getLogger("coflows.store")


class PgListener(threading.Thread):
    """Subclasses give `note(payload)`, and may give `connected(first)` and `idle()`."""

    def __init__(self, engine: sa.Engine, channel: str, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.engine = engine
        self.channel = channel
        self.ready = threading.Event()
        self.pid: int | None = None  # the listening connection's backend pid (tests end it)
        self._halt = threading.Event()
        self._connections = 0

    def connected(self, first: bool) -> None:
        """Right after LISTEN, before `ready` is set (`first`: the thread's first connection)."""

    def note(self, payload: str) -> None:
        raise NotImplementedError

    def idle(self) -> None:
        """After each batch of notifications (at least every half second)."""

    def stop(self) -> None:
        self._halt.set()
        self.join(5)

    def run(self) -> None:
        delay = 0.5
        while not self._halt.is_set():
            raw = None
            try:
                raw = self.engine.raw_connection()
                conn = raw.driver_connection
                raw.detach()  # ours for good: not returned to the pool
                conn.autocommit = True
                conn.execute(f"LISTEN {self.channel}")
                self.pid = conn.info.backend_pid
                self._connections += 1
                self.connected(self._connections == 1)
                self.ready.set()
                delay = 0.5
                while not self._halt.is_set():
                    for note in conn.notifies(timeout=0.5, stop_after=500):
                        self.note(note.payload)
                    self.idle()
            except Exception:  # noqa: BLE001 - keep listening whatever happens
                if self._halt.is_set():
                    break
                log.warning("%s: lost the PostgreSQL connection; reconnecting in %.1fs", self.name, delay,
                            exc_info=True)
                self._halt.wait(delay)
                delay = min(delay * 2, 10)
            finally:
                if raw is not None:
                    try:
                        raw.close()
                    except Exception:  # noqa: BLE001
                        pass
