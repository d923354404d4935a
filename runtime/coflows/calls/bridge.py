"""Handing finished calls back to the event loop, in batches.

A worker appends the finished call to a deque and wakes the loop only when the
deque was empty (one `call_soon_threadsafe` per batch, not per call); the loop
then resolves every waiting future in one go. Under load, many calls finish per
wake-up of the loop.
"""

from __future__ import annotations

import asyncio
from collections import deque

from coflows.calls.call import Call


class LoopBridge:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._done: deque[Call] = deque()
        self._scheduled = False

    def waiter(self, call: Call) -> asyncio.Future:
        fut = self.loop.create_future()
        call.waiter = fut
        call.on_done = self.post
        return fut

    def post(self, call: Call) -> None:
        """From any thread (the loop's too): `call` is settled."""
        self._done.append(call)
        if not self._scheduled:
            self._scheduled = True
            self.loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        self._scheduled = False
        done = self._done
        while done:
            fut = done.popleft().waiter
            if not fut.done():
                fut.set_result(None)
