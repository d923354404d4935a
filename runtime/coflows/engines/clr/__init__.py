"""The C# engine: C# sources compiled in-process and called through pythonnet, on Mono.

- Mono loads lazily with the first C# (or `.dll`) source, in this process
  (`mono`); `MONO_THREADS_SUSPEND=preemptive` is checked first.
- A workflow's C# Base files compile, in manifest order, into ONE assembly; each
  C# query (or agent) compiles into its own assembly referencing the Base, the
  host API (`Coflows.Host`, from `coflows/engines/clr/host/Host.cs`), the Bins and NuGet
  assemblies, and the usual `System.*` libraries. Compilation runs Mono's C#
  compiler inside the process (no `mcs` subprocess); assemblies are written to
  `<workspace>/.coflows/clr/` and loaded with `clr.AddReference`, which makes
  their namespaces importable from Python (`import CsBase`).
- Functions: every public static method and static property (a zero-argument
  function) of every public class. Methods of one name are overloads chosen by
  argument count. When two classes define the same name, the first class in
  the file owns `Name`; the others are reachable as `Class.Name` (a warning
  says so). Parameter and result types come from reflection (`convert`);
  docs from `///` comments (CoFlows `<api>` blocks or standard `<summary>`).
- Agents (`source.kind == "agent"`): after compiling, the factory (`Exe`, default
  `pkg`) is called and its `Coflows.FPKG` becomes `LoadedSource.factory`, an
  `AgentDefinition` (`agents`). `Coflows.M.Base(topic)` calls the Python M API
  through `Coflows.RuntimeBridge` (also `agents`).
- CoFlows' C# API (docs/compat-csharp.md): the host assembly also holds
  `QuantApp.Kernel`, `QuantApp.Engine` and `JVM` (host/QuantApp.cs, Jvm.cs;
  `JVM.JVMObject` operations are served by `clr.objects`); every compile also
  references pythonnet's `Python.Runtime` and Debian's Json.NET (with
  `QuantApp.Json`, host/JsonCompat.cs) unless the workflow brings its own;
  types of F#/VB Base files get throwing stand-ins (`stubs`), and mcs's
  CS0118 on a type name shadowed by a method is fixed on a copy (`mcs_fixes`).
- Names for the other languages: `objects.resolve` reaches the workflow's newest
  types through its "clr" resolver and framework types through "clr-framework"
  (`resolve`); loading runs under `objects.loading(workflow id)`.
- A .NET exception in user code becomes a `UserCodeError` with the .NET type's
  full name, its message and the C# stack trace (file:line of user code).
- Hot reload compiles a new assembly; the old one cannot be unloaded from Mono
  (see docs/engines/csharp.md): reloads are counted per query, logged past
  every `COFLOWS_CLR_WARN_RELOADS` (50) and refused past `COFLOWS_CLR_MAX_RELOADS`
  (400), which keeps the previous version serving and asks for a restart.
"""

from __future__ import annotations

import hashlib
import importlib
import itertools
import logging
import os
import re
import shutil
import sys
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coflows import objects as object_core
from coflows.engines.clr import mcs_fixes, mono, resolve, stubs
from coflows.engines.base import Engine, LoadedSource, SourceFile, WorkflowContext
from coflows.errors import ArgumentError, CallTimeout, CoflowsError, CompileError, SourceError, UserCodeError
from coflows.functions import Function, FunctionDocs, Param
from coflows.types import convert_argument
from coflows.xmldocs import parse_api, parse_module_docs

_COFLOWS_DIR = str(Path(__file__).resolve().parents[2])  # runtime/coflows: our frames, not user code
log = logging.getLogger("coflows.engines.clr")

_cv: Any = None  # coflows.engines.convert, imported once Mono is loaded


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


@dataclass
class LoadedAssembly:
    """The engine's handle on a loaded source: its assembly and file."""

    assembly: Any
    path: Path
    generation: int


@dataclass
class _State:
    """What the engine keeps per workflow."""

    out_dir: Path
    prefix: str
    base_path: Path | None = None
    base_assembly: Any = None
    bins: dict[str, Any] = field(default_factory=dict)  # user's path -> (Assembly, shadow copy) | None
    bin_errors: list[SourceError] = field(default_factory=list)
    framework: set[str] = field(default_factory=set)  # framework assemblies NuGets asked for
    loads: dict[str, int] = field(default_factory=dict)  # query id / "Base" -> assemblies loaded
    assemblies: dict[str, Any] = field(default_factory=dict)  # query id / agent -> its newest assembly
    types: Any = None  # resolve.WorkflowTypes: the workflow's "clr" resolver
    stubs_key: tuple = ()  # the F#/VB Base files (and mtimes) the stubs were made from
    stubs_path: Path | None = None  # stand-ins for their types (stubs)
    stubs_assembly: Any = None
    lock: threading.RLock = field(default_factory=threading.RLock)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_STALE = re.compile(r"_(\d+)_\d+\.(?:dll|dll\.mdb|cs)$")  # <name>_<pid>_<n>.dll, sources copied with $WID$
_SHADOW = re.compile(r"^bins_(\d+)$")  # shadow copies of prebuilt dlls, per process


def _clean_stale(out_dir: Path) -> None:
    """Remove what processes that are gone left in `.coflows/clr` (names carry the process id)."""
    if not out_dir.is_dir():
        return

    def stale(m: re.Match | None) -> bool:
        return m is not None and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1)))

    src = out_dir / "src"
    candidates = list(out_dir.iterdir()) + (list(src.rglob("*.cs")) if src.is_dir() else [])
    for p in candidates:
        try:
            if p.is_dir():
                if stale(_SHADOW.match(p.name)):
                    shutil.rmtree(p, ignore_errors=True)
            elif stale(_STALE.search(p.name)):
                p.unlink()
        except OSError:
            pass


