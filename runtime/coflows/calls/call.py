"""One call of user code: what to run, its deadline, and its outcome, settled exactly once.

The outcome is settled by whoever comes first: the worker that ran it, or the
watchdog when its time is up or its caller has gone (the caller is answered at
once; the late result of a stopped call is dropped).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from coflows.errors import CallTimeout, CoflowsError


class CallCancelled(CoflowsError):
    """The caller went away (a disconnected client, a cancelled flow task) and the call was stopped."""

    http_status = 499


class Call:
    __slots__ = ("fn", "args", "label", "limit", "deadline", "on_done", "waiter", "lock", "running", "stop_sent",
                 "settled", "ok", "value", "stopping_since", "cancel_requested", "started", "slot", "slot_name",
                 "slot_held", "language")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], label: str, limit: float | None,
                 on_done: Callable[[Call], None] | None = None) -> None:
        self.fn = fn
        self.args = args
        self.label = label
        self.limit = limit
        self.deadline = time.monotonic() + limit if limit else None
        self.on_done = on_done
        self.waiter: Any = None  # what the submitter waits on (an asyncio future, an Event)
        self.lock = threading.Lock()  # a stop is sent only while `running`, under this lock
        self.running = False  # inside fn on a worker thread
        self.stop_sent = False
        self.settled = False
        self.ok = False
        self.value: Any = None  # the result, or the exception
        self.stopping_since: float | None = None
        self.cancel_requested = False
        self.started = 0.0  # time.monotonic() when a worker began it
        self.slot: str | None = None  # the bulkhead (workflow ID) it takes a slot of while it runs
        self.slot_name = ""  # the workflow's name, for the 503
        self.slot_held = False
        self.language = ""  # the function's language, when known before the call

    def settle(self, ok: bool, value: Any) -> bool:
        """Record the outcome once and tell the submitter; False when it was already settled."""
        with self.lock:
            if self.settled:
                return False
            self.settled, self.ok, self.value = True, ok, value
        if self.on_done is not None:
            self.on_done(self)
        return True

    def timeout_error(self) -> CallTimeout:
        return CallTimeout(f"{self.label} did not finish in {self.limit:g} s and was stopped (raise the limit with "
                           f'<api name="…" timeout="…"> in its doc comment or @coflows.timeout(seconds))')

    def cancelled_error(self) -> CallCancelled:
        return CallCancelled(f"{self.label}: its caller went away; the call was stopped")

    def result(self) -> Any:
        """The value, or raise the error (after `settled`)."""
        if self.ok:
            return self.value
        raise self.value
