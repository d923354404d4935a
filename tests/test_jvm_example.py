"""The example workspace's Java files (mnt/Base/javaBase, mnt/Queries/JavaQuery.java) over HTTP, with Gson.

Gson comes from Maven Central through the package installer (`coflows.packages.maven`),
which puts it under `<workspace>/jars/` with a lock file; the engine finds it there.
Skipped when Maven Central cannot be reached.
"""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import REPO, Server, new_workspace

pytestmark = pytest.mark.skipif(shutil.which("javac") is None, reason="needs a JDK")

GSON = {"ID": "com.google.code.gson:gson", "Version": "2.10.1"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("example")
    ws = new_workspace(root / "ws", name="Example", wid="3c0a3f6e-5d1b-4a8e-9a41-6f2f5b7c9d10")
    for rel in ("Base/pyBase/pybase.py", "Base/javaBase/JavaBase.java", "Queries/PythonQuery.py",
                "Queries/JavaQuery.java"):
        ws.write(rel, (REPO / "mnt" / rel).read_text())
    ws.manifest["Base"] = [{"Name": "pyBase/pybase.py", "Content": "Base/pyBase/pybase.py"},
                           {"Name": "javaBase/JavaBase.java", "Content": "Base/javaBase/JavaBase.java"}]
    ws.manifest["Queries"] = [{"Name": n, "Content": f"Queries/{n}", "ID": n} for n in ("PythonQuery.py", "JavaQuery.java")]
    ws.manifest["Jars"] = [GSON]
    ws.save()
    try:
        from coflows.packages.maven import resolve_jars

        resolve_jars([GSON], ws.mnt)
    except Exception as e:  # noqa: BLE001 - no network: nothing to test against
        pytest.skip(f"cannot fetch Gson from Maven Central: {e}")
    s = Server(ws).start(timeout=120)
    yield s
    s.close()


def get(server: Server, path: str):
    return server.get(f"/flow/query/Example/JavaQuery.java/{path}")


def test_example_java_query(server):
    assert get(server, "Add?p[0]=1&p[1]=2").json() == 3
    assert get(server, "Add?p[0]=1&p[1]=2&p[2]=3").json() == 6
    assert get(server, "Quotes?symbol=ABC&days=2").json() == [
        {"symbol": "ABC", "date": "2024-01-01", "price": 100.5},
        {"symbol": "ABC", "date": "2024-01-02", "price": 101.5}]
    r = server.post("/flow/query/Example/JavaQuery.java/MeanPrice",
                    json={"quotes": [{"symbol": "A", "price": 1.5}, {"symbol": "B", "price": 2.5}]})
    assert r.json() == 2.0
    assert json.loads(server.post("/flow/query/Example/JavaQuery.java/ToJson", json={"data": {"a": [1, 2]}}).json()) == {"a": [1, 2]}
    assert get(server, 'Parse?json={"x":1}').json() == {"x": 1, "parsedBy": "gson"}
    fail = get(server, "Fail?message=nope")
    assert fail.status_code == 500
    assert fail.json()["error"] == {"type": "java.lang.IllegalArgumentException", "message": "nope", "language": "java",
                                  "origin": "user"}
    assert get(server, "HelloFromPython").json() == "Hello from Base, Java!"
    assert get(server, "Hello?name=you").json() == "Hello from Java Base, you!"


def test_example_docs(server):
    doc = server.get("/flow/openapi/Example/JavaQuery.java").json()
    assert doc["info"]["title"] == "Java example query"
    quotes = next(v for k, v in doc["paths"].items() if k.endswith("/Quotes"))["get"]
    assert quotes["description"].startswith("A list of objects from the Base library")
    assert {p["name"]: p.get("description") for p in quotes["parameters"] if p["name"] != "_cokey"} == {
        "symbol": "the ticker", "days": "how many days"}


def test_example_files_exist():
    for rel in ("mnt/Base/javaBase/JavaBase.java", "mnt/Queries/JavaQuery.java", "mnt/Queries/PythonQuery.py"):
        assert (REPO / rel).is_file()
