"""Host objects in JavaScript: `importNamespace`, `System`, live proxies (CoFlows' Jint interop).

`importNamespace('Cs.Base')` gives a JavaScript Proxy over a Python-visible object kept in
`coflows.objects.HANDLES` (a .NET type through pythonnet, a Java class through JPype, a Python
module or class, or a `Namespace` whose members resolve lazily). Every access is a synchronous
host call (sync.py): `cbase.csBase()` makes an instance, `csbase.getAge` reads a property,
`csbase.Add(csbase.getAge, 5)` calls a method, `interests.Count` / `.length`, `interests[i]`,
`for (const x of list)`, `String(obj)`, `JSON.stringify(obj)` (the object's JSON),
`new javabase.javaBase()`.

What crosses by value: null, booleans, numbers, strings (and Python enums, as their value, so
`switch (permission) { case qkernel.AccessType.Write: … }` compares equal). Everything else is
another proxy. A member that does not exist reads as `undefined`, as a JavaScript property does.
Arguments: primitives, proxies (the object itself), Dates (ISO strings), arrays and plain objects
(lists and dicts, converted deeply).

Handles are released when the proxy is collected (`FinalizationRegistry`, which runs in this
embedding after V8's full GCs; the released ids ride along with the next host call). A context
that holds many handles asks for a full GC (`ObjectBridge.pressure`); a context that is closed
or rebuilt releases all of its handles.

This module has the Python side (`ObjectBridge.serve`) and the JavaScript side (`OBJECTS_JS`,
part of the prelude).
"""

from __future__ import annotations

import enum
import json
import math
import os
import platform
import threading
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

from coflows.context import CallContext, call_context
from coflows.objects import (
    HANDLES,
    ForeignError,
    Namespace,
    StaleHandle,
    call_member,
    call_object,
    item,
    iterate,
    length,
    loading,
    resolve,
    set_member,
)
from coflows.objects.members import plain, type_name
from coflows.serialize import to_jsonable

# The type names of bound methods and functions in Python, pythonnet and JPype: a member with one
# of these is called through its owner (`call`), so no handle is made for the method itself.
_METHOD_TYPES = frozenset({"method", "function", "builtin_function_or_method", "method-wrapper",
                           "MethodBinding", "MethodObject", "_JMethod", "JMethod"})
_LENGTH_NAMES = ("length", "Count", "Length")
PRESSURE_HANDLES = 10_000  # live handles of one context before it asks V8 for a full GC


class _Unresolved(LookupError):
    """A namespace was called, and no engine has a type by that name."""


class _Environment:
    """`System.Environment` when no .NET resolver answers (a workflow without C#)."""

    NewLine = os.linesep
    MachineName = platform.node()
    ProcessorCount = os.cpu_count() or 1

    @staticmethod
    def GetEnvironmentVariable(name: str) -> str | None:  # noqa: N802
        return os.environ.get(name)


_FALLBACKS: dict[str, Any] = {"System.Environment": _Environment}


def _message(e: BaseException) -> str:
    """An exception's message without the host's stack trace (.NET's `Message`, Java's `getMessage()`)."""
    for getter in ("Message", "getMessage"):
        try:
            m = getattr(e, getter, None)
            m = m() if callable(m) else m
        except Exception:  # noqa: BLE001 - fall back to str()
            m = None
        if isinstance(m, str) and m:
            return m
    text = str(e)
    cut = text.find("\n  at ")  # a .NET stack trace appended to the message
    return text[:cut] if cut > 0 else text


