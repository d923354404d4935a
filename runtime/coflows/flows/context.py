"""`current_task()`: what a running task knows of its run, and how it grows the DAG (ColonyOS rules).

The engine sets a context variable in the worker thread right before it calls
the function, so user code (in Python; other languages through the runtime)
can do::

    from coflows.flows import current_task
    ctx = current_task()
    ctx.add_child("notify", "Mail.py/send", kwargs={"to": "ops"})
    ctx.insert_child("validate", "Data.py/check")   # between this task and its children

Rules: a task may only change its own downstream — add a child (depending on
itself, and optionally on some of its descendants), or insert a child between
itself and its children (all of them by default, or those named in `before`).
Nothing upstream of the running task can change; a change that would make a
cycle is refused. Changes are stored before the call returns, and repeating an
identical change (e.g. after a retry) is a no-op.
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from coflows.flows.errors import FlowSpecError, NotInTask
from coflows.flows.spec import FunctionResolver, Loc, resolve_name

if TYPE_CHECKING:
    from coflows.flows.engine import FlowEngine

_current: contextvars.ContextVar[TaskContext | None] = contextvars.ContextVar("coflows_flow_task", default=None)


@dataclass(frozen=True)
class DagChange:
    """One add/insert asked for by a task; picklable, so a task on a Dask worker can send it home."""

    op: str  # "add" | "insert"
    name: str
    ref: str  # already resolved through the run's aliases and checked to exist
    args: list
    kwargs: dict
    after: list[str]
    before: list[str] | None
    retries: int = 0
    timeout: float | None = None
    priority: int = 0


def check_change(resolver: FunctionResolver, aliases: Mapping[str, Any], op: str, name: str, ref: str,
                 args: list, kwargs: dict, after: list[str], before: list[str] | None, retries: int,
                 timeout: float | None, priority: int) -> DagChange:
    """What can be checked without the run's state: the name, the function, JSON arguments, limits."""
    if not isinstance(name, str) or not name.strip():
        raise FlowSpecError("a node name must be a non-empty string", where=f"{op}_child")
    where = Loc(f"{op}_child({name!r})")
    resolved, defaults, _ = resolve_name(ref, aliases or {}, where)
    if not resolver.exists(resolved):
        raise where.error(f"unknown function {ref!r}")
    kwargs = {**defaults.get("kwargs", {}), **kwargs}
    try:
        json.dumps(args)
        json.dumps(kwargs)
    except (TypeError, ValueError) as exc:
        raise where.error(f"arguments are not JSON: {exc}") from None
    if retries < 0 or (timeout is not None and timeout <= 0):
        raise where.error("retries must be ≥ 0 and timeout > 0")
    return DagChange(op, name, resolved, args, kwargs, after, before, retries, timeout, priority)


@dataclass
class TaskContext:
    """The running attempt of one task: ids, inputs and the DAG operations allowed to it.

    With an `engine` (the task runs in the engine's process) a change is stored before the
    call returns. Without one (a Dask worker) changes are checked against `resolver`, kept
    in `changes` and applied by the engine together with the task's outcome.
    """

    engine: FlowEngine | None = field(repr=False)
    run_id: str
    node: str
    attempt: int
    ref: str
    workflow: str | None = None
    inputs: Mapping[str, Any] = field(default_factory=dict)
    aliases: Mapping[str, Any] = field(default_factory=dict, repr=False)  # the run's, for refs of new nodes
    resolver: FunctionResolver | None = field(default=None, repr=False)
    changes: list[DagChange] = field(default_factory=list, repr=False)
    principal: str | None = None  # id of who submitted (or last re-ran) the run: its calls run as them

    def add_child(self, name: str, ref: str, args: Sequence[Any] | None = None,
                  kwargs: Mapping[str, Any] | None = None, *, after: Sequence[str] = (),
                  retries: int = 0, timeout: float | None = None, priority: int = 0) -> str:
        """Add node `name` calling `ref` that runs after this task (and after `after`, descendants of it)."""
        return self._change("add", name, ref, list(args or []), dict(kwargs or {}), list(after), None,
                            retries, timeout, priority)

    def insert_child(self, name: str, ref: str, args: Sequence[Any] | None = None,
                     kwargs: Mapping[str, Any] | None = None, *, before: Sequence[str] | None = None,
                     after: Sequence[str] = (), retries: int = 0, timeout: float | None = None,
                     priority: int = 0) -> str:
        """Insert node `name` between this task and its children (or the descendants named in `before`)."""
        return self._change("insert", name, ref, list(args or []), dict(kwargs or {}), list(after),
                            None if before is None else list(before), retries, timeout, priority)

    def _change(self, op: str, name: str, ref: str, args: list, kwargs: dict, after: list[str],
                before: list[str] | None, retries: int, timeout: float | None, priority: int) -> str:
        if self.engine is not None:
            return self.engine._change_dag(self, op, name, ref, args, kwargs, after, before, retries, timeout,
                                           priority)
        if self.resolver is None:
            raise NotInTask("this task context can neither store nor record DAG changes")
        change = check_change(self.resolver, self.aliases, op, name, ref, args, kwargs, after, before, retries,
                              timeout, priority)
        if change not in self.changes:
            self.changes.append(change)
        return name


def current_task() -> TaskContext:
    """The task this code runs in; raises `NotInTask` outside a flow task."""
    ctx = _current.get()
    if ctx is None:
        raise NotInTask("current_task() is only available inside a task run by the flow engine")
    return ctx


def in_task() -> bool:
    return _current.get() is not None


def set_current(ctx: TaskContext | None) -> contextvars.Token:
    return _current.set(ctx)


def reset_current(token: contextvars.Token) -> None:
    _current.reset(token)
