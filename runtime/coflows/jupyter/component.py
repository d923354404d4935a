"""Wire JupyterLab into a runtime when `"Jupyter": true`: a supervised child started with the
server and stopped with it, the M relay (SQLite), the `coflows` kernelspec and the `/lab` routes.
Without the flag, or without JupyterLab installed (the `jupyter` extra), nothing is added
(`/lab` is then 404) and the server says why at start.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

if TYPE_CHECKING:
    from coflows.runtime import Runtime

log = logging.getLogger("coflows.jupyter")


def available() -> bool:
    try:
        import ipykernel  # noqa: F401
        import jupyterlab  # noqa: F401
    except ImportError:
        return False
    return True


def notebook_dir(runtime: Runtime) -> Path:
    """`notebooks/` in the (first) workspace folder, made 0700 when missing."""
    folder = runtime.config.workflow_paths[0].parent.resolve() / "notebooks"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def install(runtime: Runtime) -> list[BaseRoute]:
    if not runtime.config.jupyter:
        return []
    if not available():
        log.warning("\"Jupyter\": true but JupyterLab is not installed (pip install 'coflows[jupyter]'); /lab is off")
        return []
    from coflows.jupyter.identity import new_secret
    from coflows.jupyter.process import CONFIG_ENV, RELAY_ENV, JupyterProcess, write_kernelspec
    from coflows.jupyter.proxy import LabProxy

    config = runtime.config
    state = config.state_dir().resolve() / "jupyter"
    state.mkdir(mode=0o700, parents=True, exist_ok=True)
    secret = new_secret()
    env: dict[str, str] = {}
    if Path(config.source).is_file():
        env[CONFIG_ENV] = str(Path(config.source).resolve())
    relay = None
    if runtime.database is not None:
        from coflows.jupyter.relay import RelayServer
        from coflows.m.store import MStore

        store = MStore.for_database(runtime.database)
        if not store.is_postgres:
            relay = RelayServer(secret, store.receive)
            env[RELAY_ENV] = relay.address
    names = [wf.name for wf in runtime.registry.workflows()]
    write_kernelspec(state / "data", f"coflows ({names[0]})" if names else "coflows", {})
    jupyter = JupyterProcess(state, notebook_dir(runtime), Path.cwd(), env, secret)
    proxy = LabProxy(jupyter, secret, config.server.max_body_bytes)

    def close() -> None:
        jupyter.stop()
        if relay is not None:
            relay.close()

    runtime.startups.append(jupyter.start)
    runtime.on_close(close)
    runtime.jupyter = jupyter  # type: ignore[attr-defined]
    return proxy.routes()
