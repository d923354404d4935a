"""The Runtime: one object that owns the engines, the registry, the store and the workflows.

It is passed explicitly to the server, the CLI, agents and flows. The only
process-wide state is the engines themselves (a process has one CLR, one JVM)
and `coflows.call`'s pointer to the runtime that user code runs in.
"""

from __future__ import annotations

import logging
from pathlib import Path
from collections.abc import Callable
from typing import Any

from coflows.calls import Calls
from coflows.config import Config
from coflows.engines import EngineManager
from coflows.errors import CoflowsError
from coflows.registry import Registry
from coflows.store import Database, database_url
from coflows.workflow import Workflow, open_workflow

log = logging.getLogger("coflows.runtime")

_current: Runtime | None = None


def current_runtime() -> Runtime:
    if _current is None:
        raise CoflowsError("no coflows runtime is running in this process")
    return _current


class Runtime:
    def __init__(self, config: Config, *, with_database: bool = True) -> None:
        self.config = config
        self.engines = EngineManager(self)
        self.registry = Registry()
        self.call = self.registry.call  # `Runtime.call` without a second frame (calls from code)
        # Every call of user code (HTTP, agents, flow tasks) runs here: under a deadline, within its
        # workflow's cap, on threads that are written off and replaced when a call cannot be stopped.
        server = config.server
        self.calls = Calls(server.threads, server.call_timeout, server.workflow_concurrency,
                           engines=lambda: self.engines.started().values())
        self.database: Database | None = None
        if with_database:
            url = database_url(config.database.type, config.database.connection, config.base_dir)
            self.database = Database(url, where=f"{config.source}: Database.Connection")
        self.problems: dict[str, list[str]] = {}
        self.package_reports: dict[str, Any] = {}
        self.package_progress: Any = None  # a coflows.packages.Progress (the CLI sets rich bars)
        self._closers: list[Callable[[], None]] = []
        # Components (agents, M, flows, users) hook in here rather than the server knowing them.
        self.startups: list[Callable[[], None]] = []
        self.users: Any = None  # the UserStore (coflows.auth), when the runtime has a database
        self.identities: Any = None  # cached key/session/id → Principal lookups (coflows.auth.identity)
        self.flows: Any = None  # the FlowEngine, when the server runs one (components.py)
        self.agents: Any = None  # the AgentManager, when the server runs agents (agents/component.py)
        self.watcher: Any = None  # the WorkspaceWatcher, when the server runs one (components.py)
        # Set by the server before it loads: inotify says which sources may have changed, so calls need
        # not stat them (workspace/changes.py); without it every call checks its sources' stamps.
        self.changes: Any = None
        # Set when the server must stop taking calls (memory limit, shutdown): new calls get 503.
        self.draining: bool = False

    # -- workflows ----------------------------------------------------------------------------
    def load(self, opener: Callable[[Path, EngineManager], Workflow] = open_workflow) -> dict[str, list[str]]:
        """Open every configured workflow and load its sources; return diagnostics per workflow.

        `opener` makes the Workflow objects (`coflows.local.open_on_demand`: queries load on first use)."""
        global _current
        _current = self
        workflows: list[Workflow] = []
        for path in self.config.workflow_paths:
            wf = opener(path, self.engines)
            workflows.append(wf)
        for wf in workflows:
            wf.collect_sources()
            self.engines.plan(wf.languages())
        for wf in workflows:
            self.problems[wf.id] = self.load_workflow(wf)
        return self.problems

    def load_workflow(self, wf: Workflow) -> list[str]:
        problems = self.install_packages(wf)
        wf.changes = self.changes
        self.registry.add(wf)  # before loading: a query's top-level code may call its own workflow
        problems += wf.load()
        for p in problems:
            log.warning("%s: %s", wf.name, p)
        return problems

    def install_packages(self, wf: Workflow) -> list[str]:
        """Install the workflow's Pips, Jars and NuGets (a no-op when their locks are current).

        Errors name the package.json entry; the previous good set stays in use.
        """
        from coflows.workspace.packages import install_packages

        if not self.config.packages.install_on_start and not self.package_progress:
            return []
        report = install_packages(wf.ctx, wf.manifest, self.config.packages, self.package_progress)
        self.package_reports[wf.id] = report
        return list(report.errors)

    def call(self, ref: str, *args: Any, workflow: str | None = None, **kwargs: Any) -> Any:
        return self.registry.call(ref, *args, workflow=workflow, **kwargs)

    def on_close(self, fn: Callable[[], None]) -> None:
        self._closers.append(fn)

    def close(self) -> None:
        global _current
        for fn in reversed(self._closers):
            try:
                fn()
            except Exception:  # noqa: BLE001
                log.exception("error while closing")
        self.calls.close()
        if self.changes is not None:
            self.changes.close()
        if self.database is not None:
            self.database.dispose()
        if _current is self:
            _current = None


def call(ref: str, *args: Any, workflow: str | None = None, **kwargs: Any) -> Any:
    """Call any registered Function from user code: `coflows.call("Calc.py/Add", 1, 2)`."""
    runtime = _current
    if runtime is None:
        raise CoflowsError("no coflows runtime is running in this process")
    return runtime.registry.call(ref, *args, workflow=workflow, **kwargs)


def workspace_root() -> Path:
    return current_runtime().registry.default_workflow().root
