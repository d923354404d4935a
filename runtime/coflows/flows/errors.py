"""Errors of the flows engine; all derive from `CoflowsError` so the CLI and server can show them.

`FlowSpecError` says *where* the problem is: a graph string's line and column,
or a YAML/JSON path such as `nodes.report.depends_on[0]`.
"""

from __future__ import annotations

from coflows.errors import CoflowsError


class FlowError(CoflowsError):
    """Base of the flow engine's errors."""

    http_status = 400


class FlowSpecError(FlowError):
    """A flow spec is malformed or invalid (syntax, cycle, unknown function or dependency, duplicate)."""

    http_status = 400

    def __init__(self, message: str, where: str | None = None, *, line: int | None = None,
                 column: int | None = None, path: str | None = None):
        self.message = message
        self.line = line
        self.column = column
        self.path = path
        if where is None:
            if line is not None:
                where = f"line {line}, column {column}" if column is not None else f"line {line}"
            elif path is not None:
                where = path
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class FlowDagError(FlowError):
    """A running task's change to its DAG was refused (upstream change, cycle, name taken, not running)."""

    http_status = 409


class FlowStateError(FlowError):
    """The run or task is not in a state that allows the operation (not finished yet, nothing to re-run)."""

    http_status = 409


class FlowFailed(FlowError):
    """The result of a failed, cancelled or skipped task (or run) was asked for."""

    http_status = 500


class NotInTask(FlowError):
    """`current_task()` was called outside a task run by the flow engine."""
