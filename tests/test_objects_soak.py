"""Soak: 100,000 cross-language object calls per pair, and the server's memory does not grow.

Each pair (caller → owner of the objects) runs a loop in the caller's language that makes a
foreign object, reads a member and calls a method with it (three crossings a turn). A first pass
of 100,000 crossings per pair brings every heap to its working size (V8, the JVM and Mono keep
what they grew to); the resident memory of the server is taken then, and after a second pass of
100,000 crossings for every pair it may have grown by less than 10%. The handle table that keeps
foreign objects for proxies is back near empty once each runtime has collected its garbage:
proxies release what they hold.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import REPO, Server, Workspace, new_workspace

FIXTURE = REPO / "tests" / "fixtures" / "objects_soak"
# (caller's query, function): a turn is three crossings
PAIRS = {
    "python->csharp": ("SoakPy.py", "CSharp"),
    "python->java": ("SoakPy.py", "Java"),
    "csharp->python": ("SoakCs.cs", "Python"),
    "csharp->java": ("SoakCs.cs", "Java"),
    "java->csharp": ("SoakJava.java", "CSharp"),
    "java->python": ("SoakJava.java", "Python"),
    "javascript->csharp": ("SoakJs.js", "CSharp"),
    "javascript->java": ("SoakJs.js", "Java"),
}
CROSSINGS = 100_000
TURNS = CROSSINGS // 3 + 1
WARMUP = TURNS  # a first pass brings each runtime's heap (two V8 isolates, the JVM, Mono) to its working size


def soak_workspace(root: Path) -> Workspace:
    ws = new_workspace(root)
    shutil.copytree(FIXTURE, ws.mnt, dirs_exist_ok=True)
    ws.manifest["Base"] = [{"Name": p.relative_to(ws.mnt / "Base").as_posix(), "Content": p.relative_to(ws.mnt).as_posix()}
                           for p in sorted((ws.mnt / "Base").rglob("*.*"))]
    ws.manifest["Queries"] = [{"Name": p.name, "Content": f"Queries/{p.name}", "ID": p.name}
                              for p in sorted((ws.mnt / "Queries").iterdir())]
    ws.save()
    return ws


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    ws = soak_workspace(tmp_path_factory.mktemp("soak") / "ws")
    ws.config["Server"]["CallTimeout"] = 600
    ws.save()
    s = Server(ws).start()
    yield s
    s.close()


def run(server: Server, query: str, fn: str, n: int) -> int:
    r = server.get(f"/flow/query/{server.ws.manifest['ID']}/{query}/{fn}", params={"n": n}, headers=server.admin())
    assert r.status_code == 200, f"{query}/{fn}: {r.text}"
    return r.json()


def rss_kb(server: Server) -> int:
    pid = server.child_pid() or server.proc.pid
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def collect(server: Server) -> int:
    """Collect garbage in every runtime (the .NET and Java finalizers release handles); the handles left."""
    def call(q: str, f: str) -> httpx.Response:
        r = server.get(f"/flow/query/{server.ws.manifest['ID']}/{q}/{f}", headers=server.admin())
        assert r.status_code == 200, r.text
        return r

    call("SoakJava.java", "Collect")
    call("SoakCs.cs", "Collect")
    left = call("SoakPy.py", "Handles").json()
    # JavaScript: a context past 10,000 handles collects after its script; FinalizationRegistry's
    # releases then ride on a later host call of that context (a workflow has two)
    for _ in range(10):
        if left < 1_000:
            break
        for _ in range(4):
            call("SoakJs.js", "Collect")
        left = call("SoakPy.py", "Handles").json()
    return left


def test_every_pair_answers(server: Server) -> None:
    # Ada is 36, each turn adds 36 + 1
    for name, (query, fn) in PAIRS.items():
        assert run(server, query, fn, 10) == 370, name


def test_soak_memory_and_handles_stay_bounded(server: Server) -> None:
    for query, fn in PAIRS.values():
        run(server, query, fn, WARMUP)
    collect(server)
    before = rss_kb(server)
    for name, (query, fn) in PAIRS.items():
        assert run(server, query, fn, TURNS) == 37 * TURNS, name
    left = collect(server)
    after = rss_kb(server)
    growth = (after - before) / before
    print(f"RSS {before // 1024} MB -> {after // 1024} MB ({growth:+.1%}) after {len(PAIRS)} x {3 * TURNS} "
          f"crossings; handles left {left}")
    assert growth < 0.10, f"RSS grew {growth:.1%} ({before} kB -> {after} kB)"
    assert left < 5_000, f"{left} foreign objects still held after collection"
