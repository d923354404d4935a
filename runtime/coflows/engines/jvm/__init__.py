"""The Java engine: JPype in-process, sources compiled in memory with `javax.tools`.

- **JVM**: started lazily, once per process (`build.start_jvm`: JPype with
  `convertStrings=False`, `-Xrs`); the EngineManager starts it after the CLR and
  before V8. The engine's own classes (`host/`) are compiled once and
  cached, and loaded by a host class loader.
- **Class loaders**: one per workflow (its jars + its compiled Base classes,
  parent: the host loader), and one per loaded query (its compiled classes,
  parent: the workflow's loader). Two workflows never see each other's classes;
  a reloaded query gets a new loader. The engine keeps only the current version's
  objects, and user objects never cross into Python (calls go through host
  `Invoker`s; results come back as primitives, strings or JSON text), so JPype's
  class cache does not pin old loaders and they are collected.
- **Classpath**: `workflow.jar_paths` (filled by the package installer); when
  empty, every `*.jar` directly under `<workspace>/jars/` plus the artifacts named
  in `jars/jars.lock.json`. Then `.jar` files of `workflow.bin_paths` (when empty:
  `*.jar` under `<workspace>/Bins/`), then `.jar` entries of Base.
- **Compile**: Base files together (a broken file is dropped and the rest
  compiled again), then each query against the Base classes and jars, with
  `-parameters -g`. `$WID$` becomes the workflow ID. Errors are `file:line: message`.
- **Functions**: public methods of the file's top-level class (the public one
  named like the file, preferably): static methods, and instance methods on one
  instance made per load with the public no-argument constructor. Overloads by
  parameter count. Docs from `///` XML and Javadoc.
- **Interop**: `coflows.Host.call(query, function, args…)` from Java; from Python,
  `java_class`, `java_package` and `class_loader` below. `coflows.M.Base(topic)` is M.
  CoFlows' `app.quant.clr` (`CLRRuntime`, `CLRObject`) reaches objects of every language
  through `coflows.objects` (`bridge`, docs/compat-java.md); the workflow's Java classes
  resolve there by name (the "jvm" resolver, registered with the workflow's state).
- **Agents** (`agents`): an agent file's factory (`Exe`, default `pkg`) returns a
  `coflows.FPKG`, or CoFlows' `CLRRuntime.CreateInstance("QuantApp.Engine.FPKG", …)`;
  `LoadedSource.factory` is its `AgentDefinition`.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coflows import objects
from coflows.context import current
from coflows.engines import EngineUnavailable
from coflows.engines.jvm import agents, bridge, build
from coflows.engines.jvm.cache import CompileCache, compile_key
from coflows.engines.base import Engine, LoadedSource, SourceFile, WorkflowContext
from coflows.engines.jvm.docs import function_docs, module_docs
from coflows.errors import ArgumentError, CallTimeout, CoflowsError, CompileError, NotFoundError, SourceError, UserCodeError
from coflows.functions import Function, Param
from coflows.serialize import to_json_bytes, to_jsonable
from coflows.types import ANY, ParamType

log = logging.getLogger("coflows.engines.jvm")

JAVAC_OPTIONS = ("-parameters", "-g", "-encoding", "UTF-8", "-proc:none")
_ENGINE: JvmEngine | None = None


# ------------------------------------------------------------------------------------ types


def _require_object(v: Any) -> Any:
    if isinstance(v, dict):
        return v
    raise ValueError("expected a JSON object")


def param_type(d: dict[str, Any]) -> ParamType:
    """A Java type description (from `coflows.jvm.Types`) → ParamType."""
    kind = d.get("kind", "any")
    name = d.get("name", "")
    nullable = bool(d.get("nullable", False))
    if kind == "object":
        if "enum" in d:
            # a string (query strings are not JSON); Java checks the name, case-insensitively
            return ParamType("str", name=name, enum=tuple(d["enum"]), nullable=nullable)
        props = {k: param_type(v).json_schema() for k, v in d.get("props", {}).items()}
        schema = {"type": "object", "properties": props, "additionalProperties": False}
        return ParamType("object", name=name, schema=schema, factory=_require_object, nullable=nullable)
    item = param_type(d["item"]) if "item" in d else None
    if kind == "any" and not name:
        return ANY
    return ParamType(kind, item, name=name, nullable=nullable)


def _json_default(v: Any) -> Any:
    if isinstance(v, decimal.Decimal):
        return str(v)  # exact: Java reads a decimal from text
    if isinstance(v, (dt.datetime, dt.date, dt.time)):
        return v.isoformat()
    return to_jsonable(v)


def _json_arg(v: Any) -> str:
    return json.dumps(v, default=_json_default, separators=(",", ":"))


def _from_json(r: Any) -> Any:
    return json.loads(str(r))


def _jstr(r: Any) -> str | None:
    return None if r is None else str(r)


def _none(r: Any) -> None:
    return None


_RESULTS: dict[str, Callable[[Any], Any]] = {"J": int, "D": float, "Z": bool, "S": _jstr, "O": _from_json, "V": _none}


# ------------------------------------------------------------------------------------ state


@dataclass
class JavaQuery:
    """`LoadedSource.handle` of a Java query: its class loader and the host's view of its class."""

    rel: str
    class_name: str
    loader: Any  # coflows.jvm.WorkflowLoader of this version of the query
    handle: Any  # coflows.jvm.QueryHandle