def _manifest_entries(workflow: WorkflowContext, field: str) -> list[Any]:
    """package.json's `field` entries (Base, Bins, …); none when it is missing or broken (the
    workflow loader reports manifest problems)."""
    manifest = workflow.root / "package.json"
    if not manifest.is_file():
        return []
    try:
        from coflows.workspace.manifest import load_manifest

        return list(getattr(load_manifest(manifest), field))
    except Exception:  # noqa: BLE001
        return []


def _manifest_base(workflow: WorkflowContext) -> list[Path]:
    """The workflow's Base files as package.json lists them (every language)."""
    return [(workflow.root / b.Content).resolve() for b in _manifest_entries(workflow, "Base")]


def _bin_paths(workflow: WorkflowContext) -> list[Path]:
    """`workflow.bin_paths`, or the manifest's `Bins` .dll entries when the runtime did not fill them."""
    if workflow.bin_paths:
        return [p for p in workflow.bin_paths if p.suffix.lower() == ".dll"]
    return [(workflow.root / b.Content).resolve() for b in _manifest_entries(workflow, "Bins")
            if b.Content.lower().endswith(".dll")]


# -- errors -----------------------------------------------------------------------------------------
_NOISE = ("(wrapper managed-to-native)", "System.Reflection.", "Python.Runtime.", "at (wrapper ",
          "Coflows.Stoppable.")  # the stub that makes a call stoppable (host/Calls.cs)
_UNWRAP = {"System.Reflection.TargetInvocationException", "System.TypeInitializationException"}


def clean_stack(stack: str | None, root: Path | None) -> str:
    """A .NET stack trace with only user frames, paths relative to the workspace."""
    if not stack:
        return ""
    lines = [ln for ln in str(stack).splitlines() if ln.strip() and not any(n in ln for n in _NOISE)]
    text = "\n".join(lines)
    if root is not None:
        text = text.replace(str(root) + os.sep, "")
    return text


def net_user_error(exc: Any, root: Path | None = None) -> UserCodeError | CallTimeout:
    """A .NET exception (as pythonnet raises it) → UserCodeError(type full name, message, C# stack)."""
    ex = exc
    while True:
        name = str(ex.GetType().FullName)
        inner = ex.InnerException
        if inner is not None and (name in _UNWRAP or (name == "System.AggregateException"
                                                      and ex.InnerExceptions.Count == 1)):
            ex = inner
            continue
        break
    stack = clean_stack(ex.StackTrace, root)
    if name == "Coflows.CallStoppedException":
        return CallTimeout(str(ex.Message))
    if name == "Coflows.CallException":
        # a function called through Coflows.Host.Call failed and C# did not catch it: report the cause
        remote = str(ex.RemoteStackTrace or "")
        full = stack + ("\n--- in the called function ---\n" + remote if remote else "")
        return UserCodeError(str(ex.ErrorType), str(ex.ErrorMessage), full, language=str(ex.Language))
    return UserCodeError(name, str(ex.Message), stack, language="csharp")


# -- functions ----------------------------------------------------------------------------------------
@dataclass
class _Member:
    type: Any  # System.Type
    cls: Any  # pythonnet class
    type_name: str
    name: str
    member: Any  # MethodInfo | PropertyInfo
    is_property: bool

    @property
    def arity(self) -> int:
        return 0 if self.is_property else int(self.member.GetParameters().Length)

    def signature(self) -> str:
        if self.is_property:
            return f"{self.type_name}.{self.name}"
        ps = ", ".join(f"{_cv.cs_name(p.ParameterType)} {p.Name}" for p in self.member.GetParameters())
        return f"{self.type_name}.{self.name}({ps})"


def _complete(args: list[Any], kwargs: dict[str, Any], names: tuple[str, ...],
              defaults: tuple[Any, ...]) -> list[Any]:
    """Positional arguments for all parameters: named ones in place, defaults for the missing."""
    out = list(args)
    for i in range(len(args), len(names)):
        out.append(kwargs[names[i]] if names[i] in kwargs else defaults[i])
    return out


def _make_invoke(target: Callable[..., Any], names: tuple[str, ...], defaults: tuple[Any, ...],
                 convs: tuple[Callable[[Any], Any] | None, ...], rconv: Callable[[Any], Any] | None,
                 varargs: Callable[[list[Any]], Any] | None, root: Path) -> Callable[[list[Any], dict[str, Any]], Any]:
    """The call path: as short as possible for functions that need no conversions."""
    n = len(names)
    NetException = _cv.NetException

    def fail(e: Exception) -> Exception:
        if isinstance(e, NetException):
            return net_user_error(e, root)
        if isinstance(e, CoflowsError):
            return e
        if isinstance(e, (TypeError, OverflowError)):  # pythonnet could not pass an argument
            return ArgumentError(str(e))
        return e

    if not any(convs) and varargs is None:
        if rconv is None:
            def invoke(args: list[Any], kwargs: dict[str, Any]) -> Any:
                if kwargs or len(args) != n:
                    args = _complete(args, kwargs, names, defaults)
                try:
                    return target(*args)
                except Exception as e:  # noqa: BLE001 - user code raises anything
                    raise fail(e) from None
        else:
            def invoke(args: list[Any], kwargs: dict[str, Any]) -> Any:
                if kwargs or len(args) != n:
                    args = _complete(args, kwargs, names, defaults)
                try:
                    return rconv(target(*args))  # converting runs user code too (property getters)
                except Exception as e:  # noqa: BLE001
                    raise fail(e) from None
        return invoke

    def invoke_converting(args: list[Any], kwargs: dict[str, Any]) -> Any:
        if varargs is not None:
            extra, args = args[n:], args[:n]
        else:
            extra = ()
        if kwargs or len(args) != n:
            args = _complete(args, kwargs, names, defaults)
        try:
            call_args = [a if c is None or a is None else c(a) for a, c in zip(args, convs)]
            if varargs is not None:
                call_args.append(varargs(list(extra)))
        except CoflowsError:
            raise
        except Exception as e:  # noqa: BLE001 - a value that does not convert is the caller's input
            msg = str(e.Message) if isinstance(e, NetException) else str(e)
            raise ArgumentError(f"cannot pass an argument: {msg}") from None
        try:
            r = target(*call_args)
            return r if rconv is None else rconv(r)
        except Exception as e:  # noqa: BLE001
            raise fail(e) from None

    return invoke_converting