class ObjectBridge:
    """The Python side of one JavaScript context's host-object proxies.

    `context_of(call_id)` gives the JavaScript call's caller (User.ContextUser sees it);
    `pressure()` is asked to run a full GC when the context holds many handles.
    """

    def __init__(self, workflow_id: str, context_of: Callable[[int], CallContext | None],
                 pressure: Callable[[], None] | None = None) -> None:
        self.workflow_id = workflow_id
        self.context_of = context_of
        self.pressure = pressure
        self.owned: set[int] = set()
        self._lock = threading.Lock()  # a worker abandoned at a deadline may still finish beside the next one
        self.next_pressure = PRESSURE_HANDLES
        self.closed = False

    # -- entry point (a worker thread) -----------------------------------------------------------
    def serve(self, text: str) -> str:
        try:
            call_id, dead, op, h, a, b = json.loads(text)
        except (ValueError, TypeError) as e:
            return "e" + json.dumps({"name": "Error", "message": f"malformed host object call: {e}"})
        if dead:
            self.release(dead)
        parent = self.context_of(call_id) if call_id else None
        try:
            with call_context(parent) if parent is not None else nullcontext(), loading(self.workflow_id):
                return self._op(op, h, a, b)
        except ForeignError as e:
            return self._error("TypeError", str(e))
        except (StaleHandle, _Unresolved) as e:
            return self._error("ReferenceError", str(e.args[0]) if e.args else str(e))
        except Exception as e:  # noqa: BLE001 - the host object's own error, thrown in JavaScript
            name = type_name(e)
            message = _message(e)
            return self._error(name, message.removeprefix(name + ": "))  # JPype repeats the type

    @staticmethod
    def _error(name: str, message: str) -> str:
        return "e" + json.dumps({"name": name, "message": message})

    def _op(self, op: str, h: int, a: Any, b: Any) -> str:
        if op == "ns":
            return self._answer(self._resolve(str(a)))
        obj = HANDLES.get(h)
        if op == "get":
            return self._get(obj, str(a))
        if op == "call":
            if isinstance(obj, Namespace):
                return self._answer(call_object(self._type(obj.child(str(a))), self._args(b)))
            return self._answer(call_member(obj, str(a), self._args(b)))
        if op == "invoke":
            if isinstance(obj, Namespace):
                obj = self._type(obj.name)
            return self._answer(call_object(obj, self._args(a)))
        if op == "item":
            return self._answer(item(obj, a))
        if op == "set":
            set_member(obj, str(a), self._arg(b))
            return "onull"
        if op == "has":
            if isinstance(obj, Namespace):
                return "otrue"
            return "otrue" if hasattr(obj, str(a)) else "ofalse"
        if op == "str":
            return "o" + json.dumps(obj.name if isinstance(obj, Namespace) else str(obj))
        if op == "prim":
            if a == "number" and not isinstance(obj, Namespace):
                try:
                    return self._answer(float(obj))
                except (TypeError, ValueError):
                    pass
            return "o" + json.dumps(obj.name if isinstance(obj, Namespace) else str(obj))
        if op == "json":
            shown = plain(obj)
            try:
                return "j" + json.dumps(shown, default=to_jsonable, allow_nan=False)
            except ValueError:  # NaN or Infinity somewhere: null, as the server writes them
                text = json.dumps(shown, default=to_jsonable)
                return "j" + json.dumps(json.loads(text, parse_constant=lambda _: None))
        if op == "iter":
            ih = HANDLES.put(iterate(obj))
            with self._lock:
                self.owned.add(ih)
            return "o" + str(ih)
        if op == "next":
            return self._next(obj, h, int(a or 64))
        raise ForeignError(f"unknown host object operation {op!r}")

    # -- operations --------------------------------------------------------------------------------
    def _resolve(self, name: str) -> Any:
        found = resolve(name, self.workflow_id)
        if isinstance(found, Namespace) and name in _FALLBACKS:
            return _FALLBACKS[name]
        return found

    def _type(self, name: str) -> Any:
        """A Namespace called (`cbase.csBase()`): resolve it again (its engine may have loaded since),
        or say where we looked."""
        try:
            return resolve(name, self.workflow_id, namespace=False)
        except LookupError as e:
            raise _Unresolved(*e.args) from None

    def _get(self, obj: Any, name: str) -> str:
        if isinstance(obj, Namespace):
            return self._answer(self._resolve(obj.child(name)))
        try:
            value = getattr(obj, name)
        except AttributeError:
            if name in _LENGTH_NAMES:
                try:
                    return self._answer(length(obj))
                except ForeignError:
                    return 'o{"$u":1}'
            if isinstance(obj, dict) or (hasattr(obj, "__getitem__") and hasattr(obj, "keys")):
                try:
                    return self._answer(obj[name])
                except (KeyError, TypeError):
                    pass
            return 'o{"$u":1}'
        if type(value).__name__ in _METHOD_TYPES:
            return 'o{"$m":1}'
        return self._answer(value)

    def _next(self, it: Any, ih: int, n: int) -> str:
        out = []
        done = False
        for _ in range(max(1, min(n, 4096))):
            try:
                out.append(self._encode(next(it)))
            except StopIteration:
                done = True
                break
        if done:
            self.release([ih])
        return "o" + json.dumps({"$l": out, "d": done}, allow_nan=False)

    # -- values ------------------------------------------------------------------------------------
    def _answer(self, value: Any) -> str:
        return "o" + json.dumps(self._encode(value), allow_nan=False)

    def _encode(self, v: Any) -> Any:
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, enum.Enum) and isinstance(v.value, (bool, int, float, str)):
            v = v.value
        if isinstance(v, int):
            return int(v)
        if isinstance(v, float):
            return v if math.isfinite(v) else None
        if isinstance(v, Namespace):
            kind, label = "n", v.name
        else:
            kind = "t" if isinstance(v, type) else ("f" if callable(v) else "o")
            label = getattr(v, "__name__", None) if kind == "t" else type_name(v)
        h = HANDLES.put(v)
        with self._lock:
            self.owned.add(h)
            pressed = len(self.owned) >= self.next_pressure
            if pressed:
                self.next_pressure = len(self.owned) * 2
        if pressed and self.pressure is not None:
            self.pressure()
        return {"$h": h, "k": kind, "n": str(label or kind)}

    def _args(self, args: Any) -> list[Any]:
        if args is None:
            return []
        if not isinstance(args, list):
            raise ForeignError("arguments must be an array")
        return [self._arg(x) for x in args]

    def _arg(self, v: Any) -> Any:
        if isinstance(v, dict):
            if len(v) == 1:
                if "$h" in v:
                    return HANDLES.get(int(v["$h"]))
                if "$hm" in v:
                    h, name = v["$hm"]
                    return getattr(HANDLES.get(int(h)), name)
            return {k: self._arg(x) for k, x in v.items()}
        if isinstance(v, list):
            return [self._arg(x) for x in v]
        return v

    # -- lifetime ----------------------------------------------------------------------------------
    def release(self, handles: list[Any]) -> None:
        with self._lock:
            for h in handles:
                if isinstance(h, int) and h in self.owned:  # only ours: a context cannot free another's
                    self.owned.discard(h)
                    HANDLES.release(h)
            if len(self.owned) * 4 < self.next_pressure:
                self.next_pressure = max(PRESSURE_HANDLES, len(self.owned) * 2)

    def close(self) -> None:
        """The context is gone: every handle it held goes."""
        self.closed = True
        with self._lock:
            held = list(self.owned)
        self.release(held)