@dataclass
class _WorkflowState:
    loader: Any  # coflows.jvm.WorkflowLoader: jars + Base classes
    classpath: list[str]  # for javac: host classes, jars
    jars: list[Path]
    base_key: str = ""  # the compile-cache key of its Base classes ("" without Base)
    queries: dict[str, JavaQuery] = field(default_factory=dict)  # rel path → current version
    names: dict[str, Any] = field(default_factory=dict)  # the bridge's resolver cache; cleared when queries change


class _Host:
    """The JPype classes of the engine's host code (loaded once, kept for the process)."""

    def __init__(self, classes: Path) -> None:
        import jpype

        self.classes = classes
        self.loader = build.host_loader(classes)

        def cls(name: str) -> Any:
            return jpype.JClass(name, loader=self.loader)

        self.Compiler = cls("coflows.jvm.Compiler")
        self.WorkflowLoader = cls("coflows.jvm.WorkflowLoader")
        self.QueryHandle = cls("coflows.jvm.QueryHandle")
        self.Invoker = cls("coflows.jvm.Invoker")
        self.UserFailure = cls("coflows.jvm.UserFailure")
        self.Calls = cls("coflows.jvm.Calls")
        self.Thread = jpype.JClass("java.lang.Thread")
        self.ArgumentFailure = cls("coflows.jvm.ArgumentFailure")
        self.Host = cls("coflows.Host")
        self.Callback = cls("coflows.Callback")
        self.AgentHandle = cls("coflows.jvm.AgentHandle")
        self.HookOutput = cls("coflows.jvm.HookOutput")
        self.Strings = jpype.JArray(jpype.JString)
        self.JException = jpype.JException


# -- stopping calls: Python thread → the Java thread JPype attached it as (see `JvmEngine.interrupt`)
_java_threads: dict[int, Any] = {}
_seen = threading.local()


def _note_thread(host: _Host) -> None:
    """Remember this thread's Java thread (once per thread: a thread-local says it is done).

    Keyed by `threading.get_ident()`, which a new thread may reuse: its first call overwrites.
    """
    _java_threads[threading.get_ident()] = host.Thread.currentThread()
    _seen.done = True


def _user_error(e: Any) -> CoflowsError:
    if str(e.getTypeName()) == "CallStopped" and str(e.getLanguage()) == "coflows":
        return CallTimeout(str(e.getUserMessage()))
    return UserCodeError(str(e.getTypeName()), str(e.getUserMessage()), str(e.getStackText()),
                         language=str(e.getLanguage()))


def _java_error(e: Any) -> UserCodeError:
    try:
        name = str(e.getClass().getName())
        message = e.getMessage()
        stack = str(e.stacktrace())
    except Exception:  # noqa: BLE001 - a broken exception object: say what we can
        name, message, stack = type(e).__name__, str(e), ""
    return UserCodeError(name, "" if message is None else str(message), stack, language="java")


_FRAME = re.compile(r"\(([^():]+\.java):(\d+)\)")


def _line_in(stack: str, filename: str) -> int | None:
    for m in _FRAME.finditer(stack):
        if m.group(1) == filename:
            return int(m.group(2))
    return None


def _arrange(args: list[Any], kwargs: dict[str, Any], names: tuple[str, ...], fn: str) -> list[Any]:
    out = list(args)
    for name in names[len(out):]:
        if name not in kwargs:
            raise ArgumentError(f"missing argument '{name}'", name)
        out.append(kwargs[name])
    if len(out) != len(names):
        raise ArgumentError(f"{fn}() takes {len(names)} argument(s), got {len(out)}")
    return out


