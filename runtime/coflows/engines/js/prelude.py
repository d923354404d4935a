"""The JavaScript every workflow context starts with: the `__coflows` protocol object, `coflows`, `console`.

Python and V8 exchange only strings:

- a call is one script, `__coflows.call(id, tag, query, fn, argsJson, fix)`, whose
  completion value is `o<json>` (a result), `e<json>` (an error: name, message,
  stack) or `p` (a promise: the result comes later as a host message
  `d<id>\\n<o…|e…>`); any console output captured meanwhile is prepended as
  `L<json>\\n`;
- a query file is loaded by `__coflows.load(id, tag, query, factory)`, where
  `factory` is the file's text wrapped in a function; it returns the file's
  top-level bindings as `[[name, getter], …]` and `load` answers with their
  description (`o[{n, k, s, l}]`: name, kind, source, length);
- `coflows.call(query, fn, ...args)` posts `c<id>\\n[callerId, query, fn, args]`
  to Python and returns a Promise that Python settles with
  `__coflows.settle(id, ok, json)`; `M.Base(topic).Op(...args)` (and
  `coflows.m(topic)`) does the same with `m<id>\\n[callerId, topic, op, args]`, and
  `coflows.user()` / `coflows.permission(group)` with `u<id>\\n[callerId, "user"|"permission", group, []]`;
- an agent file's factory is called by `__coflows.agent(id, tag, query, exe)`:
  its hooks are kept in the file's scope as `"\\0agent:<Hook>"` (called like any
  function) and it answers `o{"fields": {ID, Name, …}, "hooks": [names]}`; `exe` may also name
  the package itself (`let pkg = new qengine.FPKG(...)`, as CoFlows' JavaScript agents do);
- host objects (`importNamespace`, `System`, `jsWrapper`, `log`): objects.OBJECTS_JS, on the
  synchronous channel of sync.py.
"""

from __future__ import annotations

from coflows.engines.js.objects import OBJECTS_JS

