"""The Python engine: workflow sources loaded with importlib, in isolation.

- Each query module gets a unique module name, so two workflows may both have
  `Queries/util.py`.
- Base modules are importable from queries and agents by their path under
  `Base/` (`Base/pyBase/pybase.py` → `import pyBase.pybase`) and by their stem
  (`import pybase`) when unambiguous, as with CoFlows' `Base` on `sys.path`.
  Each workflow module gets its own `__import__` that resolves these names to
  *its* workflow's Base, so Base modules of two workflows never collide.
- Public top-level functions (not starting with `_`, defined in the module)
  become Functions; signatures from annotations, docs from `###` XML comments
  and docstrings.
"""

from __future__ import annotations

import builtins
import dataclasses
import datetime as dt
import decimal
import enum
import hashlib
import inspect
import linecache
import re
import sys
import traceback
import types
import typing
from pathlib import Path
from typing import Any

from coflows import objects
from coflows.calls.timeout import declared_timeout
from coflows.context import install_output_capture
from coflows.engines.base import Engine, LoadedSource, SourceFile, WorkflowContext
from coflows.errors import CoflowsError, CompileError, SourceError, UserCodeError
from coflows.functions import Function, FunctionDocs, Param
from coflows.types import ANY, ParamType, type_from_name
from coflows.xmldocs import parse_module_docs

_PRIMITIVES: dict[Any, ParamType] = {
    int: ParamType("int", name="int"),
    float: ParamType("float", name="float"),
    bool: ParamType("bool", name="bool"),
    str: ParamType("str", name="str"),
    decimal.Decimal: ParamType("decimal", name="Decimal"),
    dt.datetime: ParamType("datetime", name="datetime"),
    dt.date: ParamType("date", name="date"),
    dt.time: ParamType("time", name="time"),
    dict: ParamType("dict", ANY, name="dict"),
    list: ParamType("list", ANY, name="list"),
    tuple: ParamType("list", ANY, name="tuple"),
    typing.Any: ANY,
}


def param_type_of(annotation: Any) -> ParamType:
    """Map a Python annotation to a ParamType (unknown annotations accept anything)."""
    if annotation is inspect.Parameter.empty or annotation is None:
        return ANY
    if annotation in _PRIMITIVES:
        return _PRIMITIVES[annotation]
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        inner = param_type_of(non_none[0]) if len(non_none) == 1 else ANY
        return dataclasses.replace(inner, nullable=True) if len(non_none) < len(args) else inner
    if origin in (list, tuple, set, frozenset, typing.Sequence, typing.Iterable) or origin is getattr(
        __import__("collections.abc").abc, "Sequence", None
    ):
        item = param_type_of(args[0]) if args else ANY
        return ParamType("list", item, name=getattr(annotation, "__name__", "") or str(annotation))
    if origin in (dict, typing.Mapping):
        item = param_type_of(args[1]) if len(args) == 2 else ANY
        return ParamType("dict", item)
    if inspect.isclass(annotation):
        if issubclass(annotation, enum.Enum):
            names = tuple(m.name for m in annotation)
            return ParamType("object", name=annotation.__name__, enum=names,
                             factory=lambda v, e=annotation: e[v] if isinstance(v, str) and v in e.__members__ else e(v))
        if dataclasses.is_dataclass(annotation):
            props = {f.name: param_type_of(f.type if not isinstance(f.type, str) else Any).json_schema()
                     for f in dataclasses.fields(annotation)}
            return ParamType("object", name=annotation.__name__,
                             schema={"type": "object", "properties": props},
                             factory=lambda v, c=annotation: c(**v) if isinstance(v, dict) else _bad(v))
        if hasattr(annotation, "model_validate"):  # pydantic v2 model
            return ParamType("object", name=annotation.__name__,
                             schema=annotation.model_json_schema(),
                             factory=annotation.model_validate)
    return ANY


def _bad(v: Any) -> Any:
    raise ValueError(f"expected a JSON object, got {type(v).__name__}")


BASE_PACKAGE = "Base"  # CoFlows' name for the Base folder: `import Base.pyBase.pybase`


