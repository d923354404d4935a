"""Per-workflow bulkheads: how many calls of one workflow may run at once.

Non-blocking: a full workflow refuses the call at once (HTTP 503 with
Retry-After) rather than queueing it, so one workflow or one function cannot
take every worker and keep callers of other workflows waiting. The counters are
touched only on the event loop (or under the GIL from one thread at a time per
key), so a dict of ints is enough.
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

    def enter(self, workflow: str, label: str = "") -> None:
        """Take a slot of `workflow` or raise `WorkflowBusy`."""
        with self._lock:
            n = self._running.get(workflow, 0)
            if n >= self.cap:
                raise WorkflowBusy(f"workflow '{label or workflow}' is running {n} calls, its limit "
                                   f"(Server.WorkflowConcurrency = {self.cap}); retry shortly")
            self._running[workflow] = n + 1

    def leave(self, workflow: str) -> None:
        with self._lock:
            n = self._running.get(workflow, 1) - 1
            if n <= 0:
                self._running.pop(workflow, None)
            else:
                self._running[workflow] = n

    def running(self, workflow: str) -> int:
        return self._running.get(workflow, 0)
