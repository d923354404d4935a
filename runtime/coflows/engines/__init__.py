"""Engines by language, started lazily and in a fixed order (CLR → JVM → V8).

The manager knows engines by name and file extension without importing them,
so a workspace with only Python never loads Mono, a JVM or V8.
"""

from __future__ import annotations

import importlib
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from coflows.engines.base import Engine, LoadedSource, SourceFile, WorkflowContext
from coflows.errors import CoflowsError

if TYPE_CHECKING:
    from coflows.runtime import Runtime

log = logging.getLogger("coflows.engines")

# language → (module:class, start order)
ENGINE_CLASSES: dict[str, tuple[str, int]] = {
    "python": ("coflows.engines.python:PythonEngine", 0),
    "csharp": ("coflows.engines.clr:ClrEngine", 10),
    "java": ("coflows.engines.jvm:JvmEngine", 20),
    "javascript": ("coflows.engines.js:JsEngine", 30),
}

EXTENSIONS: dict[str, str] = {
    ".py": "python",
    ".cs": "csharp",
    ".dll": "csharp",
    ".java": "java",
    ".jar": "java",
    ".js": "javascript",
    ".mjs": "javascript",
}


# Languages CoFlows compiled that have no compiler here (no F#, VB or Scala compiler runs on this
# host): suffix → (language, what to ship instead). Their sources are an error each, never skipped.
NO_COMPILER: dict[str, tuple[str, str]] = {
    ".fs": ("F#", "a prebuilt DLL under Bins"),
    ".fsx": ("F#", "a prebuilt DLL under Bins"),
    ".vb": ("VB", "a prebuilt DLL under Bins"),
    ".scala": ("Scala", "a prebuilt JAR under Bins or Jars"),
}


class EngineUnavailable(CoflowsError):
    """No engine for a file type, or an engine that cannot start (e.g. start-order violation)."""


def language_of(path: str | Path) -> str | None:
    return EXTENSIONS.get(Path(path).suffix.lower())


def no_compiler(path: str | Path) -> bool:
    """A source of a language CoFlows compiled and this runtime cannot (F#, VB, Scala)."""
    return Path(path).suffix.lower() in NO_COMPILER


def no_engine_reason(path: str | Path) -> str:
    """Why a file cannot load: for F#/VB/Scala what to ship instead, else its unknown type."""
    suffix = Path(path).suffix.lower()
    if suffix in NO_COMPILER:
        language, instead = NO_COMPILER[suffix]
        return f"no compiler for {suffix} ({language}) here; add {instead}"
    return f"no engine for files of type {suffix or '(none)'}"


class EngineManager:
    """Owns the process's engines; `get(language)` starts one on first use, in start order."""

    def __init__(self, runtime: Runtime | None = None) -> None:
        self.runtime = runtime
        self._engines: dict[str, Engine] = {}
        self._lock = threading.RLock()
        self._planned: set[str] = set()

    def plan(self, languages: set[str]) -> None:
        """Declare the languages a runtime will need, so they start in the right order.

        Starting V8 before Mono crashes the process (ENGINES.md), so when a
        workspace needs both, the lower-order engine starts first even if V8 is
        asked for first.
        """
        with self._lock:
            self._planned |= {lang for lang in languages if lang in ENGINE_CLASSES}

    def started(self) -> dict[str, Engine]:
        return dict(self._engines)

    def running(self, language: str) -> Engine | None:
        """The engine of a language if it has started (no copy: used on every call)."""
        return self._engines.get(language)

    def get(self, language: str) -> Engine:
        engine = self._engines.get(language)
        if engine is not None:
            return engine
        with self._lock:
            engine = self._engines.get(language)
            if engine is not None:
                return engine
            if language not in ENGINE_CLASSES:
                raise EngineUnavailable(f"no engine for language {language!r}")
            _, order = ENGINE_CLASSES[language]
            # Start the planned engines that must precede this one.
            for other in sorted(self._planned, key=lambda lang: ENGINE_CLASSES[lang][1]):
                if ENGINE_CLASSES[other][1] < order and other not in self._engines:
                    self._start(other)
            # Refuse an order that is known to crash the process.
            for other, eng in self._engines.items():
                if eng.order > order and order > 0:
                    raise EngineUnavailable(
                        f"the {language} engine must start before the {other} engine "
                        f"(start order CLR → JVM → V8); restart the server to load {language} sources"
                    )
            return self._start(language)

    def _start(self, language: str) -> Engine:
        target, _ = ENGINE_CLASSES[language]
        module_name, cls_name = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name == module_name:
                raise EngineUnavailable(f"the {language} engine is not available in this build") from None
            raise EngineUnavailable(f"the {language} engine cannot load: {e}") from None
        engine: Engine = getattr(module, cls_name)(self.runtime)
        log.info("starting %s engine", language)
        engine.start()
        self._engines[language] = engine
        return engine

    def for_path(self, path: str | Path) -> Engine:
        language = language_of(path)
        if language is None:
            raise EngineUnavailable(f"{path}: {no_engine_reason(path)}")
        return self.get(language)


__all__ = ["ENGINE_CLASSES", "EXTENSIONS", "NO_COMPILER", "Engine", "EngineManager", "EngineUnavailable",
           "LoadedSource", "SourceFile", "WorkflowContext", "language_of", "no_compiler", "no_engine_reason"]
