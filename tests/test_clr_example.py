"""The example workspace's C# files (mnt/Base/csBase/csBase.cs, mnt/Queries/CSharpQuery.cs), served."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from conftest import REPO, Server, Workspace

CS_BASE = {"Name": "csBase/csBase.cs", "Content": "Base/csBase/csBase.cs"}
CS_QUERY = {"Name": "CSharpQuery.cs", "Content": "Queries/CSharpQuery.cs", "ID": "CSharpQuery.cs"}


def _example(tmp: Path) -> Workspace:
    root = tmp / "example"
    shutil.copytree(REPO / "mnt", root / "mnt", ignore=shutil.ignore_patterns("database.db*", ".coflows"))
    manifest = json.loads((root / "mnt" / "package.json").read_text())
    # the entries for the C# files (added here when the example manifest does not list them yet)
    if not any(b["Content"] == CS_BASE["Content"] for b in manifest["Base"]):
        manifest["Base"].insert(0, CS_BASE)
    if not any(q["Content"] == CS_QUERY["Content"] for q in manifest["Queries"]):
        manifest["Queries"].append(CS_QUERY)
    config = {"Database": {"Type": "sqlite", "Connection": "mnt/database.db"}, "Workflow": "mnt/package.json",
              "Server": {"Host": "127.0.0.1", "Port": 0, "SecretKey": "test-admin-key"}}
    ws = Workspace(root, manifest, config)
    ws.save()
    return ws


def test_example_csharp_query(tmp_path: Path, start_server: Callable[..., Server]) -> None:
    ws = _example(tmp_path)
    server = start_server(ws)
    base = f"/flow/query/{ws.manifest['ID']}/CSharpQuery.cs"

    def get(path: str, **kw) -> object:
        r = server.get(base + path, **kw)
        assert r.status_code == 200, r.text
        return r.json()

    assert get("/Add?p[0]=1&p[1]=2") == 3
    assert get("/Add?p[0]=1&p[1]=2&p[2]=3") == 6
    assert get("/Hello?p[0]=you") == "Hello from the C# Base, you!"
    assert get("/Prices?p[0]=2") == [{"Date": "2024-01-01T00:00:00", "Value": 100.5, "Volume": 1000},
                                     {"Date": "2024-01-02T00:00:00", "Value": 101.5, "Volume": 2000}]
    assert server.get(base + "/Prices.csv?p[0]=1").text.splitlines() == ["Date,Value,Volume",
                                                                         "2024-01-01T00:00:00,100.5,1000"]
    assert get("/Mean?values=1,2,3") == 2.0
    r = server.post(base + "/Place", json={"order": {"Symbol": "ABC", "Quantity": 10, "Side": "Sell"}})
    assert r.status_code == 200 and r.json() == {"symbol": "ABC", "signed": -10}
    assert get("/HelloFromPython") == "Hello from Base, C#!"  # C# -> PythonQuery.py -> Python Base
    assert get("/Version") == "1.0.0"
    r = server.get(base + "/Fail?p[0]=oops")
    assert r.status_code == 500
    assert r.json()["error"] == {"type": "System.InvalidOperationException", "message": "oops", "language": "csharp",
                                 "origin": "user"}
    # the Python side of the example is unaffected
    assert server.get(f"/flow/query/{ws.manifest['ID']}/PythonQuery.py/Add?p[0]=1&p[1]=2").json() == 3
