"""The caches on the path of a call from code (issue 21): `Function.bind`'s compiled plan and the
registry's resolved references. Each must give what the uncached path gives, and a reload (by the
call's own freshness check, by another caller such as HTTP, by a Base edit) must reach the next call."""

from __future__ import annotations

import decimal
import os
from pathlib import Path

import pytest

from coflows import registry as registry_module
from coflows.config import parse_config
from coflows.context import CallContext, call_context, current
from coflows.errors import ArgumentError, NotFoundError
from coflows.functions import Function, Param
from coflows.runtime import Runtime
from coflows.types import ANY, BOOL, FLOAT, INT, STR, ParamType
from conftest import new_workspace

OTHER_WID = "99999999-2222-3333-4444-555555555555"


# -- Function.bind: the compiled plan gives what the general path gives ------------------------------

def _fn(*params: Param, varargs: bool = False) -> Function:
    return Function("w", "Q.py", "F", "python", tuple(params), lambda a, k: (a, k), varargs=varargs)


JAVA_INT = ParamType("int", name="int")
JAVA_BYTE = ParamType("int", name="byte")
SIGNATURES = {
    "any": (Param("x"), Param("y")),
    "int,int": (Param("x", INT), Param("y", INT)),
    "java int,byte": (Param("x", JAVA_INT), Param("y", JAVA_BYTE)),
    "str,float,bool": (Param("s", STR), Param("f", FLOAT), Param("b", BOOL)),
    "optional int": (Param("x", INT, required=False, default=None),),
    "decimal,list[int]": (Param("d", ParamType("decimal")), Param("xs", ParamType("list", INT))),
    "none": (),
}
VALUES = [1, -1, 2**31, 2**31 - 1, -2**31 - 1, 300, 255, True, 1.0, 1.5, "7", "x", None, "1,2", [1, "2"], "true",
          decimal.Decimal("1.5")]


def _outcome(call, *args):  # noqa: ANN001, ANN202
    try:
        a, k = call(list(args), {})
        return "ok", [(type(v), v) for v in a], k
    except ArgumentError as e:
        return "error", str(e), e.parameter


@pytest.mark.parametrize("signature", SIGNATURES)
def test_bind_plan_matches_the_general_path(signature: str) -> None:
    fn = _fn(*SIGNATURES[signature])
    n = len(fn.params)
    rows = [()] if n == 0 else [(v,) + (VALUES[(i * 5) % len(VALUES)],) * (n - 1) for i, v in enumerate(VALUES)]
    rows += [tuple(VALUES[:n + 1])]  # one argument too many
    checked = 0
    for row in rows:
        fast, slow = _outcome(fn.bind, *row), _outcome(fn.bind_slow, *row)
        assert fast == slow, (signature, row)
        checked += fast[0] == "ok"
    assert checked > 0  # the fast path was taken with values it accepts, not only errors


def test_bind_plan_passes_values_of_their_type_unchanged_and_converts_the_others() -> None:
    fn = _fn(Param("x", JAVA_INT), Param("y", ANY))
    marker = object()
    args, kwargs = fn.bind((5, marker), {})
    assert args == [5, marker] and args[1] is marker and kwargs == {}
    assert fn.bind(("5", "5"), {}) == ([5, "5"], {})
    with pytest.raises(ArgumentError, match="parameter 'x'.*out of range for int"):
        fn.bind((2**31, 0), {})
    # named or missing arguments take the general path, with its messages
    assert fn.bind((), {"x": 1, "y": 2}) == ([], {"x": 1, "y": 2})
    with pytest.raises(ArgumentError, match="missing argument 'y'"):
        fn.bind((1,), {})


def test_bind_plan_is_remade_when_the_signature_is_replaced() -> None:
    fn = _fn(Param("x", INT))
    assert fn.bind(("3",), {}) == ([3], {})
    fn.params = (Param("x", STR),)
    assert fn.bind((3,), {}) == (["3"], {})
    fn.params = (Param("x", STR), Param("y", INT))
    assert fn.bind((3, "4"), {}) == (["3", 4], {})
    fn.varargs = True
    assert fn.bind((3, "4", "extra"), {}) == (["3", 4, "extra"], {})


# -- Registry: resolved references for calls from code ------------------------------------------------

def _runtime(*workspaces) -> Runtime:  # noqa: ANN002
    paths = [str(ws.mnt / "package.json") for ws in workspaces]
    cfg = parse_config({"Workflow": paths, "Database": {"Connection": ":memory:"}}, "test", workspaces[0].root)
    rt = Runtime(cfg)
    rt.load()
    return rt


def _rewrite(path: Path, text: str) -> None:
    """A new stamp for the freshness check even on a coarse clock."""
    before = path.stat().st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(before + 1_000_000, before + 1_000_000))


@pytest.fixture
def checked_every_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry_module, "CODE_CALL_REFRESH_SECONDS", 0.0)


@pytest.fixture
def never_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """The call's own freshness check never runs: only other reloads can change what it calls."""
    monkeypatch.setattr(registry_module, "CODE_CALL_REFRESH_SECONDS", 1e9)


