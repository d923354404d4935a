"""The registry: (workflow, query, function) → Function, for every caller.

The server, the CLI, agents, flows and other languages (`coflows.call`) all
look functions up here, so hot reload and permissions behave the same for all.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from coflows.context import CallContext
from coflows.context import _local as _context_local  # the thread's current call (`context.current`)
from coflows.errors import NotFoundError
from coflows.functions import Function
from coflows.workflow import Query, Workflow


# Calls made from code (`coflows.call`, flows, agents) check their source for edits at
# most this often, so a call between languages costs microseconds, not stat() calls.
CODE_CALL_REFRESH_SECONDS = 0.25


class _Ref:
    """A reference resolved for calls from code: the Function and its call context, kept while the
    query's loaded version is the one it was taken from (a reload makes a new `LoadedSource`)."""

    __slots__ = ("wf", "q", "name", "loaded", "target", "checked_at", "last")

    def __init__(self, wf: Workflow, q: Query, fn: Function) -> None:
        self.wf, self.q, self.name = wf, q, fn.name
        self.checked_at = time.monotonic()
        self.take(fn)

    def take(self, fn: Function) -> None:
        loaded = self.q.loaded
        # (function, its binder or None when it has overloads): one tuple, so that a thread racing a
        # reload never pairs one version's function with the other's binder
        self.target: tuple[Function, Any] = (fn, None if fn.overloads else fn.binder())
        # (principal, its call context): the last one made, one tuple for the same reason
        self.last: tuple[Any, CallContext] = (None, CallContext(self.wf.id, fn.query_id, fn.name, None, self.wf.name))
        self.loaded = loaded  # last: a thread that sees it current reads the target set above

    def context(self, principal: Any) -> CallContext:
        """The call context for `principal`; the last one is kept (calls from code repeat it)."""
        last_principal, ctx = self.last
        if principal is last_principal:
            return ctx
        ctx = CallContext(ctx.workflow, ctx.query, ctx.function, principal, ctx.name)
        self.last = (principal, ctx)
        return ctx


