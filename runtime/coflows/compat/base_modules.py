"""`Base.*` modules importable by name from anywhere, for the workflow that is running.

CoFlows put each workflow's `Base` folder on `sys.path`, so C# (`Py.Import("Base.pyBase.pybase")`),
Java (`CLRRuntime.PyImport(...)`) and plain `importlib` could import a Python Base module by name.
Here two workflows may both have `Base/pyBase/pybase.py`, so `sys.modules["Base.pyBase.pybase"]`
cannot be either one. It is a *dispatcher*: a module whose attributes are read from that module of
the workflow running on the thread (`objects.current_workflow()`), looked up through the Python
engine's per-workflow "python" resolver. Python code of the workflow itself never meets it: its own
`__import__` binds the real modules (`coflows.engines.python._BaseImports`).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types
from typing import Any

from coflows import objects

PREFIX = "Base"


def _is_base(name: str) -> bool:
    return name == PREFIX or name.startswith(PREFIX + ".")


def _target(name: str) -> Any:
    wid = objects.current_workflow()
    if wid is None:
        raise AttributeError(f"module {name!r} belongs to a workflow's Base, and no workflow is running on this "
                             "thread")
    return objects.resolve(name, wid, namespace=False)


class BaseDispatch(types.ModuleType):
    """`sys.modules["Base.x.y"]`: reads its attributes from the running workflow's `Base/x/y.py`."""

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        name = self.__name__
        try:
            target = _target(name)
        except LookupError:
            raise AttributeError(f"workflow {objects.current_workflow()} has no Base module {name!r}") from None
        try:
            return getattr(target, attr)
        except AttributeError:
            raise AttributeError(f"Base module {name!r} of workflow {objects.current_workflow()} has no "
                                 f"attribute {attr!r}") from None

    def __dir__(self) -> list[str]:
        try:
            return sorted(set(dir(_target(self.__name__))) | set(self.__dict__))
        except (AttributeError, LookupError):
            return sorted(self.__dict__)


class _Loader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return BaseDispatch(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        module.__path__ = []  # a package: `Base.pyBase` has submodules


class BaseFinder(importlib.abc.MetaPathFinder):
    """Finds `Base` and `Base.*` when the running workflow has that Base module (else: not ours)."""

    loader = _Loader()

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if not _is_base(fullname):
            return None
        wid = objects.current_workflow()
        if wid is None:
            return None
        try:
            objects.resolve(fullname, wid, namespace=False)
        except LookupError:
            return None
        return importlib.machinery.ModuleSpec(fullname, self.loader, is_package=True)


_FINDER = BaseFinder()


def install() -> None:
    """Put the finder first on `sys.meta_path` (once)."""
    if not any(isinstance(f, BaseFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _FINDER)
