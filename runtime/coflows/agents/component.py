"""Wire agents into a runtime: `install(runtime)` registers a startup that builds and starts every
agent, a closer that stops them, and returns the `/flow/agent...` routes. Idempotent.
The manager is `runtime.agents` (None without the component).

Install M first (`coflows.m.component.install`), so at shutdown agents stop before M does.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

if TYPE_CHECKING:
    from coflows.agents.manager import AgentManager
    from coflows.runtime import Runtime

_managers: weakref.WeakKeyDictionary[Runtime, AgentManager] = weakref.WeakKeyDictionary()


def manager_of(runtime: Runtime) -> AgentManager | None:
    return _managers.get(runtime)


def install(runtime: Runtime, *, keep_runs: int = 200) -> list[BaseRoute]:
    from coflows.agents.manager import AgentManager
    from coflows.agents.routes import AgentRoutes

    if runtime in _managers:
        return []
    manager = _managers[runtime] = AgentManager(runtime, keep_runs=keep_runs)
    runtime.agents = manager  # the workspace watcher calls `runtime.agents.sync(wf)` after an edit
    runtime.startups.append(manager.start_all)
    runtime.on_close(manager.close)
    return AgentRoutes(manager).routes()
