"""`Server.MemoryLimit`: past it the server drains and exits, so the supervisor starts a fresh one.

Why not a hard limit (RLIMIT_AS): the JVM and Mono reserve far more address
space than they use, and a failed allocation inside them aborts the process
anyway. Resident memory is what the machine runs out of, so a thread reads it
from `/proc/self/statm` (a few µs) every 0.25 s. Past the limit it sets
`runtime.draining` (new calls get 503, see `server/draining.py`), lets the
calls in flight finish within `grace`, then asks uvicorn to stop (the lifespan
shutdown stops agents and hands flow runs back) and the process exits with
`EXIT_MEMORY`. A child too busy to get here is killed by the supervisor once
it passes the hard limit (`supervisor.hard_memory_limit`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from coflows.server.draining import InFlight

log = logging.getLogger("coflows.server")

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> int:
    """This process's resident memory in MB."""
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * _PAGE // (1024 * 1024)


class MemoryMonitor:
    """Watch RSS against `limit_mb`; once past it: drain (`set_draining`), wait, then `stop()`."""

    def __init__(self, limit_mb: int, in_flight: InFlight, set_draining: Callable[[], None],
                 stop: Callable[[], None], notify: Callable[[str], None] = lambda line: None,
                 interval: float = 0.25, grace: float = 5.0) -> None:
        self.limit_mb = limit_mb
        self.in_flight = in_flight
        self.set_draining = set_draining
        self.stop = stop
        self.notify = notify
        self.interval = interval
        self.grace = grace
        self.tripped_at_mb: int | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="coflows-memory-monitor", daemon=True)

    def start(self) -> MemoryMonitor:
        self._thread.start()
        return self

    def close(self) -> None:
        self._done.set()

    def _run(self) -> None:
        while not self._done.wait(self.interval):
            rss = rss_mb()
            if rss > self.limit_mb:
                self._drain(rss)
                return

    def _drain(self, rss: int) -> None:
        self.tripped_at_mb = rss
        self.set_draining()
        self.notify(f"memory {rss}")
        log.warning("memory: %d MB resident, past Server.MemoryLimit %d MB: refusing new calls (503), "
                    "letting %d in flight finish within %.0f s, then restarting",
                    rss, self.limit_mb, self.in_flight.count, self.grace)
        deadline = time.monotonic() + self.grace
        while self.in_flight.count and time.monotonic() < deadline and not self._done.is_set():
            time.sleep(0.05)
        self.stop()
