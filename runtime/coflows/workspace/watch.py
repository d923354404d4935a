"""The workspace watcher: files and package.json edited on a running server take effect.

One thread per server runs `watchfiles` over every workspace folder (debounced, off the
event loop). After a change it rereads package.json, adds new files of `Base/`, `Agents/`,
`Queries/`, `Files/` and `Bins/` to it as `coflows build local` does, and brings the
workflow in line (`Workflow.sync`): new queries answer, removed ones answer 404, agents are
synced. Edits to Pips, Jars, NuGets or Bins install on another thread, then Base and every
query reload. Whatever fails (invalid JSON, a failed install) is logged and listed in the
workflow's `problems` (`GET /flow/workflows`) while the previous good state keeps serving.

Edits to an existing query or Base file need none of this: the next call reloads them.
"""

from __future__ import annotations

import importlib
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coflows.errors import ManifestError
from coflows.workspace.manifest import Manifest, check_manifest, load_manifest, save_manifest
from coflows.workspace.scan import SKIPPED_NAMES, scan_workspace, skipped_file

if TYPE_CHECKING:
    from coflows.runtime import Runtime
    from coflows.workflow import Query, Workflow

log = logging.getLogger("coflows.watch")
logging.getLogger("watchfiles").setLevel(logging.WARNING)  # its "N changes detected" per save; ours say what

WATCHED_FOLDERS = ("Base", "Agents", "Queries", "Files", "Bins")
INSTALLED_FOLDERS = ("pip", "jars", "nugets")
DEBOUNCE_MS = 200  # watchfiles groups the events of one save (editors write, rename, chmod)
UNLOAD_GRACE_S = 5.0  # beyond the call time limit: a removed query's calls in flight finish first


def _packages(manifest: Manifest) -> list[Any]:
    """What a package install depends on, comparable between two manifests."""
    return [[e.model_dump(mode="json") for e in items]
            for items in (manifest.Pips, manifest.Jars, manifest.NuGets, manifest.Bins)]


class LogProgress:
    """Install progress as log lines: one per package (or phase) when it is done."""

    def __init__(self, workflow: str) -> None:
        self.workflow = workflow

    def start(self, item: str, total: int | None = None) -> None:
        pass

    def advance(self, item: str, n: int) -> None:
        pass

    def done(self, item: str, status: str) -> None:
        log.info("%s: packages: %s: %s", self.workflow, item, status)


