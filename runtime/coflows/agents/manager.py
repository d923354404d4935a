"""All agents of a runtime: built from the workflows' agent sources, started at server start.

An agent that cannot be built (compile error, factory error, invalid schedule, duplicate ID)
is kept in state `error` with the reason; the others start and the server keeps running.
Starting an agent in `error` builds it again from its source, so a fixed file can be started
without a restart.
"""

from __future__ import annotations

import datetime as dt
import logging
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coflows.agents.check import build_definition
from coflows.agents.definition import AgentDefinition, AgentError
from coflows.agents.runner import AgentRunner, DaemonPool, RunRecord, RunRecorder, install_capture
from coflows.agents.schedule import parse_schedule
from coflows.engines import SourceFile
from coflows.errors import CoflowsError, NotFoundError
from coflows.m.store import MStore

if TYPE_CHECKING:
    from coflows.runtime import Runtime
    from coflows.workflow import Workflow

log = logging.getLogger("coflows.agents")


class AgentManager:
    def __init__(self, runtime: Runtime, *, keep_runs: int = 200, workers: int | None = None) -> None:
        from apscheduler.executors.pool import ThreadPoolExecutor as SchedulerPool
        from apscheduler.schedulers.background import BackgroundScheduler

        self.runtime = runtime
        self.runners: dict[str, AgentRunner] = {}
        self._sources: dict[str, tuple[Workflow, SourceFile]] = {}
        self.recorder = RunRecorder(runtime.database, keep_runs)
        # The scheduler's own threads only hand firings to `pool`, so a few suffice.
        self.scheduler = BackgroundScheduler(timezone=dt.timezone.utc, executors={"default": SchedulerPool(4)})
        self._workers = workers
        self.pool: DaemonPool | None = None
        self._started = False

    # -- building -----------------------------------------------------------------------------
    def _store(self) -> MStore | None:
        db = self.runtime.database
        return MStore.for_database(db) if db is not None else None

    def build_definition(self, wf: Workflow, src: SourceFile) -> AgentDefinition:
        return build_definition(wf, src)  # the same as `coflows build local` checks (agents/check.py)

    def _build(self, wf: Workflow, src: SourceFile) -> AgentRunner:
        rel = wf.ctx.relpath(src.path)
        schedule = None
        definition: AgentDefinition | None = None
        error = None
        try:
            definition = self.build_definition(wf, src)
            if definition.schedule:
                schedule = parse_schedule(definition.schedule, owner=definition.id)
        except CoflowsError as e:
            error = str(e)
            if definition is None:
                stem = Path(src.name).stem
                definition = AgentDefinition(id=f"{wf.id}-{stem}", name=stem, workflow_id=wf.id, source=rel)
        return self._runner(wf, definition, schedule, error)

    def _runner(self, wf: Workflow, definition: AgentDefinition, schedule: Any, error: str | None) -> AgentRunner:
        assert self.pool is not None
        runner = AgentRunner(definition, workflow_name=wf.name, schedule=schedule, pool=self.pool,
                             scheduler=self.scheduler, recorder=self.recorder, store_of=self._store,
                             calls=getattr(self.runtime, "calls", None))
        if error is not None:
            runner.state, runner.error = "error", error
            log.error("agent %s not started: %s", definition.id, error)
            self.runtime.problems.setdefault(wf.id, []).append(f"agent '{definition.id}' not started: {error}")
        return runner

    def load_all(self) -> None:
        """Build every agent of every workflow (not started)."""
        sources = [(wf, src) for wf in self.runtime.registry.workflows() for src in wf.agent_sources]
        if self.pool is None:
            n = self._workers or min(64, 4 + 2 * len(sources))
            self.pool = DaemonPool(n, "coflows-agent")
        for wf, src in sources:
            runner = self._build(wf, src)
            if runner.id in self.runners:
                d = runner.definition
                error = f"agent '{d.id}': duplicate agent ID (also defined by {self.runners[d.id].definition.source})"
                runner = self._runner(wf, AgentDefinition(id=f"{d.id}@{d.source}", name=d.name, workflow_id=wf.id,
                                                          source=d.source), None, error)
            self.runners[runner.id] = runner
            self._sources[runner.id] = (wf, src)

    # -- lifecycle ----------------------------------------------------------------------------
    def start_all(self) -> None:
        """Server start: build and start every agent (errors are recorded per agent)."""
        if self._started:
            return
        self._started = True
        install_capture()
        self.load_all()
        self.scheduler.start()
        for runner in self.runners.values():
            if runner.state == "error":
                continue
            try:
                runner.start(initial=True)
            except CoflowsError as e:
                runner.state, runner.error = "error", str(e)
                log.error("agent %s not started: %s", runner.id, e)

    def get(self, agent_id: str) -> AgentRunner:
        runner = self.runners.get(agent_id)
        if runner is None:
            raise NotFoundError(f"unknown agent '{agent_id}'")
        return runner

    def workflow_of(self, agent_id: str) -> Workflow:
        return self._sources[agent_id][0] if agent_id in self._sources else self.runtime.registry.workflow(
            self.get(agent_id).definition.workflow_id)

    def start(self, agent_id: str) -> AgentRunner:
        runner = self.get(agent_id)
        if runner.state == "error" and agent_id in self._sources:
            wf, src = self._sources[agent_id]
            rebuilt = self._build(wf, src)
            if rebuilt.state == "error":
                runner.error = rebuilt.error
                raise AgentError(rebuilt.error or "agent could not be built")
            if rebuilt.id != agent_id:
                raise AgentError(f"agent '{agent_id}' now has ID '{rebuilt.id}': restart the server")
            self.runners[agent_id] = runner = rebuilt
            runner.start(initial=True)
            return runner
        runner.start()
        return runner

    def stop(self, agent_id: str) -> AgentRunner:
        runner = self.get(agent_id)
        runner.stop()
        return runner

    def toggle(self, agent_id: str) -> AgentRunner:
        runner = self.get(agent_id)
        return self.stop(agent_id) if runner.active else self.start(agent_id)

    def body(self, agent_id: str, data: Any, principal: Any = None) -> Future:
        runner = self.get(agent_id)
        if runner.state == "error":
            raise AgentError(f"agent '{agent_id}' is not started: {runner.error}")
        if "Body" not in runner.definition.hooks:
            raise AgentError(f"agent '{agent_id}' has no Body hook")
        return runner.body(data, principal)

    def runs(self, agent_id: str, limit: int = 50) -> list[RunRecord]:
        """Running runs first, then the newest finished ones."""
        runner = self.get(agent_id)
        running = runner.running_runs()
        finished = self.recorder.recent(agent_id, limit)
        done = {(r.hook, r.started, r.node) for r in finished}  # finished between the two reads
        return [r for r in running if (r.hook, r.started, r.node) not in done] + finished

    def close(self) -> None:
        for runner in self.runners.values():
            try:
                runner.stop()
            except Exception:  # noqa: BLE001
                log.exception("stopping agent %s", runner.id)
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self.pool is not None:
            self.pool.shutdown()
        self.recorder.close()