def _make_invoke(host: _Host, name: str, invoker: Any, entry: Any, names: tuple[str, ...],
                 encoders: tuple[Callable[[Any], Any] | None, ...], result: Callable[[Any], Any],
                 spread: bool) -> Callable[[list[Any], dict[str, Any]], Any]:
    """The Python side of one call: arrange and encode arguments, call the static entry, convert the result.

    `invoker` (the host's `Invoker`) is kept alive by the closure: the host's id table holds
    it weakly, so it lives exactly as long as this Function.
    """
    n = len(names)  # positional calls of the wrong length are refused by JPype (TypeError → ArgumentError)
    ident = int(invoker.id())
    UserFailure, ArgumentFailure, JException = host.UserFailure, host.ArgumentFailure, host.JException
    encoding = any(e is not None for e in encoders)

    def failed(e: BaseException) -> CoflowsError:
        if isinstance(e, UserFailure):
            return _user_error(e)
        if isinstance(e, ArgumentFailure):
            parameter = e.getParameter()
            message = str(e.getMessage())
            if parameter is None:
                return ArgumentError(message)
            p = str(parameter)
            return ArgumentError(f"parameter '{p}': {message.removeprefix(p + ': ')}", p)
        if isinstance(e, JException):
            return _java_error(e)
        return ArgumentError(f"{name}(): {e}")  # JPype could not convert an argument

    if not encoding and not spread and result is int:
        def invoke_long(args: list[Any], kwargs: dict[str, Any], _keep: Any = invoker) -> Any:
            try:
                _seen.done
            except AttributeError:
                _note_thread(host)
            if kwargs:
                args = _arrange(args, kwargs, names, name)
            try:
                return int(entry(ident, *args))
            except (JException, TypeError, OverflowError) as e:
                raise failed(e) from None
        return invoke_long

    if not encoding and not spread:
        def invoke(args: list[Any], kwargs: dict[str, Any], _keep: Any = invoker) -> Any:
            try:
                _seen.done
            except AttributeError:
                _note_thread(host)
            if kwargs:
                args = _arrange(args, kwargs, names, name)
            try:
                r = entry(ident, *args)
            except (JException, TypeError, OverflowError) as e:
                raise failed(e) from None
            return result(r)
        return invoke

    def invoke_encoded(args: list[Any], kwargs: dict[str, Any], _keep: Any = invoker) -> Any:
        try:
            _seen.done
        except AttributeError:
            _note_thread(host)
        if kwargs or len(args) != n:
            args = _arrange(args, kwargs, names, name)
        if encoding:
            args = [a if e is None or a is None else e(a) for e, a in zip(encoders, args)]
        try:
            r = entry(ident, args) if spread else entry(ident, *args)
        except (JException, TypeError, OverflowError) as e:
            raise failed(e) from None
        return result(r)
    return invoke_encoded


def _installed_jars(jars_dir: Path) -> list[Path]:
    """Jars the installer put in `<workspace>/jars/`: `*.jar` there, and what its lock file names."""
    if not jars_dir.is_dir():
        return []
    out = sorted(jars_dir.glob("*.jar"))
    lock = jars_dir / "jars.lock.json"
    if lock.is_file():
        try:
            data = json.loads(lock.read_text(encoding="utf-8"))
            for a in data.get("artifacts", []):
                p = (jars_dir / a["path"]).resolve()
                if p.suffix == ".jar" and p.is_file():
                    out.append(p)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            log.warning("%s: unreadable, ignored", lock)
    return out


# ------------------------------------------------------------------------------------ engine