class WorkspaceWatcher:
    """Watches the runtime's workspaces and applies what changes on disk."""

    def __init__(self, runtime: Runtime, debounce_ms: int = DEBOUNCE_MS) -> None:
        self.runtime = runtime
        self.debounce_ms = debounce_ms
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._install_lock = threading.Lock()
        self._installing: dict[str, threading.Thread] = {}
        self._install_again: set[str] = set()
        self._package_errors: dict[str, list[str]] = {}
        self._manifest_errors: dict[str, list[str]] = {}
        self._agent_errors: dict[str, list[str]] = {}
        self._sync_errors: dict[str, list[str]] = {}
        self._roots: list[Path] = []

    # -- the thread ---------------------------------------------------------------------------
    def start(self) -> None:
        self._publish_start_errors()
        self._roots = [wf.root for wf in self.runtime.registry.workflows()]
        if not self._roots or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="coflows-watch", daemon=True)
        self._thread.start()

    def _publish_start_errors(self) -> None:
        """In `problems` from the start: what the install said (a NuGet no feed has) and agents that did not
        build (an F# agent); both were only logged before (the agents' also in /flow/agents)."""
        from coflows.agents.component import manager_of

        agent_errors = getattr(manager_of(self.runtime), "errors", None)
        for wf in self.runtime.registry.workflows():
            report = self.runtime.package_reports.get(wf.id)
            seeded = False
            if report is not None and report.errors and wf.id not in self._package_errors:
                self._package_errors[wf.id] = list(report.errors)
                wf.packages_state = "failed"
                seeded = True
            if agent_errors is not None and wf.id not in self._agent_errors and (errors := agent_errors(wf)):
                self._agent_errors[wf.id] = list(errors)
                seeded = True
            if seeded:
                self._publish(wf)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        import watchfiles

        log.info("watching %s for changes", ", ".join(str(r) for r in self._roots))
        try:
            for changes in watchfiles.watch(*self._roots, watch_filter=self.relevant, debounce=self.debounce_ms,
                                            step=50, stop_event=self._stop, raise_interrupt=False,
                                            ignore_permission_denied=True):
                try:
                    self.apply({Path(p) for _, p in changes})
                except Exception:  # noqa: BLE001 - the watcher outlives any one bad change
                    log.exception("applying workspace changes")
        except Exception:  # noqa: BLE001
            log.exception("the workspace watcher stopped; restart the server to apply new files")

    def relevant(self, change: Any, path: str) -> bool:
        """package.json and files under the folders a scan reads (or listed in the manifest)."""
        p = Path(path)
        if skipped_file(p.name):
            return False
        for wf in self.runtime.registry.workflows():
            try:
                rel = p.relative_to(wf.root)
            except ValueError:
                continue
            if rel.as_posix() == wf.manifest_path.name:
                return True
            if rel.parts and rel.parts[0] in INSTALLED_FOLDERS:
                return False  # an install writes thousands of files there; it reloads by itself
            if any(part in SKIPPED_NAMES or part.startswith(".") for part in rel.parts):
                return False
            if rel.parts and rel.parts[0] in WATCHED_FOLDERS:
                return True
            return rel.as_posix() in _listed(wf.manifest)
        return False

    # -- applying changes -----------------------------------------------------------------------
    def apply(self, paths: set[Path]) -> None:
        for wf in self.runtime.registry.workflows():
            mine = {p for p in paths if p == wf.root or wf.root in p.parents}
            if mine:
                self.reload(wf, mine)

    def reload(self, wf: Workflow, paths: set[Path]) -> None:
        """Reread package.json and the folders, then bring `wf` in line (see the module docstring)."""
        try:
            manifest = load_manifest(wf.manifest_path)
            if manifest.ID != wf.id:
                raise ManifestError(f"{wf.manifest_path}: ID: changed from '{wf.id}' to '{manifest.ID or ''}'; "
                                    "restart the server to serve the workflow under its new ID")
            scan = scan_workspace(manifest, wf.root)
            if scan.added:
                check_manifest(manifest, str(wf.manifest_path))
                save_manifest(wf.manifest_path, manifest)  # as `coflows build local` would
                log.info("%s: added to package.json: %s", wf.name, ", ".join(scan.added))
        except ManifestError as e:
            self._manifest_errors[wf.id] = [str(e)]
            self._publish(wf)
            log.error("%s: package.json not applied, the previous one keeps serving: %s", wf.name, e)
            return
        self._manifest_errors.pop(wf.id, None)
        packages_changed = _packages(manifest) != _packages(wf.manifest)
        agent_files = {s.path for s in wf.agent_sources}
        result = wf.sync(manifest)
        if result.added or result.removed:
            self.runtime.registry.changed(wf)
            log.info("%s: queries added: %s; removed: %s", wf.name, ", ".join(result.added) or "none",
                     ", ".join(result.removed) or "none")
        self._unload_later(wf, result.removed_queries)
        agent_files |= {s.path for s in wf.agent_sources}
        if result.agents_changed or result.base_reloaded or paths & agent_files:
            self.sync_agents(wf)
        self._publish(wf, result.problems)
        if packages_changed:
            self.install(wf)

    def _publish(self, wf: Workflow, problems: list[str] | None = None) -> None:
        """`wf.problems`: package.json's, the last install's, the last sync's (missing files, Base), the agents'."""
        if problems is not None:
            self._sync_errors[wf.id] = problems
        wf.problems = (self._manifest_errors.get(wf.id, []) + self._package_errors.get(wf.id, [])
                       + self._sync_errors.get(wf.id, []) + self._agent_errors.get(wf.id, []))

    def sync_agents(self, wf: Workflow) -> None:
        """Start new agents, stop removed ones, reload edited ones (the agent manager's `sync`)."""
        from coflows.agents.component import manager_of

        manager = manager_of(self.runtime)
        sync = getattr(manager, "sync", None)
        if sync is None:
            log.warning("%s: agents changed; this server cannot reload agents (restart it)", wf.name)
            return
        try:
            errors = list(sync(wf) or [])
        except Exception as e:  # noqa: BLE001
            log.exception("%s: syncing agents", wf.name)
            errors = [f"agents: {e}"]
        # every current agent error (listed in problems); the manager logged each once, at its edit
        self._agent_errors[wf.id] = errors

    def _unload_later(self, wf: Workflow, removed: list[Query]) -> None:
        """Unload removed queries once their calls in flight have had their time limit."""
        if not removed:
            return

        def unload() -> None:
            for q in removed:
                if q.loaded is None or q.language is None:
                    continue
                engine = self.runtime.engines.running(q.language)
                if engine is None:
                    continue
                try:
                    engine.unload(wf.ctx, q.source, q.loaded)
                except Exception:  # noqa: BLE001
                    log.exception("%s: unloading %s", wf.name, q.id)

        timer = threading.Timer(self.runtime.config.server.call_timeout + UNLOAD_GRACE_S, unload)
        timer.daemon = True
        timer.start()

    # -- packages -------------------------------------------------------------------------------
    def install(self, wf: Workflow) -> None:
        """Install the manifest's packages on a thread; a second edit during an install runs another after it."""
        with self._install_lock:
            running = self._installing.get(wf.id)
            if running is not None and running.is_alive():
                self._install_again.add(wf.id)
                return
            thread = threading.Thread(target=self._install, args=(wf,), name=f"coflows-install-{wf.name}",
                                      daemon=True)
            self._installing[wf.id] = thread
            wf.packages_state = "installing"
            thread.start()

    def _install(self, wf: Workflow) -> None:
        from coflows.workspace.packages import install_packages

        while True:
            log.info("%s: package.json's packages changed: installing in the background", wf.name)
            try:
                report = install_packages(wf.ctx, wf.manifest, self.runtime.config.packages, LogProgress(wf.name))
                errors = list(report.errors)
            except Exception as e:  # noqa: BLE001 - an installer bug must not end the watcher
                log.exception("%s: installing packages", wf.name)
                report, errors = None, [f"packages: {e}"]
            if report is not None:
                self.runtime.package_reports[wf.id] = report
                for kind, name, version, status, detail in report.rows:
                    log.info("%s: %s %s %s: %s%s", wf.name, kind, name, version, status,
                             f" ({detail})" if detail else "")
            self._package_errors[wf.id] = errors
            if errors:
                log.error("%s: packages not installed, the previous set keeps serving: %s", wf.name, "; ".join(errors))
                self._publish(wf)
                wf.packages_state = "failed"
            else:
                n = len(report.rows) if report is not None else 0
                log.info("%s: packages installed (%d rows); reloading Base and queries", wf.name, n)
                importlib.invalidate_caches()  # a module that failed to import before is looked up afresh
                result = wf.sync(wf.manifest, reload_all=True)
                self.runtime.registry.changed(wf)
                self.sync_agents(wf)
                self._publish(wf, result.problems)
                wf.packages_state = "installed"  # last: once it reads "installed", the reload is done
            with self._install_lock:
                if wf.id not in self._install_again:
                    self._installing.pop(wf.id, None)
                    return
                self._install_again.discard(wf.id)
                wf.packages_state = "installing"


def _listed(manifest: Manifest) -> set[str]:
    entries = [*manifest.Base, *manifest.Agents, *manifest.Queries, *manifest.Files, *manifest.Bins]
    return {Path(e.Content).as_posix() for e in entries}


def install(runtime: Runtime) -> None:
    """Start a watcher with the server (after the workflows load) and stop it first at shutdown."""
    watcher = WorkspaceWatcher(runtime)
    runtime.watcher = watcher
    runtime.startups.append(watcher.start)
    runtime.on_close(watcher.stop)
