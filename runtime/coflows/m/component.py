"""Wire M into a runtime: its store and change feed, the REST routes and the `/live` websocket.

`install(runtime)` is idempotent (a second call returns no routes) and registers:
a startup that binds the websocket hub to the server's event loop and, on PostgreSQL,
starts listening for other processes' changes; a closer that stops both.
"""

from __future__ import annotations

import logging
import weakref
from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

if TYPE_CHECKING:
    from coflows.runtime import Runtime

log = logging.getLogger("coflows.m")

_installed: weakref.WeakKeyDictionary[Runtime, object] = weakref.WeakKeyDictionary()


def install(runtime: Runtime) -> list[BaseRoute]:
    from coflows.m.store import MStore
    from coflows.server.live import LiveHub, live_routes
    from coflows.server.m_routes import MRoutes

    if runtime in _installed:
        return []
    hub = LiveHub(runtime)
    _installed[runtime] = hub
    routes = MRoutes(runtime).routes() + live_routes(hub)
    if runtime.database is None:
        log.warning("no database: M routes answer 503")
        return routes
    store = MStore.for_database(runtime.database)  # migrates the M tables if needed
    m_config = getattr(runtime.config, "m", None)
    if m_config is not None:  # the change journal's bounds (M.JournalHours, M.JournalRows)
        store.journal_hours, store.journal_rows = m_config.journal_hours, m_config.journal_rows

    def start() -> None:
        hub.bind()
        store.start_listener()

    def close() -> None:
        hub.close()
        store.close()

    runtime.startups.append(start)
    runtime.on_close(close)
    return routes