class ClrEngine(Engine):
    language = "csharp"
    extensions = (".cs", ".dll")
    order = 10

    def __init__(self, runtime: Any) -> None:
        super().__init__(runtime)
        self.mono: mono.MonoRuntime | None = None
        self.host_path: Path | None = None
        self._counter = itertools.count(1)
        self._lock = threading.RLock()
        self._host_callback: Any = None
        self._runtime_callback: Any = None  # Coflows.M / Coflows.Json → Python (agents.runtime_call)
        self.warn_reloads = _env_int("COFLOWS_CLR_WARN_RELOADS", 50)
        self.max_reloads = _env_int("COFLOWS_CLR_MAX_RELOADS", 400)
        self.assemblies_loaded = 0
        self._seen_types: set[str] = set()
        self._calls: Any = None  # Coflows.Calls: stoppable calls (Calls.cs)
        self.json_references: list[Path] = []  # Debian's Newtonsoft.Json and QuantApp.Json, when installed

    # -- start ----------------------------------------------------------------------------------
    def start(self) -> None:
        global _cv
        self.mono = mono.mono()
        from coflows.engines.clr import convert

        _cv = convert
        import clr
        from System import Array, Func, Object, String

        # QuantApp.cs and Jvm.cs: CoFlows' C# API (QuantApp.Kernel, QuantApp.Engine, JVM), thin over the host
        self.host_path = self.mono.build_helper("Coflows.Host", ["Host.cs", "Agents.cs", "Calls.cs", "User.cs",
                                                                 "QuantApp.cs", "Jvm.cs"])
        clr.AddReference(str(self.host_path))
        newtonsoft = self.mono.newtonsoft_dll()
        if newtonsoft is not None:
            if "/gac/" not in newtonsoft.as_posix():
                clr.AddReference(str(newtonsoft))  # outside the GAC Mono would not find it at run time
            json_compat = self.mono.build_helper("QuantApp.Json", "JsonCompat.cs", [newtonsoft])
            clr.AddReference(str(json_compat))
            self.json_references = [newtonsoft, json_compat]
        bridge = self.mono.build_helper("Coflows.Bridge", "Bridge.cs", [self.mono.python_runtime_dll()])
        clr.AddReference(str(bridge))
        convert.init_bridge()
        from Coflows import Calls, Host
        # The Python types of the exceptions a stopped call raises, made now: pythonnet makes one on
        # first use, and making it while a stop is pending in the thread (C# under Py.GIL() running
        # Python that the stop's asynchronous exception hit) fails and ends the process.
        from Coflows import CallException, CallStoppedException  # noqa: F401
        from System import Threading  # noqa: F401
        _ = (Threading.ThreadAbortException, CallStoppedException, CallException)

        self._calls = Calls
        self._host_callback = Func[String, String, Array[Object], Object](self._host_call)
        Host.Connect(self._host_callback)
        from Coflows import RuntimeBridge

        from coflows.engines.clr import agents

        self._runtime_callback = Func[String, String, Array[Object], Object](agents.runtime_call)
        RuntimeBridge.Connect(self._runtime_callback)
        object_core.register(None, "clr-framework", resolve.framework_type)
        object_core.members.json_views.append(lambda o: convert.to_py(o) if isinstance(o, convert.Object) else None)
        log.info("C# engine: Mono %s (%s=%s)", self.mono.version, mono.SUSPEND_VAR, self.mono.suspend_mode)

    def _host_call(self, query: str, function: str, args: Any) -> Any:
        """`Coflows.Host.Call` from C#: call a registered function, hand back a .NET value or HostError."""
        from coflows.runtime import current_runtime

        try:
            py_args = [_cv.to_py(a) for a in args] if args is not None else []
            registry = current_runtime().registry
            # in the caller's workflow, or "Workflow/Query" (the registry resolves both; only the
            # lookup falls back, so a callee's own NotFoundError never runs it twice)
            result = registry.call(f"{query}/{function}", *py_args)
            return _cv.to_net_any(result)
        except Exception as e:  # noqa: BLE001 - report, never let a Python error cross as a crash
            return _cv.host_error(e)

    # -- per-workflow state -----------------------------------------------------------------------
    def _state(self, workflow: WorkflowContext) -> _State:
        st = workflow.state.get(self.language)
        if st is None:
            with self._lock:
                st = workflow.state.get(self.language)
                if st is None:
                    out_dir = workflow.root / ".coflows" / "clr"
                    _clean_stale(out_dir)
                    prefix = "cf" + hashlib.sha1(workflow.id.encode()).hexdigest()[:8]
                    st = workflow.state[self.language] = _State(out_dir, prefix)
                    st.types = resolve.WorkflowTypes(workflow.id, lambda s=st: _search_order(s))
                    object_core.register(workflow.id, "clr", st.types)
        return st

    def _output(self, st: _State, kind: str, stem: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_]", "_", stem)[:60]
        return st.out_dir / f"{st.prefix}_{kind}_{safe}_{os.getpid()}_{next(self._counter)}.dll"

    def _load_assembly(self, path: Path, fresh: bool = False) -> Any:
        import clr

        if fresh:
            from System.IO import File
            from System.Reflection import Assembly

            asm = Assembly.Load(File.ReadAllBytes(str(path)))
        else:
            asm = clr.AddReference(str(path))
        self.assemblies_loaded += 1
        self._publish(asm)
        return asm

    def _publish(self, asm: Any) -> None:
        """Make Python imports of .NET namespaces see the newest version of reloaded types.

        pythonnet resolves `import CsBase; CsBase.Text` to the first loaded assembly defining
        the name, and caches it in the namespace module; after a reload, the namespace module's
        entry is pointed at the new type.
        """
        try:
            types = list(asm.GetExportedTypes())
        except Exception:  # noqa: BLE001 - reported when its functions are read
            return
        for t in types:
            if t.IsNested or t.IsGenericTypeDefinition:
                continue
            full = str(t.FullName)
            if full not in self._seen_types:
                self._seen_types.add(full)
                continue
            ns, name = str(t.Namespace or ""), str(t.Name)
            try:
                if ns:
                    module = importlib.import_module(ns)
                    if type(module).__name__ == "ModuleObject":  # a pythonnet namespace
                        module.__dict__[name] = _cv.py_class(t)
                elif isinstance(getattr(sys.modules["clr"], name, None), type):  # `from clr import Calc`
                    setattr(sys.modules["clr"], name, _cv.py_class(t))
            except Exception:  # noqa: BLE001 - best effort: the registry always calls the new version
                log.debug("cannot rebind %s for Python imports", full, exc_info=True)

    def _shadow_copy(self, st: _State, path: Path) -> Path:
        """Copy a prebuilt dll (and its .xml/.pdb/.mdb) to this process's shadow folder.

        Mono maps loaded assemblies from their files: overwriting a loaded dll in place (`cp new.dll
        Bins/`) could crash the process. Loading a copy leaves the user's file free to change; the
        copies of one workflow share a folder, so a dll finds the others it depends on.
        """
        shadow_dir = st.out_dir / f"bins_{os.getpid()}"
        shadow_dir.mkdir(parents=True, exist_ok=True)
        target = shadow_dir / path.name
        if not target.exists():
            shutil.copy2(path, target)
            for ext in (".xml", ".pdb", ".dll.mdb"):
                side = path.with_name(path.stem + ext) if ext != ".dll.mdb" else path.with_name(path.name + ".mdb")
                if side.exists():
                    shutil.copy2(side, shadow_dir / side.name)
        return target

    def _load_bin(self, workflow: WorkflowContext, st: _State, path: Path) -> Any:
        """Load a prebuilt assembly once per workflow (through its shadow copy); CompileError if it cannot."""
        key = str(path)
        if key not in st.bins:
            try:
                shadow = self._shadow_copy(st, path)
                st.bins[key] = (self._load_assembly(shadow), shadow)
                if st.types is not None:
                    st.types.changed()
                resolve.changed()
            except Exception as e:  # noqa: BLE001 - a broken dll is the user's: report it
                msg = str(getattr(e, "Message", None) or e)
                st.bins[key] = None
                st.bin_errors.append(SourceError(workflow.relpath(path), None, f"cannot load assembly: {msg}"))
                raise CompileError(st.bin_errors[-1]) from None
        entry = st.bins[key]
        if entry is None:
            raise CompileError(next((e for e in st.bin_errors if e.file == workflow.relpath(path)),
                                    SourceError(workflow.relpath(path), None, "cannot load assembly")))
        return entry[0]

    def _framework_references(self, workflow: WorkflowContext) -> list[Path]:
        """Framework assemblies NuGet packages ask for (`System.Net.Http`, …), from Mono's library folder."""
        out: list[Path] = []
        for name in workflow.state.get("nuget_framework_assemblies") or []:
            for candidate in (self.mono.lib_dir / f"{name}.dll", self.mono.lib_dir / "Facades" / f"{name}.dll"):
                if candidate.is_file():
                    out.append(candidate)
                    break
            else:
                log.warning("%s: framework assembly %s (asked for by a NuGet package) is not in %s",
                            workflow.name, name, self.mono.lib_dir)
        return out

    def _load_bins(self, workflow: WorkflowContext, st: _State) -> list[SourceError]:
        """Load the Bins and NuGet assemblies (dependencies first, as listed) not loaded yet."""
        import clr

        for ref in self._framework_references(workflow):
            if str(ref) not in st.framework:
                try:
                    clr.AddReference(str(ref))
                except Exception as e:  # noqa: BLE001
                    log.warning("%s: cannot load %s: %s", workflow.name, ref, getattr(e, "Message", e))
                st.framework.add(str(ref))
                resolve.changed()
        errors: list[SourceError] = []
        paths = [p for p in _bin_paths(workflow) if p.suffix.lower() == ".dll"]
        paths += [p for p in workflow.nuget_assemblies if p.suffix.lower() == ".dll"]
        for p in paths:
            if str(p) in st.bins:
                continue
            try:
                self._load_bin(workflow, st, p)
            except CompileError as e:
                errors += e.errors
        return errors

    def _stubs(self, workflow: WorkflowContext, st: _State) -> None:
        """(Re)build the stand-ins for the types of the workflow's F# and VB Base files (stubs)."""
        files = [p for p in _manifest_base(workflow) if p.suffix.lower() in stubs.LANGUAGES]
        key = tuple((str(p), p.stat().st_mtime_ns if p.is_file() else 0) for p in files)
        if key == st.stubs_key:
            return
        st.stubs_key = key
        st.stubs_path = st.stubs_assembly = None
        bins = [entry[0] for entry in st.bins.values() if entry is not None]
        found: list[tuple[stubs.StubType, str, str]] = []
        for p in files:
            try:
                types = stubs.read_types(p)
            except OSError:
                continue
            for t in types:
                if resolve.find_type(bins, t.full_name) is None:  # the prebuilt DLL in Bins wins
                    found.append((t, workflow.relpath(p), stubs.LANGUAGES[p.suffix.lower()]))
        if not found:
            return
        src = st.out_dir / "src" / f"{st.prefix}_stubs_{os.getpid()}_{next(self._counter)}.cs"
        src.parent.mkdir(parents=True, exist_ok=True)
        src.write_text(stubs.stub_source(found), encoding="utf-8")
        out = self._output(st, "Stubs", "fs_vb")
        result = self.mono.compile([src], out, [])
        if not result.ok:
            log.warning("%s: cannot make stand-ins for the F#/VB Base types: %s", workflow.name,
                        "; ".join(d.message for d in result.errors[:3]))
            return
        st.stubs_assembly = self._load_assembly(out)
        st.stubs_path = out
        if st.types is not None:
            st.types.changed()
        log.info("%s: F#/VB Base types stand in as stubs that throw NotSupportedException: %s", workflow.name,
                 ", ".join(t.full_name for t, _, _ in found))

    def _references(self, workflow: WorkflowContext, st: _State, with_base: bool = True) -> list[Path]:
        self._stubs(workflow, st)
        refs: list[Path] = [self.host_path] if self.host_path else []
        if st.stubs_path is not None:
            refs.append(st.stubs_path)
        # `using Python.Runtime` (Py.GIL, Py.Import, dynamic PyObject): the pythonnet this process runs
        refs.append(self.mono.python_runtime_dll())
        if with_base and st.base_path is not None:
            refs.append(st.base_path)
        refs += [Path(p) for p in st.framework]
        bins = [entry[1] for entry in st.bins.values() if entry is not None]
        refs += bins
        # Debian's Json.NET unless the workflow brings its own (two assemblies of one name do not compile)
        if not any(p.name.lower() == "newtonsoft.json.dll" for p in bins):
            refs += self.json_references
        return refs

    def _source_for_compiler(self, workflow: WorkflowContext, st: _State, src: SourceFile, text: str) -> Path:
        """The file to compile: the user's own, or (when `$WID$` was replaced) a copy that maps back to it."""
        if "$WID$" not in text:
            return src.path
        return self._copy_for_compiler(workflow, st, src, text.replace("$WID$", workflow.id))

    def _copy_for_compiler(self, workflow: WorkflowContext, st: _State, src: SourceFile, text: str) -> Path:
        rel = workflow.relpath(src.path)
        copy = st.out_dir / "src" / f"{rel.removesuffix('.cs')}_{os.getpid()}_{next(self._counter)}.cs"
        copy.parent.mkdir(parents=True, exist_ok=True)
        # `#line` keeps diagnostics and debug symbols pointing at the user's file and lines
        copy.write_text(f'#line 1 "{src.path}"\n' + text, encoding="utf-8")
        return copy

    def _compile(self, workflow: WorkflowContext, st: _State, sources: list[tuple[SourceFile, str]], out: Path,
                 refs: list[Path]) -> mono.CompileResult:
        """Compile `(source, text)` pairs; where mcs rejects C# that Roslyn accepts (`mcs_fixes`),
        compile a fixed copy again (at most three rounds)."""
        texts = [text.replace("$WID$", workflow.id) for _, text in sources]
        files = [self._source_for_compiler(workflow, st, src, text) for src, text in sources]
        result = self.mono.compile(files, out, refs)
        for _ in range(3):
            if result.ok:
                break
            spots: dict[str, list[tuple[int, int, str]]] = {}
            for d in result.errors:
                name = mcs_fixes.shadowed_name(d.code, d.text)
                if name and d.file and d.line and d.column:
                    spots.setdefault(str(Path(d.file).resolve()), []).append((d.line, d.column, name))
            changed = False
            for i, (src, _) in enumerate(sources):
                where = spots.get(str(src.path.resolve()))
                fixed = mcs_fixes.qualify_global(texts[i], where) if where else None
                if fixed is not None:
                    texts[i] = fixed
                    files[i] = self._copy_for_compiler(workflow, st, src, fixed)
                    changed = True
            if not changed:
                break
            result = self.mono.compile(files, out, refs)
        return result

    def _diagnostics(self, workflow: WorkflowContext, result: mono.CompileResult,
                     default: str) -> tuple[list[SourceError], list[SourceError]]:
        errors: list[SourceError] = []
        warnings: list[SourceError] = []
        for d in result.diagnostics:
            where = workflow.relpath(Path(d.file).resolve()) if d.file else default
            (errors if d.severity == "error" else warnings).append(SourceError(where, d.line, d.message, d.column))
        if not result.ok and not errors:
            errors.append(SourceError(default, None, "compilation failed"))
        if not result.ok and not self.json_references and any("`Newtonsoft" in e.message for e in errors):
            errors.append(SourceError(default, None, "Newtonsoft.Json is not installed: install the Debian package "
                                                     "libnewtonsoft-json5.0-cil (bin/setup.sh does), or add the "
                                                     "NuGet package Newtonsoft.Json to package.json"))
        return errors, warnings

    def _count_load(self, workflow: WorkflowContext, st: _State, key: str, rel: str) -> None:
        """Refuse a reload past the limit (old assemblies stay in memory until the process ends)."""
        count = st.loads.get(key, 0)
        if count > self.max_reloads:
            raise CompileError(SourceError(
                rel, None,
                f"reloaded {count - 1} times in this process: C# assemblies cannot be unloaded from Mono, so "
                f"reloads stop at COFLOWS_CLR_MAX_RELOADS={self.max_reloads}; restart the server to load this "
                f"version (the previous one keeps serving)"))

    def _loaded(self, workflow: WorkflowContext, st: _State, key: str, asm: Any = None) -> None:
        count = st.loads.get(key, 0) + 1
        st.loads[key] = count
        if asm is not None:
            st.assemblies[key] = asm
        if st.types is not None:
            st.types.changed()
        resolve.changed()
        reloads = count - 1
        if self.warn_reloads > 0 and reloads > 0 and reloads % self.warn_reloads == 0:
            log.warning("%s: %s reloaded %d times in this process; each reload keeps its old assembly in memory "
                        "(restart to reclaim it; limit COFLOWS_CLR_MAX_RELOADS=%d)", workflow.name, key, reloads,
                        self.max_reloads)

    # -- Base -------------------------------------------------------------------------------------
    def load_base(self, workflow: WorkflowContext, sources: list[SourceFile]) -> list[SourceError]:
        with object_core.loading(workflow.id):  # static initialisers may resolve names (objects.resolve)
            return self._load_base(workflow, sources)

    def _load_base(self, workflow: WorkflowContext, sources: list[SourceFile]) -> list[SourceError]:
        st = self._state(workflow)
        with st.lock:
            errors = self._load_bins(workflow, st)
            if not sources:
                st.base_path, st.base_assembly = None, None
                if st.types is not None:
                    st.types.changed()
                return errors
            first = workflow.relpath(sources[0].path)
            try:
                self._count_load(workflow, st, "(Base)", first)
            except CompileError as e:
                return errors + e.errors
            files: list[tuple[SourceFile, str]] = []
            for src in sources:
                try:
                    files.append((src, src.read()))
                except OSError as e:
                    errors.append(SourceError(workflow.relpath(src.path), None, f"cannot read: {e.strerror}"))
            if not files:
                return errors
            out = self._output(st, "Base", workflow.name)
            result = self._compile(workflow, st, files, out, self._references(workflow, st, with_base=False))
            errs, warns = self._diagnostics(workflow, result, first)
            for w in warns:
                log.warning("%s: %s", workflow.name, w)
            if not result.ok:
                # keep the previous Base (if any): queries still compile against it
                return errors + errs
            st.base_assembly = self._load_assembly(out)
            st.base_path = out
            self._loaded(workflow, st, "(Base)")
            log.info("%s: C# Base compiled in %.2fs (%d files)", workflow.name, result.seconds, len(files))
            return errors

    # -- queries and agents -------------------------------------------------------------------------
    def load(self, workflow: WorkflowContext, source: SourceFile) -> LoadedSource:
        with object_core.loading(workflow.id):  # an agent's factory runs user code (objects.resolve)
            return self._load(workflow, source)

    def _load(self, workflow: WorkflowContext, source: SourceFile) -> LoadedSource:
        st = self._state(workflow)
        with st.lock:
            bin_errors = self._load_bins(workflow, st)
            for e in bin_errors:
                log.error("%s: %s", workflow.name, e)
            rel = workflow.relpath(source.path)
            key = source.query_id or source.name or rel
            self._count_load(workflow, st, key, rel)
            if source.path.suffix.lower() == ".dll":
                return self._load_prebuilt(workflow, st, source, key, rel)
            try:
                text = source.read()
            except OSError as e:
                raise CompileError(SourceError(rel, None, f"cannot read: {e.strerror}")) from None
            out = self._output(st, "Q", Path(rel).stem)
            result = self._compile(workflow, st, [(source, text)], out, self._references(workflow, st))
            errors, warnings = self._diagnostics(workflow, result, rel)
            if not result.ok:
                raise CompileError(errors)
            asm = self._load_assembly(out)
            self._loaded(workflow, st, key, asm)
        text = text.replace("$WID$", workflow.id)
        mdocs = parse_module_docs(text, "///", workflow.id, rel)
        warnings += [SourceError(rel, None, e) for e in mdocs.errors]
        functions, found = self._functions(workflow, source, asm, mdocs.apis, rel)
        warnings += found
        log.info("%s: %s compiled in %.2fs", workflow.name, rel, result.seconds)
        factory = None
        if source.kind == "agent":
            from coflows.engines.clr.agents import definition_from_assembly

            factory = definition_from_assembly(asm, source.exe, workflow_id=workflow.id, source=rel,
                                               file_name=source.name or source.path.name, root=workflow.root)
        return LoadedSource(functions=functions, handle=LoadedAssembly(asm, out, st.loads[key]),
                            warnings=warnings, info=mdocs.info, factory=factory)

    def _load_prebuilt(self, workflow: WorkflowContext, st: _State, source: SourceFile, key: str,
                       rel: str) -> LoadedSource:
        """A query that is a prebuilt assembly: its public static methods become Functions."""
        if not st.loads.get(key):
            # the first load goes through clr.AddReference (importable from Python, referenced by C#)
            asm = self._load_bin(workflow, st, source.path)
        else:
            # a changed file is loaded again from its bytes: an assembly of the same name cannot be
            # loaded twice from a path
            try:
                asm = self._load_assembly(source.path, fresh=True)
            except Exception as e:  # noqa: BLE001
                raise CompileError(SourceError(rel, None, f"cannot load assembly: "
                                                          f"{getattr(e, 'Message', None) or e}")) from None
        self._loaded(workflow, st, key, asm)
        docs = _xml_doc_file(source.path, workflow.id)
        functions, warnings = self._functions(workflow, source, asm, docs, rel)
        return LoadedSource(functions=functions, handle=LoadedAssembly(asm, source.path, st.loads[key]),
                            warnings=warnings)

    def _functions(self, workflow: WorkflowContext, source: SourceFile, asm: Any, docs: dict[str, FunctionDocs],
                   rel: str) -> tuple[dict[str, Function], list[SourceError]]:
        """Every public static method and static property of every public class, grouped by name."""
        from System import MulticastDelegate
        from System.Reflection import BindingFlags

        import clr

        flags = BindingFlags.Public | BindingFlags.Static | BindingFlags.DeclaredOnly
        delegate_t = clr.GetClrType(MulticastDelegate)
        warnings: list[SourceError] = []
        members: list[_Member] = []
        try:
            types = list(asm.GetExportedTypes())
        except Exception as e:  # noqa: BLE001 - e.g. a Bins dll whose dependencies are missing
            raise CompileError(SourceError(rel, None, f"cannot read the assembly's types: "
                                                      f"{getattr(e, 'Message', e)}")) from None
        for t in types:
            if not t.IsClass or t.ContainsGenericParameters or delegate_t.IsAssignableFrom(t):
                continue
            if str(t.Name).startswith("<"):
                continue
            cls = None
            type_name = str(t.Name)
            for m in t.GetMethods(flags):
                if m.IsSpecialName or m.IsGenericMethodDefinition or str(m.Name).startswith("<"):
                    continue
                if any(p.ParameterType.IsByRef or p.ParameterType.IsPointer for p in m.GetParameters()):
                    warnings.append(SourceError(rel, None, f"{type_name}.{m.Name}: ref/out/pointer parameters "
                                                           f"cannot be called from coflows; skipped"))
                    continue
                cls = cls or _cv.py_class(t)
                members.append(_Member(t, cls, type_name, str(m.Name), m, False))
            for p in t.GetProperties(flags):
                getter = p.GetGetMethod()
                if getter is None or p.GetIndexParameters().Length:
                    continue
                cls = cls or _cv.py_class(t)
                members.append(_Member(t, cls, type_name, str(p.Name), p, True))

        # names: the first class (in source order) owns `Name`; later classes get `Class.Name`
        owner: dict[str, Any] = {}
        groups: dict[str, list[_Member]] = {}
        for m in members:
            full = str(m.type.FullName)
            first = owner.setdefault(m.name, full)
            if first == full:
                groups.setdefault(m.name, []).append(m)
            else:
                qualified = f"{m.type_name}.{m.name}"
                if qualified not in groups:
                    warnings.append(SourceError(rel, None, f"{m.signature()}: '{m.name}' is already a function of "
                                                           f"{first}; call this one as '{qualified}'"))
                groups.setdefault(qualified, []).append(m)

        functions: dict[str, Function] = {}
        for name, group in groups.items():
            by_arity: dict[int, _Member] = {}
            for m in group:
                if m.arity in by_arity:
                    warnings.append(SourceError(
                        rel, None, f"{m.signature()}: another overload of '{name}' takes {m.arity} argument(s) "
                                   f"({by_arity[m.arity].signature()}); coflows chooses overloads by argument "
                                   f"count, so this one is not callable: rename it"))
                    continue
                by_arity[m.arity] = m
            fdocs = docs.get(name) or docs.get(group[0].name) or FunctionDocs()
            built = []
            for m in by_arity.values():
                try:
                    built.append(self._function(workflow, source, name, m, fdocs))
                except Exception as e:  # noqa: BLE001 - one odd signature must not fail the file
                    warnings.append(SourceError(rel, None, f"{m.signature()}: cannot be exposed: {e}"))
            if not built:
                continue
            primary, *others = built
            primary.overloads = tuple(others)
            functions[name] = primary
        return functions, warnings

    def _function(self, workflow: WorkflowContext, source: SourceFile, name: str, m: _Member,
                  docs: FunctionDocs) -> Function:
        query_id = source.query_id or source.name
        if m.is_property:
            prop_name = m.name
            ret_t = m.member.PropertyType
            rconv = None if _cv.is_plain_result(ret_t) else _cv.to_py
            cls = m.cls
            wrapped = self._wrap(m.member.GetGetMethod(), m)

            def getter(_cls: Any = cls, _n: str = prop_name, _w: Any = wrapped) -> Any:
                return _w() if _w is not None else getattr(_cls, _n)

            invoke = _make_invoke(getter, (), (), (), rconv, None, workflow.root)
            return Function(workflow.id, query_id, name, self.language, (), invoke, docs,
                            _cv.param_type(ret_t), False)

        import clr
        from System import ParamArrayAttribute

        mi = m.member
        ps = list(mi.GetParameters())
        varargs = None
        if ps and ps[-1].IsDefined(clr.GetClrType(ParamArrayAttribute), False):
            elem = ps[-1].ParameterType.GetElementType()
            elem_pt = _cv.param_type(elem)
            elem_conv = _cv.to_net_converter(elem)
            array_cls = _cv.Array[_cv.py_class(elem)]
            rest = str(ps[-1].Name)

            def varargs(extra: list[Any], _t: Any = elem_pt, _c: Any = elem_conv, _a: Any = array_cls,
                        _n: str = rest) -> Any:
                values = [convert_argument(x, _t, f"{_n}[{i}]") for i, x in enumerate(extra)]
                return _a([_c(x) if _c and x is not None else x for x in values])

        params: list[Param] = []
        convs: list[Any] = []
        defaults: list[Any] = []
        declared = ps[:-1] if varargs is not None else ps
        for p in declared:
            pt = _cv.param_type(p.ParameterType)
            required = not p.IsOptional and not p.HasDefaultValue
            raw_default = None
            shown_default = None
            if not required:
                raw_default = p.DefaultValue
                if raw_default is None and p.ParameterType.IsValueType:
                    from System import Activator

                    raw_default = Activator.CreateInstance(p.ParameterType)
                try:
                    shown_default = _cv.to_py(raw_default)
                except Exception:  # noqa: BLE001
                    shown_default = None
            params.append(Param(str(p.Name), pt, required, shown_default, docs.params.get(str(p.Name), "")))
            convs.append(_cv.to_net_converter(p.ParameterType))
            defaults.append(raw_default)

        binding = getattr(m.cls, m.name)
        target = self._wrap(mi, m)
        if target is None:
            target = binding
        if target is binding and ps:
            try:
                target = binding.__overloads__[tuple(_cv.py_class(p.ParameterType) for p in ps)]
            except Exception:  # noqa: BLE001 - let pythonnet choose at call time
                log.debug("no exact overload for %s; resolving at call time", m.signature())
        rconv = None if _cv.is_plain_result(mi.ReturnType) else _cv.to_py
        invoke = _make_invoke(target, tuple(p.name for p in params), tuple(defaults), tuple(convs), rconv,
                              varargs, workflow.root)
        return Function(workflow.id, query_id, name, self.language, tuple(params), invoke, docs,
                        _cv.param_type(mi.ReturnType), varargs is not None)

    def _wrap(self, method: Any, m: _Member) -> Any:
        """`method` called as a stoppable call (`Coflows.Calls.Stub`), or None if it cannot be wrapped."""
        try:
            stub = getattr(_cv.py_class(self._calls.Stub(method)), "Call")
            types = tuple(_cv.py_class(p.ParameterType) for p in method.GetParameters())
            return stub.__overloads__[types] if types else stub
        except Exception as e:  # noqa: BLE001 - still callable, only not stoppable
            log.warning("%s: cannot make it stoppable (%s); a time limit will not stop it", m.signature(),
                        getattr(e, "Message", e))
            return None

    def interrupt(self, thread_ident: int) -> bool:
        """Stop the C# call on `thread_ident` (`Thread.Abort` on Mono), only while it is inside a user call.

        The call's wrapper catches the abort, calls `Thread.ResetAbort()` and raises
        `Coflows.CallStoppedException` (→ `CallTimeout`); see host/Calls.cs.
        """
        calls = self._calls
        if calls is None:
            return False
        frame = sys._current_frames().get(thread_ident)
        if frame is not None and not frame.f_code.co_filename.startswith(_COFLOWS_DIR):
            # The thread runs Python right now (called from C#, e.g. under Py.GIL()): the Python stop
            # (an asynchronous exception) ends it and C# sees a PythonException. A Mono abort landing
            # while the thread is inside Python could leave the GIL held and wedge the server.
            return False
        return bool(calls.Abort(thread_ident))

    # -- unloading ----------------------------------------------------------------------------------
    def unload(self, workflow: WorkflowContext, source: SourceFile, loaded: LoadedSource) -> None:
        """Nothing to do: Mono cannot unload an assembly (see the module doc).

        The old Functions stay intact: a call that looked them up just before the reload
        finishes on the old version rather than failing.
        """

    def unload_workflow(self, workflow: WorkflowContext) -> None:
        workflow.state.pop(self.language, None)
        object_core.unregister(workflow.id, "clr")

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"language": self.language, **mono.describe_runtime()}
        info["assemblies_loaded"] = self.assemblies_loaded
        info["max_reloads"] = self.max_reloads
        return info


def _search_order(st: _State) -> list[Any]:
    """Where a workflow's type names are looked up: its Base, its queries and agents, its Bins."""
    out = [st.base_assembly] if st.base_assembly is not None else []
    out += list(st.assemblies.values())
    out += [entry[0] for entry in list(st.bins.values()) if entry is not None]
    if st.stubs_assembly is not None:
        out.append(st.stubs_assembly)
    return out


def _xml_doc_file(dll: Path, workflow_id: str) -> dict[str, FunctionDocs]:
    """Docs of a prebuilt assembly from the compiler's XML doc file next to it (`Name.xml`), if any."""
    path = dll.with_suffix(".xml")
    if not path.is_file():
        return {}
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError):
        return {}
    out: dict[str, FunctionDocs] = {}
    for member in root.iter("member"):
        name = member.get("name", "")
        if not (name.startswith("M:") or name.startswith("P:")):
            continue
        bare = name[2:].split("(")[0]
        parts = bare.split(".")
        try:
            docs = parse_api(member, workflow_id)
        except ValueError:
            continue
        out.setdefault(parts[-1], docs)
        if len(parts) >= 2:
            out.setdefault(f"{parts[-2]}.{parts[-1]}", docs)
    return out