def test_an_edit_reaches_the_next_call_from_code(tmp_path: Path, checked_every_call: None) -> None:
    ws = new_workspace(tmp_path / "a")
    ws.add_query("Q.py", "def F(x: int):\n    return x + 1\n")
    rt = _runtime(ws)
    try:
        assert rt.call("Q.py/F", 1) == 2
        assert rt.call("Q.py/F", "1") == 2  # converted as declared
        _rewrite(ws.mnt / "Queries" / "Q.py", "def F(x: str):\n    return x + '!'\n")
        assert rt.call("Q.py/F", 1) == "1!"  # the new version, with its new signature
        _rewrite(ws.mnt / "Queries" / "Q.py", "def G():\n    return 0\n")
        with pytest.raises(NotFoundError, match="unknown function 'F'"):
            rt.call("Q.py/F", 1)
        assert rt.call("Q.py/G") == 0
    finally:
        rt.close()


def test_a_reload_by_another_caller_reaches_the_cached_reference(tmp_path: Path, never_checked: None) -> None:
    """HTTP reloads through `Registry.function`; the code-call cache sees the new version at once."""
    ws = new_workspace(tmp_path / "a")
    ws.add_query("Q.py", "def F():\n    return 'old'\n")
    rt = _runtime(ws)
    try:
        assert rt.call("Q.py/F") == "old"
        _rewrite(ws.mnt / "Queries" / "Q.py", "def F():\n    return 'new'\n")
        assert rt.call("Q.py/F") == "old"  # not checked yet (the interval): the version it had
        wf, _ = rt.registry.function(ws.manifest["ID"], "Q.py", "F")  # as the server does for a request
        assert rt.call("Q.py/F") == "new"
        _rewrite(ws.mnt / "Queries" / "Q.py", "def F():\n    return 'newer'\n")
        wf.refresh(wf.queries["Q.py"])  # the workspace watcher's way
        assert rt.call("Q.py/F") == "newer"
    finally:
        rt.close()


def test_a_base_edit_reloads_the_queries_of_cached_references(tmp_path: Path, checked_every_call: None) -> None:
    ws = new_workspace(tmp_path / "a")
    ws.add_base("helper.py", "VALUE = 1\n")
    ws.add_query("Q.py", "import helper\n\ndef F():\n    return helper.VALUE\n")
    rt = _runtime(ws)
    try:
        assert rt.call("Q.py/F") == 1
        _rewrite(ws.mnt / "Base" / "helper.py", "VALUE = 2\n")
        assert rt.call("Q.py/F") == 2
    finally:
        rt.close()


def test_the_callers_principal_is_in_each_call_context(tmp_path: Path, never_checked: None) -> None:
    ws = new_workspace(tmp_path / "a")
    ws.add_query("Q.py", "from coflows.context import current\n\ndef Who():\n    return current().principal\n")
    rt = _runtime(ws)
    try:
        wid = ws.manifest["ID"]
        assert rt.call("Q.py/Who") is None
        alice, bob = object(), object()
        for principal in (alice, bob, alice, None, bob):
            with call_context(CallContext(wid, "Outer.py", "Outer", principal, "Test")):
                assert rt.call("Q.py/Who") is principal
                assert current().principal is principal  # the caller's context is back after the call
        assert current() is None
    finally:
        rt.close()


def test_a_call_into_another_workflow_is_cached_and_follows_its_reloads(tmp_path: Path,
                                                                       checked_every_call: None) -> None:
    a = new_workspace(tmp_path / "a", name="A")
    a.add_query("Q.py", "def Mine():\n    return 'a'\n")
    b = new_workspace(tmp_path / "b", name="B", wid=OTHER_WID)
    b.add_query("Q.py", "def Theirs():\n    return 'b1'\n")
    rt = _runtime(a, b)
    try:
        wid = a.manifest["ID"]
        for _ in range(3):
            assert rt.call("B/Q.py/Theirs", workflow=wid) == "b1"
        assert rt.call("Q.py/Mine", workflow=wid) == "a"  # the caller's own Q.py, not B's
        _rewrite(b.mnt / "Queries" / "Q.py", "def Theirs():\n    return 'b2'\n")
        assert rt.call("B/Q.py/Theirs", workflow=wid) == "b2"
        with pytest.raises(NotFoundError):
            rt.call("Q.py/Theirs", workflow=wid)  # in the caller's workflow there is none
    finally:
        rt.close()


def test_a_removed_workflow_is_no_longer_called(tmp_path: Path, never_checked: None) -> None:
    a = new_workspace(tmp_path / "a", name="A")
    a.add_query("Q.py", "def F():\n    return 'a'\n")
    b = new_workspace(tmp_path / "b", name="B", wid=OTHER_WID)
    b.add_query("Q.py", "def F():\n    return 'b'\n")
    rt = _runtime(a, b)
    try:
        assert rt.call("B/Q.py/F", workflow=a.manifest["ID"]) == "b"
        rt.registry.remove(OTHER_WID)
        with pytest.raises(NotFoundError):
            rt.call("B/Q.py/F", workflow=a.manifest["ID"])
    finally:
        rt.close()


def test_a_reload_drops_every_cached_reference_of_the_workflow() -> None:
    """A reference nobody calls again must not keep the old version's code (and its class loader) alive."""
    from coflows.registry import Registry

    class FakeWorkflow:
        id, name = "wf", "WF"

        def __init__(self) -> None:
            self.on_reload: list = []

    reg = Registry()
    wf = FakeWorkflow()
    reg.add(wf)  # type: ignore[arg-type]
    reg.add(wf)  # type: ignore[arg-type]
    assert wf.on_reload == [reg._forget_refs]  # registered once
    reg._refs[("Q.py/f", None)] = object()  # type: ignore[assignment]
    for listener in wf.on_reload:
        listener()
    assert reg._refs == {}
