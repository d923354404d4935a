"""`@coflows.timeout(seconds)`: a Python function's own time limit, instead of `Server.CallTimeout`.

The same as `<api name="F" timeout="10">` in a `###` doc comment (the doc wins
when both are given, as the documented value is what the API page shows).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
ATTRIBUTE = "__coflows_timeout__"


def timeout(seconds: float) -> Callable[[F], F]:
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds <= 0:
        raise ValueError(f"coflows.timeout: seconds must be a positive number, got {seconds!r}")

    def mark(fn: F) -> F:
        setattr(fn, ATTRIBUTE, float(seconds))
        return fn

    return mark


def declared_timeout(fn: Any) -> float | None:
    return getattr(fn, ATTRIBUTE, None)
