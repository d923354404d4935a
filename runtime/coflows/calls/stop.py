"""Stopping a call that runs on another thread: an asynchronous exception, then the engines.

Python code is stopped by `PyThreadState_SetAsyncExc`: the exception is raised in
the thread at its next bytecode. It is a `BaseException` so that user code's
`except Exception` does not swallow it. Code inside another runtime (C#, Java)
runs no bytecode, so every started engine is asked to stop the thread too
(`Engine.interrupt`); an engine that cannot says so and the thread is written
off after a grace period (see `pool.py`).
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable, Iterable

log = logging.getLogger("coflows.calls")


class CallStopped(BaseException):
    """Raised inside a call's thread when its time is up or its caller has gone."""


def raise_in_thread(ident: int) -> bool:
    """Schedule `CallStopped` in thread `ident`; True when the thread exists."""
    n = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(CallStopped))
    return n == 1


def clear_pending(ident: int) -> None:
    """Withdraw an asynchronous exception not raised yet (the call returned before it fired)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.c_void_p(0))


def interrupt_engines(engines: Callable[[], Iterable[object]], ident: int) -> list[str]:
    """Ask every started engine to stop thread `ident`; the languages that said they did."""
    stopped = []
    for engine in engines():
        try:
            if engine.interrupt(ident):  # type: ignore[attr-defined]
                stopped.append(getattr(engine, "language", "?"))
        except Exception:  # noqa: BLE001 - an engine failing to stop a thread must not stop the watchdog
            log.exception("%s: interrupt of thread %d failed", getattr(engine, "language", "?"), ident)
    return stopped
