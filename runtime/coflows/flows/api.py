"""The process-wide default engine, for user code: `coflows.flows.submit(...)`, `wait`, `result`.

The runtime creates its FlowEngine and calls `set_default_engine(engine)`;
queries and agents can then start flows without holding the engine.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from coflows.flows.errors import FlowStateError

if TYPE_CHECKING:
    from coflows.flows.engine import FlowEngine
    from coflows.flows.views import RunView

_default: FlowEngine | None = None
_lock = threading.Lock()


def set_default_engine(engine: FlowEngine | None) -> None:
    """Make `engine` the one the module-level functions use (None to clear)."""
    global _default
    with _lock:
        _default = engine


def get_default_engine() -> FlowEngine:
    engine = _default
    if engine is None:
        raise FlowStateError("no flow engine is running in this process (the runtime sets one at start-up)")
    return engine


def submit(spec: Any, inputs: Mapping[str, Any] | None = None, *, workflow: str | None = None,
           name: str | None = None, aliases: Mapping[str, Any] | None = None) -> str:
    """Submit a flow to the default engine; returns the run id."""
    return get_default_engine().submit(spec, inputs=inputs, workflow=workflow, name=name, aliases=aliases)


def wait(run_id: str, timeout: float | None = None) -> RunView:
    """Wait for a run of the default engine to end (or `timeout`); returns its view."""
    return get_default_engine().wait(run_id, timeout)


def result(run_id: str, node: str | None = None, timeout: float | None = None) -> Any:
    """Wait for the run (up to `timeout`, None = no limit), then return the output of `node` or the run."""
    engine = get_default_engine()
    engine.wait(run_id, timeout)
    return engine.result(run_id, node)


def get(run_id: str) -> RunView:
    return get_default_engine().get(run_id)