class JvmEngine(Engine):
    language = "java"
    extensions = (".java", ".jar")
    order = 20

    def __init__(self, runtime: Any) -> None:
        super().__init__(runtime)
        self._host: _Host | None = None
        self._callback: Any = None
        self._compile_lock = threading.Lock()
        self.compiled = CompileCache(None)  # set at start (engines/jvm/cache.py)
        self._state_lock = threading.Lock()
        self._workflows: dict[str, WorkflowContext] = {}
        self.objects: bridge.Converter | None = None
        self.java_version = ""

    # -- start --------------------------------------------------------------------------------
    def start(self) -> None:
        global _ENGINE
        try:
            import jpype
        except ImportError as e:
            raise EngineUnavailable(f"the Java engine needs JPype (pip install jpype1): {e}") from None

        try:
            build.start_jvm()
            self._host = _Host(build.build_host())
            self.java_version = str(jpype.JClass("java.lang.System").getProperty("java.version"))
            self.compiled = CompileCache(build.compiled_dir())
            self._callback = self._make_callback()
            self._host.Host.install(self._callback)
            self.objects = bridge.install(self._host.loader)  # app.quant.clr → Python
        except Exception as e:  # noqa: BLE001 - no JVM, no JDK, unwritable cache: Java files fail, the rest loads
            raise EngineUnavailable(f"the Java engine cannot start: {e}") from e
        _ENGINE = self

    def _make_callback(self) -> Any:
        import jpype

        engine = self

        @jpype.JImplements(self.host.Callback)
        class HostCallback:
            @jpype.JOverride
            def call(self, workflow: Any, ref: Any, args_json: Any) -> str:
                return engine._host_call(workflow, ref, args_json)

            @jpype.JOverride
            def m(self, op: Any, topic: Any, args_json: Any) -> str:
                return agents.m_call(op, topic, args_json)

            @jpype.JOverride
            def caller(self, op: Any, args_json: Any) -> str:
                return agents.caller_call(op, args_json)

        return HostCallback()

    # After Thread.interrupt(), how long a call may take to end before Thread.stop() (seconds).
    STOP_GRACE = 0.5

    def interrupt(self, thread_ident: int) -> bool:
        """Stop the Java call on `thread_ident`: `Thread.interrupt()` now, `Thread.stop()` after a grace.

        `coflows.jvm.Calls` only acts while that thread is inside a user call, and the stop names
        the call it was meant for, so neither ever lands in a later call.
        """
        host, jthread = self._host, _java_threads.get(thread_ident)
        if host is None or jthread is None:
            return False
        seq = int(host.Calls.interrupt(jthread))
        if not seq:
            return False
        timer = threading.Timer(self.STOP_GRACE, self._kill, (jthread, seq))
        timer.daemon = True
        timer.start()
        return True

    def _kill(self, jthread: Any, seq: int) -> None:
        try:
            if self.host.Calls.kill(jthread, seq):
                log.warning("a Java call did not end %.1f s after an interrupt: stopped it (Thread.stop)",
                            self.STOP_GRACE)
        except Exception:  # noqa: BLE001 - a timer thread: log, never raise
            log.exception("cannot stop a Java call")

    @property
    def host(self) -> _Host:
        if self._host is None:
            raise CoflowsError("the Java engine has not started")
        return self._host

    def _host_call(self, workflow: Any, ref: Any, args_json: Any) -> str:
        """`coflows.Host.call` from Java: call a registered Function, answer with a JSON envelope."""
        try:
            args = json.loads(str(args_json))
            wf = None if workflow is None else str(workflow)
            if wf is None:
                ctx = current()
                wf = ctx.workflow if ctx else None
            if self.runtime is not None:
                result = self.runtime.call(str(ref), *args, workflow=wf)
            else:
                from coflows.runtime import call

                result = call(str(ref), *args, workflow=wf)
            return to_json_bytes({"ok": result}).decode()
        except UserCodeError as e:
            err = {"type": e.type_name, "message": e.message, "language": e.language, "stack": e.stack}
        except CoflowsError as e:
            err = {"type": type(e).__name__, "message": str(e), "language": "coflows"}
        except Exception as e:  # noqa: BLE001 - every failure goes back to Java as an exception
            err = {"type": type(e).__name__, "message": str(e), "language": "python"}
        return json.dumps({"error": err})

    # -- workflows and Base -------------------------------------------------------------------
    def _jars(self, workflow: WorkflowContext, base: list[SourceFile]) -> list[Path]:
        jars = list(workflow.jar_paths) or _installed_jars(workflow.root / "jars")
        bins = [p for p in workflow.bin_paths if p.suffix.lower() == ".jar"]
        if not workflow.bin_paths and (workflow.root / "Bins").is_dir():
            bins = sorted((workflow.root / "Bins").rglob("*.jar"))
        jars += bins + [s.path for s in base if s.path.suffix.lower() == ".jar"]
        out: list[Path] = []
        for p in jars:
            p = Path(p).resolve()
            if p not in out:
                out.append(p)
        return out

    def _new_state(self, workflow: WorkflowContext, jars: list[Path], classes: Any, base_key: str = "") -> _WorkflowState:
        host = self.host
        existing = [p for p in jars if p.is_file()]
        loader = host.WorkflowLoader(f"{workflow.name}", host.Strings([str(p) for p in existing]),
                                     host.loader, classes)
        state = _WorkflowState(loader, [str(host.classes), *map(str, existing)], existing, base_key)
        workflow.state[self.language] = state
        self._workflows[workflow.id] = workflow
        bridge.register_workflow(workflow.id, lambda: workflow.state.get(self.language))
        return state

    def _state(self, workflow: WorkflowContext) -> _WorkflowState:
        state = workflow.state.get(self.language)
        if state is None:  # no Java Base: a loader over the jars alone
            with self._state_lock:
                state = workflow.state.get(self.language)
                if state is None:
                    state = self._new_state(workflow, self._jars(workflow, []), None)
        return state

    def _compile(self, names: list[str], texts: list[str], classpath: list[str], visible: Any,
                 base_key: str = "") -> tuple[Any, list[dict], str]:
        """Compile (or read back a cached compilation of the same inputs: engines/jvm/cache.py);
        returns the host's Result, its diagnostics and the compilation's key."""
        import jpype

        host = self.host
        key = compile_key((self.java_version, *JAVAC_OPTIONS, base_key), classpath, zip(names, texts))
        cached = self.compiled.get(key)
        if cached is not None:
            try:
                result = host.Compiler.Result.fromBytes(jpype.JArray(jpype.JByte)(cached))
                return result, json.loads(str(result.diagnostics())), key
            except (host.JException, ValueError) as e:  # damaged or from another version: compile again
                log.info("ignoring a cached Java compilation (%s)", e)
                self.compiled.reject(key)
        try:
            with self._compile_lock:
                result = host.Compiler.compile(host.Strings(names), host.Strings(texts), host.Strings(classpath),
                                               visible, host.Strings(list(JAVAC_OPTIONS)))
            diagnostics = json.loads(str(result.diagnostics()))
        except host.JException as e:  # the compiler itself failed (not the code): say so against the file(s)
            raise CompileError([SourceError(n, None, f"compiler failure: {_java_error(e)}") for n in names]) from None
        if result.ok():
            try:
                self.compiled.put(key, bytes(result.toBytes()))
            except host.JException as e:  # e.g. a name longer than the format holds: not cached
                log.info("not caching a Java compilation (%s)", e)
        return result, diagnostics, key

    @staticmethod
    def _diagnostic(d: dict[str, Any], fallback: str) -> SourceError:
        lines = [s.strip() for s in str(d.get("message") or "").splitlines() if s.strip()]
        message = lines[0] if lines else "error"
        if len(lines) > 1:
            message += " (" + "; ".join(lines[1:]) + ")"
        if d.get("kind") in ("WARNING", "MANDATORY_WARNING"):
            message = "warning: " + message
        return SourceError(d.get("source") or fallback, d.get("line"), message)

    def load_base(self, workflow: WorkflowContext, sources: list[SourceFile]) -> list[SourceError]:
        with objects.loading(workflow.id):  # names resolve in this workflow while its code loads
            return self._load_base(workflow, sources)

    def _load_base(self, workflow: WorkflowContext, sources: list[SourceFile]) -> list[SourceError]:
        errors: list[SourceError] = []
        jars = self._jars(workflow, sources)
        for p in jars:
            if not p.is_file():
                errors.append(SourceError(workflow.relpath(p), None, "jar not found"))
        pending: list[tuple[str, str]] = []
        for src in sources:
            if src.path.suffix.lower() != ".java":
                continue
            rel = workflow.relpath(src.path)
            try:
                pending.append((rel, src.read().replace("$WID$", workflow.id)))
            except OSError as e:
                errors.append(SourceError(rel, None, f"cannot read: {e.strerror}"))
        classes = None
        base_key = ""
        classpath = [str(self.host.classes), *(str(p) for p in jars if p.is_file())]
        while pending:
            try:
                result, diags, key = self._compile([n for n, _ in pending], [t for _, t in pending], classpath, None)
            except CompileError as e:
                errors += e.errors
                break
            broken = {d.get("source") for d in diags if d.get("kind") == "ERROR"}
            if result.ok():
                classes, base_key = result.classes(), key
                break
            names = {n for n, _ in pending}
            errors += [self._diagnostic(d, pending[0][0]) for d in diags if d.get("kind") == "ERROR"]
            if not broken & names:  # errors not tied to a file: nothing can be compiled
                break
            pending = [(n, t) for n, t in pending if n not in broken]
        self._new_state(workflow, jars, classes, base_key)
        for e in errors:
            log.error("%s: %s", workflow.name, e)
        return errors

    # -- queries ------------------------------------------------------------------------------
    def load(self, workflow: WorkflowContext, source: SourceFile) -> LoadedSource:
        with objects.loading(workflow.id):  # constructors and agent factories resolve names in this workflow
            return self._load(workflow, source)

    def _load(self, workflow: WorkflowContext, source: SourceFile) -> LoadedSource:
        host = self.host
        rel = workflow.relpath(source.path)
        if source.path.suffix.lower() != ".java":
            raise CompileError(SourceError(rel, None, "a .jar is not a query: list it under Jars, Bins or Base"))
        state = self._state(workflow)
        try:
            text = source.read().replace("$WID$", workflow.id)
        except OSError as e:
            raise CompileError(SourceError(rel, None, f"cannot read: {e.strerror}")) from None
        result, diags, _ = self._compile([rel], [text], state.classpath, state.loader, state.base_key)
        errors = [self._diagnostic(d, rel) for d in diags if d.get("kind") == "ERROR"]
        warnings = [self._diagnostic(d, rel) for d in diags if d.get("kind") != "ERROR"]
        if not result.ok():
            raise CompileError(errors or [SourceError(rel, None, "compilation failed")])
        candidates = list(result.topLevelClasses(rel))
        if not candidates:
            raise CompileError(SourceError(rel, None, "the file defines no class"))
        try:
            loader = host.WorkflowLoader(f"{workflow.name}/{rel}", None, state.loader, result.classes())
            handle = host.QueryHandle.open(loader, host.Strings(candidates), source.path.stem, workflow.id, result)
            desc = json.loads(str(handle.describe()))
        except host.UserFailure as e:
            stack = str(e.getStackText())
            raise CompileError(SourceError(rel, _line_in(stack, source.path.name),
                                           f"{e.getTypeName()}: {e.getUserMessage()}")) from None
        except host.JException as e:
            raise CompileError(SourceError(rel, None, str(_java_error(e)))) from None
        mdocs, javadoc = module_docs(text, workflow.id, rel)
        functions = self._functions(workflow, source, handle, desc, mdocs, javadoc)
        warnings += [SourceError(rel, None, w) for w in desc.get("warnings", [])]
        warnings += [SourceError(rel, None, e) for e in mdocs.errors]
        factory = None
        if source.kind == "agent":  # AgentError when the factory is missing, fails or returns no FPKG
            factory = agents.definition_from_handle(host, loader, desc["class"], source.exe,
                                                        workflow_id=workflow.id, source=rel, file_name=source.name)
        loaded = JavaQuery(rel, desc["class"], loader, handle)
        state.queries[rel] = loaded
        state.names.clear()
        return LoadedSource(functions=functions, handle=loaded, warnings=warnings, info=mdocs.info, factory=factory)

    def _functions(self, workflow: WorkflowContext, source: SourceFile, handle: Any, desc: dict[str, Any],
                   mdocs: Any, javadoc: dict[str, Any]) -> dict[str, Function]:
        host = self.host
        groups: dict[str, list[Function]] = {}
        for f in desc["functions"]:
            name = f["name"]
            docs = function_docs(name, mdocs, javadoc)
            params: list[Param] = []
            encoders: list[Callable[[Any], Any] | None] = []
            wires = ""
            for p in f["params"]:
                ptype = param_type(p["type"])
                params.append(Param(p["name"], ptype, True, None, docs.params.get(p["name"], "")))
                encoders.append(_json_arg if p["json"] else None)
                wires += p["wire"]
            result_wire = f["returns"]["wire"]
            invoker = handle.invoker(f["index"])
            entry = getattr(host.Invoker, build.entry_name(wires, result_wire))
            invoke = _make_invoke(host, name, invoker, entry, tuple(p.name for p in params), tuple(encoders),
                                  _RESULTS[result_wire], len(params) > build.MAX_TYPED_ARITY)
            returns = param_type(f["returns"]["type"]) if result_wire != "V" else ANY
            fn = Function(workflow.id, source.query_id or source.name, name, self.language, tuple(params),
                          invoke, docs, returns)
            groups.setdefault(name, []).append(fn)
        functions: dict[str, Function] = {}
        for name, fns in groups.items():
            primary = fns[0]
            primary.overloads = tuple(fns[1:])
            functions[name] = primary
        return functions

    def unload(self, workflow: WorkflowContext, source: SourceFile, loaded: LoadedSource) -> None:
        state = workflow.state.get(self.language)
        old = loaded.handle
        if state is not None and isinstance(old, JavaQuery) and state.queries.get(old.rel) is old:
            del state.queries[old.rel]
            state.names.clear()

    def unload_workflow(self, workflow: WorkflowContext) -> None:
        workflow.state.pop(self.language, None)
        if self._workflows.get(workflow.id) is workflow:
            del self._workflows[workflow.id]
            bridge.unregister_workflow(workflow.id)

    def describe(self) -> dict[str, Any]:
        return {"language": self.language, "version": self.java_version, "bridge": "jpype",
                "host_classes": str(self._host.classes) if self._host else None}

    # -- interop ------------------------------------------------------------------------------
    def workflow_state(self, workflow: str | None = None) -> _WorkflowState:
        """By ID or Name; None: the workflow of the running call, else the only Java workflow."""
        ctx: WorkflowContext | None = None
        if workflow is None:
            call = current()
            if call is not None:
                ctx = self._workflows.get(call.workflow)
            if ctx is None and len(self._workflows) == 1:
                ctx = next(iter(self._workflows.values()))
        else:
            ctx = self._workflows.get(workflow) or next(
                (w for w in self._workflows.values() if w.name.lower() == workflow.lower()), None)
        state = ctx.state.get(self.language) if ctx is not None else None
        if state is None:
            raise NotFoundError(f"no Java classes loaded for workflow {workflow!r}")
        return state


