"""The server's components beyond queries (flows, M, agents), installed on a runtime.

Each component registers what it starts and stops on the runtime and returns
its routes, so the server does not need to know their insides.
"""

from __future__ import annotations

import os

from starlette.routing import BaseRoute

from coflows.runtime import Runtime
from coflows.supervisor import FLOW_OWNER_ENV


def install_flows(runtime: Runtime) -> list[BaseRoute]:
    from coflows.flows import FlowEngine, set_default_engine
    from coflows.flows.registry_resolver import RegistryResolver
    from coflows.server.flow_routes import flow_routes
    from coflows.server.ui import ui_routes

    if runtime.database is None:
        return []
    from coflows.flows.executor import executor_from_config

    resolver = RegistryResolver(runtime.registry)
    # under the supervisor, one owner ID for every server process it starts: a restarted server
    # takes back its runs at once instead of waiting for their leases to expire
    engine = FlowEngine(runtime.database, resolver, max_workers=runtime.config.executor.max_workers,
                        owner_id=os.environ.get(FLOW_OWNER_ENV) or None, executor=executor_from_config(runtime.config, runtime.calls),
                        lease_seconds=runtime.config.executor.lease_seconds)
    runtime.flows = engine

    def start() -> None:
        engine.start()
        set_default_engine(engine)

    def stop() -> None:
        set_default_engine(None)
        engine.shutdown(grace=10.0)

    runtime.startups.append(start)
    runtime.on_close(stop)
    return flow_routes(runtime, engine, resolver) + ui_routes(runtime, engine, resolver)


def install_all(runtime: Runtime) -> list[BaseRoute]:
    """Auth, then flows, then M, then agents, then Jupyter, then apps, then the workspace watcher (closers run in
    reverse: the watcher stops first, then apps, then agents)."""
    from coflows.agents.component import install as install_agents
    from coflows.apps.component import install as install_apps
    from coflows.auth.component import install as install_auth
    from coflows.jupyter.component import install as install_jupyter
    from coflows.m.component import install as install_m
    from coflows.server.cloud_routes import install as install_cloud
    from coflows.server.logs import install as install_logs
    from coflows.workspace.watch import install as install_watcher

    routes: list[BaseRoute] = []
    routes += install_auth(runtime)  # first: the others' routes ask it who is calling
    routes += install_flows(runtime)
    routes += install_m(runtime)
    routes += install_agents(runtime)
    routes += install_logs(runtime)
    routes += install_jupyter(runtime)  # "Jupyter": true: JupyterLab at /lab (admins)
    routes += install_cloud(runtime)
    routes += install_apps(runtime)  # /dash/{wid}/{qid}/…: queries with run(port, path) (coflows/apps)
    install_watcher(runtime)
    return routes