# The JavaScript side, inside the prelude's function (it uses the prelude's `g`, `cur`,
# `stringify`, `parse`, `Object`, `Error`). SABNAME / SYNCNAME are replaced by the globals that
# hold the shared buffer and the synchronous host function until the prelude takes them.
OBJECTS_JS = r"""
// -- host objects (objects.py): importNamespace, System, jsWrapper, log; synchronous calls (sync.py)
const hostObjects = (function () {
  const sab = g[SABNAME], syncCall = g[SYNCNAME];
  delete g[SABNAME];
  delete g[SYNCNAME];
  const {WeakMap, FinalizationRegistry, Proxy, Symbol, TypeError, RangeError, Date} = g;
  const {min} = Math;
  const head = new Int32Array(sab, 0, 2);
  const buf = new Uint16Array(sab, 8);
  const CAP = buf.length;
  const fromCharCode = String.fromCharCode;
  let dead = [];
  const info = new WeakMap();   // proxy target -> [handle, kind, label]
  const refs = new WeakMap();   // proxy / method function -> how it crosses back ({$h} | {$hm}), and its owner
  const finals = new FinalizationRegistry(h => { dead.push(h); });

  function rpc(op, h, a, b) {
    const rel = dead.length > 4096 ? dead.slice(0, 4096) : dead;
    const req = stringify([cur !== null ? cur.id : 0, rel, op, h, a === undefined ? null : a,
                           b === undefined ? null : b]);
    const n = req.length;
    if (n > CAP) {
      throw new RangeError("a host object call of " + n + " characters is larger than the " + CAP +
                           " the channel holds; pass less data per call");
    }
    dead = rel === dead ? [] : dead.slice(rel.length);
    for (let i = 0; i < n; i++) buf[i] = req.charCodeAt(i);
    head[0] = n;
    head[1] = -1;
    syncCall();
    const m = head[1];
    if (m < 1) throw new Error("the host did not answer a host object call");
    let s = "";
    for (let i = 0; i < m; i += 8192) s += fromCharCode.apply(null, buf.subarray(i, min(m, i + 8192)));
    const kind = s[0];
    const r = parse(s.substring(1));
    if (kind === "o" || kind === "j") return r;
    const e = new Error(r.message);
    e.name = r.name;
    throw e;
  }
  function value(r) {
    if (r === null || typeof r !== "object") return r;
    if (r.$h !== undefined) return proxy(r.$h, r.k, r.n);
    if (r.$u !== undefined) return undefined;
    return r;
  }
  function enc(v) {
    if (v === null || v === undefined) return null;
    const t = typeof v;
    if (t === "string" || t === "number" || t === "boolean") return v;
    if (t === "bigint") return Number(v);
    const ref = refs.get(v);
    if (ref !== undefined) return ref.to;
    if (t === "function") throw new TypeError("a JavaScript function cannot be passed to a host object");
    if (v instanceof Date) return v.toISOString();
    if (Array.isArray(v)) return v.map(enc);
    if (ArrayBuffer.isView(v)) return Array.from(v);
    const o = {};
    for (const k of Object.keys(v)) o[k] = enc(v[k]);
    return o;
  }
  function method(owner, h, name) {
    const f = function () {
      const args = [];
      for (let i = 0; i < arguments.length; i++) args.push(enc(arguments[i]));
      return value(rpc("call", h, name, args));
    };
    Object.defineProperty(f, "name", {value: name});
    refs.set(f, {to: {$hm: [h, name]}, owner});  // the owner's handle lives as long as the method
    return f;
  }
  function* iterate(h) {
    const it = rpc("iter", h);
    try {
      while (true) {
        const r = rpc("next", it, 256);
        for (const x of r.$l) yield value(x);
        if (r.d) return;
      }
    } finally {
      dead.push(it);
    }
  }
  const handler = {
    get(t, k, receiver) {
      const [h, kind, label, methods] = info.get(t);
      if (typeof k === "symbol") {
        if (k === Symbol.iterator) return () => iterate(h);
        if (k === Symbol.toPrimitive) return hint => rpc("prim", h, hint);
        if (k === Symbol.toStringTag) return label;
        return undefined;
      }
      switch (k) {
        case "then": return undefined;  // not a thenable: `return proxy` from an async function works
        case "toString": return () => rpc("str", h);
        case "toJSON": return () => rpc("json", h);
        case "valueOf": return () => rpc("prim", h, "default");
      }
      if (k.length < 16 && /^(0|[1-9][0-9]*)$/.test(k)) return value(rpc("item", h, Number(k)));
      const known = methods.get(k);  // a method is looked up once per proxy: p.Add(…) in a loop is one call each
      if (known !== undefined) return known;
      const r = rpc("get", h, k);
      if (r !== null && typeof r === "object" && r.$m !== undefined) {
        const m = method(receiver, h, k);
        methods.set(k, m);
        return m;
      }
      return value(r);
    },
    set(t, k, v) {
      if (typeof k === "symbol") return false;
      rpc("set", info.get(t)[0], k, enc(v));
      return true;
    },
    has(t, k) {
      return typeof k !== "symbol" && rpc("has", info.get(t)[0], k) === true;
    },
    apply(t, self, args) {
      return value(rpc("invoke", info.get(t)[0], args.map(enc)));
    },
    construct(t, args) {
      const v = value(rpc("invoke", info.get(t)[0], args.map(enc)));
      if (v === null || (typeof v !== "object" && typeof v !== "function")) {
        throw new TypeError("new " + info.get(t)[2] + "(…) did not make an object (it gave " + String(v) + ")");
      }
      return v;
    },
  };
  function proxy(h, kind, label) {
    const t = function () {};
    info.set(t, [h, kind, label, new Map()]);
    const p = new Proxy(t, handler);
    refs.set(p, {to: {$h: h}});
    finals.register(p, h);
    return p;
  }

  // QuantApp.Engine for JavaScript agents: FPKG is plain JavaScript (the agent loader reads it);
  // other names go to the host.
  function FPKG(ID, WorkflowID, Name, Description, MID, Load, Add, Exchange, Remove, Body, ScheduleCommand, Job) {
    if (!new.target) return new FPKG(ID, WorkflowID, Name, Description, MID, Load, Add, Exchange, Remove, Body,
                                     ScheduleCommand, Job);
    Object.assign(this, {ID, WorkflowID, Name, Description, MID, Load, Add, Exchange, Remove, Body,
                         ScheduleCommand, Job});
  }
  const engineLocal = {FPKG};
  const engineNamespaces = new WeakSet();
  function engineNamespace() {
    let host;
    const ns = new Proxy({}, {get(t, k) {
      if (typeof k === "string" && Object.prototype.hasOwnProperty.call(engineLocal, k)) return engineLocal[k];
      if (k === "then") return undefined;
      if (host === undefined) host = value(rpc("ns", 0, "QuantApp.Engine"));
      return host[k];
    }});
    engineNamespaces.add(ns);
    return ns;
  }
  function importNamespace(name) {
    if (typeof name !== "string" || name === "") {
      throw new TypeError("importNamespace(name): name must be a non-empty string");
    }
    if (name === "QuantApp.Engine") return engineNamespace();
    return value(rpc("ns", 0, name));
  }
  const wrap = (name, fn) => fn;
  const jsWrapper = Object.freeze({Load: wrap, Callback: wrap, Body: wrap, Job: wrap, MCallback: wrap});
  let system;
  const defs = {importNamespace, jsWrapper, log() { g.console.log.apply(null, arguments); }};
  for (const k of Object.keys(defs)) {
    Object.defineProperty(g, k, {value: defs[k], writable: true, configurable: true, enumerable: false});
  }
  Object.defineProperty(g, "System", {
    get() { if (system === undefined) system = importNamespace("System"); return system; },
    set(v) { system = v; },
    configurable: true, enumerable: false,
  });
  // a query file's top-level host object (`var cbase = importNamespace(...)`) is no function to serve
  const isHost = v => (typeof v === "object" || typeof v === "function") && v !== null &&
                      (refs.has(v) || engineNamespaces.has(v));
  return {rpc, isHost};
})();
"""
