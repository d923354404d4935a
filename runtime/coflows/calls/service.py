"""`Calls`: the one way user code runs — on the pool, under a deadline, within its workflow's cap.

The server awaits `run_async`; agents, flows and the CLI use `submit`/`run`. A
call made from inside a call (`coflows.call`, Host.Call) runs on the same thread
under the outer deadline: no second hop, no second slot.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
from typing import Any

from coflows.calls.bridge import LoopBridge
from coflows.calls.bulkhead import Bulkheads
from coflows.calls.call import Call
from coflows.calls.pool import WorkerPool, current_worker
from coflows.calls.watchdog import Watchdog


class Calls:
    def __init__(self, threads: int, call_timeout: float, workflow_concurrency: int = 0,
                 engines: Callable[[], Iterable[object]] = tuple, grace: float = 1.5) -> None:
        self.call_timeout = call_timeout
        self.bulkheads = Bulkheads(workflow_concurrency or max(1, threads // 2))
        self.pool = WorkerPool(threads, bulkheads=self.bulkheads)
        self.watchdog = Watchdog(self.pool, engines, grace)
        self._bridges: dict[asyncio.AbstractEventLoop, LoopBridge] = {}

    def limit(self, own: float | None) -> float:
        """A function's own timeout, else `Server.CallTimeout`."""
        return own if own else self.call_timeout

    # -- from threads (agents, flows, the CLI) ----------------------------------------------------
    def submit(self, fn: Callable[..., Any], args: tuple[Any, ...] = (), *, label: str,
               timeout: float | None = None, on_done: Callable[[Call], None] | None = None) -> Call:
        call = Call(fn, args, label, self.limit(timeout), on_done)
        self.pool.submit(call)
        return call

    def run(self, fn: Callable[..., Any], *args: Any, label: str, timeout: float | None = None) -> Any:
        """Run `fn(*args)` on the pool and wait; inside a call, run it here (nested)."""
        if current_worker() is not None:
            return fn(*args)
        done = threading.Event()
        call = self.submit(fn, args, label=label, timeout=timeout, on_done=lambda _c: done.set())
        done.wait()
        return call.result()

    def cancel(self, call: Call) -> None:
        """Stop `call` (its caller has gone); its submitter gets `CallCancelled` unless it was done."""
        if not call.settled:
            self.watchdog.cancel(call)

    # -- from the event loop ----------------------------------------------------------------------
    def start_async(self, fn: Callable[..., Any], args: tuple[Any, ...], *, label: str,
                    timeout: float | None = None, slot: str | None = None,
                    slot_name: str = "", language: str = "") -> tuple[Call, asyncio.Future]:
        """Submit from the running loop: the call and a future resolved (in a batch) when it is settled.

        With `slot` (a workflow ID) it runs only within that workflow's bulkhead (else `WorkflowBusy`)."""
        loop = asyncio.get_running_loop()
        bridge = self._bridges.get(loop)
        if bridge is None:
            bridge = self._bridges[loop] = LoopBridge(loop)
        call = Call(fn, args, label, self.limit(timeout))
        call.slot, call.slot_name, call.language = slot, slot_name, language
        fut = bridge.waiter(call)
        self.pool.submit(call)
        return call, fut

    async def run_async(self, fn: Callable[..., Any], *args: Any, label: str, timeout: float | None = None) -> Any:
        call, fut = self.start_async(fn, args, label=label, timeout=timeout)
        try:
            await fut
        except asyncio.CancelledError:
            self.cancel(call)
            raise
        return call.result()

    def stats(self) -> dict[str, int]:
        return {"threads": len(self.pool.workers), "queued": self.pool.queued(),
                "written_off": self.pool.written_off, "stopped": self.watchdog.stopped}

    def close(self) -> None:
        self.watchdog.close()
        self.pool.close()