def _module_name(workflow: WorkflowContext, kind: str, rel: str) -> str:
    digest = hashlib.sha1(workflow.id.encode()).hexdigest()[:10]
    stem = rel.removesuffix(".py").replace("/", ".").replace("-", "_").replace(" ", "_")
    return f"coflows_wf_{digest}.{kind}.{stem}"


class _BaseImports:
    """The Base modules of one workflow, resolved by a per-module `__import__`."""

    def __init__(self) -> None:
        self.modules: dict[str, types.ModuleType] = {}
        self.stems: dict[str, list[str]] = {}

    def add(self, dotted: str, module: types.ModuleType) -> None:
        """`pyBase/pybase.py` as `pyBase.pybase`, `Base.pyBase.pybase` (CoFlows' name, with the
        workspace root on the path) and, when no other Base file has that stem, `pybase`."""
        self._add_path(dotted, module)
        self._add_path(f"{BASE_PACKAGE}.{dotted}", module)
        self.stems.setdefault(dotted.split(".")[-1], []).append(dotted)

    def _add_path(self, dotted: str, module: types.ModuleType) -> None:
        parts = dotted.split(".")
        self.modules[dotted] = module
        # synthetic parent packages, deepest first, so `import pyBase.pybase` binds `pyBase`
        # and `Base.pyBase.pybase` is a chain of packages down to the module
        for i in range(len(parts) - 1, 0, -1):
            pkg_name = ".".join(parts[:i])
            pkg = self.modules.get(pkg_name)
            if pkg is None:
                pkg = types.ModuleType(pkg_name)
                pkg.__path__ = []  # type: ignore[attr-defined]
                self.modules[pkg_name] = pkg
            setattr(pkg, parts[i], self.modules[".".join(parts[: i + 1])])

    def lookup(self, name: str) -> types.ModuleType | None:
        mod = self.modules.get(name)
        if mod is None:
            candidates = self.stems.get(name)
            if candidates and len(candidates) == 1:
                mod = self.modules[candidates[0]]
        return mod

    def builtins_for_module(self) -> dict[str, Any]:
        real_import = builtins.__import__

        def _import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
            if level == 0:
                mod = self.lookup(name)
                if mod is not None:
                    if fromlist or "." not in name:
                        return mod
                    return self.modules[name.partition(".")[0]]
                if name.partition(".")[0] in _CLR_ROOTS and "clr" not in sys.modules:
                    _start_clr(name)
            found = real_import(name, globals, locals, fromlist, level)
            # .NET namespaces (`import Cs.Base as csb`, `import System`) as CoFlows' pythonnet fork
            # gave them: proxies with its argument conversions (coflows.compat.clr_proxy)
            return _wrap_module(found) if type(found).__name__ == "ModuleObject" else found

        b = dict(builtins.__dict__)
        b["__import__"] = _import
        return b


def substitute(text: str, workflow: WorkflowContext, source: SourceFile) -> str:
    """CoFlows' placeholders: `$WID$` → the workflow's ID; `$ID$` → the query's ID (its URL
    segment) or, in an agent, the agent's default ID `<WID>-<file stem>` (CoFlows' convention)."""
    text = text.replace("$WID$", workflow.id)
    if "$ID$" in text:
        if source.kind == "agent":
            ident = f"{workflow.id}-{source.path.stem}"
        else:
            ident = source.query_id or source.path.stem
        text = text.replace("$ID$", ident)
    return text


_CLR_ROOTS = ("clr", "System")  # imports that need pythonnet loaded (the C# engine started)
_DOTNET_IMPORT = re.compile(rb"^[ \t]*(?:import|from)[ \t]+(?:clr|System)\b", re.MULTILINE)


def imports_dotnet(path: Path) -> bool:
    """Does this Python source import `clr` or `System`? Then the C# engine must be planned (it
    starts before V8, so it cannot wait for the import; see engines/__init__.py)."""
    try:
        return _DOTNET_IMPORT.search(path.read_bytes()) is not None
    except OSError:
        return False


def _start_clr(name: str) -> None:
    """`import clr` / `import System` in a workspace without C# sources: start the C# engine first
    (pythonnet must load Mono the way the engine does, before V8)."""
    try:
        from coflows.runtime import current_runtime

        runtime = current_runtime()
    except CoflowsError:
        return  # a bare script: pythonnet loads as it would anywhere
    try:
        runtime.engines.get("csharp")
    except CoflowsError as e:
        raise ImportError(f"import {name}: {e}") from None


