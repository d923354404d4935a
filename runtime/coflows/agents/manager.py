"""All agents of a runtime: built from the workflows' agent sources, started at server start.

An agent that cannot be built (compile error, factory error, invalid schedule, duplicate ID)
is kept in state `error` with the reason; the others start and the server keeps running.
Starting an agent in `error` builds it again from its source, so a fixed file can be started
without a restart.

Live edits (`sync`, called by the workspace watcher after package.json or an agent file changes;
`start` after an edit): an agent is rebuilt when its file, its manifest entry (Content, Exe) or
its workflow's loaded Base changed since it was built. The new definition is built before the old
agent is touched; if it fails, the old one keeps running and the error (file:line) is kept on it
(`Error` and `"Stale": true` in `/flow/agents`), logged once per edit. If it builds, the old
instance stops (no new firings; a hook still running ends or is stopped under its time limit,
waited for up to `reload_grace` seconds) and the new one starts with its new schedule and topic,
unless the user had stopped the old one.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
import uuid
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coflows.agents.check import build_definition
from coflows.agents.definition import AgentDefinition, AgentError
from coflows.agents.lease import LeaseKeeper, LeaseTable
from coflows.agents.runner import NODE, AgentRunner, DaemonPool, RunRecord, RunRecorder, install_capture
from coflows.agents.schedule import parse_schedule
from coflows.engines import SourceFile, language_of
from coflows.errors import CoflowsError, NotFoundError
from coflows.m.store import MStore

if TYPE_CHECKING:
    from coflows.runtime import Runtime
    from coflows.workflow import Workflow

log = logging.getLogger("coflows.agents")

Stamp = tuple


def source_stamp(wf: Workflow, src: SourceFile) -> Stamp:
    """What an agent was built from: its file (path, mtime, size), its factory name and the
    workflow's loaded Base; a different stamp means the agent must be rebuilt."""
    try:
        st = os.stat(src.path)
        file: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
    except OSError:
        file = None
    base = tuple(sorted((str(p), m) for p, m in getattr(wf, "_base_mtimes", {}).items()))
    return (str(src.path), src.exe or "pkg", file, base, id(wf))


