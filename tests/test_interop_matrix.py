"""The 4×4 interop matrix over HTTP: every caller language → every callee language, every value type.

One real server (subprocess, real Mono/JVM/V8) serves tests/fixtures/interop, where each language
has the same functions: Echo, Kind, Add, Throw, Dec, When, and Call/CallCatch, which call a
function of any language through that language's own API (coflows.call, Coflows.Host.Call,
coflows.Host.call, await coflows.call). A test asks caller X (over HTTP) to call callee Y and
checks the value that came back, its kind as X sees it, and its kind as Y saw it.

Lossy cases are asserted as documented in docs/interop.md: JavaScript numbers are doubles (an
integer beyond 2^53 rounds, an integral float comes back as an integer); a decimal reaches
Java and JavaScript as a double; dates cross as ISO 8601 text except into C#.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO, Server, Workspace, new_workspace

FIXTURE = REPO / "tests" / "fixtures" / "interop"
QUERY = {"python": "InteropPy.py", "csharp": "InteropCs.cs", "java": "InteropJava.java", "javascript": "InteropJs.js"}
LANGS = list(QUERY)
PAIRS = [(x, y) for x in LANGS for y in LANGS]
BIG = 2**53 + 1  # not a double: JavaScript rounds it to 2^53

VALUES: dict[str, Any] = {
    "int": 42,
    "int64": BIG,
    "float": 1.5,
    "float_integral": 2.0,
    "str": "héllo wörld ✓ 日本 🚀",
    "bool": True,
    "null": None,
    "list": [1, "two", 3.5, None, False, [7]],
    "map": {"a": 1, "b": {"c": [1, 2, {"d": "x"}], "ü": "ß"}, "e": None, "f": 0.25},
}
# the kind a value has in each language (JavaScript has one number type)
KINDS = {"int": "int", "int64": "int", "float": "float", "float_integral": "float", "str": "str", "bool": "bool",
         "null": "null", "list": "list", "map": "map"}


def kind_in(lang: str, kind: str) -> str:
    return "number" if lang == "javascript" and kind in ("int", "float") else kind


def through_js(value: Any) -> Any:
    """A value after a trip through JavaScript: numbers are doubles, and an integral double is an integer."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(float(value))
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, list):
        return [through_js(v) for v in value]
    return {k: through_js(v) for k, v in value.items()}


SECOND = "2b7e0c0f-4f1b-4c55-9e11-0000000000bb"  # a second copy of the workspace, to check where calls resolve


def interop_workspace(root: Path) -> Workspace:
    """A workspace at `root` holding the interop fixture (the same functions in four languages)."""
    ws = new_workspace(root)
    shutil.copytree(FIXTURE / "Queries", ws.mnt / "Queries")
    ws.manifest = json.loads((FIXTURE / "package.json").read_text())
    ws.save()
    return ws


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("interop")
    ws = interop_workspace(root / "ws")
    second = root / "ws" / "second"
    shutil.copytree(FIXTURE, second)
    manifest = json.loads((FIXTURE / "package.json").read_text())
    (second / "package.json").write_text(json.dumps({**manifest, "ID": SECOND, "Name": "Interop2"}))
    ws.config["Workflow"] = ["mnt/package.json", "second/package.json"]
    ws.save()
    s = Server(ws).start()
    yield s
    s.close()


WID = json.loads((FIXTURE / "package.json").read_text())["ID"]


def call(server: Server, lang: str, fn: str, *args: Any, wid: str = WID) -> Any:
    """POST the arguments as a JSON array to `lang`'s function; the response."""
    return server.post(f"/flow/query/{wid}/{QUERY[lang]}/{fn}", json=list(args))


def ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def test_all_functions_loaded(server: Server) -> None:
    r = server.get("/flow/workflows", headers=server.admin())
    assert r.status_code == 200, r.text
    text = r.text
    for q in QUERY.values():
        assert q in text
    for lang in LANGS:
        assert ok(call(server, lang, "Add", 2, 40)) == 42


