"""The watchdog: one thread that stops calls past their deadline or whose caller has gone.

It watches the pool's workers (each runs at most one call), not a heap of
deadlines: a heap needs an entry per call and, with lazy deletion, grows with
the call rate (10,000 calls/s under a 120 s limit is a million entries), while
the workers are at most 2 × `Server.Threads`. It scans them every 0.1 s (a few
µs) or at the earliest deadline; a call that starts with an earlier one wakes it.

On expiry the caller is answered at once (504 `CallTimeout`), then the call is
stopped: an asynchronous exception for Python code, `Engine.interrupt` for every
started engine (C#, Java). A call still running `grace` seconds later is
written off: its thread leaves the pool and a new one replaces it.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable

from coflows.calls.call import Call
from coflows.calls.pool import Worker, WorkerPool
from coflows.calls.stop import interrupt_engines, raise_in_thread

log = logging.getLogger("coflows.calls")

TICK = 0.1  # seconds between scans with no deadline nearer
# A call running longer than this may be spinning in Python: while one does, the GIL switch
# interval is the short one (see `switch_intervals`).
LONG_CALL_S = 0.05
# A C# or Java call running longer than this gets its thread's OS priority lowered (nice 19): spinning
# in native code it holds no GIL but takes a core, and on a small machine a few of them starve the
# event loop of CPU. Python calls are left alone: a low-priority thread holding the GIL, preempted,
# would make everyone wait for it.
DEMOTE_AFTER_S = 0.25
DEMOTE_LANGUAGES = frozenset({"csharp", "java"})


class Watchdog:
    def __init__(self, pool: WorkerPool, engines: Callable[[], Iterable[object]], grace: float = 1.5) -> None:
        self.pool = pool
        self.engines = engines
        self.grace = grace
        self.stopped = 0
        # (normal, while a call runs long): a thread running Python code keeps the GIL until another
        # asks for it and this interval passes, and the event loop needs the GIL for every request.
        # With calls spinning a short interval keeps the loop responsive; without, a longer one
        # costs fewer switches. None: leave the interpreter's setting alone (the CLI).
        self.switch_intervals: tuple[float, float] | None = None
        self._short = False
        self._wake_at = float("inf")
        self._cond = threading.Condition()
        self._cancels: list[Call] = []
        self._closed = False
        pool.on_start = self.started
        self._thread = threading.Thread(target=self._loop, name="coflows-call-watchdog", daemon=True)
        self._thread.start()

    # -- from other threads ---------------------------------------------------------------------
    def started(self, call: Call) -> None:
        """A worker began `call`: wake up if its deadline comes before the next planned scan."""
        if call.deadline is not None and call.deadline < self._wake_at:
            with self._cond:
                self._wake_at = call.deadline
                self._cond.notify()

    def cancel(self, call: Call) -> None:
        """The caller has gone: settle the call as cancelled and stop it like a timeout."""
        call.cancel_requested = True
        if not call.running and self.pool.remove_queued(call):
            call.settle(False, call.cancelled_error())
            return
        with self._cond:
            self._cancels.append(call)
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    # -- the thread -----------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._cond:
                if self._closed:
                    return
                cancels, self._cancels = self._cancels, []
            try:
                wake_at = self._scan(cancels)
            except Exception:  # noqa: BLE001 - the watchdog must outlive any bug in one scan
                log.exception("call watchdog: scan failed")
                wake_at = time.monotonic() + 0.5
            with self._cond:
                self._wake_at = wake_at
                while not self._closed and not self._cancels:
                    left = self._wake_at - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)

    def _scan(self, cancels: list[Call]) -> float:
        now = time.monotonic()
        wake_at = now + TICK
        cancelled = set(map(id, cancels))
        long_running = False
        for w in list(self.pool.workers):
            call = w.call
            if call is None:
                continue
            long_running = long_running or now - call.started >= LONG_CALL_S
            if call.stopping_since is not None:
                if now - call.stopping_since >= self.grace:
                    if w.call is call:
                        self.pool.write_off(w)
                    continue
                wake_at = min(wake_at, call.stopping_since + self.grace)
                continue
            if id(call) in cancelled:
                self._stop(w, call, call.cancelled_error())
                wake_at = min(wake_at, now + self.grace)
            elif call.deadline is not None and now >= call.deadline:
                self._stop(w, call, call.timeout_error())
                wake_at = min(wake_at, now + self.grace)
            else:
                if call.deadline is not None:
                    wake_at = min(wake_at, call.deadline)
                if call.language in DEMOTE_LANGUAGES and not w.demoted and now - call.started >= DEMOTE_AFTER_S:
                    self._demote(w)
        for call in cancels:  # not running on a worker (any more): answer the caller if nobody did
            if not call.running:
                call.settle(False, call.cancelled_error())
        if self.switch_intervals is not None and long_running != self._short:
            self._short = long_running
            sys.setswitchinterval(self.switch_intervals[1 if long_running else 0])
        return wake_at

    @staticmethod
    def _demote(w: Worker) -> None:
        w.demoted = True
        try:
            os.setpriority(os.PRIO_PROCESS, w.native_id, 19)  # Linux: the nice value of one thread
        except OSError:
            pass

    def _stop(self, w: Worker, call: Call, error: BaseException) -> None:
        call.settle(False, error)  # the caller is answered now, whatever the thread does next
        with call.lock:
            if not call.running or call.stop_sent:
                return
            call.stop_sent = True
            call.stopping_since = time.monotonic()
            raise_in_thread(w.ident)
            languages = interrupt_engines(self.engines, w.ident)
        self.stopped += 1
        log.warning("%s; stopping thread %s%s", error, w.thread.name if w.thread else "?",
                    f" (also in {', '.join(languages)})" if languages else "")
