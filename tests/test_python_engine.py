"""The Python engine in-process: discovery, Base imports, isolation, docs, errors, hot reload."""

import json
import os
import time
from pathlib import Path

import pytest

from coflows.config import parse_config
from coflows.errors import ArgumentError, NotFoundError, UserCodeError
from coflows.runtime import Runtime
from conftest import new_workspace, edit_source


def _runtime(*workspaces) -> Runtime:
    paths = [str(ws.mnt / "package.json") for ws in workspaces]
    cfg = parse_config({"Workflow": paths, "Database": {"Connection": ":memory:"}}, "test", workspaces[0].root)
    rt = Runtime(cfg)
    rt.load()
    return rt




def test_public_functions_signatures_and_docs(tmp_path):
    ws = new_workspace(tmp_path / "a")
    ws.add_query("Calc.py", '''
import json
from json import dumps  # imported functions are not this module's functions

### <api name="Add">
###   <description>Adds.</description>
###   <param name="x" type="integer">first</param>
###   <permissions><group id="$WID$" permission="write"/></permissions>
### </api>
def Add(x, y: int = 2):
    return int(x) + y

def Doc(a: list[int]) -> int:
    """Sums a list."""
    return sum(a)

def _private():
    return 0

WID = "$WID$"
''')
    rt = _runtime(ws)
    wf = rt.registry.workflow("Test")
    q = wf.queries["Calc.py"]
    assert sorted(q.functions) == ["Add", "Doc"]
    add = q.functions["Add"]
    assert [(p.name, p.type.kind, p.required) for p in add.params] == [("x", "int", True), ("y", "int", False)]
    assert add.docs.description == "Adds." and add.docs.params["x"] == "first"
    assert add.docs.permissions[0].group == wf.id and add.docs.permissions[0].level == 2
    assert q.functions["Doc"].docs.description == "Sums a list."
    assert q.functions["Doc"].params[0].type.item.kind == "int"
    assert rt.call("Calc.py/Add", "40") == 42
    assert rt.call("Calc.py/Doc", "[1,2,3]") == 6
    assert q.loaded.handle.WID == wf.id  # $WID$ is replaced in the source


def test_base_modules_and_isolation_between_workflows(tmp_path):
    ws1 = new_workspace(tmp_path / "one", name="One", wid="aaaaaaaa-0000-0000-0000-000000000001")
    ws2 = new_workspace(tmp_path / "two", name="Two", wid="aaaaaaaa-0000-0000-0000-000000000002")
    for ws, n in ((ws1, 1), (ws2, 2)):
        ws.add_base("lib/util.py", f"VALUE = {n}\ndef which():\n    return 'workflow {n}'\n")
        ws.add_base("helpers.py", "import util\ndef twice():\n    return util.VALUE * 2\n")
        ws.add_query("util.py", "import util as u\nfrom lib import util as u2\nimport helpers\n"
                                "def Which():\n    return [u.which(), u2.VALUE, helpers.twice()]\n")
    rt = _runtime(ws1, ws2)
    assert rt.call("util.py/Which", workflow="One") == ["workflow 1", 1, 2]
    assert rt.call("util.py/Which", workflow="Two") == ["workflow 2", 2, 4]
    assert rt.call("One/util.py/Which") == ["workflow 1", 1, 2]


def test_load_errors_do_not_stop_other_files(tmp_path):
    ws = new_workspace(tmp_path / "a")
    ws.add_query("good.py", "def Ok():\n    return 'ok'\n")
    ws.add_query("syntax.py", "def f(:\n    pass\n")
    ws.add_query("raises.py", "x = 1\nraise RuntimeError('at import')\n")
    rt = _runtime(ws)
    problems = rt.problems[ws.manifest["ID"]]
    assert any(p.startswith("Queries/syntax.py:1:") and "SyntaxError" in p for p in problems)
    assert any(p.startswith("Queries/raises.py:2: RuntimeError: at import") for p in problems)
    assert rt.call("good.py/Ok") == "ok"
    with pytest.raises(NotFoundError, match="failed to load"):
        rt.call("syntax.py/f")


def test_user_exception_carries_type_message_and_user_stack(tmp_path):
    ws = new_workspace(tmp_path / "a")
    ws.add_query("e.py", "def Boom(n: int):\n    return 10 // n\n")
    rt = _runtime(ws)
    with pytest.raises(UserCodeError) as e:
        rt.call("e.py/Boom", 0)
    assert e.value.type_name == "ZeroDivisionError"
    assert "e.py\", line 2, in Boom" in e.value.stack
    assert "coflows/engines" not in e.value.stack
    with pytest.raises(ArgumentError, match="parameter 'n': expected int"):
        rt.call("e.py/Boom", "zero")


def test_hot_reload_and_broken_edit_keeps_old_version(tmp_path):
    ws = new_workspace(tmp_path / "a")
    ws.add_query("h.py", "def V():\n    return 1\n")
    ws.add_base("b.py", "N = 10\n")
    rt = _runtime(ws)
    assert rt.call("h.py/V") == 1
    edit_source(ws.mnt / "Queries/h.py", "import b\ndef V():\n    return 2 + b.N\n")
    assert rt.call("h.py/V") == 12
    edit_source(ws.mnt / "Queries/h.py", "def V(:\n")
    assert rt.call("h.py/V") == 12  # the old version keeps serving
    q = rt.registry.workflow("Test").queries["h.py"]
    assert q.error is not None and "h.py:1" in str(q.error)
    edit_source(ws.mnt / "Base/b.py", "N = 100\n")
    edit_source(ws.mnt / "Queries/h.py", "import b\ndef V():\n    return 3 + b.N\n")
    assert rt.call("h.py/V") == 103
    assert q.error is None


def test_print_is_tagged_with_the_function(tmp_path, caplog):
    ws = new_workspace(tmp_path / "a")
    ws.add_query("p.py", "def Talk():\n    print('hello from user code')\n    return 1\n")
    rt = _runtime(ws)
    from coflows.context import CallContext, call_context
    with caplog.at_level("INFO", logger="coflows.user"):
        with call_context(CallContext("Test", "p.py", "Talk")):
            rt.registry.workflow("Test").queries["p.py"].functions["Talk"]()
    assert any("[Test/p.py/Talk] hello from user code" in r.getMessage() for r in caplog.records)
