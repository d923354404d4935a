"""The JavaScript engine end to end: a real `coflows server` with JS queries, called over HTTP."""

from __future__ import annotations

import os
import threading
import time

import pytest

pytest.importorskip("py_mini_racer")

from conftest import Server, new_workspace

WID = "11111111-2222-3333-4444-555555555555"
OTHER = "99999999-2222-3333-4444-555555555555"

BASE = """
function greet(name) { return 'Hello ' + name + ' from Base' }
"""

CALC = """
/// <info version="1.0.0"><title>JS calculator</title></info>

/**
 * Adds two numbers.
 * @param {number} x - first
 * @param {number} y - second
 */
let Add = function(x, y) { return x + y }

let Concat = function(a, b) { return a + b }  // CoFlows style: undeclared → strings

let getName = 'something'

function Greet(name) { return greet(name) }

function Obj() { return {a: 1, list: [1, 'two', null], when: new Date(Date.UTC(2024, 0, 2))} }

function Boom() {
  const o = null
  return o.missing
}

async function Later(ms) {
  await new Promise(r => setTimeout(r, Number(ms)))
  return 'waited ' + ms
}

function Talk(word) { console.log('said', word); console.warn('careful'); return word }

async function Py(name) { return 'python says: ' + await coflows.call('PythonQuery.py', 'Hello', name) }

/// <api name="Spin" timeout="0.5"></api>
function Spin() { while (true) {} }

/** @timeout 0.5 */
async function AsyncSpin() { await null; while (true) {} }

let calls = 0
function Count() { return ++calls }

const keep = []
function Grow() { while (true) keep.push(new Array(10000).fill(Math.random())) }

function Slow(s) { const end = Date.now() + Number(s) * 1000; while (Date.now() < end) {} return 'slow done' }
"""

OTHER_CALC = """
/** @param {number} x */
function Add(x, y) { return 'other ' + (x + Number(y)) }
"""

