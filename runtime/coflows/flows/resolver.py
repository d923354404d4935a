"""`PythonResolver`: a FunctionResolver over plain Python callables (ref → function).

The runtime resolves refs through its polyglot registry; this one serves
tests, benchmarks and embedding code that has its functions at hand.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any


class PythonResolver:
    """Resolve `ref` strings to Python callables; parameter names come from their signatures."""

    def __init__(self, functions: Mapping[str, Callable[..., Any]] | None = None):
        self._functions: dict[str, Callable[..., Any]] = {}
        self._params: dict[str, list[str]] = {}
        for ref, fn in (functions or {}).items():
            self.register(ref, fn)

    def register(self, ref: str, fn: Callable[..., Any]) -> None:
        self._functions[ref] = fn
        self._params[ref] = [
            p.name for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]

    def exists(self, ref: str) -> bool:
        return ref in self._functions

    def param_names(self, ref: str) -> list[str]:
        return self._params[ref]

    def call(self, ref: str, args: list, kwargs: dict) -> Any:
        return self._functions[ref](*args, **kwargs)