@pytest.mark.parametrize("value_name", list(VALUES))
@pytest.mark.parametrize("caller,callee", PAIRS, ids=[f"{x}->{y}" for x, y in PAIRS])
def test_value_crosses(server: Server, caller: str, callee: str, value_name: str) -> None:
    """X calls Y.Echo(v): the value comes back intact (or as documented), with the right kind on both sides."""
    value = VALUES[value_name]
    lossy = "javascript" in (caller, callee)
    expected = through_js(value) if lossy else value
    kind = KINDS[value_name]
    if lossy and value_name == "float_integral" and caller != "javascript":
        kind = "int"  # JavaScript hands 2.0 back as the integer 2

    echoed = ok(call(server, caller, "Call", QUERY[callee], "Echo", [value]))
    assert echoed["value"] == expected
    assert type(echoed["value"]) is type(expected)  # JSON keeps int/float apart: no silent int→float
    assert echoed["kind"] == kind_in(caller, kind), echoed

    seen = ok(call(server, caller, "Call", QUERY[callee], "Kind", [value]))["value"]
    callee_kind = KINDS[value_name]
    if caller == "javascript" and value_name == "float_integral":
        callee_kind = "int"  # JavaScript passes 2.0 on as the integer 2
    assert seen["kind"] == kind_in(callee, callee_kind), seen


def test_int64_through_javascript_is_rounded(server: Server) -> None:
    """Documented: an integer beyond 2^53 becomes the nearest double in JavaScript (no BigInt)."""
    assert ok(call(server, "javascript", "Echo", BIG)) == 2**53
    assert ok(call(server, "python", "Call", QUERY["javascript"], "Echo", [BIG]))["value"] == 2**53
    assert ok(call(server, "csharp", "Call", QUERY["java"], "Echo", [BIG]))["value"] == BIG  # exact elsewhere


@pytest.mark.parametrize("caller,callee", PAIRS, ids=[f"{x}->{y}" for x, y in PAIRS])
def test_add(server: Server, caller: str, callee: str) -> None:
    r = ok(call(server, caller, "Call", QUERY[callee], "Add", [2, 40]))
    assert r["value"] == 42 and r["kind"] == kind_in(caller, "int")


# The exception type the caller's code catches, in the caller's language.
CAUGHT = {"python": "UserCodeError", "csharp": "Coflows.CallException", "java": "coflows.CoflowsException",
          "javascript": "Error"}
THROWN = {"python": "ValueError", "csharp": "System.InvalidOperationException",
          "java": "java.lang.IllegalStateException", "javascript": "RangeError"}


@pytest.mark.parametrize("caller,callee", PAIRS, ids=[f"{x}->{y}" for x, y in PAIRS])
def test_error_crosses(server: Server, caller: str, callee: str) -> None:
    """Y throws: X catches an exception of its own language carrying Y's message and type;
    uncaught, it is a 500 whose message is Y's and whose type and language are Y's."""
    message = f"boom from {callee} ✓ {caller}"
    caught = ok(call(server, caller, "CallCatch", QUERY[callee], "Throw", [message]))
    assert caught["caught"] == CAUGHT[caller], caught
    assert message in caught["message"], caught
    assert caught["type"] == THROWN[callee] and caught["language"] == callee, caught

    r = call(server, caller, "Call", QUERY[callee], "Throw", [message])
    assert r.status_code == 500, r.text
    err = r.json()["error"]
    assert err["message"] == message
    assert err["type"] == THROWN[callee] and err["language"] == callee, err


@pytest.mark.parametrize("caller", LANGS)
def test_coflows_errors_cross_as_language_coflows(server: Server, caller: str) -> None:
    """An unknown function, or an argument that does not convert, fails the caller with coflows'
    error (type NotFoundError / ArgumentError, language "coflows"), caught or not."""
    r = call(server, caller, "Call", QUERY["javascript"], "Nope", [])
    assert r.status_code == 500, r.text
    err = r.json()["error"]
    assert err["type"] == "NotFoundError" and err["language"] == "coflows", err
    assert "Nope" in err["message"]
    caught = ok(call(server, caller, "CallCatch", QUERY["csharp"], "Add", ["x", 1]))
    assert caught["type"] == "ArgumentError" and caught["language"] == "coflows", caught
    assert caught["caught"] == ("ArgumentError" if caller == "python" else CAUGHT[caller]), caught


