"""The JavaScript engine: V8 in-process through mini-racer's native library.

- **One V8 context per workflow** (its own isolate and V8 thread, so a long
  call in one workflow never holds up another). Base `.js` files are evaluated
  first, at the context's global scope, in manifest order: their declarations
  are globals every query of the workflow sees.
- **Each query file has its own scope**: its text is evaluated inside a
  function (`function (console, coflows) { <file> }`), so two queries may
  both define `Add`, and `var`/`function` declarations stay out of the global
  object. Only assignments to undeclared names (sloppy mode) leak to the
  global scope, shared by the workflow's files, as in any script.
- **Functions** are the file's top-level bindings: `function f`, `let f =
  function…`, arrow functions, `export function`; other values (`let getName =
  'x'`) are served as zero-argument functions returning their current value.
  Names starting with `_` and classes are private. Parameters come from V8's
  `fn.toString()`, types from JSDoc `@param {number} x` or CoFlows XML
  (`/// <param name="x" type="integer">`); undeclared ones get strings, as in
  CoFlows (where a string starting with `{"` arrives as a parsed object).
- **Calls** exchange JSON: one V8 task per call (≈30 µs, see v8.py); a
  returned Promise is awaited. Every call has a time limit (`<api
  timeout="2">`, JSDoc `@timeout 2`, else `Engines.JsTimeoutSeconds`): V8
  terminates the script and the context stays usable. A context that goes
  over `Engines.JsMemoryLimitMb`, or stays busy after a time limit (a loop
  after an `await`, which no task cancel reaches), is thrown away and rebuilt
  from the last good Base and query versions.
- **Interop**: `await coflows.call("PythonQuery.py", "Hello", "JS")` calls any
  registered Function; `console.log/info/warn/error` go to the `coflows.user`
  log tagged `workflow/query/function`. `await M.Base("topic").Add(v)` (and Get,
  Count, Exchange, Remove, …) is Python's `coflows.m` on the same host path.
  CoFlows' synchronous interop (`importNamespace('Cs.Base')`, `System`,
  `qkernel.User.ContextUser`) is live proxies over `coflows.objects`, each
  access a synchronous host call (objects.py, sync.py; docs/compat-js.md).
- **Agents**: an agent file's factory (`pkg()`, package.json `Exe`) returns
  CoFlows' `{ID, Name, MID, Load, Add, …, Job}` (or `Exe` names that package,
  `let pkg = new qengine.FPKG(...)`); its hooks become Python callables on the
  normal call path (`LoadedSource.factory`).

See docs/engines/javascript.md.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import math
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from coflows.calls.deadline import remaining
from coflows.agents.definition import AgentDefinition, AgentError, definition_from
from coflows.context import CallContext, call_context, current, user_log
from coflows.engines.base import Engine, LoadedSource, SourceFile, WorkflowContext
from coflows.engines.js.objects import ObjectBridge
from coflows.engines.js.prelude import prelude as context_prelude
from coflows.engines.js.sync import SyncChannel
from coflows.engines.js.source import JsDoc, JsParam, parse_jsdoc, params_of, scan
from coflows.engines.js.v8 import (
    V8Closed,
    V8Context,
    V8Error,
    V8ExecuteError,
    V8OutOfMemory,
    V8ParseError,
    V8Reentrant,
    V8Terminated,
    V8Timeout,
    serving,
    v8_version,
)
from coflows.errors import CallTimeout, CoflowsError, CompileError, NotFoundError, SourceError, UserCodeError
from coflows.functions import Function, FunctionDocs, Param
from coflows.serialize import to_jsonable
from coflows.types import ANY, ParamType, type_from_name
from coflows.xmldocs import parse_module_docs

log = logging.getLogger("coflows.engines.js")

_HOST = "__coflows_host"
_SAB = "__coflows_sab"  # the synchronous channel's buffer and function (sync.py), until the prelude takes them
_SYNC = "__coflows_sync"
_HOOK_PREFIX = "\x00agent:"  # an agent's hooks in its file's scope (prelude.registerAgent)
# M.Base(topic).<op> in JavaScript → the method of coflows.m.api.MSet
_M_OPS = {"Add": "add", "AddMany": "add_many", "Exchange": "exchange", "ExchangeID": "exchange_id",
          "Remove": "remove", "RemoveID": "remove_id", "Get": "get", "Find": "find", "Entries": "entries",
          "KeyValues": "key_values", "Values": "list", "Count": "count", "Clear": "clear"}
_LEVELS = {"info": logging.INFO, "debug": logging.DEBUG, "warning": logging.WARNING, "error": logging.ERROR}
_encoder = json.JSONEncoder(default=to_jsonable, allow_nan=False, separators=(",", ":"))
_LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<msg>.*)$")
_DATE = ParamType("datetime", name="Date")
_RESERVED = frozenset("""break case catch class const continue debugger default delete do else enum export extends
    false finally for function if import in instanceof new null return super switch this throw true try typeof var
    void while with yield let static implements interface package private protected public await arguments eval
    undefined""".split())


def _to_json(value: Any) -> str:
    try:
        return _encoder.encode(value)
    except ValueError:  # NaN / Infinity are not JSON: null, as the server does
        return _encoder.encode(_clean(json.loads(json.dumps(value, default=to_jsonable))))


def _clean(v: Any) -> Any:
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if isinstance(v, list):
        return [_clean(x) for x in v]
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    return v


def _trim(d: dict, keep: int = 4096) -> None:
    """Bound a bookkeeping dict (oldest entries first): answers that never come must not pile up."""
    while len(d) > keep:
        del d[next(iter(d))]


def js_type(name: str | None) -> ParamType:
    """A JSDoc / CoFlows type name → ParamType (`number`, `integer`, `string[]`, `Array<number>`, `Date`, …)."""
    if not name:
        return ANY
    n = name.strip()
    if n.startswith("?") and len(n) > 1:  # JSDoc nullable
        inner = js_type(n[1:])
        return dataclasses.replace(inner, nullable=True) if inner is not ANY else ANY
    n = n.lstrip("!").rstrip("=").strip()
    if n.startswith("..."):
        n = n[3:]
    if n.startswith("(") and n.endswith(")"):
        n = n[1:-1].strip()
    if "|" in n:
        parts = {p.strip() for p in n.split("|")} - {"null", "undefined", "void"}
        if len(parts) != 1:
            return ANY
        inner = js_type(parts.pop())
        return dataclasses.replace(inner, nullable=True) if inner is not ANY else ANY
    low = n.lower()
    if low == "date":
        return _DATE
    if low.startswith("promise<") and low.endswith(">"):
        return js_type(n[8:-1])
    if low.startswith(("object<", "record<", "map<")) or n.startswith("{"):
        return ParamType("dict", ANY)
    if low in ("function", "promise", "undefined", "void", "null"):
        return ANY
    return type_from_name(n)


@dataclass
class _Script:
    """One loaded version of a query file: what a rebuilt context evaluates again."""

    qid: str
    rel: str
    body: str  # the wrapped file after the prefix (the prefix is made per evaluation)
    header: str  # the prefix without the call id
    prefix_len: int
    nlines: int  # lines of the user's text
    exe: str | None = None  # agents: the factory's name, called again when the context is rebuilt


@dataclass(slots=True)
class _Fn:
    """What a call needs, computed once at load."""

    qid: str
    name: str
    prefix: str  # `,"<tag>","<query>","<fn>",` pieces of the call script
    tag: str
    names: tuple[str, ...]
    any_idx: tuple[int, ...]
    date_idx: tuple[int, ...]
    timeout: float | None
    label: str = ""  # how errors name it (default `query/name`)


@dataclass
class _PromiseWait:
    ctx: V8Context
    lock: threading.Lock = field(default_factory=threading.Lock)
    payload: str | None = None


class _JsWorkflow:
    """The V8 context of one workflow and what it holds (Base, query scopes), rebuildable."""

    # After a time limit, a context that does not answer a no-op within this long (beyond the
    # deadlines of calls still queued in it) is running something no cancel reaches: rebuild it.
    PROBE_GRACE = 0.5
    # A call ends this much before its thread's call deadline, so that V8 stops it (and the thread
    # is free) before the watchdog answers 504 and would have to stop it from outside.
    DEADLINE_MARGIN = 0.05
    # A synchronous host call (sync.py) gives up this much before its JavaScript call's deadline.
    SYNC_MARGIN = 0.25

    def __init__(self, engine: JsEngine, workflow: WorkflowContext,
                 base: list[tuple[str, str]] | None = None, replica: bool = False) -> None:
        self.engine = engine
        self.id = workflow.id
        self.name = workflow.name
        self.lock = threading.RLock()
        self.base: list[tuple[str, str]] = base or []  # (rel, text)
        self.scripts: dict[str, _Script] = {}
        self.previous_agents: dict[str, _Script | None] = {}  # agent qid -> the version before its last load
        self.prefix_lens: dict[str, int] = {}  # rel → length of the wrapper on line 1
        self.ids = itertools.count(1)
        self.inflight: dict[int, CallContext | None] = {}  # call id → caller, for coflows.call's context
        self.running: dict[int, tuple[V8Context, float]] = {}  # call id → (context, deadline) while queued/running
        self.promises: dict[int, _PromiseWait] = {}
        self.early: dict[int, str] = {}  # settled before their caller started waiting (a race)
        self.abandoned: dict[int, None] = {}  # timed out while awaiting: drop their late answers
        self.plock = threading.Lock()
        self.closed = False
        self.restarts = 0
        self.stopped: set[int] = set()  # call ids stopped by `interrupt` (their context was replaced)
        self.ctx, self.errors = self._make_context()
        # More isolates with the same Base and queries (Engines.JsIsolates): a call goes to the least
        # busy one, so one runaway call never holds up the workflow's other JavaScript calls. Agents
        # (their hooks and state) live in this first isolate only.
        self.replicas: list[_JsWorkflow] = [] if replica else [
            _JsWorkflow(engine, workflow, base, replica=True) for _ in range(engine.isolates() - 1)]
        self.isolates: tuple[_JsWorkflow, ...] = (self, *self.replicas)

    # -- contexts ---------------------------------------------------------------------------
    def _make_context(self) -> tuple[V8Context, list[SourceError]]:
        ctx = V8Context(name=self.name)
        ctx._on_message = lambda message, c=ctx: self._on_message(c, message)
        limit = self.engine.memory_limit_bytes()
        ctx.set_memory_limit(limit, int(limit * 0.8))
        ctx.install_host_function(_HOST)
        bridge = ObjectBridge(self.id, self.inflight.get, lambda c=ctx: self.engine.pool.submit(self._collect, c, True))
        channel = SyncChannel(ctx, _SAB, _SYNC, bridge.serve, self._sync_deadline)
        ctx.objects = (channel, bridge)  # type: ignore[attr-defined]
        ctx.eval(context_prelude(json.dumps(self.id), _HOST, _SAB, _SYNC))
        errors = [e for rel, text in self.base if (e := self._eval_base(ctx, rel, text))]
        for script in list(self.scripts.values()):
            try:
                self._eval_script(ctx, script)
                if script.exe:
                    self._eval_agent(ctx, script)
            except CompileError as e:  # it loaded before; Base changed under it or it is not deterministic
                errors.extend(e.errors)
            except AgentError as e:
                errors.append(SourceError(script.rel, None, str(e)))
        return ctx, errors

    def rebuild(self, old: V8Context, reason: str) -> None:
        """Replace a context (unless someone already did): fresh isolate, Base and last good queries again."""
        with self.lock:
            if self.ctx is not old or self.closed:
                return
            log.warning("%s: restarting its JavaScript context: %s", self.name, reason)
            new, errors = self._make_context()
            for e in errors:
                log.error("%s: after restart: %s", self.name, e)
            self.ctx = new
            self.restarts += 1
        self._close_context(old)

    def _sync_deadline(self, request: str) -> float:
        """Until when a synchronous host call may take: its JavaScript call's deadline (else the load limit)."""
        cid = int(request[1:request.index(",")])
        entry = self.running.get(cid)
        if entry is None:
            return time.monotonic() + self._timeout()
        return entry[1] - self.SYNC_MARGIN  # the JavaScript can still catch the host call's TimeoutError

    def _close_context(self, ctx: V8Context) -> None:
        objects = getattr(ctx, "objects", None)
        if objects is not None:
            objects[0].close()  # wake a V8 thread waiting in a host call, or close() would wait for it
        ctx.close()
        if objects is not None:
            objects[1].close()  # release the context's host-object handles
        with self.plock:
            waits = [(cid, w) for cid, w in self.promises.items() if w.ctx is ctx]
            for cid, w in waits:
                del self.promises[cid]
                w.payload = None
                w.lock.release()

    def set_base(self, sources: list[tuple[str, str]]) -> list[SourceError]:
        for r in self.replicas:
            r.set_base(sources)
        with self.lock:
            self.base = sources
            old = self.ctx
            self.ctx, errors = self._make_context()
        self._close_context(old)
        return errors

    def close(self) -> None:
        for r in self.replicas:
            r.close()
        with self.lock:
            self.closed = True
            self._close_context(self.ctx)

    # -- loading ------------------------------------------------------------------------------
    def _timeout(self) -> float:
        return self.engine.default_timeout()

    def _eval_base(self, ctx: V8Context, rel: str, text: str) -> SourceError | None:
        try:
            ctx.eval(text + "\n//# sourceURL=" + rel, timeout=self._timeout())
            self._answer(ctx, ctx.eval("__coflows.flush()"), None, 0, rel)
        except V8ExecuteError as e:  # and V8ParseError
            return self._parse_error(str(e), rel, 0, len(text.splitlines()))
        except V8Timeout:
            return SourceError(rel, None, f"did not finish loading in {self._timeout():g} s")
        except V8OutOfMemory:
            return SourceError(rel, None, "went over the JavaScript memory limit while loading")
        except V8Error as e:
            return SourceError(rel, None, f"{type(e).__name__}: {e}")
        return None

    @staticmethod
    def _parse_error(message: str, rel: str, prefix_len: int, nlines: int) -> SourceError:
        """`rel:line: SyntaxError: msg` + source line + caret (V8's message) → SourceError.

        Lines past the user's text (our wrapper's tail, e.g. "Unexpected end of input") are
        reported on the file's last line.
        """
        lines = message.splitlines()
        m = _LINE.match(lines[0]) if lines else None
        if not m:
            return SourceError(rel, None, message.strip() or "cannot load")
        line = int(m.group("line"))
        column = None
        if len(lines) >= 3 and "^" in lines[2]:
            column = lines[2].index("^") + 1
            if line == 1:
                column = max(1, column - prefix_len)
        msg = m.group("msg")
        if line > nlines:
            line, column = max(1, nlines), None
            if msg.startswith("SyntaxError"):
                msg = "SyntaxError: Unexpected end of input (an unclosed bracket, string, template or comment?)"
        file = m.group("file") if m.group("file") != "<anonymous>" else rel
        return SourceError(file, line, msg, column)

    def _eval_script(self, ctx: V8Context, script: _Script) -> list[dict]:
        cid = next(self.ids)
        code = f"__coflows.load({cid:>12}{script.header}{script.body}"
        deadline = time.monotonic() + self._timeout()
        try:
            s = ctx.eval(code, timeout=self._timeout())
            return self._answer(ctx, s, None, cid, script.rel, deadline=deadline)
        except V8ParseError as e:
            raise CompileError(self._parse_error(str(e), script.rel, script.prefix_len, script.nlines)) from None
        except UserCodeError as e:
            line = col = None
            m = re.search(re.escape(script.rel) + r":(\d+):(\d+)", e.stack or "")
            if m:
                line, col = int(m.group(1)), int(m.group(2))
            raise CompileError(SourceError(script.rel, line, f"{e.type_name}: {e.message}", col)) from None
        except (V8Timeout, CallTimeout):
            self._probe_later(ctx, cid)
            raise CompileError(SourceError(script.rel, None,
                                           f"did not finish loading in {self._timeout():g} s")) from None
        except V8Error as e:
            raise CompileError(SourceError(script.rel, None, f"{type(e).__name__}: {e}")) from None

    def load(self, workflow: WorkflowContext, source: SourceFile) -> LoadedSource:
        rel = workflow.relpath(source.path)
        qid = source.query_id or source.name
        try:
            text = source.read()
        except OSError as e:
            raise CompileError(SourceError(rel, None, f"cannot read: {e.strerror}")) from None
        text = text.replace("$WID$", workflow.id)
        scanned = scan(text)
        if scanned.imports:
            raise CompileError([SourceError(rel, line, "import/export … from is not supported: there is no module "
                                            "loader; put shared code in a Base file (its globals are visible)")
                                for line in scanned.imports])
        names = [n for n in scanned.names() if not n.startswith("_") and "\\" not in n and n not in _RESERVED]
        strict = '"use strict";' if scanned.module else ""
        keyword = "async function" if scanned.top_level_await else "function"
        load_tag = f"{self.name}/{qid}/(load)"
        # The file runs in an inner function, so it may declare its own `console` or `coflows`.
        header = (f",{json.dumps(load_tag)},{json.dumps(qid)},"
                  f"function(console,coflows){{return({keyword}(){{{strict}")
        pairs = ",".join(f"[{json.dumps(n)},()=>{n}]" for n in names)
        body = f"{scanned.text}\n;return [{pairs}];}}).call(this)}})\n//# sourceURL={rel}"
        prefix_len = len("__coflows.load(") + 12 + len(header)
        exe = (source.exe or "pkg") if source.kind == "agent" else None
        script = _Script(qid, rel, body, header, prefix_len, len(text.splitlines()), exe)
        agent: dict | None = None
        with self.lock:
            previous = self.scripts.get(qid)
            self.prefix_lens[rel] = prefix_len
            described = self._eval_script(self.ctx, script)
            self.scripts[qid] = script
            if exe:
                try:
                    agent = self._eval_agent(self.ctx, script)
                except AgentError:
                    self._restore_agent(qid, previous)
                    raise
                self.previous_agents[qid] = previous
        if not exe:
            for r in self.replicas:
                r.add_script(script)
        mdocs = parse_module_docs(text, "///", workflow.id, rel)
        functions: dict[str, Function] = {}
        for item in described:
            name, kind = item["n"], item["k"]
            if kind == "class" or name.startswith("_"):
                continue
            if item.get("h") and name not in mdocs.apis:  # `var cbase = importNamespace(...)`: not an API
                continue
            functions[name] = self._function(qid, name, kind, item, scanned.find(name), mdocs.apis.get(name))
        warnings = [SourceError(rel, None, e) for e in mdocs.errors]
        factory = self._agent_definition(workflow, source, script, agent) if agent is not None else None
        return LoadedSource(functions=functions, handle=script, warnings=warnings, info=mdocs.info, factory=factory)

    # -- agents -------------------------------------------------------------------------------
    def _eval_agent(self, ctx: V8Context, script: _Script) -> dict:
        """Call the agent file's factory (`pkg()`, awaited); its hooks stay in the file's scope.

        Answers `{"fields": {ID, Name, MID, …}, "hooks": ["Add", …]}`.
        """
        exe = script.exe or "pkg"
        cid = next(self.ids)
        tag = f"{self.name}/{script.qid}/{exe}"
        code = f"__coflows.agent({cid},{json.dumps(tag)},{json.dumps(script.qid)},{json.dumps(exe)})"
        timeout = self._timeout()
        deadline = time.monotonic() + timeout
        try:
            s = ctx.eval(code, timeout=timeout)
            return self._answer(ctx, s, None, cid, f"{script.qid}/{exe}", deadline=deadline)
        except UserCodeError as e:
            raise AgentError(f"{script.rel}: {exe}() failed: {e.type_name}: {e.message}\n{e.stack}".rstrip()) from None
        except (V8Timeout, CallTimeout):
            self._probe_later(ctx, cid)
            raise AgentError(f"{script.rel}: {exe}() did not finish in {timeout:g} s") from None
        except V8Error as e:
            raise AgentError(f"{script.rel}: {exe}(): {type(e).__name__}: {e}") from None

    def _restore_agent(self, qid: str, previous: _Script | None) -> None:
        """Evaluate an agent file's previous version again: hooks are looked up in the file's scope
        by name, so an agent still running the previous version would otherwise call the new one."""
        if previous is None:
            return
        self.prefix_lens[previous.rel] = previous.prefix_len
        self.scripts[qid] = previous
        try:
            self._eval_script(self.ctx, previous)
            self._eval_agent(self.ctx, previous)
        except (CompileError, AgentError) as e:
            log.error("%s: %s: restoring the previous version: %s", self.name, previous.rel, e)

    def restore_agent(self, qid: str) -> None:
        """The agent's new version loaded but was refused (its schedule, a duplicate ID): the previous again."""
        with self.lock:
            previous = self.previous_agents.pop(qid, None)
            if previous is not None and self.scripts.get(qid) is not previous:
                self._restore_agent(qid, previous)

    def _agent_definition(self, workflow: WorkflowContext, source: SourceFile, script: _Script,
                          agent: dict) -> AgentDefinition:
        """The factory's answer → AgentDefinition, by Python agents' rules (definition_from)."""
        fields = agent.get("fields") or {}
        hooks = {h: self._hook(script.qid, h) for h in agent.get("hooks") or []}
        stem = source.path.stem
        return definition_from({**fields, **hooks}, workflow_id=workflow.id, default_id=f"{workflow.id}-{stem}",
                               default_name=stem, source=script.rel, language="javascript")

    def _hook(self, qid: str, hook: str) -> Any:
        """A Python callable calling hook `hook` of agent `qid` through the normal call path."""
        name = _HOOK_PREFIX + hook
        tag = f"{self.name}/{qid}/{hook}"
        meta = _Fn(qid, name, f",{json.dumps(tag)},{json.dumps(qid)},{json.dumps(name)},", tag, (), (),
                   (0,) if hook == "Job" else (), None, f"{qid}/{hook}")

        def call_hook(*args: Any, _m: _Fn = meta, _w: _JsWorkflow = self) -> Any:
            from coflows.agents.runner import _capture  # the run's output: console.log shows in its record

            return _w.call(_m, list(args), {}, getattr(_capture, "buf", None))

        call_hook.__name__ = hook
        call_hook.__qualname__ = f"{qid}.{hook}"
        return call_hook

    def add_script(self, script: _Script) -> None:
        """A replica: evaluate a query the first isolate loaded (its errors were reported there)."""
        with self.lock:
            self.prefix_lens[script.rel] = script.prefix_len
            self.scripts[script.qid] = script
            try:
                self._eval_script(self.ctx, script)
            except CompileError as e:
                log.error("%s: %s in a second JavaScript isolate: %s", self.name, script.rel, e)

    def unload(self, script: _Script) -> None:
        for r in self.replicas:
            r.unload(script)
        with self.lock:
            if self.scripts.get(script.qid) is script:
                del self.scripts[script.qid]
                try:
                    self.ctx.eval(f"__coflows.unload({json.dumps(script.qid)})", timeout=self._timeout())
                except V8Error:
                    pass

    def _function(self, qid: str, name: str, kind: str, item: dict, decl: Any,
                  xml: FunctionDocs | None) -> Function:
        jsdoc = parse_jsdoc(decl.doc) if decl is not None and decl.doc else JsDoc()
        js_params: list[JsParam] = []
        if kind == "function":
            parsed = params_of(item.get("s", ""))
            js_params = parsed if parsed is not None else [JsParam(f"arg{i}") for i in range(item.get("l", 0))]
        docs = xml or FunctionDocs()
        if not docs.description:
            docs.description = jsdoc.description
        if not docs.returns:
            docs.returns = jsdoc.returns
        if docs.timeout is None:
            docs.timeout = jsdoc.timeout
        params: list[Param] = []
        varargs = False
        for p in js_params:
            if p.rest:
                varargs = True
                continue
            jp = jsdoc.params.get(p.name)
            tname = docs.param_types.get(p.name) or (jp.type if jp else "")
            ptype = js_type(tname)
            if ptype is ANY and p.pattern:
                ptype = ParamType("dict", ANY) if p.pattern == "object" else ParamType("list", ANY)
            required = not p.optional and not (jp is not None and jp.optional)
            default = None
            for text in (p.default, jp.default if jp else None):
                if text is not None:
                    try:
                        default = json.loads(text)
                        break
                    except ValueError:
                        continue
            if jp is not None and jp.description:
                docs.params.setdefault(p.name, jp.description)
            params.append(Param(p.name, ptype, required, None if required else default,
                                docs.params.get(p.name, "")))
        returns = js_type(jsdoc.returns_type)
        tag = f"{self.name}/{qid}/{name}"
        meta = _Fn(qid, name, f",{json.dumps(tag)},{json.dumps(qid)},{json.dumps(name)},", tag,
                   tuple(p.name for p in params),
                   tuple(i for i, p in enumerate(params) if p.type is ANY),
                   tuple(i for i, p in enumerate(params) if p.type.kind in ("datetime", "date")),
                   docs.timeout)

        def invoke(args: list[Any], kwargs: dict[str, Any], _m: _Fn = meta, _w: _JsWorkflow = self) -> Any:
            return _w.pick().call(_m, args, kwargs)

        return Function(self.id, qid, name, "javascript", tuple(params), invoke, docs, returns, varargs)

    # -- calls --------------------------------------------------------------------------------
    def pick(self) -> _JsWorkflow:
        """The isolate with the fewest calls queued or running (the first one on a tie), never the one
        whose host call this thread is serving (sync.py) if there is another."""
        isolates = self.isolates
        if len(isolates) == 1:
            return self
        waiting = getattr(serving, "ctx", None)  # serving a host call of that isolate: it cannot run JavaScript
        return min(isolates, key=lambda w: (w.ctx is waiting, len(w.running)))

    def stop(self, ident: int, cid: int, ctx: V8Context) -> None:
        """Stop call `cid`, which thread `ident` waits for (a time limit or a gone client, from
        `JsEngine.interrupt`): V8 terminates its script, as at the call's own time limit (the
        isolate's state stays); an isolate that does not answer soon after (a loop after an
        `await`, which no cancel reaches) is replaced (`_probe_later`)."""
        self.stopped.add(cid)
        if not ctx.cancel_thread(ident):  # not running a script now (awaiting a Promise): replace it
            self.engine.pool.submit(self.rebuild, ctx, f"call {cid} was stopped (its time limit passed or "
                                                       "its caller went away)")
            return
        self._probe_later(ctx, cid)

    def call(self, m: _Fn, args: list[Any], kwargs: dict[str, Any], sink: Any = None) -> Any:
        """Call a function; `sink` (a text stream) also gets the call's console output (agent runs)."""
        fix: list[list[int]] = []
        if kwargs:
            index = {n: i for i, n in enumerate(m.names)}
            slots: list[Any] = list(args)
            given = set(range(len(args)))
            for k, v in kwargs.items():
                i = index[k]
                while len(slots) <= i:
                    slots.append(None)
                slots[i] = v
                given.add(i)
            fix = [[i, 0] for i in range(len(slots)) if i not in given]
            args = slots
        for i in m.any_idx:  # CoFlows (Jint): a string argument starting with {" arrives as an object
            if i < len(args) and isinstance(args[i], str) and args[i].startswith('{"'):
                try:
                    args[i] = json.loads(args[i])
                except ValueError:
                    pass
        for i in m.date_idx:
            if i < len(args) and args[i] is not None:
                fix.append([i, 1])
        parent = current()
        tag = parent.tag if parent is not None else m.tag
        payload = _to_json(args) if args else "[]"
        cid = next(self.ids)
        tail = f",{json.dumps(fix, separators=(',', ':'))})" if fix else ")"
        if parent is None or tag == m.tag:
            code = f"__coflows.call({cid}{m.prefix}{json.dumps(payload)}{tail}"
        else:
            code = (f"__coflows.call({cid},{json.dumps(tag)},{json.dumps(m.qid)},{json.dumps(m.name)},"
                    f"{json.dumps(payload)}{tail}")
        timeout = m.timeout or self.engine.call_timeout()
        deadline = time.monotonic() + timeout
        left = remaining()  # the thread's call deadline (the watchdog's): end a little before it
        if left is not None:
            timeout = min(timeout, left)
            deadline = min(deadline, time.monotonic() + max(0.0, left - self.DEADLINE_MARGIN))
        where = m.label or f"{m.qid}/{m.name}"
        me = threading.get_ident()
        threads = self.engine.threads
        outer = threads.get(me)
        for attempt in (0, 1):
            ctx = self.ctx
            self.inflight[cid] = parent
            self.running[cid] = (ctx, deadline)
            threads[me] = (self, ctx, cid)
            try:
                if cid in self.stopped:
                    raise V8Closed("stopped")
                try:
                    s = ctx.eval(code, timeout=max(0.0, deadline - time.monotonic()))
                finally:
                    self.running.pop(cid, None)
                return self._answer(ctx, s, parent, cid, where, deadline=deadline, timeout=timeout, sink=sink)
            except V8Closed:
                if cid in self.stopped:
                    raise self._stopped(where) from None
                if attempt == 0 and self.ctx is not ctx and not self.closed:
                    continue  # queued in a context that was replaced meanwhile: it never ran
                raise UserCodeError("ContextRestarted", f"{where}: the workflow's JavaScript context was "
                                    "restarted during the call (another call went over a limit); try again",
                                    language="javascript") from None
            except V8Timeout:
                self._probe_later(ctx, cid)
                raise CallTimeout(f"{where}: JavaScript did not finish in {timeout:g} s; the call was "
                                  "stopped (raise the limit with <api timeout=\"…\">, JSDoc @timeout or "
                                  "Engines.JsTimeoutSeconds)") from None
            except V8OutOfMemory:
                self.rebuild(ctx, f"{where} went over the memory limit")
                raise self._memory_error(where) from None
            except V8Terminated:
                if cid in self.stopped:
                    raise self._stopped(where) from None
                if ctx.memory_limit_reached():
                    self.rebuild(ctx, f"{where} went over the memory limit")
                    raise self._memory_error(where) from None
                if attempt == 0:
                    # Not ours: a cancel that raced with the end of the previous task leaves V8's
                    # termination pending, and it stops the next script as it starts. Run it again.
                    continue
                raise UserCodeError("Terminated", f"{where}: JavaScript execution was terminated",
                                    language="javascript") from None
            except V8Reentrant as e:
                raise UserCodeError("ReentrantCall", f"{where}: {e}", language="javascript") from None
            except V8ExecuteError as e:  # an error outside the protocol (should not happen): show V8's text
                raise UserCodeError("Error", str(e).splitlines()[0] if str(e) else "JavaScript error",
                                    str(e), language="javascript") from None
            except UserCodeError as e:
                if cid in self.stopped and e.type_name == "ContextRestarted":
                    raise self._stopped(where) from None
                raise
            finally:
                self.stopped.discard(cid)
                if outer is None:
                    threads.pop(me, None)
                else:
                    threads[me] = outer
                self.inflight.pop(cid, None)
                if ctx.memory_limit_reached():
                    self.rebuild(ctx, f"{where} went over the memory limit")
                elif ctx.gc_check_due():  # garbage of past calls' scripts: see V8Context.GC_CHECK_EVERY
                    self.engine.pool.submit(self._collect, ctx)
        raise AssertionError("unreachable")

    def _stopped(self, where: str) -> CallTimeout:
        return CallTimeout(f"{where}: the JavaScript call was stopped (its time limit passed or its caller went "
                           "away)")

    def _collect(self, ctx: V8Context, force: bool = False) -> None:
        try:
            ctx.collect_garbage(force)
        except V8Error:
            pass  # closed or restarted meanwhile
        except Exception:  # noqa: BLE001 - housekeeping must never fail a call
            log.exception("%s: JavaScript garbage collection", self.name)

    def _memory_error(self, where: str) -> UserCodeError:
        mb = self.engine.memory_limit_bytes() >> 20
        return UserCodeError("MemoryLimitExceeded", f"{where}: the workflow's JavaScript context went over its "
                             f"{mb} MB memory limit (Engines.JsMemoryLimitMb); the call was stopped and the "
                             "context restarted", language="javascript")

    def _answer(self, ctx: V8Context, s: Any, parent: CallContext | None, cid: int, where: str,
                deadline: float = math.inf, timeout: float | None = None, sink: Any = None) -> Any:
        """Decode a protocol answer: `L<logs>\\n` then `o<json>` | `e<json>` | `p` (wait for `d<cid>`)."""
        while True:
            if not isinstance(s, str) or not s:
                raise UserCodeError("Error", f"{where}: unexpected answer from JavaScript: {s!r}",
                                    language="javascript")
            if s[0] == "L":
                nl = s.index("\n")
                self._emit_logs(ctx, s[1:nl], sink)
                s = s[nl + 1:]
            kind = s[0]
            if kind == "o":
                return json.loads(s[1:])
            if kind == "e":
                raise self._user_error(json.loads(s[1:]))
            if kind == "p":
                s = self._await(ctx, cid, deadline, where)
                continue
            raise UserCodeError("Error", f"{where}: unexpected answer from JavaScript: {s[:80]!r}",
                                language="javascript")

    def _await(self, ctx: V8Context, cid: int, deadline: float, where: str) -> str:
        with self.plock:
            payload = self.early.pop(cid, None)
            if payload is not None:
                return payload
            w = _PromiseWait(ctx)
            w.lock.acquire()
            self.promises[cid] = w
        remaining = deadline - time.monotonic()
        if not w.lock.acquire(timeout=max(0.0, remaining) if remaining != math.inf else -1):
            with self.plock:
                if self.promises.pop(cid, None) is None:  # delivered just now
                    w.lock.acquire()
                else:
                    self.abandoned[cid] = None
                    _trim(self.abandoned)
                    raise V8Timeout("promise not settled in time")
        if w.payload is None:
            raise UserCodeError("ContextRestarted", f"{where}: the workflow's JavaScript context was restarted "
                                "while the call awaited a Promise (another call went over a limit); try again",
                                language="javascript")
        return w.payload

    def _user_error(self, info: dict) -> UserCodeError:
        frames = [ln for ln in str(info.get("stack") or "").splitlines() if ln.lstrip().startswith("at ")
                  and "coflows-internal.js" not in ln and "<anonymous>" not in ln]
        stack = "\n".join(self._fix_columns(ln) for ln in frames)
        language = info.get("language")
        if language:  # an uncaught coflows.call failure: report the callee's error, as C# and Java do
            remote = str(info.get("remote") or "")
            if remote:
                stack = (stack + "\n" if stack else "") + "--- in the called function ---\n" + remote
        return UserCodeError(str(info.get("name") or "Error"), str(info.get("message", "")), stack,
                             language=str(language or "javascript"))

    def _fix_columns(self, line: str) -> str:
        """Columns on a query file's first line include the scope wrapper: take it off."""
        for rel, n in self.prefix_lens.items():
            key = f"{rel}:1:"
            i = line.find(key)
            if i >= 0:
                m = re.match(r"\d+", line[i + len(key):])
                if m:
                    col = max(1, int(m.group()) - n)
                    return line[:i + len(key)] + str(col) + line[i + len(key) + m.end():]
        return line

    def _emit_logs(self, ctx: V8Context, text: str, sink: Any = None) -> None:
        entries = json.loads(text)
        if sink is not None:
            try:
                sink.write("".join(f"{line}\n" for _, _, line in entries))
            except Exception:  # noqa: BLE001 - a copy only
                pass
        if not ctx.post_task(lambda: self._write_logs(entries)):  # keep order with posted chunks
            self._write_logs(entries)

    @staticmethod
    def _write_logs(entries: list) -> None:
        for level, tag, line in entries:
            for part in str(line).split("\n"):
                user_log.log(_LEVELS.get(level, logging.INFO), "[%s] %s", tag, part)

    # -- liveness -----------------------------------------------------------------------------
    def _probe_later(self, ctx: V8Context, timed_out: int) -> None:
        """After a time limit: if the context does not answer soon, something runs that no cancel reached.

        Calls queued before the probe run first (each within its own deadline), so the probe
        allows for them; calls made after it queue behind it and are retried in the new context.
        """
        now = time.monotonic()
        ahead = [d - now for cid, (c, d) in list(self.running.items()) if c is ctx and cid != timed_out]
        wait = self.PROBE_GRACE + max([0.0, *ahead])
        self.engine.pool.submit(self._probe, ctx, wait)

    def _probe(self, ctx: V8Context, wait: float) -> None:
        if ctx is not self.ctx or ctx.closed:
            return
        try:
            ctx.eval("0", timeout=wait)
        except V8Timeout:
            self.rebuild(ctx, f"it kept running JavaScript for {wait:.1f} s after a call's time limit "
                              "(a loop after an await, or in a timer)")
        except V8Error:
            pass

    # -- host messages (dispatcher thread of the context) -------------------------------------
    def _on_message(self, ctx: V8Context, message: str) -> None:
        kind = message[0]
        if kind == "d":
            head, _, payload = message.partition("\n")
            cid = int(head[1:])
            with self.plock:
                if cid in self.abandoned:
                    del self.abandoned[cid]
                    return
                w = self.promises.pop(cid, None)
                if w is None:
                    self.early[cid] = payload
                    _trim(self.early)
                    return
            w.payload = payload
            w.lock.release()
        elif kind == "l":
            self._write_logs(json.loads(message[1:]))
        elif kind == "c" or kind == "m" or kind == "u":
            head, _, body = message.partition("\n")
            self.engine.pool.submit(self._interop, ctx, int(head[1:]), body, kind)

    def _m_call(self, topic: str, op: str, args: list) -> Any:
        """M.Base(topic).<op>(...args) from JavaScript, on Python's M API."""
        from coflows.m.api import M

        method = _M_OPS.get(op)
        if method is None:
            raise CoflowsError(f"M.Base(...).{op} is not an M operation")
        runtime = self.engine.runtime
        database = getattr(runtime, "database", None) if runtime is not None else None
        return getattr(M.Base(topic, database=database), method)(*args)

    def _interop(self, ctx: V8Context, pid: int, body: str, kind: str = "c") -> None:
        """A host request from JavaScript, run in the calling JavaScript call's context, settling its
        Promise: `c` a `coflows.call`, `m` an `M.Base(topic).Op(...)`, `u` `coflows.user()` /
        `coflows.permission(group)`."""
        ok, payload = 1, "null"
        m = kind == "m"
        try:
            caller, target, fn, args = json.loads(body)
            parent = self.inflight.get(caller)
            with call_context(parent) if parent is not None else nullcontext():
                if kind == "u":
                    result = self._caller(target, fn)
                else:
                    result = self._m_call(target, fn, args) if m else self._registry_call(target, fn, args)
            payload = _to_json(result)
        except UserCodeError as e:
            ok, payload = 0, json.dumps({"name": e.type_name, "message": e.message, "language": e.language,
                                         "stack": e.stack})
        except CoflowsError as e:
            ok, payload = 0, json.dumps({"name": type(e).__name__, "message": str(e), "language": "coflows"})
        except Exception as e:  # noqa: BLE001 - reported to the JavaScript caller
            ok, payload = 0, json.dumps({"name": type(e).__name__, "message": str(e), "language": "python"})
        try:
            s = ctx.eval(f"__coflows.settle({pid},{ok},{json.dumps(payload)})", timeout=self._timeout())
            self._answer(ctx, s, None, 0, "M" if m else "coflows.call")
        except (V8Error, CoflowsError):
            pass

    @staticmethod
    def _caller(op: str, group: str) -> Any:
        """`coflows.user()` (op "user") or `coflows.permission(group)` (op "permission")."""
        from coflows import caller

        if op == "user":
            return caller.user_json()
        if op == "permission":
            return caller.permission(group)
        raise CoflowsError(f"unknown caller operation '{op}'")

    def _registry_call(self, query: str, fn: str, args: list) -> Any:
        runtime = self.engine.runtime
        if runtime is None:
            from coflows.runtime import current_runtime
            runtime = current_runtime()
        registry = runtime.registry
        workflow: str | None = self.id
        first, _, rest = query.partition("/")
        if rest:
            try:
                registry.workflow(first)
                workflow = None  # "OtherWorkflow/Query.py": resolve_ref picks the workflow
            except NotFoundError:
                pass
        return registry.call(f"{query}/{fn}", *args, workflow=workflow)


