"""Prebuilt assemblies (`Bins`): referenced by C# queries, importable from Python, callable as queries."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import Server, Workspace

LIB = """\
using System;

namespace MathLib
{
    public static class Ops
    {
        /// <summary>Squares a number.</summary>
        /// <param name="x">the number</param>
        public static int Square(int x) { return x * x; }

        public static double Hypot(double a, double b) { return Math.Sqrt(a * a + b * b); }

        public static string Version { get { return "lib-1"; } }
    }
}
"""

USE_CS = """\
public class UseLib
{
    public static int SquarePlusOne(int x) { return MathLib.Ops.Square(x) + 1; }
    public static int ViaRegistry(int x) { return Coflows.Host.Call<int>("MathLib.dll", "Square", x); }
}
"""

USE_PY = """\
def square(x: int) -> int:
    import MathLib  # a Bins assembly's namespace, imported from Python

    return MathLib.Ops.Square(x)
"""


def _build_dll(folder: Path, source: str = LIB) -> Path:
    """A prebuilt assembly, as a user would ship it in Bins/ (with its XML docs)."""
    mcs = shutil.which("mcs")
    if mcs is None:
        pytest.skip("mcs (mono-devel) is not installed")
    folder.mkdir(parents=True, exist_ok=True)
    src = folder / "MathLib.cs"
    src.write_text(source)
    out = folder / "MathLib.dll"
    subprocess.run([mcs, "-target:library", f"-out:{out}", f"-doc:{folder / 'MathLib.xml'}", str(src)],
                   check=True, capture_output=True)
    src.unlink()
    return out


def test_bins_assembly_everywhere(workspace: Workspace, start_server: Callable[..., Server]) -> None:
    _build_dll(workspace.mnt / "Bins")
    workspace.manifest["Bins"].append({"Name": "MathLib.dll", "Content": "Bins/MathLib.dll"})
    # the same dll as a query: its public static methods become functions
    workspace.manifest["Queries"].append({"Name": "MathLib.dll", "Content": "Bins/MathLib.dll", "ID": "MathLib.dll"})
    workspace.save()
    workspace.add_query("UseLib.cs", USE_CS)
    workspace.add_query("UseLib.py", USE_PY)
    server = start_server(workspace)
    wid = workspace.manifest["ID"]

    def call(path: str) -> object:
        r = server.get(f"/flow/query/{wid}/{path}")
        assert r.status_code == 200, r.text
        return r.json()

    assert call("MathLib.dll/Square?p[0]=4") == 16
    assert call("MathLib.dll/Hypot?p[0]=3&p[1]=4") == 5.0
    assert call("MathLib.dll/Version") == "lib-1"
    assert call("UseLib.cs/SquarePlusOne?p[0]=3") == 10  # a C# query compiled against the Bins dll
    assert call("UseLib.cs/ViaRegistry?p[0]=5") == 25  # C# -> registry -> the dll query
    assert call("UseLib.py/square?x=6") == 36  # Python imports the dll's namespace

    doc = server.get(f"/flow/openapi/{wid}/MathLib.dll").json()
    square = doc["paths"][f"/flow/query/{wid}/MathLib.dll/Square"]["get"]
    assert square["description"] == "Squares a number."  # from MathLib.xml next to the dll
    assert square["parameters"][0]["description"] == "the number"

    # rebuilt in place (the server loaded a shadow copy, so overwriting the file is safe):
    # the dll query serves the new version
    before = (workspace.mnt / "Bins" / "MathLib.dll").stat().st_mtime_ns
    _build_dll(workspace.mnt / "Bins", LIB.replace('"lib-1"', '"lib-2"'))
    dll = workspace.mnt / "Bins" / "MathLib.dll"
    os.utime(dll, ns=(before + 10**9, before + 10**9))
    assert call("MathLib.dll/Version") == "lib-2"
    assert call("MathLib.dll/Square?p[0]=5") == 25


def test_broken_bins_entry_is_reported(workspace: Workspace, start_server: Callable[..., Server]) -> None:
    (workspace.mnt / "Bins").mkdir(parents=True)
    (workspace.mnt / "Bins" / "Junk.dll").write_bytes(b"not an assembly")
    workspace.manifest["Queries"].append({"Name": "Junk.dll", "Content": "Bins/Junk.dll", "ID": "Junk.dll"})
    workspace.save()
    workspace.add_query("Ok.cs", "public class Ok { public static int One() { return 1; } }")
    server = start_server(workspace)
    wid = workspace.manifest["ID"]
    assert server.get(f"/flow/query/{wid}/Ok.cs/One").json() == 1
    status = server.get("/flow/workflows", headers=server.admin()).json()[0]
    junk = next(q for q in status["queries"] if q["id"] == "Junk.dll")
    assert junk["errors"] and junk["errors"][0].startswith("Bins/Junk.dll: cannot load assembly")
