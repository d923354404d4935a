"""The worker side of the Dask executor: the workspace loaded once per worker, and a task run there.

`CoflowsWorkerPlugin` is registered by the server's `DaskExecutor` on every
worker of the cluster (and on workers that join later, e.g. one the nanny
restarted). Its `setup` opens the same `coflows_config.json` workspaces as the
server, with the same engines, so a task in C#, Java or JavaScript runs on a
worker exactly as it would in the server. Workers must see the workspace at the
same path as the server (a shared or synced folder, or the same container image)
and have coflows installed.

`run_remote` is what Dask calls per task. It never raises for a failure of user
code: it returns a `RemoteFailure`, because user exceptions from other languages
do not pickle, and because Dask treats a raised exception as final whereas our
retry policy should decide.
"""

from __future__ import annotations

import logging
import os
import threading
import traceback
from dataclasses import dataclass
from typing import Any

from distributed import WorkerPlugin

from coflows.config import Config
from coflows.errors import UserCodeError
from coflows.flows.context import TaskContext
from coflows.flows.task_call import TaskCall, TaskResult, run_call

log = logging.getLogger("coflows.flows.dask")

_lock = threading.Lock()
_runtime: Any = None  # the worker's coflows Runtime, loaded by the plugin
_resolver: Any = None


@dataclass
class RemoteFailure:
    """A task that raised on a worker, as text (the exception itself may not pickle)."""

    type_name: str
    message: str
    stack: str
    language: str
    worker_pid: int

    def to_error(self) -> UserCodeError:
        return UserCodeError(self.type_name, self.message, self.stack, self.language)


class CoflowsWorkerPlugin(WorkerPlugin):
    """Load the server's workspaces (engines, packages, sources) in each worker process, once."""

    name = "coflows"

    def __init__(self, config: Config) -> None:
        self.config = config

    def setup(self, worker: Any = None) -> None:
        load_runtime(self.config)

    def teardown(self, worker: Any = None) -> None:
        global _runtime, _resolver
        with _lock:
            runtime, _runtime, _resolver = _runtime, None, None
        if runtime is not None:
            try:
                runtime.close()
            except Exception:  # noqa: BLE001 - the worker is going away anyway
                log.exception("coflows: closing the worker runtime failed")


def load_runtime(config: Config) -> Any:
    """The worker's runtime, loaded on first use (idempotent, thread-safe)."""
    global _runtime, _resolver
    with _lock:
        if _runtime is None:
            from coflows.flows.registry_resolver import RegistryResolver
            from coflows.runtime import Runtime

            runtime = Runtime(config, with_database=False)
            problems = runtime.load()
            for wid, items in problems.items():
                for p in items:
                    log.warning("coflows worker %s: workflow %s: %s", os.getpid(), wid, p)
            _runtime, _resolver = runtime, RegistryResolver(runtime.registry)
        return _runtime


def run_remote(call: TaskCall) -> TaskResult | RemoteFailure:
    """Run one attempt on this worker; the engine gets the result with any DAG changes it asked for."""
    if _resolver is None:
        return RemoteFailure("CoflowsError", f"the coflows worker plugin is not loaded on worker {os.getpid()}",
                             "", "python", os.getpid())
    ctx = TaskContext(None, call.run_id, call.node, call.attempt, call.ref, call.workflow, call.inputs,
                      call.aliases, resolver=_resolver, principal=call.principal)
    try:
        result = run_call(call, _resolver, ctx)
        result.value = None  # the engine decodes `text`; do not pickle the output twice
        return result
    except UserCodeError as exc:
        return RemoteFailure(exc.type_name, exc.message, exc.stack, exc.language, os.getpid())
    except Exception as exc:  # noqa: BLE001 - user code may raise anything; it goes home as text
        return RemoteFailure(type(exc).__name__, str(exc), traceback.format_exc(), "python", os.getpid())