def _wrap_module(module: Any) -> Any:
    from coflows.compat.clr_proxy import wrap_module

    return wrap_module(module)


def _source_error_from_exception(exc: BaseException, path: Path, rel: str) -> SourceError:
    if isinstance(exc, SyntaxError) and exc.filename == str(path):
        return SourceError(rel, exc.lineno, f"{type(exc).__name__}: {exc.msg}", exc.offset)
    line = None
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename == str(path):
            line = frame.lineno
            break
    return SourceError(rel, line, f"{type(exc).__name__}: {exc}")


def user_code_error(exc: BaseException) -> UserCodeError:
    """Turn a Python exception into a UserCodeError whose stack shows only user frames."""
    tb = traceback.extract_tb(exc.__traceback__)
    internal = str(Path(__file__).resolve().parent.parent)
    frames = [f for f in tb if not f.filename.startswith(internal)]
    stack = "".join(traceback.format_list(frames)) if frames else ""
    # coflows' own errors (an unknown function, an argument that does not convert) reached through
    # `coflows.call` are language "coflows", as C#, Java and JavaScript callers report them
    language = "coflows" if isinstance(exc, CoflowsError) else "python"
    return UserCodeError(type(exc).__qualname__, str(exc), stack, language=language)


def _add_pip_path(workflow: WorkflowContext) -> None:
    """The workspace's pips, first on the path: the installer skips what coflows' own
    environment already provides, so what is there is only what the workspace adds."""
    if workflow.pip_path and str(workflow.pip_path) not in sys.path:
        sys.path.insert(0, str(workflow.pip_path))


