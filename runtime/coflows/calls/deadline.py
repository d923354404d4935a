"""The current thread's call deadline: how long the call running here may still take.

The worker pool sets it around every call (the function's own `timeout`, else
`Server.CallTimeout`); nested calls (`coflows.call`, Host.Call) run on the same
thread under the outer deadline. Engines that can bound a call themselves (the
JavaScript engine's V8 termination) read `remaining()` so that they stop in time.
"""

from __future__ import annotations

import threading
import time

_local = threading.local()


def current() -> float | None:
    """The deadline of the call running on this thread (`time.monotonic()` seconds), or None."""
    return getattr(_local, "deadline", None)


def remaining() -> float | None:
    """Seconds left for the current thread's call (0.0 once past), None without a deadline."""
    d = getattr(_local, "deadline", None)
    return None if d is None else max(0.0, d - time.monotonic())


class within:
    """`with within(deadline): …` — the thread's deadline for a call; the previous one is restored after.

    A nested scope never extends the outer deadline: the earlier of the two applies.
    """

    __slots__ = ("deadline", "prev")

    def __init__(self, deadline: float | None) -> None:
        self.deadline = deadline

    def __enter__(self) -> float | None:
        self.prev = prev = getattr(_local, "deadline", None)
        d = self.deadline
        if prev is not None and (d is None or prev < d):
            d = prev
        _local.deadline = d
        return d

    def __exit__(self, *exc: object) -> None:
        _local.deadline = self.prev