def engine() -> JvmEngine:
    """The process's Java engine (started by a Runtime that loaded Java sources)."""
    if _ENGINE is None:
        raise CoflowsError("the Java engine has not started: no workflow with Java sources is loaded")
    return _ENGINE


def class_loader(workflow: str | None = None, query: str | None = None) -> Any:
    """The class loader of a workflow (jars + Base), or of one of its queries (by file or query ID)."""
    state = engine().workflow_state(workflow)
    if query is None:
        return state.loader
    for rel, q in state.queries.items():
        if rel == query or Path(rel).name == query or rel.removeprefix("Queries/") == query:
            return q.loader
    raise NotFoundError(f"no Java query {query!r} is loaded")


def java_class(workflow: str | None, name: str) -> Any:
    """A workflow's Java class as a JPype class: Base and jar classes first, then query classes.

    `java_class("$WID$", "javabase.JavaBase").Hello("Python")`. The values are JPype's
    (`JString`, Java lists, …): use `coflows.call("Q.java/f", …)` for converted results.
    JPype keeps every class it wraps for the life of the process, so a class reached
    this way pins its loader (a reloaded query's old classes stay in memory).
    """
    import jpype

    state = engine().workflow_state(workflow)
    loaders = [state.loader, *(q.loader for q in state.queries.values())]
    for loader in loaders:
        try:
            return jpype.JClass(name, loader=loader)
        except Exception:  # noqa: BLE001 - not in this loader: try the next
            continue
    raise NotFoundError(f"no Java class {name!r} in workflow {workflow!r}")


class JavaPackage:
    """`jpype.JPackage`-style access through a workflow's loaders: `java_package(wid).com.google.gson.Gson`."""

    __slots__ = ("_workflow", "_prefix")

    def __init__(self, workflow: str | None, prefix: str = "") -> None:
        self._workflow = workflow
        self._prefix = prefix

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        name = f"{self._prefix}.{attr}" if self._prefix else attr
        if attr[:1].isupper():
            try:
                return java_class(self._workflow, name)
            except NotFoundError:
                pass
        return JavaPackage(self._workflow, name)

    def __repr__(self) -> str:
        return f"<java package {self._prefix or '(root)'} of workflow {self._workflow}>"


def java_package(workflow: str | None = None, prefix: str = "") -> JavaPackage:
    return JavaPackage(workflow, prefix)


__all__ = ["JavaPackage", "JavaQuery", "JvmEngine", "class_loader", "engine", "java_class", "java_package",
           "param_type"]
