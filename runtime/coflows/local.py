"""`coflows query local`: load only what one call needs, and the rest when it is first called.

A server loads every query of every workflow at start, so a workspace with C#, Java and
JavaScript files starts Mono, a JVM and V8 even for a Python call (5-10 s). Here a workflow
loads nothing up front: a query loads on its first lookup (the registry's freshness check
sees it was never loaded), after the Base of its language. A Python call thus starts only
the Python engine; a call across to C# (`coflows.call("Q.cs/F")`) loads that query, the C#
Base and the CLR then.

Start order (CLR → JVM → V8, ENGINES.md): the runtime still *plans* every language of the
workspace, so an engine started on demand first starts the planned engines before it;
V8 is never started before Mono (a crash). An engine the plan did not foresee and that would
start after a later one is refused by `EngineManager.get` with a message, not a crash.

When loading a query or a Base this way fails (a Python Base importing a C# namespace, say),
the whole Base is loaded as a server would, and the query again, so on-demand loading never
reports an error that a full load would not.
"""

from __future__ import annotations

from pathlib import Path

from coflows.engines import EngineManager, SourceFile, language_of
from coflows.errors import CoflowsError, ManifestError
from coflows.workflow import Query, Workflow
from coflows.workspace.manifest import load_manifest


class OnDemandWorkflow(Workflow):
    """A workflow whose queries load when first looked up, each after the Base of its language."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003 - Workflow's
        super().__init__(*args, **kwargs)
        self.base_languages: set[str] = set()  # languages whose Base is loaded
        self.full_base = False  # the whole Base was loaded, as a server does

    def load(self) -> list[str]:
        """Resolve the manifest's files; load nothing (a query's first lookup loads it)."""
        return self.collect_sources()

    def _base_sources_of(self, language: str) -> list[SourceFile]:
        return [s for s in self.base_sources if language_of(s.path) == language]

    def _load_base_of(self, language: str) -> bool:
        """Load the Base files (and Bins) of one language once; False when that failed."""
        if self.full_base or language in self.base_languages:
            return True
        self.base_languages.add(language)
        sources = self._base_sources_of(language)
        bins = language in ("csharp", "java") and any(language_of(b) == language for b in self.ctx.bin_paths)
        if not sources and not bins:
            return True
        stamps = {s.path: self._stamp(s.path) for s in sources}  # before loading: no edit is missed
        try:
            errors = self.engines.get(language).load_base(self.ctx, sources)
        except CoflowsError:
            return False
        self._base_mtimes.update({path: stamp for path, (stamp, _) in stamps.items()})
        self._base_watched = self._base_watched and all(watched for _, watched in stamps.values())
        return not errors

    def _load_whole_base(self) -> None:
        with self._base_lock:
            if not self.full_base:
                self.full_base = True
                self.load_base()  # every language, Python last (as Workflow.load does)

    def load_query(self, q: Query) -> None:
        if not self.full_base and q.language is not None and not self._load_base_of(q.language):
            self._load_whole_base()
        super().load_query(q)
        if q.error is not None and not self.full_base:
            self._load_whole_base()
            super().load_query(q)


def open_on_demand(manifest_path: Path, engines: EngineManager) -> Workflow:
    """`open_workflow` for an OnDemandWorkflow."""
    manifest = load_manifest(manifest_path)
    if not manifest.ID:
        raise ManifestError(f"{manifest_path}: ID: empty (run `coflows build local` to generate one)")
    return OnDemandWorkflow(manifest_path.resolve(), manifest, engines)