def test_uncaught_error_stack_shows_both_sides(server: Server) -> None:
    """An admin sees the caller's frames and the callee's, for every caller language but Python
    (whose own frames are not part of a callee's error)."""
    for caller in ("csharp", "java", "javascript"):
        r = server.post(f"/flow/query/{WID}/{QUERY[caller]}/Call", json=[QUERY["python"], "Throw", ["deep"]],
                        headers=server.admin())
        assert r.status_code == 500
        stack = r.json()["error"].get("stack", "")
        assert "--- in the called function ---" in stack, (caller, stack)
        assert "InteropPy.py" in stack, (caller, stack)


@pytest.mark.parametrize("caller,callee", PAIRS, ids=[f"{x}->{y}" for x, y in PAIRS])
def test_decimal_and_date(server: Server, caller: str, callee: str) -> None:
    """Documented lossy cases: a decimal stays exact only between Python and C# (a Java BigDecimal
    leaves Java as a double); a date is a date only between Python and C#, ISO 8601 text elsewhere.
    Over HTTP (JSON) they are a number and text."""
    dec = ok(call(server, caller, "Call", QUERY[callee], "Dec", []))
    exact = callee in ("python", "csharp") and caller in ("python", "csharp")
    if exact:
        assert dec["kind"] == "decimal" or (caller == "python" and dec["native"] == "Decimal"), dec
    elif callee == "javascript":  # the nearest double, 12345678901234568: integral, so an integer
        assert dec["value"] == 12345678901234568 and dec["kind"] == kind_in(caller, "int"), dec
    else:
        assert dec["kind"] == kind_in(caller, "float"), dec
    assert dec["value"] == pytest.approx(12345678901234567.89)

    when = ok(call(server, caller, "Call", QUERY[callee], "When", []))
    assert str(when["value"]).startswith("2024-02-03T04:05:06"), when
    dated = caller in ("python", "csharp") and callee in ("python", "csharp")
    if dated:
        assert when["kind"] == "other" or caller == "python", when
        assert when["native"] in ("datetime", "System.DateTime"), when
    else:
        assert when["kind"] == "str", when


def test_chain_through_all_four(server: Server) -> None:
    """Python → C# → Java → JavaScript → Python in one request, on one call stack."""
    inner = [QUERY["python"], "Add", [1, 2]]
    js = [QUERY["javascript"], "Call", inner]
    java = [QUERY["java"], "Call", js]
    r = ok(call(server, "python", "Call", QUERY["csharp"], "Call", java))
    cs = r["value"]  # C#'s answer: {value: Java's answer: {value: JS's answer: {value: 3}}}
    assert r["kind"] == "map" and cs["kind"] == "map"
    java_r = cs["value"]
    js_r = java_r["value"]
    assert js_r["value"] == 3 and js_r["kind"] == "number"
    assert java_r["native"] in ("java.util.LinkedHashMap", "java.util.HashMap")


@pytest.mark.parametrize("caller,callee", PAIRS, ids=[f"{x}->{y}" for x, y in PAIRS])
def test_call_resolves_in_callers_workflow(server: Server, caller: str, callee: str) -> None:
    """Two workflows with the same query IDs: `Query/fn` is the caller's workflow's, and
    `Workflow/Query` reaches the other one, from every language."""
    for home, other in ((WID, SECOND), (SECOND, WID)):
        r = ok(call(server, caller, "Call", QUERY[callee], "Wid", [], wid=home))
        assert r["value"] == home, (caller, callee, home, r)
        r = ok(call(server, caller, "Call", f"{other}/{QUERY[callee]}", "Wid", [], wid=home))
        assert r["value"] == other, (caller, callee, home, r)
