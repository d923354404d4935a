"""Names of types, classes and modules, resolved in the calling workflow.

Each engine registers a resolver per workflow (`register(wid, "clr", fn)`): `fn(dotted_name)`
returns the class, type or module with that full name, or None. Process-wide names (the CoFlows
compatibility layer's `QuantApp.Kernel`, `QuantApp.Engine`) are registered with `wid=None` and
are tried first. A name nothing resolves is a `Namespace`: `importNamespace('Cs.Base')` gives
one, and its members resolve lazily (`ns.csBase` → `"Cs.Base.csBase"`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from coflows.context import current

Resolver = Callable[[str], Any]

_lock = threading.Lock()
_by_workflow: dict[str | None, list[tuple[str, Resolver]]] = {}
_loading = threading.local()


@dataclass(frozen=True, slots=True)
class Namespace:
    """A dotted name that is not (yet) a type: a namespace or package prefix."""

    name: str

    def child(self, member: str) -> str:
        return f"{self.name}.{member}" if self.name else member


def register(workflow_id: str | None, language: str, fn: Resolver, first: bool = False) -> None:
    """Add (or replace) the resolver of `language` for a workflow (None: every workflow).

    `first=True` puts it before the others, whenever they registered: CoFlows' `QuantApp.*` names
    are the compatibility layer's, even after the C# engine registered its framework types."""
    with _lock:
        entries = [e for e in _by_workflow.get(workflow_id, []) if e[0] != language]
        if first:
            entries.insert(0, (language, fn))
        else:
            entries.append((language, fn))
        _by_workflow[workflow_id] = entries


def unregister(workflow_id: str | None, language: str | None = None) -> None:
    with _lock:
        if language is None:
            _by_workflow.pop(workflow_id, None)
        else:
            _by_workflow[workflow_id] = [e for e in _by_workflow.get(workflow_id, []) if e[0] != language]


@contextmanager
def loading(workflow_id: str) -> Iterator[None]:
    """Mark the thread as loading `workflow_id`'s code (no call context exists yet then)."""
    prev = getattr(_loading, "wid", None)
    _loading.wid = workflow_id
    try:
        yield
    finally:
        _loading.wid = prev


def current_workflow() -> str | None:
    """The workflow whose code is running on this thread: the call's, else the one loading."""
    ctx = current()
    if ctx is not None and ctx.workflow:
        return ctx.workflow
    return getattr(_loading, "wid", None)


_compat_installed = False


def _install_compat() -> None:
    """CoFlows' process-wide names (`QuantApp.*`) register when first needed, whichever engines run:
    a Java-only workspace resolves `QuantApp.Kernel.User` too."""
    global _compat_installed
    _compat_installed = True
    import coflows.compat  # noqa: F401, PLC0415 - registers the "quantapp" resolver


def resolve(name: str, workflow_id: str | None = None, namespace: bool = True) -> Any:
    """The object called `name` for the workflow (default: the current one).

    With `namespace=True` an unknown name is a `Namespace`; otherwise a LookupError that lists
    where it looked.
    """
    if not _compat_installed:
        _install_compat()
    wid = workflow_id if workflow_id is not None else current_workflow()
    tried: list[str] = []
    for key in (None, wid) if wid is not None else (None,):
        for language, fn in list(_by_workflow.get(key, ())):
            tried.append(language)
            found = fn(name)
            if found is not None:
                return found
    if namespace:
        return Namespace(name)
    where = ", ".join(tried) or "no engine"
    raise LookupError(f"no type, class or module named {name!r} in this workflow (looked in: {where})")
