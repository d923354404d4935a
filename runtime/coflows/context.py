"""The current call, per thread: who is calling which function.

User code runs in worker threads; the server, agents and flows set the
context around each call so that `print` output is tagged with the function
and so that code can ask who the caller is (CoFlows' `User.ContextUser`, kept
per thread there too, but here restored after every call so identity never
leaks to the next call on the same thread).
"""

from __future__ import annotations

import logging
import sys
import threading
from dataclasses import dataclass
from typing import Any, TextIO

_local = threading.local()
user_log = logging.getLogger("coflows.user")


@dataclass(frozen=True, slots=True)
class CallContext:
    workflow: str
    query: str
    function: str
    principal: Any = None
    name: str = ""  # the workflow's Name, for log tags (`workflow` is its ID, used for lookups)

    @property
    def tag(self) -> str:
        """`workflow-name/query/function`, as the README promises (the ID when no name is known)."""
        return f"{self.name or self.workflow}/{self.query}/{self.function}"


def current() -> CallContext | None:
    return getattr(_local, "ctx", None)


class call_context:
    """`with call_context(ctx): …` — set the thread's current call, restore the previous one after."""

    __slots__ = ("ctx", "prev")

    def __init__(self, ctx: CallContext) -> None:
        self.ctx = ctx

    def __enter__(self) -> CallContext:
        self.prev = getattr(_local, "ctx", None)
        _local.ctx = self.ctx
        return self.ctx

    def __exit__(self, *exc: object) -> None:
        _local.ctx = self.prev


class TaggedStream:
    """Replaces sys.stdout/stderr: inside a call, lines go to the log tagged with the function."""

    def __init__(self, real: TextIO, level: int) -> None:
        self._real = real
        self._level = level
        self._buf = threading.local()

    def write(self, s: str) -> int:
        ctx = getattr(_local, "ctx", None)
        if ctx is None:
            return self._real.write(s)
        pending = getattr(self._buf, "text", "") + s
        *lines, rest = pending.split("\n")
        for line in lines:
            user_log.log(self._level, "[%s] %s", ctx.tag, line)
        self._buf.text = rest
        return len(s)

    def flush(self) -> None:
        ctx = getattr(_local, "ctx", None)
        rest = getattr(self._buf, "text", "")
        if ctx is not None and rest:
            user_log.log(self._level, "[%s] %s", ctx.tag, rest)
            self._buf.text = ""
        self._real.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def install_output_capture() -> None:
    """Idempotently route `print` inside calls to the log (stdout → INFO, stderr → WARNING)."""
    if not isinstance(sys.stdout, TaggedStream):
        sys.stdout = TaggedStream(sys.stdout, logging.INFO)  # type: ignore[assignment]
    if not isinstance(sys.stderr, TaggedStream):
        sys.stderr = TaggedStream(sys.stderr, logging.WARNING)  # type: ignore[assignment]