class PythonEngine(Engine):
    language = "python"
    extensions = (".py",)
    order = 0

    def start(self) -> None:
        install_output_capture()
        import coflows.compat  # noqa: F401, PLC0415 - QuantApp.* names and the process-wide Base finder

    # -- Base --------------------------------------------------------------------------------
    def load_base(self, workflow: WorkflowContext, sources: list[SourceFile]) -> list[SourceError]:
        with objects.loading(workflow.id):
            return self._load_base(workflow, sources)

    def _load_base(self, workflow: WorkflowContext, sources: list[SourceFile]) -> list[SourceError]:
        imports = _BaseImports()
        self._register(workflow)
        errors: list[SourceError] = []
        _add_pip_path(workflow)
        for src in sources:
            rel = workflow.relpath(src.path)
            under_base = src.path.relative_to(workflow.root / "Base").as_posix() if (
                workflow.root / "Base") in src.path.parents else src.path.name
            dotted = under_base.removesuffix(".py").replace("/", ".")
            try:
                module = self._exec_module(workflow, src, "base", rel, imports)
            except CompileError as e:
                errors.extend(e.errors)
                continue
            imports.add(dotted, module)
        workflow.state[self.language] = imports
        return errors

    def _imports(self, workflow: WorkflowContext) -> _BaseImports:
        imports = workflow.state.get(self.language)
        if imports is None:
            imports = workflow.state[self.language] = _BaseImports()
            self._register(workflow)
        return imports

    def _register(self, workflow: WorkflowContext) -> None:
        """The workflow's Base modules by name for the other languages and for `importlib`
        (`objects.resolve("Base.pyBase.pybase")`); always the newest load of the Base."""
        state = workflow.state
        language = self.language

        def resolve(name: str) -> types.ModuleType | None:
            imports = state.get(language)
            return imports.lookup(name) if imports is not None else None

        objects.register(workflow.id, language, resolve)

    # -- Queries and agents ---------------------------------------------------------------------
    def _exec_module(self, workflow: WorkflowContext, src: SourceFile, kind: str, rel: str,
                     imports: _BaseImports) -> types.ModuleType:
        try:
            text = src.read()
        except OSError as e:
            raise CompileError(SourceError(rel, None, f"cannot read: {e.strerror}")) from None
        text = substitute(text, workflow, src)
        name = _module_name(workflow, kind, rel)
        module = types.ModuleType(name)
        module.__file__ = str(src.path)
        module.__dict__["__builtins__"] = imports.builtins_for_module()
        try:
            code = compile(text, str(src.path), "exec")
        except SyntaxError as e:
            raise CompileError(SourceError(rel, e.lineno, f"SyntaxError: {e.msg}", e.offset)) from None
        # keep tracebacks showing the text that was loaded, even if the file changes later
        linecache.cache[str(src.path)] = (len(text), None, text.splitlines(True), str(src.path))
        previous = sys.modules.get(name)
        sys.modules[name] = module  # dataclasses and pickling look the module up by name
        try:
            exec(code, module.__dict__)
        except BaseException as e:  # noqa: BLE001 - a broken user file must not take the server down
            if previous is not None:
                sys.modules[name] = previous
            else:
                sys.modules.pop(name, None)
            if isinstance(e, KeyboardInterrupt):
                raise
            raise CompileError(_source_error_from_exception(e, src.path, rel)) from None
        return module

    def load(self, workflow: WorkflowContext, source: SourceFile) -> LoadedSource:
        with objects.loading(workflow.id):
            return self._load(workflow, source)

    def _load(self, workflow: WorkflowContext, source: SourceFile) -> LoadedSource:
        _add_pip_path(workflow)
        rel = workflow.relpath(source.path)
        module = self._exec_module(workflow, source, source.kind, rel, self._imports(workflow))
        text = substitute(source.read(), workflow, source)
        mdocs = parse_module_docs(text, "###", workflow.id, rel)
        functions: dict[str, Function] = {}
        for attr, obj in list(module.__dict__.items()):
            if attr.startswith("_") or not inspect.isfunction(obj) or obj.__module__ != module.__name__:
                continue
            functions[attr] = self._function(workflow, source, attr, obj, mdocs.apis.get(attr))
        warnings = [SourceError(rel, None, e) for e in mdocs.errors]
        return LoadedSource(functions=functions, handle=module, warnings=warnings, info=mdocs.info)

    def _function(self, workflow: WorkflowContext, source: SourceFile, name: str, fn: Any,
                  xml: FunctionDocs | None) -> Function:
        sig = inspect.signature(fn)
        try:
            hints = typing.get_type_hints(fn)
        except Exception:  # noqa: BLE001 - unresolvable annotations: fall back to raw ones
            hints = {}
        docs = xml or FunctionDocs()
        if docs.timeout is None:
            docs.timeout = declared_timeout(fn)  # @coflows.timeout(seconds)
        docstring = inspect.getdoc(fn)
        if docstring and not docs.description:
            docs.description = docstring
        params: list[Param] = []
        varargs = False
        for p in sig.parameters.values():
            if p.kind is inspect.Parameter.VAR_POSITIONAL:
                varargs = True
                continue
            if p.kind is inspect.Parameter.VAR_KEYWORD:
                continue
            annotation = hints.get(p.name, p.annotation)
            ptype = param_type_of(annotation)
            if ptype is ANY and p.name in docs.param_types:
                ptype = type_from_name(docs.param_types[p.name])
            required = p.default is inspect.Parameter.empty
            params.append(Param(p.name, ptype, required, None if required else p.default,
                                docs.params.get(p.name, "")))
        returns = param_type_of(hints.get("return", sig.return_annotation))

        def invoke(args: list[Any], kwargs: dict[str, Any], _fn: Any = fn) -> Any:
            try:
                return _fn(*args, **kwargs)
            except UserCodeError:
                raise  # from another language, through this function: keep its type and stack
            except Exception as e:  # noqa: BLE001 - user code may raise anything
                raise user_code_error(e) from e

        return Function(workflow.id, source.query_id or source.name, name, self.language,
                        tuple(params), invoke, docs, returns, varargs)

    def unload(self, workflow: WorkflowContext, source: SourceFile, loaded: LoadedSource) -> None:
        module = loaded.handle
        if module is not None and sys.modules.get(module.__name__) is module:
            del sys.modules[module.__name__]

    def unload_workflow(self, workflow: WorkflowContext) -> None:
        prefix = _module_name(workflow, "", "").rsplit(".", 2)[0] + "."
        for name in [n for n in sys.modules if n.startswith(prefix)]:
            del sys.modules[name]
        workflow.state.pop(self.language, None)
        objects.unregister(workflow.id, self.language)

    def describe(self) -> dict[str, Any]:
        return {"language": self.language, "version": sys.version.split()[0]}
