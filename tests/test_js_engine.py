"""The JavaScript (V8) engine in-process: discovery, isolation, types, promises, errors, limits, interop, reload."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("py_mini_racer")

from coflows.config import parse_config
from coflows.errors import CallTimeout, NotFoundError, UserCodeError
from coflows.engines.js import js_type
from coflows.engines.js.source import params_of, parse_jsdoc, scan
from coflows.runtime import Runtime
from conftest import new_workspace, edit_source


def _runtime(*workspaces, **engines) -> Runtime:
    paths = [str(ws.mnt / "package.json") for ws in workspaces]
    cfg = parse_config({"Workflow": paths, "Database": {"Connection": ":memory:"}, "Engines": engines},
                       "test", workspaces[0].root)
    rt = Runtime(cfg)
    rt.load()
    return rt


@pytest.fixture
def runtimes():
    made: list[Runtime] = []

    def make(*workspaces, **engines) -> Runtime:
        rt = _runtime(*workspaces, **engines)
        made.append(rt)
        return rt

    yield make
    for rt in made:
        rt.close()




CALC = '''
/**
 * Adds two numbers.
 * @param {number} x - first
 * @param {number} y - second
 * @returns {number} the sum
 */
let Add = function(x, y) { return x + y }
let Concat = (a, b) => a + b
const Scale = (x, k = 2) => x * k
let getName = 'something'
let counter = 0
function Bump() { return ++counter }
function _private() {}
class Shape {}
export function Exported(a) { return 'exported ' + a }
async function Later(x) { await null; return {x: x, when: new Date(Date.UTC(2024, 0, 2))} }
function Shapes() {
  return {map: new Map([["a", 1]]), set: new Set([1, 2]), big: 10n, nan: NaN, undef: undefined,
          nested: [1, "two", null, true, {deep: [new Date(0)]}]}
}
/// <api name="Typed">
///   <description>Typed by CoFlows XML.</description>
///   <param name="n" type="integer">a count</param>
///   <param name="on" type="boolean">a flag</param>
/// </api>
function Typed(n, on) { return [typeof n, n, typeof on, on] }
/**
 * @param {Date} when
 * @param {string[]} tags
 * @param {Object} opts
 */
function Kinds(when, tags, opts) { return [when instanceof Date, when.getUTCFullYear(), tags, opts] }
function Obj(o) { return typeof o === 'object' ? o.a : 'not parsed: ' + o }
function Rest(first, ...more) { return [first, more.length] }
'''


def test_functions_signatures_and_types(tmp_path, runtimes):
    ws = new_workspace(tmp_path / "a")
    ws.add_query("Calc.js", CALC)
    rt = runtimes(ws)
    wf = rt.registry.default_workflow()
    fns = wf.queries["Calc.js"].functions
    assert set(fns) == {"Add", "Concat", "Scale", "getName", "counter", "Bump", "Exported", "Later", "Shapes",
                        "Typed", "Kinds", "Obj", "Rest"}
    add = fns["Add"]
    assert [(p.name, p.type.kind, p.required) for p in add.params] == [("x", "float", True), ("y", "float", True)]
    assert add.docs.description == "Adds two numbers." and add.docs.params["x"] == "first"
    assert add.returns.kind == "float" and add.language == "javascript"
    assert [(p.name, p.required, p.default) for p in fns["Scale"].params] == [("x", True, None), ("k", False, 2)]
    assert [p.type.kind for p in fns["Typed"].params] == ["int", "bool"]
    assert fns["Typed"].docs.description == "Typed by CoFlows XML."
    assert [p.type.kind for p in fns["Kinds"].params] == ["datetime", "list", "dict"]
    assert fns["Rest"].varargs and [p.name for p in fns["Rest"].params] == ["first"]
    assert fns["getName"].params == ()

    call = rt.call
    assert call("Calc.js/Add", "1", "2") == 3  # declared {number}: converted
    assert call("Calc.js/Concat", "1", "2") == "12"  # undeclared: strings, as in CoFlows
    assert call("Calc.js/Scale", 3) == 6
    assert call("Calc.js/Scale", 3, k=5) == 15  # named argument → its position
    assert call("Calc.js/getName") == "something"  # a value: a zero-argument function
    assert call("Calc.js/Bump") == 1 and call("Calc.js/Bump") == 2
    assert call("Calc.js/counter") == 2  # values are read when called
    assert call("Calc.js/Exported", "x") == "exported x"
    assert call("Calc.js/Typed", "5", "yes") == ["number", 5, "boolean", True]
    assert call("Calc.js/Kinds", "2024-03-01T00:00:00Z", "a,b", '{"k": 1}') == [True, 2024, ["a", "b"], {"k": 1}]
    assert call("Calc.js/Obj", '{"a": 7}') == 7  # CoFlows: untyped '{"…' strings arrive parsed
    assert call("Calc.js/Obj", "plain") == "not parsed: plain"
    assert call("Calc.js/Rest", 1, 2, 3) == [1, 2]
    assert call("Calc.js/Later", "x") == {"x": "x", "when": "2024-01-02T00:00:00.000Z"}  # Promise awaited
    assert call("Calc.js/Shapes") == {"map": {"a": 1}, "set": [1, 2], "big": 10, "nan": None,
                                      "nested": [1, "two", None, True, {"deep": ["1970-01-01T00:00:00.000Z"]}]}
    with pytest.raises(NotFoundError):
        rt.registry.function(wf.id, "Calc.js", "_private")
    with pytest.raises(NotFoundError):
        rt.registry.function(wf.id, "Calc.js", "Shape")


def test_queries_are_isolated_and_see_base(tmp_path, runtimes):
    ws = new_workspace(tmp_path / "a")
    ws.add_base("jsBase/util.js", "function greet(n) { return 'Hello ' + n }\nconst BASE = 40\nvar shared = []\n")
    ws.add_query("A.js", "let Add = (x, y) => 'A:' + (BASE + Number(x) + Number(y))\nvar hidden = 'a'\n"
                         "function Greet(n) { shared.push(n); return greet(n) }\nfunction Hidden() { return hidden }\n")
    ws.add_query("B.js", "function Add(x, y) { return 'B:' + x + y }\nvar hidden = 'b'\n"
                         "function Hidden() { return hidden }\nfunction Shared() { return shared }\n"
                         "function Leak() { return typeof globalThis.hidden }\n")
    other = new_workspace(tmp_path / "b", name="Other", wid="99999999-2222-3333-4444-555555555555")
    other.add_query("A.js", "let Add = (x, y) => 'other workflow'\nfunction HasBase() { return typeof greet }\n")
    rt = runtimes(ws, other)
    assert rt.call("A.js/Add", 1, 2) == "A:43"
    assert rt.call("B.js/Add", 1, 2) == "B:12"
    assert rt.call("A.js/Hidden") == "a" and rt.call("B.js/Hidden") == "b"
    assert rt.call("A.js/Greet", "Ann") == "Hello Ann"
    assert rt.call("B.js/Shared") == ["Ann"]  # Base globals are shared by the workflow's queries
    assert rt.call("B.js/Leak") == "undefined"  # top-level var stays in the query's scope
    assert rt.call("Other/A.js/Add", 1, 2) == "other workflow"
    assert rt.call("Other/A.js/HasBase") == "undefined"  # one context per workflow


def test_errors_have_user_file_lines(tmp_path, runtimes):
    ws = new_workspace(tmp_path / "a")
    ws.add_query("Err.js", "function Boom() {\n  const o = null\n  return o.x\n}\n"
                           "function Thrown() { throw 'plain string' }\n"
                           "function Custom() { class MyError extends Error {"
                           " constructor(m) { super(m); this.name = 'MyError' } }\n"
                           "  throw new MyError('custom') }\n"
                           "async function Rejects() { await null; throw new RangeError('later') }\n"
                           "function Circular() { const a = {}; a.self = a; return a }\n")
    ws.add_query("Syntax.js", "function Ok() { return 1 }\n\nlet x = ;\n")
    ws.add_query("Throws.js", "function F() {}\n\nundefinedThing.call()\n")
    ws.add_query("Imports.js", "import { a } from './a.js'\nexport function F() {}\n")
    ws.add_base("bad.js", "function fine() {}\nfoo(\n")
    rt = runtimes(ws)
    with pytest.raises(UserCodeError) as e:
        rt.call("Err.js/Boom")
    assert e.value.type_name == "TypeError" and "null" in e.value.message and e.value.language == "javascript"
    assert "at Boom (Queries/Err.js:3:12)" in e.value.stack
    assert "coflows-internal" not in e.value.stack
    with pytest.raises(UserCodeError) as e:
        rt.call("Err.js/Thrown")
    assert (e.value.type_name, e.value.message) == ("Error", "plain string")
    with pytest.raises(UserCodeError) as e:
        rt.call("Err.js/Custom")
    assert (e.value.type_name, e.value.message) == ("MyError", "custom")
    assert "Queries/Err.js:7" in e.value.stack
    with pytest.raises(UserCodeError) as e:
        rt.call("Err.js/Rejects")
    assert (e.value.type_name, e.value.message) == ("RangeError", "later") and "Queries/Err.js:8" in e.value.stack
    with pytest.raises(UserCodeError) as e:
        rt.call("Err.js/Circular")
    assert e.value.type_name == "TypeError" and "circular" in e.value.message.lower()

    problems = "\n".join(rt.problems[ws.manifest["ID"]])
    assert "Queries/Syntax.js:3:9: SyntaxError: Unexpected token ';'" in problems
    assert "Queries/Throws.js:3:1: ReferenceError: undefinedThing is not defined" in problems
    assert "Queries/Imports.js:1: import/export … from is not supported" in problems
    assert "Base/bad.js:2: SyntaxError: Unexpected end of input (an unclosed" in problems
    with pytest.raises(NotFoundError, match="failed to load"):
        rt.call("Syntax.js/Ok")


def test_timeout_then_context_still_answers(tmp_path, runtimes):
    ws = new_workspace(tmp_path / "a")
    ws.add_query("Slow.js", "let state = 'kept'\n"
                            "/// <api name=\"Spin\" timeout=\"0.3\"></api>\nfunction Spin() { while (true) {} }\n"
                            "/** @timeout 0.3 */\nasync function AsyncSpin() { await null; while (true) {} }\n"
                            "/** @timeout 0.3 */\nfunction Never() { return new Promise(() => {}) }\n"
                            "function Default() { while (true) {} }\n"
                            "function State() { return state }\n")
    rt = runtimes(ws, JsTimeoutSeconds=1.5)
    wf = rt.registry.default_workflow()
    assert wf.queries["Slow.js"].functions["Spin"].docs.timeout == 0.3
    t = time.monotonic()
    with pytest.raises(CallTimeout) as e:
        rt.call("Slow.js/Spin")
    assert 0.25 < time.monotonic() - t < 2 and e.value.http_status == 504
    assert rt.call("Slow.js/State") == "kept"  # terminated, not restarted: state survives
    with pytest.raises(CallTimeout):
        rt.call("Slow.js/Default")  # Engines.JsTimeoutSeconds
    with pytest.raises(CallTimeout):
        rt.call("Slow.js/Never")  # a Promise that never settles: nothing runs, nothing to restart
    assert rt.call("Slow.js/State") == "kept"
    js = rt.engines.get("javascript")
    assert js.describe()["restarts"] == 0
    with pytest.raises(CallTimeout):
        rt.call("Slow.js/AsyncSpin")  # runs in a microtask after the await: the context must be rebuilt
    assert rt.call("Slow.js/State") == "kept"  # waits for the restart, then answers
    assert js.describe()["restarts"] == 1


def test_memory_limit_restarts_the_context(tmp_path, runtimes):
    ws = new_workspace(tmp_path / "a")
    ws.add_base("base.js", "var baseLoaded = true\n")
    ws.add_query("Mem.js", "const keep = []\n"
                           "function Grow() { while (true) keep.push(new Array(10000).fill(Math.random())) }\n"
                           "function Ok() { return [baseLoaded, keep.length] }\n")
    rt = runtimes(ws, JsMemoryLimitMb=32, JsTimeoutSeconds=20)
    t = time.monotonic()
    with pytest.raises(UserCodeError) as e:
        rt.call("Mem.js/Grow")
    assert e.value.type_name == "MemoryLimitExceeded" and "32 MB" in e.value.message
    assert time.monotonic() - t < 15
    assert rt.call("Mem.js/Ok") == [True, 0]  # a fresh context with Base and queries again
    assert rt.engines.get("javascript").describe()["restarts"] == 1


def test_console_goes_to_the_log_tagged(tmp_path, runtimes, caplog):
    ws = new_workspace(tmp_path / "a")
    ws.add_base("b.js", "function helper() { console.warn('from base') }\n")
    ws.add_query("Log.js", "function Talk(w) { console.log('said', w, {n: 1}); console.error(new Error('oops'));"
                           " helper(); return w }\n"
                           "async function Later() { await null; console.info('after await'); return 1 }\n"
                           "function Many() { for (let i = 0; i < 1200; i++) console.log('line ' + i); return 1 }\n")
    rt = runtimes(ws)
    wid = ws.manifest["Name"]  # log tags carry the workflow's name (README), not its ID
    with caplog.at_level(logging.INFO, logger="coflows.user"):
        assert rt.call("Log.js/Talk", "hi") == "hi"
        assert rt.call("Log.js/Later") == 1
        assert rt.call("Log.js/Many") == 1
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any("line 1199" in r.getMessage() for r in caplog.records):
            time.sleep(0.05)
    msgs = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "coflows.user"]
    assert ("INFO", f"[{wid}/Log.js/Talk] said hi {{\"n\":1}}") in msgs
    assert ("WARNING", f"[{wid}/Log.js/Talk] from base") in msgs
    assert any(lvl == "ERROR" and m.startswith(f"[{wid}/Log.js/Talk] Error: oops") for lvl, m in msgs)
    assert ("INFO", f"[{wid}/Log.js/Later] after await") in msgs
    lines = [m for _, m in msgs if "] line " in m]
    assert lines == [f"[{wid}/Log.js/Many] line {i}" for i in range(1200)]  # all of them, in order


def test_cross_language_calls(tmp_path, runtimes):
    ws = new_workspace(tmp_path / "a")
    ws.add_query("PythonQuery.py", "def Hello(name: str = 'world') -> str:\n    return 'Hello ' + name\n\n"
                                   "def Fail():\n    raise ValueError('bad input')\n\n"
                                   "def Twice(n: int) -> int:\n    return 2 * n\n")
    ws.add_query("Js.js", "async function Py(n) {"
                          " return 'py said: ' + await coflows.call('PythonQuery.py', 'Hello', n) }\n"
                          "async function PyFail() { try { await coflows.call('PythonQuery.py', 'Fail') }"
                          " catch (e) { return [e.name, e.message] } }\n"
                          "async function Chain(n) { const a = await coflows.call('PythonQuery.py', 'Twice', n);"
                          " return await coflows.call('Js.js', 'Plus', a, 1) }\n"
                          "function Plus(a, b) { return a + b }\n"
                          "async function Missing() { return await coflows.call('Nope.py', 'X') }\n"
                          "async function Many(n) { const xs = []; for (let i = 0; i < n; i++)"
                          " xs.push(coflows.call('PythonQuery.py', 'Twice', i)); return (await Promise.all(xs))"
                          ".reduce((a, b) => a + b, 0) }\n")
    ws.add_query("Caller.py", "import coflows.runtime as cr\n\ndef FromPython(x: int):\n"
                              "    return cr.call('Js.js/Plus', x, 10)\n")
    rt = runtimes(ws)
    assert rt.call("Js.js/Py", "JS") == "py said: Hello JS"
    assert rt.call("Js.js/PyFail") == ["ValueError", "bad input"]
    assert rt.call("Js.js/Chain", 5) == 11  # JS → Python → back into the same JS context
    with pytest.raises(UserCodeError) as e:
        rt.call("Js.js/Missing")
    assert e.value.type_name == "NotFoundError"
    assert rt.call("Js.js/Many", 20) == 2 * sum(range(20))
    assert rt.call("Caller.py/FromPython", 5) == 15  # Python → JS


def test_hot_reload(tmp_path, runtimes):
    ws = new_workspace(tmp_path / "a")
    ws.add_base("b.js", "const PREFIX = 'v1:'\n")
    ws.add_query("Calc.js", "let Add = (x, y) => PREFIX + (Number(x) + Number(y))\nlet Gone = () => 1\n")
    ws.add_query("Other.js", "let Same = () => PREFIX + 'other'\n")
    rt = runtimes(ws)
    wf = rt.registry.default_workflow()
    assert rt.call("Calc.js/Add", 1, 2) == "v1:3"
    edit_source(ws.mnt / "Queries/Calc.js", "let Add = (x, y) => PREFIX + (x * y)\nlet New = () => 'new'\n")
    assert rt.call("Calc.js/Add", 3, 4) == "v1:12"
    assert rt.call("Calc.js/New") == "new"
    with pytest.raises(NotFoundError):
        rt.call("Calc.js/Gone")
    # a broken edit keeps the previous version serving and reports the error
    edit_source(ws.mnt / "Queries/Calc.js", "let Add = (x, y) => {\n")
    assert rt.call("Calc.js/Add", 3, 4) == "v1:12"
    assert wf.queries["Calc.js"].status()["errors"][0].startswith(
        "Queries/Calc.js:1: SyntaxError: Unexpected end of input")
    # Base changes rebuild the context; every query sees the new Base
    edit_source(ws.mnt / "Base/b.js", "const PREFIX = 'v2:'\n")
    assert rt.call("Other.js/Same") == "v2:other"
    assert rt.call("Calc.js/Add", 3, 4) == "v2:12"  # the last good version, re-evaluated
    edit_source(ws.mnt / "Queries/Calc.js", "let Add = (x, y) => PREFIX + 'fixed'\n")
    assert rt.call("Calc.js/Add", 3, 4) == "v2:fixed"


def test_long_call_does_not_block_other_workflows_or_python(tmp_path, runtimes):
    slow = new_workspace(tmp_path / "a", name="Slow")
    slow.add_query("Slow.js", "function Spin(s) {"
                              " const end = Date.now() + s * 1000; while (Date.now() < end) {} return 'done' }\n"
                              "function Quick() { return 'quick' }\n")
    fast = new_workspace(tmp_path / "b", name="Fast", wid="99999999-2222-3333-4444-555555555555")
    fast.add_query("Fast.js", "function Ping() { return 'pong' }\n")
    fast.add_query("Py.py", "def Ping():\n    return 'py pong'\n")
    rt = runtimes(slow, fast)
    done: list[str] = []
    t = threading.Thread(target=lambda: done.append(rt.call("Slow/Slow.js/Spin", "1.5")))
    t.start()
    time.sleep(0.2)
    worst = 0.0
    for _ in range(50):
        t0 = time.perf_counter()
        assert rt.call("Fast/Fast.js/Ping") == "pong"
        assert rt.call("Fast/Py.py/Ping") == "py pong"
        worst = max(worst, time.perf_counter() - t0)
    assert not done, "the slow call should still be running"
    assert worst < 0.5  # (the slow call takes 1.5 s; generous for a busy 2-core machine)
    t0 = time.perf_counter()
    assert rt.call("Slow/Slow.js/Quick") == "quick"  # the same workflow's second isolate answers at once
    assert time.perf_counter() - t0 < 0.5
    assert not done
    t.join()
    assert done == ["done"]


def test_top_level_await_and_module_style(tmp_path, runtimes):
    ws = new_workspace(tmp_path / "a")
    ws.add_query("Mod.js", "const greeting = await new Promise(r => setTimeout(() => r('Hello module'), 20))\n"
                           "export const Greeting = () => greeting\n"
                           "export default function Main() { return this === undefined }\n")
    rt = runtimes(ws)
    assert rt.call("Mod.js/Greeting") == "Hello module"
    assert rt.call("Mod.js/Main") is True  # export makes the file strict, like a module


# -- source scanning ------------------------------------------------------------------------------
def test_scan_declarations():
    src = '''
/** Doc of Add. @param {number} x */
let Add = function(x, y) { return x + y }, Other = 1
const Mul = (a, b = {k: [1, 2]}) => a * b
var re = /a}b+c\\/{/g, tpl = `t ${ {a: 1}.a } }`
export function Hello(name = "world") {}
export const { p, q: r, ...others } = obj, [aa, , bb = f(1, 2)] = arr
function outer() { let inner = 1; function nested() {} }
class Klass { method(a) {} }
foo(), bar()
if (x) { var hidden = 1 }
'''
    r = scan(src)
    assert [d.name for d in r.declarations] == ["Add", "Other", "Mul", "re", "tpl", "Hello", "p", "r", "others",
                                                "aa", "bb", "outer", "Klass"]
    assert r.find("Add").doc.strip().startswith("Doc of Add") and r.find("Hello").exported
    assert r.module and not r.top_level_await and not r.imports
    assert len(r.text) == len(src) and "export" not in r.text
    assert scan("const x = await f()").top_level_await
    assert not scan("let f = async x => await x").top_level_await


def test_params_and_jsdoc():
    names = lambda s: [(p.name, p.optional, p.rest, p.pattern) for p in params_of(s)]  # noqa: E731
    assert names("function (a, b) {}") == [("a", False, False, ""), ("b", False, False, "")]
    assert names("x => x") == [("x", False, False, "")]
    assert names("async (u, {v, w} = {}) => u") == [("u", False, False, ""), ("arg1", True, False, "object")]
    assert names("function* g(a /* , z */, ...rest) {}") == [("a", False, False, ""), ("rest", True, True, "")]
    assert names("method([a, b]) {}") == [("arg0", False, False, "array")]
    assert params_of("class A {}") is None
    d = parse_jsdoc("*\n * Adds.\n * @param {number} x - first\n * @param {string} [y=\"a\"] second\n"
                    " * @returns {Promise<number>} sum\n * @timeout 2\n")
    assert d.description == "Adds." and d.params["x"].type == "number" and d.params["x"].description == "first"
    assert d.params["y"].optional and d.params["y"].default == '"a"' and d.timeout == 2.0
    assert js_type(d.returns_type).kind == "float"
    assert js_type("?integer").nullable and js_type("number|string").kind == "any"
    assert js_type("Array<string>").kind == "list" and js_type("{a: number}").kind == "dict"


def test_example_query(tmp_path, runtimes):
    """mnt/Queries/JsQuery.js in a copy of the example workspace's Python parts."""
    import shutil

    repo = Path(__file__).resolve().parent.parent
    ws = new_workspace(tmp_path / "a")
    shutil.copytree(repo / "mnt" / "Base" / "pyBase", ws.mnt / "Base" / "pyBase")
    ws.manifest["Base"].append({"Name": "pyBase/pybase.py", "Content": "Base/pyBase/pybase.py"})
    ws.add_query("PythonQuery.py", (repo / "mnt" / "Queries" / "PythonQuery.py").read_text())
    ws.add_query("JsQuery.js", (repo / "mnt" / "Queries" / "JsQuery.js").read_text())
    rt = runtimes(ws)
    wf = rt.registry.default_workflow()
    q = wf.queries["JsQuery.js"]
    assert q.error is None and q.loaded.info["title"] == "JavaScript example query"
    assert set(q.functions) == {"Add", "Concat", "Prices", "Fail", "HelloFromPython", "Version"}
    assert rt.call("JsQuery.js/Add", "1", "2") == 3
    assert rt.call("JsQuery.js/Concat", "1", "2") == "12"
    assert rt.call("JsQuery.js/Prices", "2") == [
        {"date": "2024-01-01T00:00:00.000Z", "price": 100.5, "volume": 1000},
        {"date": "2024-01-02T00:00:00.000Z", "price": 101.5, "volume": 2000}]
    with pytest.raises(UserCodeError) as e:
        rt.call("JsQuery.js/Fail", "no")
    assert (e.value.type_name, e.value.message) == ("RangeError", "no") and "Queries/JsQuery.js:45" in e.value.stack
    assert rt.call("JsQuery.js/HelloFromPython", "JS") == {"from": "JavaScript",
                                                            "python": "Hello from Base, JS!"}
    assert rt.call("JsQuery.js/Version") == "1.0.0"


def test_first_line_columns_and_shadowing_the_host_names(tmp_path, runtimes):
    ws = new_workspace(tmp_path / "a")
    ws.add_query("One.js", "function Boom() { return null.x }\nlet console = 'mine'\nvar coflows = 2\n"
                           "function Mine() { return [console, coflows] }\n"
                           "JSON = null; Promise = null  // user code may break globals, not the engine\n")
    ws.add_query("Two.js", "let f = ;\n")
    rt = runtimes(ws)
    with pytest.raises(UserCodeError) as e:
        rt.call("One.js/Boom")
    assert "at Boom (Queries/One.js:1:31)" in e.value.stack
    assert rt.call("One.js/Mine") == ["mine", 2]
    assert "Queries/Two.js:1:9: SyntaxError: Unexpected token ';'" in rt.problems[ws.manifest["ID"]]
