""".NET type names for `coflows.objects.resolve`: the "clr" resolvers.

* Per workflow (`WorkflowTypes`, registered as `objects.register(wid, "clr", ...)` when the C#
  engine first sees the workflow): a full type name (`"Cs.Base.csBase"`) is looked up in the
  workflow's *newest* assemblies: its Base, then its queries and agents, then its Bins and NuGet
  assemblies. After a hot reload the new assembly answers (the old one stays loaded: Mono cannot
  unload it, but nothing resolves to it any more).
* Process-wide (`framework_type`, registered as "clr-framework" with `wid=None`): types of every other loaded
  assembly (the .NET framework, `QuantApp.Kernel`/`QuantApp.Engine`, Newtonsoft.Json), e.g.
  `"System.Environment"` for JavaScript's `System.Environment.NewLine`. Assemblies compiled for a
  workflow (under `.coflows/clr/`) are not framework: one workflow never sees another's types.

Answers are pythonnet classes (`objects.call_object(cls, [])` makes an instance). Names that are
not types (`"Cs.Base"`) answer None, so `objects.resolve` gives a `Namespace`. Lookups are cached;
the caches are cleared whenever the engine loads an assembly (`changed`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

_WORKFLOW_DIR = "/.coflows/clr/"  # where the engine writes (and shadow-copies) a workflow's assemblies
_lock = threading.Lock()
_framework: list[Any] | None = None  # loaded assemblies that belong to no workflow (None: recompute)
_framework_cache: dict[str, Any] = {}  # name -> pythonnet class or None
_py_class: Callable[[Any], Any] | None = None


def _class(t: Any) -> Any:
    global _py_class
    if _py_class is None:
        from coflows.engines.clr.convert import py_class

        _py_class = py_class
    return _py_class(t)


def _candidates(name: str) -> Iterable[str]:
    """`name`, then the same with its last dots as nested-type separators (`Outer.Inner` → `Outer+Inner`)."""
    yield name
    parts = name.split(".")
    for i in range(len(parts) - 1, 0, -1):
        yield ".".join(parts[:i]) + "+" + "+".join(parts[i:])
        break  # one level of nesting is all user code uses


def find_type(assemblies: Iterable[Any], name: str) -> Any:
    """The first public type called `name` in `assemblies` (a System.Type) or None."""
    if not name or name.startswith(".") or name.endswith("."):
        return None
    for asm in assemblies:
        if asm is None:
            continue
        for candidate in _candidates(name):
            try:
                t = asm.GetType(candidate, False)
            except Exception:  # noqa: BLE001 - a broken assembly answers nothing
                t = None
            if t is not None and (t.IsPublic or t.IsNestedPublic):
                return t
    return None


def changed() -> None:
    """An assembly was loaded: forget what was not found (it may be there now)."""
    global _framework
    with _lock:
        _framework = None
        for k in [k for k, v in _framework_cache.items() if v is None]:
            del _framework_cache[k]


def _framework_assemblies() -> list[Any]:
    global _framework
    found = _framework
    if found is None:
        from System import AppDomain

        found = []
        for asm in AppDomain.CurrentDomain.GetAssemblies():
            try:
                if asm.IsDynamic:
                    continue
                location = str(asm.Location or "")
            except Exception:  # noqa: BLE001
                continue
            if location and _WORKFLOW_DIR not in location.replace("\\", "/"):
                found.append(asm)
        _framework = found
    return found


def framework_type(name: str) -> Any:
    """The process-wide "clr" resolver: a type of the framework or of coflows' own assemblies, or None."""
    if name in _framework_cache:
        return _framework_cache[name]
    if "." not in name:  # every framework type lives in a namespace; "Cs", "System" are namespaces
        return None
    if name.startswith("QuantApp."):
        # CoFlows' API for the other languages is the Python one (coflows.compat: ints, not .NET
        # enums); C# code compiles against QuantApp.cs directly
        return None
    t = find_type(_framework_assemblies(), name)
    cls = _class(t) if t is not None else None
    with _lock:
        if len(_framework_cache) > 10_000:
            _framework_cache.clear()
        _framework_cache[name] = cls
    return cls


class WorkflowTypes:
    """The per-workflow "clr" resolver over the workflow's newest assemblies."""

    def __init__(self, workflow_id: str, assemblies: Callable[[], list[Any]]) -> None:
        self.workflow_id = workflow_id
        self._assemblies = assemblies  # newest first-to-search order: Base, queries/agents, Bins
        self._cache: dict[str, Any] = {}

    def changed(self) -> None:
        self._cache = {}

    def __call__(self, name: str) -> Any:
        cache = self._cache
        if name in cache:
            return cache[name]
        t = find_type(self._assemblies(), name)
        cls = _class(t) if t is not None else None
        if len(cache) > 10_000:
            cache.clear()
        cache[name] = cls
        return cls
