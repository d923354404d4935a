"""Per-workflow bulkheads: how many calls of one workflow may *run* at once.

A slot is taken when a worker starts the call and given back when it returns
(or when its thread is written off), so fast calls queued for a moment do not
count; calls that last (a spinning function) do. Non-blocking: a workflow at its
cap refuses new calls at once (HTTP 503 with Retry-After) rather than queueing
them, so one workflow or one function cannot take every worker and keep callers
of other workflows waiting.
"""

from __future__ import annotations

import threading

from coflows.errors import CoflowsError


class WorkflowBusy(CoflowsError):
    """A workflow already runs as many calls as its cap allows."""

    http_status = 503
    retry_after = 1


class Bulkheads:
    def __init__(self, cap: int) -> None:
        self.cap = max(1, cap)
        self._running: dict[str, int] = {}
        self._lock = threading.Lock()

    def full(self, workflow: str) -> bool:
        """A quick look (no lock) for the event loop: refuse before the hop."""
        return self._running.get(workflow, 0) >= self.cap

    def busy(self, name: str) -> WorkflowBusy:
        return WorkflowBusy(f"workflow '{name}' is running {self.cap} calls, its limit "
                            f"(Server.WorkflowConcurrency); retry shortly")

    def try_enter(self, workflow: str) -> bool:
        with self._lock:
            n = self._running.get(workflow, 0)
            if n >= self.cap:
                return False
            self._running[workflow] = n + 1
            return True

    def leave(self, workflow: str) -> None:
        with self._lock:
            n = self._running.get(workflow, 1) - 1
            if n <= 0:
                self._running.pop(workflow, None)
            else:
                self._running[workflow] = n

    def running(self, workflow: str) -> int:
        return self._running.get(workflow, 0)