class AgentManager:
    def __init__(self, runtime: Runtime, *, keep_runs: int = 200, workers: int | None = None) -> None:
        from apscheduler.executors.pool import ThreadPoolExecutor as SchedulerPool
        from apscheduler.schedulers.background import BackgroundScheduler

        self.runtime = runtime
        self.runners: dict[str, AgentRunner] = {}
        self._sources: dict[str, tuple[Workflow, SourceFile]] = {}
        self._stamps: dict[str, Stamp] = {}  # agent ID -> what its runner was built from
        self._failed: dict[str, Stamp] = {}  # agent ID -> an edit that did not build (logged once)
        self._lock = threading.RLock()  # sync, start, stop: one change of the agent set at a time
        self.reload_grace = 2.0  # seconds a reload waits for the old instance's running hooks
        self.recorder = RunRecorder(runtime.database, keep_runs)
        # The scheduler's own threads only hand firings to `pool`, so a few suffice.
        self.scheduler = BackgroundScheduler(timezone=dt.timezone.utc, executors={"default": SchedulerPool(4)})
        self._workers = workers
        self.pool: DaemonPool | None = None
        self._started = False
        self.keeper: LeaseKeeper | None = None  # replicas on PostgreSQL: agents run where their lease is
        self.owner_id = f"{NODE}/{uuid.uuid4().hex[:8]}"

    # -- building -----------------------------------------------------------------------------
    def _store(self) -> MStore | None:
        db = self.runtime.database
        return MStore.for_database(db) if db is not None else None

    def build_definition(self, wf: Workflow, src: SourceFile) -> AgentDefinition:
        return build_definition(wf, src)  # the same as `coflows build local` checks (agents/check.py)

    def _definition(self, wf: Workflow, src: SourceFile) -> tuple[AgentDefinition, Any, str | None]:
        """(definition, schedule, error): on error a placeholder definition named after the file."""
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
            if definition is not None:
                self._restore(wf, src)
            else:
                stem = Path(src.name).stem
                definition = AgentDefinition(id=f"{wf.id}-{stem}", name=stem, workflow_id=wf.id, source=rel,
                                             language=language_of(src.path) or Path(src.name).suffix.lstrip("."))
        return definition, schedule, error

    @staticmethod
    def _restore(wf: Workflow, src: SourceFile) -> None:
        """A version that loaded but is refused: engines that keep one live version per file (JS) go back."""
        language = language_of(src.path)
        engine = wf.engines.running(language) if language else None
        restore = getattr(engine, "restore_agent", None)
        if restore is not None:
            restore(wf.ctx, src)

    def _build(self, wf: Workflow, src: SourceFile) -> AgentRunner:
        return self._runner(wf, *self._definition(wf, src))

    def _runner(self, wf: Workflow, definition: AgentDefinition, schedule: Any, error: str | None) -> AgentRunner:
        assert self.pool is not None
        runner = AgentRunner(definition, workflow_name=wf.name, schedule=schedule, pool=self.pool,
                             scheduler=self.scheduler, recorder=self.recorder, store_of=self._store,
                             calls=getattr(self.runtime, "calls", None),
                             keeper=None if per_replica(wf, definition) else self.keeper)
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
            self._register(wf, src, source_stamp(wf, src), *self._definition(wf, src))

    def _duplicate(self, d: AgentDefinition) -> str:
        return f"agent '{d.id}': duplicate agent ID (also defined by {self.runners[d.id].definition.source})"

    def _register(self, wf: Workflow, src: SourceFile, stamp: Stamp, definition: AgentDefinition, schedule: Any,
                  error: str | None) -> AgentRunner:
        """A new runner (not started) for a manifest entry that has none; a taken ID is an error."""
        if definition.id in self.runners:
            d = definition
            definition = AgentDefinition(id=f"{d.id}@{d.source}", name=d.name, workflow_id=wf.id, source=d.source,
                                         language=d.language)
            schedule, error = None, self._duplicate(d)
        runner = self._runner(wf, definition, schedule, error)
        self.runners[runner.id] = runner
        self._sources[runner.id] = (wf, src)
        self._stamps[runner.id] = stamp
        return runner

    # -- lifecycle ----------------------------------------------------------------------------
    def start_all(self) -> None:
        """Server start: build and start every agent (errors are recorded per agent)."""
        if self._started:
            return
        self._started = True
        install_capture()
        self._start_keeper()
        self.load_all()
        self.scheduler.start()
        for runner in self.runners.values():
            if runner.state != "error":
                self._start_new(runner)

    def _start_keeper(self) -> None:
        """On PostgreSQL (replicas may share the database) agents run under leases; on SQLite or
        without a database this server owns every agent."""
        db = self.runtime.database
        if db is None or db.engine.dialect.name != "postgresql":
            return
        agents_config = getattr(self.runtime.config, "agents", None)
        seconds = float(getattr(agents_config, "lease_seconds", 10.0))
        self.keeper = LeaseKeeper(LeaseTable(db.engine, self.owner_id, seconds), self._gain, self._lose)
        self.keeper.start()

    def _gain(self, agent_id: str, fence: int) -> None:
        runner = self.runners.get(agent_id)
        if runner is None or runner.keeper is None or not runner.active:
            assert self.keeper is not None
            self.keeper.unwant(agent_id)
            return
        runner.gain(fence)

    def _lose(self, agent_id: str) -> None:
        runner = self.runners.get(agent_id)
        if runner is not None:
            runner.lose()

    def get(self, agent_id: str) -> AgentRunner:
        runner = self.runners.get(agent_id)
        if runner is None:
            raise NotFoundError(f"unknown agent '{agent_id}'")
        return runner

    def workflow_of(self, agent_id: str) -> Workflow:
        return self._sources[agent_id][0] if agent_id in self._sources else self.runtime.registry.workflow(
            self.get(agent_id).definition.workflow_id)

    def start(self, agent_id: str) -> AgentRunner:
        """Start the agent's current code: an agent in error, or whose source changed since it was
        built, is rebuilt first (AgentError, 409, if it does not build; nothing is started then)."""
        with self._lock:
            runner = self.get(agent_id)
            if agent_id in self._sources:
                wf, src = self._sources[agent_id]
                if runner.state == "error" or source_stamp(wf, src) != self._stamps.get(agent_id):
                    runner, error = self._reload(agent_id, wf, src, run=True, force=True)
                    if error is not None:
                        raise AgentError(error)
                    return runner
            runner.start()
            return runner

    def stop(self, agent_id: str) -> AgentRunner:
        with self._lock:
            runner = self.get(agent_id)
            runner.stop()
            return runner

    def toggle(self, agent_id: str) -> AgentRunner:
        with self._lock:
            runner = self.get(agent_id)
            return self.stop(agent_id) if runner.active else self.start(agent_id)

    # -- live edits ---------------------------------------------------------------------------
    def sync(self, wf: Workflow) -> list[str]:
        """Bring `wf`'s agents in line with its current manifest (`wf.agent_sources`) and files.

        New entries are built and started, removed ones stopped and dropped, edited ones rebuilt
        (see the module's docstring). Returns the workflow's agent errors after the sync (an agent
        in error, or an edit that did not build while the previous version runs on: file:line:
        message), empty when all is well; each is logged here once per edit. Before the server
        started its agents: a no-op.
        """
        with self._lock:
            if not self._started:
                return []
            current = {src.name: src for src in wf.agent_sources}
            mine = {src.name: agent_id for agent_id, (owner, src) in list(self._sources.items()) if owner.id == wf.id}
            for name, agent_id in mine.items():
                if name not in current:
                    self._remove(agent_id)
            for name, src in current.items():
                agent_id = mine.get(name)
                if agent_id is None:
                    runner = self._register(wf, src, source_stamp(wf, src), *self._definition(wf, src))
                    if runner.state != "error":
                        self._start_new(runner)
                    log.info("agent %s added (%s)", runner.id, runner.definition.source)
                else:
                    self._reload(agent_id, wf, src, run=None)
            return self.errors(wf)

    def errors(self, wf: Workflow) -> list[str]:
        """The current errors of `wf`'s agents (not started, or an edit that did not build)."""
        runners = [self.runners[a] for a, (owner, _) in list(self._sources.items()) if owner.id == wf.id]
        errors = [(r.id, e) for r in runners if (e := r.error if r.state == "error" else r.stale)]
        return [e if e.startswith(f"agent '{i}'") else f"agent '{i}': {e}" for i, e in errors]

    def _start_new(self, runner: AgentRunner) -> None:
        try:
            runner.start(initial=True)
        except CoflowsError as e:
            runner.state, runner.error = "error", str(e)
            log.error("agent %s not started: %s", runner.id, e)

    def _settle(self, runner: AgentRunner) -> None:
        """After `stop`: give hooks still running up to `reload_grace` s to end (the call pool stops
        them at their time limit in any case), so the new instance rarely overlaps the old one."""
        deadline = time.monotonic() + self.reload_grace
        while runner.running_runs() and time.monotonic() < deadline:
            time.sleep(0.02)

    def _forget(self, agent_id: str, keep_runner: bool = False) -> None:
        if not keep_runner:
            self.runners.pop(agent_id, None)
        wf, _ = self._sources.pop(agent_id, (None, None))
        self._stamps.pop(agent_id, None)
        self._failed.pop(agent_id, None)
        if wf is not None and wf.id in self.runtime.problems:
            note = f"agent '{agent_id}' "
            self.runtime.problems[wf.id] = [p for p in self.runtime.problems[wf.id] if not p.startswith(note)]

    def _remove(self, agent_id: str) -> None:
        runner = self.runners[agent_id]
        runner.stop()
        self._forget(agent_id)
        self._settle(runner)
        log.info("agent %s removed (%s is no longer in the manifest)", agent_id, runner.definition.source)

    def _reload(self, agent_id: str, wf: Workflow, src: SourceFile, *, run: bool | None,
                force: bool = False) -> tuple[AgentRunner, str | None]:
        """Rebuild one agent if its source changed (or `force`); `run`: start it (True), or keep
        the old instance's running/stopped state (None). Returns (the current runner, the error)."""
        old = self.runners[agent_id]
        stamp = source_stamp(wf, src)
        if not force and (stamp == self._stamps.get(agent_id) or stamp == self._failed.get(agent_id)):
            self._sources[agent_id] = (wf, src)
            return old, None
        definition, schedule, error = self._definition(wf, src)
        if error is None and definition.id != agent_id and definition.id in self.runners:
            error = self._duplicate(definition)
            self._restore(wf, src)
        if error is not None:
            if old.state == "error":  # it never ran: nothing to keep
                old.error = error
                self._stamps[agent_id] = stamp
            else:
                old.stale = error
                self._failed[agent_id] = stamp
            self._sources[agent_id] = (wf, src)
            log.error("%s: agent %s: the edit does not build: %s%s", wf.name, agent_id, error,
                      "" if old.state == "error" else " (the previous version keeps running)")
            return old, error
        keep_stopped = old.state == "stopped" if run is None else not run
        old.stop()
        self._settle(old)
        runner = self._runner(wf, definition, schedule, None)
        # the old (stopped) runner stays listed until the new one takes its place: an agent is never
        # missing from /flow/agents or from POST /flow/agent/{id} while it reloads
        self._forget(agent_id, keep_runner=runner.id == agent_id)
        self.runners[runner.id] = runner
        self._sources[runner.id] = (wf, src)
        self._stamps[runner.id] = stamp
        if not keep_stopped:
            self._start_new(runner)
        log.info("agent %s reloaded from %s%s", runner.id, definition.source,
                 "" if runner.id == agent_id else f" (was {agent_id})")
        return runner, runner.error

    def body(self, agent_id: str, data: Any, principal: Any = None) -> Future:
        runner = self.get(agent_id)
        if runner.state == "error":
            raise AgentError(f"agent '{agent_id}' is not started: {runner.error}")
        if "Body" not in runner.definition.hooks:
            raise AgentError(f"agent '{agent_id}' has no Body hook")
        return runner.body(data, principal)

    def run_now(self, agent_id: str, principal: Any = None) -> tuple[RunRecord, Future]:
        """Run the agent's Job at once as `principal` (see `AgentRunner.run_now`)."""
        return self.get(agent_id).run_now(principal)

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
        if self.keeper is not None:
            self.keeper.stop()  # releases the leases: the other replicas take over at once
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self.pool is not None:
            self.pool.shutdown()
        self.recorder.close()


def per_replica(wf: Workflow, definition: AgentDefinition) -> bool:
    """package.json `"PerReplica": true` on the agent's entry: it runs on every replica (no lease)."""
    manifest = getattr(wf, "manifest", None)
    for entry in getattr(manifest, "Agents", None) or []:
        content = str(getattr(entry, "Content", "") or "").lstrip("./")
        if content and (definition.source == content or definition.source.endswith("/" + content)):
            extra = getattr(entry, "model_extra", None) or {}
            return bool(extra.get("PerReplica", False))
    return False