class Registry:
    def __init__(self) -> None:
        self._by_id: dict[str, Workflow] = {}
        self._by_name: dict[str, Workflow] = {}
        self._lock = threading.Lock()
        self._refs: dict[tuple[str, str | None], _Ref] = {}

    def add(self, workflow: Workflow) -> None:
        with self._lock:
            self._refs.clear()
            self._by_id[workflow.id] = workflow
            self._by_name[workflow.name.lower()] = workflow
        listeners = getattr(workflow, "on_reload", None)
        if listeners is not None and self._forget_refs not in listeners:
            listeners.append(self._forget_refs)

    def _forget_refs(self) -> None:
        """A query was reloaded: cached references re-resolve on their next call (none pins the old code)."""
        with self._lock:
            self._refs.clear()

    def changed(self, workflow: Workflow) -> None:
        """A workflow's queries were added or removed: forget the references cached for code calls."""
        with self._lock:
            self._refs.clear()

    def remove(self, workflow_id: str) -> None:
        with self._lock:
            self._refs.clear()
            wf = self._by_id.pop(workflow_id, None)
            if wf is not None:
                self._by_name.pop(wf.name.lower(), None)

    def workflows(self) -> list[Workflow]:
        return list(self._by_id.values())

    def workflow(self, key: str) -> Workflow:
        """By ID, or by Name (case-insensitive)."""
        wf = self._by_id.get(key) or self._by_name.get(key.lower())
        if wf is None:
            raise NotFoundError(f"unknown workflow '{key}'")
        return wf

    def default_workflow(self) -> Workflow:
        if not self._by_id:
            raise NotFoundError("no workflow is loaded")
        return next(iter(self._by_id.values()))

    def query(self, workflow: Workflow, query_id: str, refresh: bool = True) -> Query:
        q = workflow.queries.get(query_id)
        if q is None:
            raise NotFoundError(f"unknown query '{query_id}' in workflow '{workflow.name}'")
        if refresh:
            workflow.refresh(q)
        return q

    def function(self, workflow_key: str, query_id: str, name: str,
                 refresh: bool = True) -> tuple[Workflow, Function]:
        """Find a function, reloading its source first if it changed on disk.

        With `refresh=False` nothing is loaded; the caller must have checked `is_fresh`.
        """
        wf = self.workflow(workflow_key)
        q = self.query(wf, query_id, refresh)
        fn = q.functions.get(name)
        if fn is None:
            if q.loaded is None and q.error is not None:
                raise NotFoundError(f"query '{query_id}' failed to load: {q.error}")
            raise NotFoundError(f"unknown function '{name}' in query '{query_id}'")
        return wf, fn

    def is_fresh(self, workflow_key: str, query_id: str) -> bool:
        """False when a call would have to reload something first (or the names are unknown)."""
        wf = self._by_id.get(workflow_key) or self._by_name.get(workflow_key.lower())
        q = wf.queries.get(query_id) if wf is not None else None
        return q is not None and wf.is_fresh(q)

    def resolve_ref(self, ref: str, workflow: str | None = None) -> tuple[Workflow, Function]:
        """`Query/fn` (in `workflow`, or the only/first workflow) or `Workflow/Query/fn`.

        Query IDs may contain `/` (`sub/util.py`), so the function is the last
        segment and the workflow the first only when three or more remain and
        the first names a workflow.
        """
        head, _, fn = ref.rpartition("/")
        if not head:
            raise NotFoundError(f"function reference '{ref}' must be 'Query/function' or 'Workflow/Query/function'")
        if workflow is None:
            first, _, rest = head.partition("/")
            if rest and (first in self._by_id or first.lower() in self._by_name):
                return self.function(first, rest, fn)
            wf = self.default_workflow()
            return self.function(wf.id, head, fn)
        return self.function(workflow, head, fn)

    def _cached(self, ref: str, workflow: str | None) -> _Ref:
        """`resolve_ref` with the result cached; sources re-checked every `CODE_CALL_REFRESH_SECONDS`.

        A hit costs a clock read and two identity checks; the Function is looked up again only
        when the query was reloaded (or the check found it changed on disk)."""
        hit = self._refs.get((ref, workflow))
        if hit is not None:
            q = hit.q
            now = time.monotonic()
            if now - hit.checked_at >= CODE_CALL_REFRESH_SECONDS:
                hit.checked_at = now
                hit.wf.refresh_due(q, CODE_CALL_REFRESH_SECONDS)
            if q.loaded is hit.loaded:
                return hit
            fn = q.functions.get(hit.name)
            if fn is not None:
                hit.take(fn)
                return hit
        wf, fn = self.resolve_ref(ref, workflow)
        q = wf.queries[fn.query_id]
        q.checked_at = time.monotonic()
        entry = self._refs[(ref, workflow)] = _Ref(wf, q, fn)
        return entry

    def _in_workflow(self, ref: str, workflow: str) -> _Ref:
        """`Query/fn` in `workflow` (the caller's); `Workflow/Query/fn` in another one.

        Only the lookup falls back, never the call: a callee's own NotFoundError is not retried.
        """
        try:
            return self._cached(ref, workflow)
        except NotFoundError:
            first = ref.partition("/")[0]
            if ref.count("/") < 2 or not (first in self._by_id or first.lower() in self._by_name):
                raise
            entry = self._cached(ref, None)
            with self._lock:  # the next call from this workflow finds it at once (no NotFoundError)
                self._refs[(ref, workflow)] = entry
            return entry

    def call(self, ref: str, *args: Any, workflow: str | None = None, **kwargs: Any) -> Any:
        """Call a Function by reference from any language, converting arguments as declared.

        `ref` is `Query/fn`, in `workflow` or else the workflow of the running call (the rule of
        every language's API: without it, Python's `coflows.call("Q.py/f")` in a second workflow
        ran the first workflow's Q.py), or `Workflow/Query/fn` in another workflow. Edits to the
        source are picked up within `CODE_CALL_REFRESH_SECONDS`.
        """
        local = _context_local
        parent = getattr(local, "ctx", None)
        if workflow is None and parent is not None:
            workflow = parent.workflow or None
        entry = self._refs.get((ref, workflow))
        if entry is None or entry.q.loaded is not entry.loaded \
                or time.monotonic() - entry.checked_at >= CODE_CALL_REFRESH_SECONDS:
            entry = self._cached(ref, None) if workflow is None else self._in_workflow(ref, workflow)
        fn, bind = entry.target
        if bind is None:  # overloads: the one for this many arguments
            fn = fn.for_arity(len(args) + len(kwargs))
            a, k = fn.bind(args, kwargs)
        else:
            a, k = bind(args, kwargs)
        principal = parent.principal if parent is not None else None
        last = entry.last
        local.ctx = last[1] if principal is last[0] else entry.context(principal)
        try:
            return fn.invoke(a, k)
        finally:
            local.ctx = parent
