"""A loaded workflow: its manifest, Base, queries and agents, kept fresh by hot reload.

Loading never raises for a broken user file: the error is recorded on the
query (and logged), the other files load, and a reload that fails keeps the
previous good version serving.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from coflows.engines import (EngineManager, EngineUnavailable, LoadedSource, SourceFile, WorkflowContext,
                             language_of, no_compiler, no_engine_reason)
from coflows.errors import CompileError, CoflowsError, ManifestError, SourceError
from coflows.functions import Function
from coflows.workspace.manifest import Manifest, load_manifest

if TYPE_CHECKING:
    from coflows.workspace.changes import DiskChanges

log = logging.getLogger("coflows.workflow")


def _mtime(path: Path) -> int:
    """A change stamp: mtime and size, so a file read half-written is reloaded once complete."""
    try:
        st = os.stat(path)
    except OSError:
        return -1
    return st.st_mtime_ns ^ (st.st_size << 1)


@dataclass
class Query:
    """One query source and the Functions it currently serves."""

    id: str
    source: SourceFile
    language: str | None
    loaded: LoadedSource | None = None
    error: CompileError | None = None
    mtime_ns: int = -1
    watched: bool = False  # the change feed watches its file (workspace/changes.py)
    watch_epoch: int = 0  # the feed's epoch when it was watched (a directory lost since: watch again)
    checked_gen: int = -1  # the feed's generation its last freshness check saw
    checked_at: float = 0.0  # monotonic time of the last freshness check (in-process calls)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def functions(self) -> dict[str, Function]:
        return self.loaded.functions if self.loaded else {}

    def status(self) -> dict:
        return {
            "id": self.id,
            "file": self.source.path.name,
            "language": self.language,
            "functions": sorted(self.functions),
            "errors": [str(e) for e in self.error.errors] if self.error else [],
            # the source no longer compiles and its last good version still answers
            "stale": self.error is not None and self.loaded is not None,
        }


class Workflow:
    """A workspace loaded into the engines."""

    def __init__(self, manifest_path: Path, manifest: Manifest, engines: EngineManager) -> None:
        self.manifest_path = manifest_path
        self.manifest = manifest
        self.root = manifest_path.parent
        self.engines = engines
        self.ctx = WorkflowContext(id=manifest.ID, name=manifest.Name or manifest.ID, root=self.root)
        self.base_sources: list[SourceFile] = []
        self.base_errors: list[SourceError] = []
        self._base_mtimes: dict[Path, int] = {}
        self._base_watched = False
        self._base_epoch = 0
        # Set by the Runtime: inotify tells which sources may have changed, so calls skip their stat calls
        self.changes: DiskChanges | None = None
        self.queries: dict[str, Query] = {}
        self.agent_sources: list[SourceFile] = []
        self._base_lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self.permissions: dict[str, int] = fixed_permissions(manifest)
        # Problems found while the server runs (a broken package.json, a failed install), shown by
        # `/flow/workflows`; the previous good state keeps serving meanwhile.
        self.problems: list[str] = []
        self.packages_state: str = ""  # "", "installing", "installed", "failed"
        # Called after a query is replaced by a new version: caches of Functions (the registry's
        # references for calls from code) drop theirs, so an old version's code, and a JVM class
        # loader or .NET assembly behind it, is not kept alive by a reference nobody calls again.
        self.on_reload: list[Callable[[], None]] = []

    @property
    def id(self) -> str:
        return self.ctx.id

    @property
    def name(self) -> str:
        return self.ctx.name

    # -- sources ------------------------------------------------------------------------------
    def _source(self, name: str, content: str, kind: str, query_id: str = "", exe: str = "pkg") -> SourceFile:
        path = (self.root / content).resolve()
        if not path.is_file():
            raise ManifestError(f"{self.manifest_path}: {kind} '{name}': file '{content}' not found")
        return SourceFile(name=name, path=path, kind=kind, query_id=query_id, exe=exe or "pkg")

    def collect_sources(self) -> list[str]:
        """Resolve every manifest entry to a file; return the errors for missing ones."""
        problems: list[str] = []
        self.base_sources = []
        for e in self.manifest.Base:
            try:
                self.base_sources.append(self._source(e.Name, e.Content, "base"))
            except ManifestError as err:
                problems.append(str(err))
        for q in self.manifest.Queries:
            qid = q.ID or q.Name
            try:
                src = self._source(q.Name, q.Content, "query", qid)
            except ManifestError as err:
                problems.append(str(err))
                continue
            self.queries[qid] = Query(qid, src, language_of(src.path))
        self.agent_sources = []
        for a in self.manifest.Agents:
            try:
                src = self._source(a.Name, a.Content, "agent", a.Name, a.Exe)
            except ManifestError as err:
                problems.append(str(err))
                continue
            self.agent_sources.append(src)
        return problems

    def languages(self) -> set[str]:
        paths = [s.path for s in self.base_sources] + [q.source.path for q in self.queries.values()]
        paths += [s.path for s in self.agent_sources]
        paths += [self.root / b.Content for b in self.manifest.Bins if b.Content.lower().endswith((".dll", ".jar"))]
        langs = {lang for p in paths if (lang := language_of(p))}
        if "csharp" not in langs and "python" in langs:  # `import clr` in Python starts the C# engine
            from coflows.engines.python import imports_dotnet

            if any(imports_dotnet(p) for p in paths if p.suffix == ".py"):
                langs.add("csharp")
        return langs

    # -- loading ------------------------------------------------------------------------------
    def load(self) -> list[str]:
        """Load Base, then every query. Returns every diagnostic as `file:line: message`."""
        problems = self.collect_sources()
        problems += [str(e) for e in self.load_base()]
        for q in self.queries.values():
            self.load_query(q)
            if q.error:
                problems += [str(e) for e in q.error.errors]
            elif q.loaded:
                problems += [f"warning: {w}" for w in q.loaded.warnings]
        return problems

    def load_base(self) -> list[SourceError]:
        by_language: dict[str, list[SourceFile]] = {}
        errors: list[SourceError] = []
        for src in self.base_sources:
            lang = language_of(src.path)
            if lang:
                by_language.setdefault(lang, []).append(src)
            elif no_compiler(src.path):  # F#, VB, Scala: one error each, the rest of Base still loads
                errors.append(SourceError(self.ctx.relpath(src.path), None, no_engine_reason(src.path)))
        # Bins assemblies/jars are loaded with the Base of their language, even with no Base source
        for b in self.ctx.bin_paths:
            lang = language_of(b)
            if lang in ("csharp", "java"):
                by_language.setdefault(lang, [])
        # after a live install: a running engine rebuilds the workflow's class path / references
        if self.ctx.jar_paths and self.engines.running("java") is not None:
            by_language.setdefault("java", [])
        if self.ctx.nuget_assemblies and self.engines.running("csharp") is not None:
            by_language.setdefault("csharp", [])
        if self.changes is not None:
            self._base_epoch = self.changes.epoch
        stamps = {s.path: self._stamp(s.path) for s in self.base_sources}  # before loading: no edit is missed
        # Python last: its Base may import C# or Java namespaces at import time
        for lang, sources in sorted(by_language.items(), key=lambda kv: kv[0] == "python"):
            try:
                engine = self.engines.get(lang)
            except CoflowsError as e:
                errors += [SourceError(self.ctx.relpath(s.path), None, str(e)) for s in sources]
                continue
            errors += engine.load_base(self.ctx, sources)
        self._base_mtimes = {path: stamp for path, (stamp, _) in stamps.items()}
        self._base_watched = all(watched for _, watched in stamps.values())
        self.base_errors = errors
        for e in errors:
            log.error("%s: %s", self.name, e)
        return errors

    def load_query(self, q: Query) -> None:
        """(Re)load one query; on failure keep the previous version and record the error."""
        if self.changes is not None:
            q.watch_epoch = self.changes.epoch
        q.mtime_ns, q.watched = self._stamp(q.source.path)
        try:
            if q.language is None:
                raise EngineUnavailable(no_engine_reason(q.source.path))
            engine = self.engines.get(q.language)
            loaded = engine.load(self.ctx, q.source)
        except CompileError as e:
            q.error = e
            log.error("%s: %s%s", self.name, e, self._stale_note(q))
            return
        except CoflowsError as e:
            q.error = CompileError(SourceError(self.ctx.relpath(q.source.path), None, str(e)))
            log.error("%s: %s%s", self.name, q.error, self._stale_note(q))
            return
        previous = q.loaded
        q.loaded, q.error = loaded, None
        if previous is not None:
            for listener in list(self.on_reload):
                listener()
        if previous is not None and previous.handle is not loaded.handle:
            try:
                engine.unload(self.ctx, q.source, previous)
            except Exception:  # noqa: BLE001
                log.exception("unloading the previous version of %s", q.id)
        for w in loaded.warnings:
            log.warning("%s: %s", self.name, w)

    @staticmethod
    def _stale_note(q: Query) -> str:
        """Said once per failed reload (one per edit: the stamp is taken before loading)."""
        return " (serving its last good version, its calls carry X-Coflows-Stale)" if q.loaded is not None else ""

    # -- hot reload ---------------------------------------------------------------------------
    def _stamp(self, path: Path) -> tuple[int, bool]:
        """(change stamp, watched): the file is watched first, so an edit after the stamp is an event."""
        watched = self.changes is not None and self.changes.watch(path)
        return _mtime(path), watched

    def _watch_again(self, q: Query, changes: DiskChanges) -> None:
        """A watched directory was moved or deleted since `q` (or Base) was watched: watch the paths
        again (what is there now), before the stamps are compared."""
        epoch = changes.epoch
        if q.watch_epoch != epoch:
            q.watched, q.watch_epoch = changes.watch(q.source.path), epoch
        if self._base_epoch != epoch:
            self._base_watched = all([changes.watch(p) for p in self._base_mtimes])
            self._base_epoch = epoch

    def is_fresh(self, q: Query) -> bool:
        """True when nothing the query depends on changed on disk (a few stat calls, no loading)."""
        if _mtime(q.source.path) != q.mtime_ns:
            return False
        for p, m in self._base_mtimes.items():
            if _mtime(p) != m:
                return False
        return True

    def refresh_due(self, q: Query, interval: float) -> None:
        """`refresh`, at most once per `interval` seconds per query (for calls made from code)."""
        now = time.monotonic()
        if now - q.checked_at >= interval:
            q.checked_at = now
            self.refresh(q)

    def refresh(self, q: Query) -> None:
        """Reload what changed on disk since it was loaded: a few stat calls, none while the change feed
        has seen no event since this query's last check (workspace/changes.py)."""
        changes = self.changes
        generation = -1
        if changes is not None and changes.live:
            generation = changes.generation
            if q.checked_gen == generation:
                return
            self._watch_again(q, changes)
        base_changed = any(_mtime(p) != m for p, m in self._base_mtimes.items())
        if base_changed:
            with self._base_lock:
                if any(_mtime(p) != m for p, m in self._base_mtimes.items()):
                    log.info("%s: Base changed, reloading Base and queries", self.name)
                    self.load_base()
                    for other in self.queries.values():
                        with other.lock:
                            self.load_query(other)
            return
        if _mtime(q.source.path) != q.mtime_ns:
            with q.lock:
                if _mtime(q.source.path) != q.mtime_ns:
                    log.info("%s: %s changed, reloading", self.name, q.id)
                    self.load_query(q)
        if generation >= 0 and q.watched and self._base_watched:
            q.checked_gen = generation

    # -- live changes (the workspace watcher) ---------------------------------------------------
    def sync(self, manifest: Manifest, *, reload_all: bool = False) -> SyncResult:
        """Bring the loaded sources in line with `manifest` and the files on disk.

        New queries are loaded before they become visible, then the query table is swapped
        in one assignment: a call in flight keeps the Function it started with, and a lookup
        sees either the old table or the new one. Base is reloaded (and every query with it)
        when its files were added or removed, or with `reload_all` (after a package install).
        """
        with self._sync_lock:
            result = SyncResult()
            base: list[SourceFile] = []
            for e in manifest.Base:
                try:
                    base.append(self._source(e.Name, e.Content, "base"))
                except ManifestError as err:
                    result.problems.append(str(err))
            wanted: dict[str, SourceFile] = {}
            for q in manifest.Queries:
                qid = q.ID or q.Name
                try:
                    wanted[qid] = self._source(q.Name, q.Content, "query", qid)
                except ManifestError as err:
                    result.problems.append(str(err))
            agents: list[SourceFile] = []
            for a in manifest.Agents:
                try:
                    agents.append(self._source(a.Name, a.Content, "agent", a.Name, a.Exe))
                except ManifestError as err:
                    result.problems.append(str(err))
            base_changed = [s.path for s in base] != [s.path for s in self.base_sources]
            old_agents = [(s.name, s.path, s.exe) for s in self.agent_sources]
            result.agents_changed = old_agents != [(s.name, s.path, s.exe) for s in agents]
            self.manifest = manifest
            self.permissions = fixed_permissions(manifest)
            if base_changed or reload_all:
                with self._base_lock:
                    self.base_sources = base
                    log.info("%s: Base changed, reloading Base and queries", self.name)
                    result.problems += [str(e) for e in self.load_base()]
                    result.base_reloaded = True
            queries: dict[str, Query] = {}
            for qid, src in wanted.items():
                old = self.queries.get(qid)
                if old is not None and old.source.path == src.path:
                    queries[qid] = old
                    if result.base_reloaded:
                        with old.lock:
                            self.load_query(old)
                    continue
                q = Query(qid, src, language_of(src.path))
                self.load_query(q)
                queries[qid] = q
                result.added.append(qid)
            result.removed = [qid for qid, q in self.queries.items() if queries.get(qid) is not q]
            result.removed_queries = [q for qid, q in self.queries.items() if queries.get(qid) is not q]
            self.queries = queries  # the swap
            self.agent_sources = agents
            return result

    def status(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "queries": [{**q.status(), "app": _app_url(self.id, q)} for q in self.queries.values()],
            "base_errors": [str(e) for e in self.base_errors],
            "agents": [s.name for s in self.agent_sources],
            "problems": list(self.problems),
            "packages": self.packages_state,
        }


@dataclass
class SyncResult:
    """What `Workflow.sync` changed."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    removed_queries: list[Query] = field(default_factory=list)
    base_reloaded: bool = False
    agents_changed: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.base_reloaded or self.agents_changed)


def open_workflow(manifest_path: Path, engines: EngineManager) -> Workflow:
    manifest = load_manifest(manifest_path)
    if not manifest.ID:
        raise ManifestError(f"{manifest_path}: ID: empty (run `coflows build local` to generate one)")
    return Workflow(manifest_path.resolve(), manifest, engines)


def _app_url(workflow_id: str, q: Query) -> str | None:
    """`/dash/{wid}/{qid}/` for a query that is a Dash/Flask app (it defines `run(port, path)`), else None."""
    from coflows.apps.detect import app_path, run_function

    return app_path(workflow_id, q.id) if run_function(q) is not None else None


def fixed_permissions(manifest: Manifest) -> dict[str, int]:
    """package.json `Permissions` as id → level; emails lower-cased (a user's id is their email, lower-cased)."""
    return {(p.ID.lower() if "@" in p.ID else p.ID): p.Permission for p in manifest.Permissions}
