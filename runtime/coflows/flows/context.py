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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from coflows.flows.errors import NotInTask

if TYPE_CHECKING:
    from coflows.flows.engine import FlowEngine

_current: contextvars.ContextVar[TaskContext | None] = contextvars.ContextVar("coflows_flow_task", default=None)


@dataclass
class TaskContext:
    """The running attempt of one task: ids, inputs and the DAG operations allowed to it."""

    engine: FlowEngine = field(repr=False)
    run_id: str
    node: str
    attempt: int
    ref: str
    workflow: str | None = None
    inputs: Mapping[str, Any] = field(default_factory=dict)
    aliases: Mapping[str, Any] = field(default_factory=dict, repr=False)  # the run's, for refs of new nodes

    def add_child(self, name: str, ref: str, args: Sequence[Any] | None = None,
                  kwargs: Mapping[str, Any] | None = None, *, after: Sequence[str] = (),
                  retries: int = 0, timeout: float | None = None, priority: int = 0) -> str:
        """Add node `name` calling `ref` that runs after this task (and after `after`, descendants of it)."""
        return self.engine._change_dag(self, "add", name, ref, list(args or []), dict(kwargs or {}),
                                       list(after), None, retries, timeout, priority)

    def insert_child(self, name: str, ref: str, args: Sequence[Any] | None = None,
                     kwargs: Mapping[str, Any] | None = None, *, before: Sequence[str] | None = None,
                     after: Sequence[str] = (), retries: int = 0, timeout: float | None = None,
                     priority: int = 0) -> str:
        """Insert node `name` between this task and its children (or the descendants named in `before`)."""
        return self.engine._change_dag(self, "insert", name, ref, list(args or []), dict(kwargs or {}),
                                       list(after), None if before is None else list(before),
                                       retries, timeout, priority)


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
