"""The worker pool for user code: it never shrinks.

A thread whose call cannot be stopped is *written off*: it is marked retired and
leaves the pool at once (a replacement starts when a call waits), it exits when its call finally
returns and never serves again, so a stop aimed at it cannot hit a later call.

Hand-off cost matters (a no-op call is a few µs; a thread wake-up is tens), so:
jobs go to one deque; idle workers sleep on their own lock in a LIFO stack, so
the most recently idle (hot) thread is woken first; at most one worker is woken
while another is already looking for work, and a worker that takes a job while
more are queued wakes the next one (so a long call never holds up queued ones).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from coflows.calls import deadline as _deadline
from coflows.calls.bulkhead import Bulkheads
from coflows.calls.call import Call
from coflows.calls.stop import CallStopped, clear_pending
from coflows.errors import CoflowsError

log = logging.getLogger("coflows.calls")


class Worker:
    __slots__ = ("thread", "ident", "native_id", "call", "retired", "demoted", "wake")

    def __init__(self) -> None:
        self.thread: threading.Thread | None = None
        self.ident = 0
        self.native_id = 0
        self.demoted = False  # its OS priority was lowered for a long native call: it leaves after it
        self.call: Call | None = None
        self.retired = False
        self.wake = threading.Lock()
        self.wake.acquire()  # released to wake the worker


_local = threading.local()


def current_worker() -> Worker | None:
    """The pool worker running on this thread (None outside the pool)."""
    return getattr(_local, "worker", None)


class WorkerPool:
    def __init__(self, size: int, name: str = "coflows-call",
                 on_start: Callable[[Call], None] | None = None, bulkheads: Bulkheads | None = None) -> None:
        self.size = max(1, size)
        self.bulkheads = bulkheads
        # Threads start on demand. Past `size` busy threads, up to as many again start for queued
        # calls, so that calls of other workflows are not queued behind two full bulkheads
        # (WorkflowConcurrency defaults to size // 2); written-off threads do not count.
        self.limit = 2 * self.size
        self.name = name
        self.on_start = on_start  # the watchdog's hook: a call with an early deadline began
        self.workers: set[Worker] = set()  # live (not retired) workers
        self.written_off = 0
        self._jobs: deque[Call] = deque()
        self._idle: list[Worker] = []
        self._looking = 0  # workers awake and about to take a job
        self._lock = threading.Lock()
        self._serial = itertools.count(1)
        self._closed = False

    # -- submitting ---------------------------------------------------------------------------
    def submit(self, call: Call) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the call pool is shut down")
            self._jobs.append(call)
            if self._looking:
                return
            self._wake_one_locked()

    def _wake_one_locked(self) -> None:
        """Wake the most recently idle worker, else start one (up to `limit`)."""
        if self._idle:
            self._looking += 1
            self._idle.pop().wake.release()
        elif len(self.workers) < self.limit:
            self._spawn_locked()

    def _spawn_locked(self) -> None:
        w = Worker()
        self._looking += 1
        self.workers.add(w)
        t = threading.Thread(target=self._work, args=(w,), name=f"{self.name}-{next(self._serial)}", daemon=True)
        w.thread = t
        t.start()

    def queued(self) -> int:
        return len(self._jobs)

    def remove_queued(self, call: Call) -> bool:
        with self._lock:
            try:
                self._jobs.remove(call)
                return True
            except ValueError:
                return False

    # -- writing off ----------------------------------------------------------------------------
    def write_off(self, w: Worker) -> None:
        """`w` is stuck in a call that cannot be stopped: it leaves the pool; a new thread replaces it."""
        with self._lock:
            if w.retired or w not in self.workers:
                return
            w.retired = True
            self.workers.discard(w)
            self.written_off += 1
            stuck = w.call
            if not self._closed and self._jobs and not self._looking:
                self._wake_one_locked()
        if stuck is not None:
            self.release_slot(stuck)  # a thread that never returns must not hold its workflow's slot
        log.warning("thread %s written off: its call (%s) did not stop; a new thread replaces it",
                    w.thread.name if w.thread else "?", w.call.label if w.call else "?")

    # -- the workers ----------------------------------------------------------------------------
    def _next(self, w: Worker) -> Call | None:
        """The next job for `w` (which is counted as looking); sleeps while there is none."""
        while True:
            with self._lock:
                if self._closed:
                    self._looking -= 1
                    return None
                if self._jobs:
                    call = self._jobs.popleft()
                    self._looking -= 1
                    if self._jobs and not self._looking:
                        self._wake_one_locked()
                    return call
                self._looking -= 1
                self._idle.append(w)
            w.wake.acquire()

    def _work(self, w: Worker) -> None:
        w.ident = threading.get_ident()
        w.native_id = threading.get_native_id()
        _local.worker = w
        while True:
            try:
                call = self._next(w)
                if call is None:
                    return
                self._run(w, call)
                if w.retired or (w.demoted and self._retire(w)):
                    return
                with self._lock:
                    self._looking += 1
            except CallStopped:
                # a stop that fired after its call had returned (the narrow window before it is
                # withdrawn): nothing is running any more; carry on as if between jobs
                if w.retired:
                    return
                with self._lock:
                    self._looking += 1

    def _run(self, w: Worker, call: Call) -> None:
        if call.settled:
            return  # cancelled while queued
        if call.deadline is not None and time.monotonic() >= call.deadline:
            call.settle(False, call.timeout_error())
            return
        if call.slot is not None and self.bulkheads is not None:
            if not self.bulkheads.try_enter(call.slot):
                call.settle(False, self.bulkheads.busy(call.slot_name or call.slot))
                return
            call.slot_held = True
        w.call = call
        call.started = time.monotonic()
        call.running = True
        if self.on_start is not None:
            self.on_start(call)
        ok, value = False, None
        try:
            try:
                with _deadline.within(call.deadline):
                    value = call.fn(*call.args)
                ok = True
            finally:
                self._leave(w, call)
        except CallStopped:
            ok, value = False, call.cancelled_error() if call.cancel_requested else call.timeout_error()
        except BaseException as exc:  # noqa: BLE001 - user code may raise anything; it is the outcome
            ok, value = False, exc
        finally:
            call.running = False  # also when the stop fired inside _leave (it is sent once)
            w.call = None
            self.release_slot(call)
        call.settle(ok, value)

    def _retire(self, w: Worker) -> bool:
        """A demoted thread leaves after its call (an unprivileged process cannot raise a thread's
        priority back); a new thread at normal priority starts when a call waits."""
        with self._lock:
            w.retired = True
            self.workers.discard(w)
            if not self._closed and self._jobs and not self._looking:
                self._wake_one_locked()
        return True

    def release_slot(self, call: Call) -> None:
        """Give back `call`'s bulkhead slot, once (its worker returned, or was written off)."""
        if call.slot_held and self.bulkheads is not None:
            with call.lock:
                if not call.slot_held:
                    return
                call.slot_held = False
            self.bulkheads.leave(call.slot)  # type: ignore[arg-type]

    @staticmethod
    def _leave(w: Worker, call: Call) -> None:
        """No stop is sent after this; one sent and not raised yet is withdrawn."""
        with call.lock:
            call.running = False
            if call.stop_sent:
                clear_pending(w.ident)

    def close(self) -> None:
        """Stop idle workers; queued calls fail at once (running ones are not waited for)."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            queued = list(self._jobs)
            self._jobs.clear()
        for call in queued:
            call.settle(False, CoflowsError(f"{call.label}: not run, the server is shutting down"))
        for w in idle:
            w.wake.release()