# Formatted with WID (a JSON string literal) and HOST (the host function's global name).
PRELUDE = r"""
(function () {
"use strict";
const g = globalThis;
const host = g[HOST];
delete g[HOST];
const WID = WIDLIT;
// what the protocol relies on, kept from before user code runs (which may reassign globals)
const {stringify, parse} = JSON;
const {Map, Set, Error, Promise, ArrayBuffer, DataView, Number, Object, Array, String, ReferenceError} = g;
const fnToString = Function.prototype.toString;
const queries = Object.create(null);
const pending = new Map();
let logs = [];
let seq = 0;
let cur = null;  // the call that last entered JavaScript: {id, tag, q}
const CALLEE = Symbol("coflows.callee");  // on errors of a failed coflows.call (not visible to JSON)

function replacer(key, value) {
  if (typeof value === "bigint") return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (value !== null && typeof value === "object") {
    if (value instanceof Map) return Object.fromEntries(value);
    if (value instanceof Set) return Array.from(value);
    if (ArrayBuffer.isView(value) && !(value instanceof DataView)) return Array.from(value);
    if (value instanceof Error) return {name: value.name, message: value.message};
  }
  return value;
}
function encode(value) {
  const s = stringify(value === undefined ? null : value, replacer);
  return s === undefined ? "null" : s;
}
function withLogs(s) {
  if (logs.length === 0) return s;
  const l = stringify(logs);
  logs = [];
  return "L" + l + "\n" + s;
}
function errorInfo(e) {
  if (e instanceof Error || (e !== null && typeof e === "object" && "message" in e && "name" in e)) {
    const info = {name: String(e.name || "Error"), message: String(e.message),
                  stack: typeof e.stack === "string" ? e.stack : ""};
    const callee = e[CALLEE];  // a failed coflows.call that JavaScript did not catch: the callee's language, stack
    if (callee !== undefined) { info.language = callee.language; info.remote = callee.stack; }
    return info;
  }
  let m;
  try { m = typeof e === "string" ? e : stringify(e, replacer); } catch (x) { m = String(e); }
  return {name: "Error", message: String(m), stack: "", thrown: true};
}
function fail(e) {
  let info;
  try { info = stringify(errorInfo(e)); }
  catch (x) { info = stringify({name: "Error", message: "(an error that cannot be shown)", stack: ""}); }
  return withLogs("e" + info);
}
function ok(v) {
  try { return withLogs("o" + encode(v)); } catch (e) { return fail(e); }
}
function thenable(r) {
  return r !== null && (typeof r === "object" || typeof r === "function") && typeof r.then === "function";
}
function later(id, r, map) {
  const post = s => { try { host("d" + id + "\n" + s); } catch (x) {} };
  Promise.resolve(r).then(v => {
    let s;
    try { s = map ? map(v) : ok(v); } catch (e) { s = fail(e); }
    post(s);
  }, e => post(fail(e)));
  return withLogs("p");
}

// console: buffered, returned to Python with the next answer (or posted when the buffer is large)
function show(a) {
  if (typeof a === "string") return a;
  if (a instanceof Error) return a.stack || String(a);
  if (a !== null && typeof a === "object") {
    try { return stringify(a, replacer); } catch (x) { return String(a); }
  }
  return String(a);
}
function makeConsole(q) {
  const tag = () => (cur !== null && (q === null || cur.q === q)) ? cur.tag
                    : (q === null ? (cur !== null ? cur.tag : WID + "/Base") : WID + "/" + q);
  const emit = level => function () {
    let text = "";
    for (let i = 0; i < arguments.length; i++) text += (i ? " " : "") + show(arguments[i]);
    logs.push([level, tag(), text]);
    if (logs.length >= 500) {
      const l = stringify(logs);
      logs = [];
      try { host("l" + l); } catch (x) {}
    }
  };
  return Object.freeze({log: emit("info"), info: emit("info"), debug: emit("debug"), trace: emit("debug"),
                        warn: emit("warning"), error: emit("error")});
}

// kind "c": coflows.call (a = query, b = function); kind "m": M (a = topic, b = operation)
function hostCall(kind, a, b, args) {
  return new Promise((resolve, reject) => {
    const id = ++seq;
    pending.set(id, [resolve, reject, cur]);
    host(kind + id + "\n" + stringify([cur !== null ? cur.id : 0, String(a), String(b), args], replacer));
  });
}
// M.Base(topic): the M set of a topic; every method returns a Promise (Python's coflows.m does the work)
const M_OPS = ["Add", "AddMany", "Exchange", "ExchangeID", "Remove", "RemoveID", "Get", "Find", "Entries",
               "KeyValues", "Values", "Count", "Clear"];
function mset(topic) {
  if (typeof topic !== "string" || topic === "") throw new TypeError("M.Base(topic): topic must be a non-empty string");
  const o = {topic};
  for (const op of M_OPS) o[op] = (...args) => hostCall("m", topic, op, args);
  o.List = o.Values;
  o.Save = () => Promise.resolve(null);  // every write is already durable (CoFlows needed Save())
  return Object.freeze(o);
}
const M = Object.freeze({Base: (topic, type) => mset(topic)});
// kind "u": who is calling (a = "user" | "permission", b = the group id)
function freezeUser(u) {
  if (u !== null && typeof u === "object") { Object.freeze(u.groups); Object.freeze(u); }
  return u;
}
const coflows = Object.freeze({
  workflow: WID,
  call(query, fn, ...args) { return hostCall("c", query, fn, args); },
  m: topic => mset(topic),
  user() { return hostCall("u", "user", "", []).then(freezeUser); },
  permission(groupId) {
    if (typeof groupId !== "string" || groupId === "") {
      return Promise.reject(new TypeError("coflows.permission(groupId): groupId must be a non-empty string"));
    }
    return hostCall("u", "permission", groupId, []);
  },
});
Object.defineProperty(g, "coflows", {value: coflows, writable: true, configurable: true, enumerable: false});
Object.defineProperty(g, "M", {value: M, writable: true, configurable: true, enumerable: false});
Object.defineProperty(g, "console", {value: makeConsole(null), writable: true, configurable: true, enumerable: false});

function describe(q) {
  const out = [];
  for (const [name, get] of queries[q]) {
    let v;
    try { v = get(); } catch (e) { continue; }
    if (hostObjects.isHost(v)) {  // a host object (importNamespace): served only when documented
      out.push({n: name, k: "value", h: 1});
    } else if (typeof v === "function") {
      const src = fnToString.call(v);
      const kind = /^class[\s{]/.test(src) ? "class" : "function";
      out.push({n: name, k: kind, s: src.length > 4000 ? src.slice(0, 4000) : src, l: v.length});
    } else {
      out.push({n: name, k: "value"});
    }
  }
  return out;
}
// An agent's package: hooks (functions, or names of the file's functions) are kept in the file's scope
// as HOOK_PREFIX + hook, called like any function; the rest goes to Python as JSON.
const HOOKS = ["Load", "Add", "Exchange", "Remove", "Body", "Job"];
const HOOK_PREFIX = "\u0000agent:";
function registerAgent(q, exe, spec) {
  if (spec === null || typeof spec !== "object" || Array.isArray(spec)) {
    throw new TypeError(exe + "() returned " + (spec === null ? "null" : Array.isArray(spec) ? "an array" : typeof spec) +
                        "; expected an object {ID, WorkflowID, Name, Description, MID, Load, Add, Exchange, Remove, " +
                        "Body, ScheduleCommand, Job}");
  }
  const scope = queries[q];
  for (const h of HOOKS) scope.delete(HOOK_PREFIX + h);
  const fields = {};
  const hooks = [];
  for (const key of Object.keys(spec)) {
    const v = spec[key];
    const h = HOOKS.find(n => n.toLowerCase() === key.toLowerCase());
    if (h === undefined) {
      fields[key] = (typeof v === "function") ? "(a function)" : v;
      continue;
    }
    if (v === null || v === undefined) continue;
    let fn = v;
    if (typeof v === "string") {
      const get = scope.get(v);
      fn = get !== undefined ? get() : g[v];
      if (typeof fn !== "function") throw new TypeError("agent hook " + h + ": '" + v + "' is not a function of " + q);
    } else if (typeof v !== "function") {
      throw new TypeError("agent hook " + h + " is a " + typeof v + ", not a function (or a function's name)");
    }
    scope.set(HOOK_PREFIX + h, () => fn);
    hooks.push(h);
  }
  return ok({fields, hooks});
}
function define(q, pairs) {
  queries[q] = new Map(pairs);
  return ok(describe(q));
}

const api = {
  call(id, tag, q, f, args, fix) {
    cur = {id, tag, q};
    let r;
    try {
      const scope = queries[q];
      if (scope === undefined) throw new ReferenceError("query " + q + " is not loaded");
      const get = scope.get(f);
      if (get === undefined) throw new ReferenceError(f + " is not defined in " + q);
      const v = get();
      if (typeof v === "function" && !hostObjects.isHost(v)) {  // a documented host object is a value
        const a = args === "[]" ? [] : parse(args);
        if (fix) for (const [i, c] of fix) a[i] = c === 0 ? undefined : (a[i] == null ? a[i] : new Date(a[i]));
        r = v.apply(undefined, a);
      } else {
        r = v;
      }
    } catch (e) {
      return fail(e);
    }
    return thenable(r) ? later(id, r) : ok(r);
  },
  load(id, tag, q, factory) {
    cur = {id, tag, q};
    let pairs;
    try { pairs = factory.call(g, makeConsole(q), coflows); } catch (e) { return fail(e); }
    if (thenable(pairs)) return later(id, pairs, p => define(q, p));
    try { return define(q, pairs); } catch (e) { return fail(e); }
  },
  agent(id, tag, q, exe) {
    cur = {id, tag, q};
    let r;
    const scope = queries[q];
    try {
      if (scope === undefined) throw new ReferenceError("agent " + q + " is not loaded");
      const get = scope.get(exe);
      if (get !== undefined) {
        const f = get();
        if (typeof f === "function") r = f();  // a factory
        else if (f !== null && typeof f === "object") r = f;  // the package itself: let pkg = new qengine.FPKG(...)
        else throw new TypeError(exe + " is neither a function (the agent's factory) nor an agent package (an object)");
      } else if (scope.has("AGENT")) {  // declarative: AGENT = {Name, MID, ...} and top-level hook functions
        const spec = scope.get("AGENT")();
        if (spec === null || typeof spec !== "object") throw new TypeError("AGENT is not an object");
        r = Object.assign({}, spec);
        const given = new Set(Object.keys(r).map(k => k.toLowerCase()));
        for (const h of HOOKS) if (!given.has(h.toLowerCase()) && scope.has(h)) r[h] = h;
      } else {
        throw new ReferenceError("defines neither a factory function " + exe + "() nor an AGENT object");
      }
    } catch (e) {
      return fail(e);
    }
    const register = spec => registerAgent(q, exe, spec);
    if (thenable(r)) return later(id, r, register);
    try { return register(r); } catch (e) { return fail(e); }
  },
  unload(q) { delete queries[q]; return "o null"; },
  settle(id, isOk, payload) {
    const p = pending.get(id);
    if (p === undefined) return withLogs("o null");
    pending.delete(id);
    cur = p[2];
    if (isOk) {
      p[0](parse(payload));
    } else {
      const info = parse(payload);
      const e = new Error(info.message);
      e.name = info.name;
      e.language = info.language || null;  // the callee's language (python, csharp, java, javascript, coflows)
      Object.defineProperty(e, CALLEE, {value: {language: e.language, stack: info.stack || ""}});
      p[1](e);
    }
    return withLogs("o null");
  },
  flush() { return withLogs("o null"); },
  pending() { return pending.size; },
};
OBJECTS_JS
Object.defineProperty(g, "__coflows", {value: Object.freeze(api), enumerable: false});

// setTimeout/clearTimeout (web APIs, not part of V8), on Atomics.waitAsync as mini-racer does
const timers = new Set();
let nextTimer = 1;
function setTimeout(fn, delay, ...args) {
  const id = nextTimer++;
  timers.add(id);
  const view = new Int32Array(new SharedArrayBuffer(4));
  Atomics.waitAsync(view, 0, 0, Math.max(0, Number(delay) || 0)).value.then(() => {
    if (timers.delete(id)) fn(...args);
  });
  return id;
}
function clearTimeout(id) { timers.delete(id); }
for (const [k, v] of [["setTimeout", setTimeout], ["clearTimeout", clearTimeout]]) {
  Object.defineProperty(g, k, {value: v, writable: true, configurable: true, enumerable: false});
}
})();
//# sourceURL=coflows-internal.js
"""


def prelude(workflow_id_literal: str, host_name: str, buffer_name: str, sync_name: str) -> str:
    """The prelude for one context: `host_name` is the asynchronous host function's global,
    `buffer_name` / `sync_name` the shared buffer's and the synchronous host function's (sync.py)."""
    objects = OBJECTS_JS.replace("SABNAME", f'"{buffer_name}"').replace("SYNCNAME", f'"{sync_name}"')
    return (PRELUDE.replace("WIDLIT", workflow_id_literal).replace("HOST", f'"{host_name}"')
            .replace("OBJECTS_JS", objects))
