"""The Python side of Java objects across languages: the "jvm" resolver and `app.quant.clr`.

* **Resolver** (`register_workflow`): `objects.resolve("javabase.javaBase")` in a workflow gives
  the JPype class from that workflow's *current* class loaders: Base and jars first, then its
  queries' loaders (a query reloaded a moment ago answers with its new class). The engine
  registers it when a workflow's Java state is made and unregisters it on unload.
* **Bridge** (`make_bridge`): Java's `app.quant.clr.CLRRuntime` / `CLRObject` call Python through
  one interface, `app.quant.clr.Bridge`, implemented here with `@jpype.JImplements` and installed
  at engine start. A `CLRObject` holds an `objects.HANDLES` id; Java's `Cleaner` releases it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from coflows import objects

log = logging.getLogger("coflows.engines.jvm")

LANGUAGE = "jvm"


def _class_in(loader: Any, name: str) -> Any:
    """The JPype class `name` as `loader` sees it, or None (no exception for a missing class)."""
    import jpype

    try:
        cls = jpype.JClass("java.lang.Class").forName(name, True, loader)
    except Exception:  # noqa: BLE001 - ClassNotFoundException, LinkageError, a failed static init
        return None
    return jpype.JClass(cls)


def resolver(state_of: Callable[[], Any]) -> objects.resolvers.Resolver:
    """A resolver over the workflow's Java state as it is at each call (`state_of()`: `_WorkflowState | None`)."""

    def resolve(name: str) -> Any:
        if not name or not all(part.isidentifier() for part in name.split(".")):
            return None
        state = state_of()
        if state is None:
            return None
        for loader in (state.loader, *(q.loader for q in list(state.queries.values()))):
            found = _class_in(loader, name)
            if found is not None:
                return found
        return None

    return resolve


def register_workflow(workflow_id: str, state_of: Callable[[], Any]) -> None:
    objects.register(workflow_id, LANGUAGE, resolver(state_of))


def unregister_workflow(workflow_id: str) -> None:
    objects.unregister(workflow_id, LANGUAGE)
