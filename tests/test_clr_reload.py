"""Hot reload of C# sources over HTTP: edits serve the next call; broken edits keep the old version."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from conftest import Server, Workspace

BASE = """\
namespace RBase
{
    public static class Suffix
    {
        public static string Text() { return "-v1"; }
    }
}
"""

CALC = """\
public class Calc
{
    public static int Add(int x, int y) { return x + y + %d; }
    public static string Tag(string s) { return s + RBase.Suffix.Text(); }
}
"""

PY = """\
import coflows.runtime


def via_csharp(x: int, y: int):
    return coflows.runtime.call("Calc.cs/Add", x, y)


def base_suffix():
    import RBase  # the C# Base namespace, from Python

    return RBase.Suffix.Text()
"""


def _edit(path: Path, text: str) -> None:
    """Write a file so that its mtime surely changes (hot reload compares mtimes)."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    now = max(time.time_ns(), before + 1_000_000)
    os.utime(path, ns=(now, now))


def _call(server: Server, path: str) -> tuple[int, object]:
    r = server.get(f"/flow/query/{server.ws.manifest['ID']}/{path}", headers=server.admin())
    return r.status_code, r.json()


def _errors(server: Server, query: str) -> list[str]:
    status = server.get("/flow/workflows", headers=server.admin()).json()[0]
    return next(q["errors"] for q in status["queries"] if q["id"] == query)


def test_edit_recompiles_and_serves_the_new_version(workspace: Workspace, start_server: Callable[..., Server]) -> None:
    workspace.add_base("RBase/Suffix.cs", BASE)
    workspace.add_query("Calc.cs", CALC % 0)
    workspace.add_query("Via.py", PY)
    server = start_server(workspace)
    calc = workspace.mnt / "Queries" / "Calc.cs"
    assert _call(server, "Calc.cs/Add?p[0]=1&p[1]=2") == (200, 3)

    _edit(calc, CALC % 100)
    assert _call(server, "Calc.cs/Add?p[0]=1&p[1]=2") == (200, 103)
    assert _call(server, "Via.py/via_csharp?x=1&y=2") == (200, 103)  # other languages see it too

    # a broken edit: the error is reported with its line, the previous version keeps serving
    _edit(calc, CALC.replace("return x + y + %d;", "return x + y") % ())
    assert _call(server, "Calc.cs/Add?p[0]=1&p[1]=2") == (200, 103)
    errors = _errors(server, "Calc.cs")
    assert any(e.startswith("Queries/Calc.cs:3:") and "error CS" in e for e in errors), errors

    _edit(calc, CALC % 1000)
    assert _call(server, "Calc.cs/Add?p[0]=1&p[1]=2") == (200, 1003)
    assert _errors(server, "Calc.cs") == []

    # editing the Base recompiles it and every query against it
    assert _call(server, "Calc.cs/Tag?p[0]=a") == (200, "a-v1")
    assert _call(server, "Via.py/base_suffix") == (200, "-v1")
    _edit(workspace.mnt / "Base" / "RBase" / "Suffix.cs", BASE.replace("-v1", "-v2"))
    assert _call(server, "Calc.cs/Tag?p[0]=a") == (200, "a-v2")
    assert _call(server, "Via.py/base_suffix") == (200, "-v2")  # Python imports see the new Base too
    assert _call(server, "Calc.cs/Add?p[0]=1&p[1]=2") == (200, 1003)


def test_reloads_are_bounded(workspace: Workspace, start_server: Callable[..., Server]) -> None:
    workspace.add_query("Calc.cs", CALC.replace("RBase.Suffix.Text()", '"!"') % 0)
    server = start_server(workspace, env={"COFLOWS_CLR_MAX_RELOADS": "2", "COFLOWS_CLR_WARN_RELOADS": "1"})
    calc = workspace.mnt / "Queries" / "Calc.cs"
    for i in (1, 2):
        _edit(calc, CALC.replace("RBase.Suffix.Text()", '"!"') % i)
        assert _call(server, "Calc.cs/Add?p[0]=0&p[1]=0") == (200, i)
    _edit(calc, CALC.replace("RBase.Suffix.Text()", '"!"') % 3)
    assert _call(server, "Calc.cs/Add?p[0]=0&p[1]=0") == (200, 2)  # refused: the last version serves
    errors = _errors(server, "Calc.cs")
    assert any("reloaded 2 times" in e and "restart" in e for e in errors), errors
    assert "reloaded 1 times in this process" in server.output()  # the warning, every WARN_RELOADS