class JsEngine(Engine):
    language = "javascript"
    extensions = (".js", ".mjs")
    order = 30

    def __init__(self, runtime: Any) -> None:
        super().__init__(runtime)
        self._lock = threading.Lock()
        self._workflows: dict[str, _JsWorkflow] = {}
        self.pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="coflows-js-host")
        self.threads: dict[int, tuple[_JsWorkflow, V8Context, int]] = {}  # thread → the call it waits on

    def start(self) -> None:
        from coflows.engines import EngineUnavailable

        try:
            self.version = v8_version()  # loads V8 (the EngineManager starts us after the CLR and the JVM)
        except ImportError as e:
            raise EngineUnavailable(f"the javascript engine needs mini-racer (pip install 'mini-racer>=0.14'): "
                                    f"{e}") from None
        except V8Error as e:
            raise EngineUnavailable(f"the javascript engine cannot start: {e}") from None
        if self.runtime is not None and hasattr(self.runtime, "on_close"):
            self.runtime.on_close(self.shutdown)

    def shutdown(self) -> None:
        """Free every context (their V8 threads stop); the engine can still load workflows afterwards."""
        with self._lock:
            workflows = list(self._workflows.values())
            self._workflows.clear()
        for jw in workflows:
            try:
                jw.close()
            except Exception:  # noqa: BLE001
                log.exception("closing the JavaScript context of %s", jw.name)
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="coflows-js-host")

    def default_timeout(self) -> float:
        """The limit for loading code (Base, queries, agent factories): `Engines.JsTimeoutSeconds`."""
        rt = self.runtime
        return float(rt.config.engines.js_timeout_seconds) if rt is not None else 30.0

    def call_timeout(self) -> float:
        """A call's limit when its function names none: `Engines.JsTimeoutSeconds` if the config sets it,
        else `Server.CallTimeout` (and never past the call's deadline: see `_JsWorkflow.call`)."""
        rt = self.runtime
        if rt is None:
            return 30.0
        engines = rt.config.engines
        if "js_timeout_seconds" in engines.model_fields_set:
            return float(engines.js_timeout_seconds)
        return float(rt.config.server.call_timeout)

    def isolates(self) -> int:
        rt = self.runtime
        return int(rt.config.engines.js_isolates) if rt is not None else 2

    def interrupt(self, thread_ident: int) -> bool:
        """Stop the JavaScript call `thread_ident` waits on (see `_JsWorkflow.stop`); the call ends with
        CallTimeout, the workflow's other isolates keep serving."""
        entry = self.threads.get(thread_ident)
        if entry is None:
            return False
        jw, ctx, cid = entry
        jw.stop(thread_ident, cid, ctx)
        return True

    def memory_limit_bytes(self) -> int:
        rt = self.runtime
        mb = rt.config.engines.js_memory_limit_mb if rt is not None else 256
        return int(mb) << 20

    def _workflow(self, workflow: WorkflowContext) -> _JsWorkflow:
        jw = workflow.state.get(self.language)
        if jw is None:
            with self._lock:
                jw = workflow.state.get(self.language)
                if jw is None:
                    jw = workflow.state[self.language] = _JsWorkflow(self, workflow)
                    self._workflows[workflow.id] = jw
        return jw

    def load_base(self, workflow: WorkflowContext, sources: list[SourceFile]) -> list[SourceError]:
        texts: list[tuple[str, str]] = []
        errors: list[SourceError] = []
        for src in sources:
            rel = workflow.relpath(src.path)
            try:
                texts.append((rel, src.read().replace("$WID$", workflow.id)))
            except OSError as e:
                errors.append(SourceError(rel, None, f"cannot read: {e.strerror}"))
        with self._lock:
            jw = workflow.state.get(self.language)
            if jw is None:
                jw = workflow.state[self.language] = _JsWorkflow(self, workflow, texts)
                self._workflows[workflow.id] = jw
                return errors + jw.errors
        return errors + jw.set_base(texts)

    def load(self, workflow: WorkflowContext, source: SourceFile) -> LoadedSource:
        return self._workflow(workflow).load(workflow, source)

    def restore_agent(self, workflow: WorkflowContext, source: SourceFile) -> None:
        """After a new version of an agent file loaded but the agent manager refused it."""
        jw = workflow.state.get(self.language)
        if jw is not None:
            jw.restore_agent(source.query_id or source.name)

    def unload(self, workflow: WorkflowContext, source: SourceFile, loaded: LoadedSource) -> None:
        jw = workflow.state.get(self.language)
        if jw is not None and isinstance(loaded.handle, _Script):
            jw.unload(loaded.handle)

    def unload_workflow(self, workflow: WorkflowContext) -> None:
        jw = workflow.state.pop(self.language, None)
        if jw is not None:
            self._workflows.pop(workflow.id, None)
            jw.close()

    def describe(self) -> dict[str, Any]:
        try:
            from importlib.metadata import version
            binding = f"mini-racer {version('mini-racer')}"
        except Exception:  # noqa: BLE001
            binding = "mini-racer"
        return {"language": self.language, "version": getattr(self, "version", ""), "binding": binding,
                "contexts": len(self._workflows),
                "isolates": sum(len(w.isolates) for w in self._workflows.values()),
                "restarts": sum(i.restarts for w in self._workflows.values() for i in w.isolates)}