PYTHON = """
def Hello(name: str = "world") -> str:
    return "Hello " + name

def Ping() -> str:
    return "py pong"
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("jshttp")
    other = new_workspace(root / "other", name="Other", wid=OTHER)
    other.add_query("Calc.js", OTHER_CALC)
    ws = new_workspace(root / "ws", name="Js", Engines={"JsTimeoutSeconds": 5, "JsMemoryLimitMb": 48})
    ws.config["Workflow"] = ["mnt/package.json", str(other.mnt / "package.json")]
    ws.add_base("jsBase/base.js", BASE)
    ws.add_query("Calc.js", CALC)
    ws.add_query("PythonQuery.py", PYTHON)
    ws.add_query("Bad.js", "function Fine() { return 1 }\n\nlet broken = {\n  a: 1,,\n}\n")
    ws.add_query("Reload.js", "let Version = () => 'v1'\n")
    ws.add_query("Twin.js", "let Add = function(x, y) { return 'twin ' + x + y }\nvar calls = 'twin scope'\n"
                            "function Calls() { return calls }\n")
    s = Server(ws).start()
    s.ws = ws
    yield s
    s.close()


def q(server, path: str, **kw):
    return server.get(f"/flow/query/{WID}/{path}", **kw)


def test_typed_and_coflows_style_arguments(server):
    assert q(server, "Calc.js/Add?p[0]=1&p[1]=2").json() == 3  # @param {number}
    assert q(server, "Calc.js/Concat?p[0]=1&p[1]=2").json() == "12"  # untyped: strings, as in CoFlows
    assert q(server, "Calc.js/Add?x=1.5&y=2").json() == 3.5
    assert server.post(f"/flow/query/{WID}/Calc.js/Add", json={"x": 2, "y": 3}).json() == 5
    bad = q(server, "Calc.js/Add?p[0]=1&p[1]=abc")
    assert bad.status_code == 400 and bad.json()["error"]["parameter"] == "y"
    assert q(server, "Calc.js/getName").json() == "something"
    assert q(server, "Calc.js/Greet?p[0]=Ann").json() == "Hello Ann from Base"
    assert q(server, "Calc.js/Obj").json() == {"a": 1, "list": [1, "two", None], "when": "2024-01-02T00:00:00.000Z"}
    assert q(server, "Calc.js/Add.txt?p[0]=1&p[1]=2").text == "3"
    assert server.get(f"/flow/query/{OTHER}/Calc.js/Add?p[0]=1&p[1]=2").json() == "other 3"  # own context
    assert q(server, "Twin.js/Add?p[0]=1&p[1]=2").json() == "twin 12"  # each query file has its own scope
    assert q(server, "Twin.js/Calls").json() == "twin scope"


def test_openapi_lists_js_functions(server):
    doc = server.get(f"/flow/openapi/{WID}/Calc.js").json()
    assert doc["info"]["title"] == "JS calculator"
    assert any(path.endswith("/Add") for path in doc["paths"])


def test_promise_is_awaited(server):
    assert q(server, "Calc.js/Later?p[0]=50").json() == "waited 50"


def test_thrown_error_has_stack_in_the_users_file(server):
    r = q(server, "Calc.js/Boom", headers=server.admin())
    assert r.status_code == 500
    err = r.json()["error"]
    assert err["type"] == "TypeError" and err["language"] == "javascript" and "null" in err["message"]
    assert "at Boom (Queries/Calc.js:21:12)" in err["stack"]
    assert "stack" not in q(server, "Calc.js/Boom").json()["error"]  # stacks only for admins


def test_syntax_error_is_reported_with_its_line(server):
    status = server.get("/flow/workflows", headers=server.admin()).json()
    bad = next(x for wf in status if wf["id"] == WID for x in wf["queries"] if x["id"] == "Bad.js")
    assert bad["errors"] == ["Queries/Bad.js:4:8: SyntaxError: Unexpected token ','"]
    r = q(server, "Bad.js/Fine")
    assert r.status_code == 404 and "Queries/Bad.js:4:8" in r.json()["error"]["message"]


def test_timeout_is_504_and_the_context_still_answers(server):
    assert q(server, "Calc.js/Count").json() == 1
    t = time.monotonic()
    r = q(server, "Calc.js/Spin")
    assert r.status_code == 504 and r.json()["error"]["type"] == "CallTimeout"
    assert time.monotonic() - t < 3
    assert q(server, "Calc.js/Count").json() == 2  # same context: its state is intact
    assert q(server, "Calc.js/AsyncSpin").status_code == 504  # a loop after await: the context is rebuilt
    assert q(server, "Calc.js/Add?p[0]=1&p[1]=2").json() == 3
    assert q(server, "Calc.js/Count").json() == 1  # rebuilt: state starts again


def test_memory_limit_then_the_context_recovers(server):
    r = q(server, "Calc.js/Grow")
    assert r.status_code == 500
    err = r.json()["error"]
    assert err["type"] == "MemoryLimitExceeded" and "48 MB" in err["message"]
    assert q(server, "Calc.js/Greet?p[0]=Bo").json() == "Hello Bo from Base"


def test_console_log_goes_to_the_server_log(server):
    assert q(server, "Calc.js/Talk?p[0]=hi").json() == "hi"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "[Js/Calc.js/Talk] careful" not in server.output():
        time.sleep(0.05)
    out = server.output()
    assert "[Js/Calc.js/Talk] said hi" in out and "[Js/Calc.js/Talk] careful" in out  # tagged by Name


def test_cross_language_call(server):
    assert q(server, "Calc.js/Py?p[0]=JS").json() == "python says: Hello JS"


def test_hot_reload(server):
    path = server.ws.mnt / "Queries" / "Reload.js"
    assert q(server, "Reload.js/Version").json() == "v1"
    before = path.stat().st_mtime_ns
    path.write_text("let Version = () => 'v2'\n/** @param {number} n */\nfunction Double(n) { return 2 * n }\n")
    if path.stat().st_mtime_ns == before:
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))
    assert q(server, "Reload.js/Version").json() == "v2"
    assert q(server, "Reload.js/Double?p[0]=21").json() == 42


def test_long_js_call_does_not_block_other_workflows_or_python(server):
    result: list = []
    t = threading.Thread(target=lambda: result.append(q(server, "Calc.js/Slow?p[0]=2").json()))
    t.start()
    time.sleep(0.3)
    worst = 0.0
    for _ in range(20):
        t0 = time.perf_counter()
        assert server.get(f"/flow/query/{OTHER}/Calc.js/Add?p[0]=1&p[1]=2").json() == "other 3"
        assert q(server, "PythonQuery.py/Ping").json() == "py pong"
        worst = max(worst, time.perf_counter() - t0)
    assert not result, "the slow call should still be running"
    assert worst < 1.0
    t.join()
    assert result == ["slow done"]
