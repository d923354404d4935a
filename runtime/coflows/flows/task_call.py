"""One attempt of one task as plain data (`TaskCall`), and running it: here or on a Dask worker.

Why data: the local executor could run a closure, but a Dask worker on another
machine needs something picklable. The engine binds the arguments (data passing)
where the run's state is, and ships only the bound arguments; the worker only
resolves the function in its own copy of the workspace, calls it and encodes the
output. Both executors go through `run_call`, so a task behaves the same either way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from coflows.flows.context import DagChange, TaskContext, reset_current, set_current
from coflows.flows.passing import encode_output, split_hints
from coflows.flows.spec import FunctionResolver


@dataclass
class TaskCall:
    """What a worker needs to run one attempt: the function, its bound arguments and the task's identity."""

    run_id: str
    node: str
    attempt: int
    ref: str
    workflow: str | None
    args: list
    kwargs: dict[str, Any]
    inputs: Mapping[str, Any] = field(default_factory=dict)
    aliases: Mapping[str, Any] = field(default_factory=dict)
    principal: str | None = None  # the run's submitter: the call's CallContext principal


@dataclass
class TaskResult:
    """A finished attempt: the output as stored (JSON text), the decoded value, display hints, DAG changes."""

    text: str
    value: Any
    hints: dict[str, Any] | None
    changes: list[DagChange] = field(default_factory=list)


def run_call(call: TaskCall, resolver: FunctionResolver, ctx: TaskContext) -> TaskResult:
    """Call the task's function with `ctx` as `current_task()`; split hints; encode the output."""
    token = set_current(ctx)
    try:
        result = resolver.call(call.ref, call.args, call.kwargs)
    finally:
        reset_current(token)
    value, hints = split_hints(result)
    try:
        text, decoded = encode_output(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"the output of node {call.node!r} is not JSON-serialisable: {exc}") from None
    return TaskResult(text, decoded, hints, list(ctx.changes))
