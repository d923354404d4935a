"""The engine protocol: the bridge to one language runtime.

Every engine offers the same small protocol: load a workflow's Base sources,
load a query (or agent) source and list its Functions, unload. Engines are
process-wide and start lazily, in a fixed order (CLR, then JVM, then V8), once.
A load failure is a `CompileError` carrying `file:line: message` diagnostics;
it never takes the process down.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from coflows.errors import SourceError
from coflows.functions import Function

if TYPE_CHECKING:
    from coflows.runtime import Runtime


@dataclass
class SourceFile:
    """A user source file of a workflow (Base, Query or Agent)."""

    name: str  # the manifest's Name
    path: Path  # absolute path on disk
    kind: str  # "base" | "query" | "agent" | "bin"
    query_id: str = ""  # for queries: the ID used in URLs; for agents, the Name
    exe: str = "pkg"  # for agents: the factory's name (package.json `Exe`)

    def read(self) -> str:
        return self.path.read_text(encoding="utf-8")


@dataclass
class WorkflowContext:
    """What an engine needs to know of the workflow a source belongs to."""

    id: str
    name: str
    root: Path  # the folder of package.json
    state: dict[str, Any] = field(default_factory=dict)  # per-engine private state, keyed by language
    pip_path: Path | None = None
    jar_paths: list[Path] = field(default_factory=list)
    nuget_assemblies: list[Path] = field(default_factory=list)
    bin_paths: list[Path] = field(default_factory=list)

    def relpath(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)


@dataclass
class LoadedSource:
    """The Functions a source defines, and what the engine needs to unload or inspect it later."""

    functions: dict[str, Function]
    handle: Any = None  # engine-private (module, assembly, class loader, …)
    warnings: list[SourceError] = field(default_factory=list)
    factory: Any = None  # for agents: the engine's view of the `pkg()` factory result
    info: dict[str, str] = field(default_factory=dict)  # the file's `<info>` doc (OpenAPI title, version, …)


class Engine(ABC):
    """One language runtime. Subclasses are process-wide singletons made by the EngineManager."""

    language: ClassVar[str]
    extensions: ClassVar[tuple[str, ...]]
    # Start order: lower starts first. CLR 10, JVM 20, V8 30 (ENGINES.md: other orders crash).
    order: ClassVar[int] = 0

    def __init__(self, runtime: Runtime | None) -> None:
        self.runtime = runtime

    def start(self) -> None:
        """Load the language runtime into the process (once)."""

    @abstractmethod
    def load_base(self, workflow: WorkflowContext, sources: list[SourceFile]) -> list[SourceError]:
        """Load a workflow's Base sources of this language, in manifest order; return diagnostics."""

    @abstractmethod
    def load(self, workflow: WorkflowContext, source: SourceFile) -> LoadedSource:
        """Load (or reload) one query or agent source; raise `CompileError` on failure."""

    def unload(self, workflow: WorkflowContext, source: SourceFile, loaded: LoadedSource) -> None:
        """Release what `load` made (best effort: some runtimes cannot unload code)."""

    def unload_workflow(self, workflow: WorkflowContext) -> None:
        """Release everything of a workflow."""

    def interrupt(self, thread_ident: int) -> bool:
        """Stop the call this engine is running on thread `thread_ident` (a timeout or a gone client).

        Called from another thread (the call watchdog). Return True when a stop was delivered
        (the call will end with an exception soon), False when the thread is not inside this
        engine or the language cannot stop it; the watchdog then writes the thread off.
        """
        return False

    def describe(self) -> dict[str, Any]:
        """Version and state, for /health and diagnostics."""
        return {"language": self.language}
