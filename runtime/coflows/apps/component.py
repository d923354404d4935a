"""Wire apps into a runtime: the `/dash/…` route, the manager stopped (and its apps shut down) with
the server. Always on: a workspace without apps costs nothing (no thread until the first app starts).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

if TYPE_CHECKING:
    from coflows.runtime import Runtime


def install(runtime: Runtime) -> list[BaseRoute]:
    from coflows.apps.manager import AppManager
    from coflows.apps.proxy import AppProxy

    manager = AppManager(runtime)
    proxy = AppProxy(runtime, manager)

    runtime.on_close(manager.close)  # the proxy's HTTP client goes with the process, as /lab's does
    runtime.apps = manager  # type: ignore[attr-defined]
    return proxy.routes()
