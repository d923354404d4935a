"""Live development (issue 19, points 1 and 2): files, package.json entries and pips added to a
running server take effect without a restart, while calls in flight keep succeeding.

One server (all four engines) serves the whole module; each test leaves the workspace serving.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import ADMIN_KEY, Server, new_workspace

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "packages"))
from builders import build_jar, make_wheel  # noqa: E402
from pkgserver import CountingServer  # noqa: E402

BOUND_S = 30.0  # "not frozen": the watcher applies a change within about a second

PING = {
    "py": "def Ping(x: int) -> int:\n    return x + 1\n",
    "cs": "public class PingCs\n{\n    public static int Ping(int x)\n    {\n        return x + 1;\n    }\n}\n",
    "java": "public class PingJava {\n    public static int Ping(int x) {\n        return x + 1;\n    }\n}\n",
    "js": "/** @param {number} x */\nfunction Ping(x) {\n    return x + 1;\n}\n",
}
NEW = {
    "py": "def Hello(name: str) -> str:\n    return 'py ' + name\n",
    "cs": ("public class NewCs\n{\n    public static string Hello(string name)\n    {\n"
           "        return \"cs \" + name;\n    }\n}\n"),
    "java": ("public class NewJava {\n    public static String Hello(String name) {\n"
             "        return \"java \" + name;\n    }\n}\n"),
    "js": "/** @param {string} name */\nfunction Hello(name) {\n    return 'js ' + name;\n}\n",
}
NEW_FILE = {"py": "NewPy.py", "cs": "NewCs.cs", "java": "NewJava.java", "js": "NewJs.js"}
PING_FILE = {"py": "PingPy.py", "cs": "PingCs.cs", "java": "PingJava.java", "js": "PingJs.js"}


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CountingServer]:
    """A PEP 503 index on loopback serving `cfpkg-live` (and nothing else)."""
    root = tmp_path_factory.mktemp("index")
    wheel = make_wheel(root, "cfpkg-live", "1.0", code="VALUE = 'live 1.0'\n")
    (root / "simple" / "cfpkg-live").mkdir(parents=True)
    (root / "simple" / "cfpkg-live" / "index.html").write_text(
        f'<html><body><a href="../../{wheel.name}">{wheel.name}</a></body></html>\n')
    jar = build_jar(tmp_path_factory.mktemp("jarbuild"), root / "tool-1.0.jar",
                    {"ext/Tool.java": "package ext;\npublic class Tool {\n"
                                      "    public static String shout(String s) { return s.toUpperCase() + \"!\"; }\n}\n"})
    (root / "tool-1.0.jar.sha1").write_text(hashlib.sha1(jar.read_bytes()).hexdigest())
    with CountingServer(root) as server:
        yield server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, index: CountingServer) -> Iterator[Server]:
    ws = new_workspace(tmp_path_factory.mktemp("live") / "ws", Packages={"PipIndexUrl": f"{index.url}/simple"})
    for lang, text in PING.items():
        ws.add_query(PING_FILE[lang], text)
    s = Server(ws).start()
    yield s
    s.close()


def call(server: Server, query: str, fn: str, client: httpx.Client | None = None, **params: Any) -> httpx.Response:
    c = client or server.client
    return c.get(f"/flow/query/{server.ws.manifest['ID']}/{query}/{fn}", params=params,
                 headers={"x-api-key": ADMIN_KEY})


def wait_for(check: Callable[[], bool], what: str, bound: float = BOUND_S) -> float:
    """Poll until `check()`; return the seconds it took."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < bound:
        if check():
            return time.monotonic() - t0
        time.sleep(0.02)
    raise AssertionError(f"not within {bound}s: {what}")


def status(server: Server) -> dict[str, Any]:
    return server.get("/flow/workflows", headers={"x-api-key": ADMIN_KEY}).json()[0]


def manifest(server: Server) -> dict[str, Any]:
    return json.loads((server.ws.mnt / "package.json").read_text())


def write_manifest(server: Server, data: dict[str, Any]) -> None:
    (server.ws.mnt / "package.json").write_text(json.dumps(data, indent=2))


class Load:
    """16 client threads calling the Ping functions in a loop; every failure is kept."""

    def __init__(self, server: Server, threads: int = 16) -> None:
        self.server = server
        self.stop = threading.Event()
        self.failures: list[str] = []
        self.calls = 0
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def _run(self, i: int) -> None:
        lang = list(PING_FILE)[i % len(PING_FILE)]
        with httpx.Client(base_url=self.server.base, timeout=60) as client:
            while not self.stop.is_set():
                try:
                    r = call(self.server, PING_FILE[lang], "Ping", client, x=i)
                    ok = r.status_code == 200 and r.json() == i + 1
                    detail = f"{lang}: {r.status_code} {r.text[:200]}"
                except httpx.HTTPError as e:
                    ok, detail = False, f"{lang}: {e!r}"
                with self._lock:
                    self.calls += 1
                    if not ok:
                        self.failures.append(detail)

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        wait_for(lambda: self.calls >= 2 * len(self._threads), "the load is running")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self._threads:
            t.join(60)


@pytest.mark.parametrize("lang", ["py", "cs", "java", "js"])
def test_a_new_query_file_answers_while_16_clients_call_others(server: Server, lang: str) -> None:
    name = NEW_FILE[lang]
    assert call(server, name, "Hello", name="x").status_code == 404
    with Load(server) as load:
        saved = time.monotonic()
        (server.ws.mnt / "Queries" / name).write_text(NEW[lang])  # on disk only, as `build local` would scan it
        wait_for(lambda: call(server, name, "Hello", name="x").status_code == 200, f"{name} answers")
        took = time.monotonic() - saved
        time.sleep(0.5)
    print(f"\n{lang}: save to first answer {took:.2f} s ({load.calls} calls by 16 clients meanwhile)")
    assert call(server, name, "Hello", name="x").json() == f"{lang} x"
    assert load.calls > 16
    assert load.failures == []
    # the scan wrote the entry into package.json, as `coflows build local` does
    assert any(q["Content"] == f"Queries/{name}" for q in manifest(server)["Queries"])


def test_a_removed_query_answers_404_and_a_manifest_only_entry_answers(server: Server) -> None:
    (server.ws.mnt / "Extra").mkdir(exist_ok=True)
    (server.ws.mnt / "Extra" / "Listed.py").write_text("def Seven() -> int:\n    return 7\n")
    data = manifest(server)
    data["Queries"].append({"Name": "Listed.py", "Content": "Extra/Listed.py", "ID": "Listed.py"})
    write_manifest(server, data)  # outside the scanned folders: only package.json names it
    wait_for(lambda: call(server, "Listed.py", "Seven").status_code == 200, "Listed.py answers")
    assert call(server, "Listed.py", "Seven").json() == 7

    gone = server.ws.mnt / "Queries" / "Gone.py"
    gone.write_text("def Here() -> int:\n    return 1\n")
    wait_for(lambda: call(server, "Gone.py", "Here").status_code == 200, "Gone.py answers")
    with Load(server) as load:
        gone.unlink()
        wait_for(lambda: call(server, "Gone.py", "Here").status_code == 404, "a deleted query answers 404")
        time.sleep(0.3)
    assert load.calls > 16 and load.failures == []
    assert any("Gone.py" in p and "not found" in p for p in status(server)["problems"])
    data = manifest(server)
    data["Queries"] = [q for q in data["Queries"] if q["ID"] not in ("Gone.py", "Listed.py")]
    write_manifest(server, data)  # unlisted: the 404 stays, the problem goes
    wait_for(lambda: call(server, "Listed.py", "Seven").status_code == 404, "an unlisted query answers 404")
    wait_for(lambda: not status(server)["problems"], "no problems left")
    assert call(server, PING_FILE["py"], "Ping", x=1).json() == 2


def test_a_new_base_file_is_importable_from_a_new_query(server: Server) -> None:
    (server.ws.mnt / "Base").mkdir(exist_ok=True)
    with Load(server) as load:  # a new Base reloads every query: calls in flight still succeed
        (server.ws.mnt / "Base" / "livebase.py").write_text("def answer() -> int:\n    return 42\n")
        (server.ws.mnt / "Queries" / "UsesBase.py").write_text(
            "import livebase\n\ndef Answer() -> int:\n    return livebase.answer()\n")
        wait_for(lambda: call(server, "UsesBase.py", "Answer").status_code == 200, "UsesBase.py answers")
        time.sleep(0.5)
    assert load.calls > 16 and load.failures == []
    assert call(server, "UsesBase.py", "Answer").json() == 42
    assert any(b["Content"] == "Base/livebase.py" for b in manifest(server)["Base"])
    (server.ws.mnt / "Files").mkdir(exist_ok=True)
    (server.ws.mnt / "Files" / "prices.csv").write_text("a,b\n1,2\n")
    wait_for(lambda: any(f["Content"] == "Files/prices.csv" for f in manifest(server)["Files"]),
             "a new Files entry is listed")


@pytest.mark.parametrize("broken, where", [
    ("{ \"ID\": ", "invalid JSON"),
    (None, "Permissions[0].Permission"),
])
def test_a_broken_package_json_keeps_the_previous_state_serving(server: Server, broken: str | None,
                                                                 where: str) -> None:
    good = (server.ws.mnt / "package.json").read_text()
    if broken is None:
        data = json.loads(good)
        data["Permissions"][0]["Permission"] = 7
        broken = json.dumps(data)
    (server.ws.mnt / "package.json").write_text(broken)
    try:
        wait_for(lambda: any(where in p for p in status(server)["problems"]), f"the error names {where}")
        problem = next(p for p in status(server)["problems"] if where in p)
        assert "package.json" in problem
        assert call(server, PING_FILE["py"], "Ping", x=1).json() == 2
        assert call(server, PING_FILE["js"], "Ping", x=1).json() == 2
        assert where in server.output()
    finally:
        (server.ws.mnt / "package.json").write_text(good)
    wait_for(lambda: not status(server)["problems"], "the problem clears once package.json is good again")


def test_a_new_pip_is_importable_without_restart_and_a_failing_one_keeps_it(server: Server) -> None:
    (server.ws.mnt / "Queries" / "UsesPip.py").write_text(
        "def Value() -> str:\n    import cfpkg_live\n    return cfpkg_live.VALUE\n")
    wait_for(lambda: call(server, "UsesPip.py", "Value").status_code != 404, "UsesPip.py is served")
    r = call(server, "UsesPip.py", "Value")
    assert r.status_code >= 400 and "cfpkg_live" in r.text  # not installed yet

    data = manifest(server)
    data["Pips"].append({"ID": "cfpkg-live==1.0"})
    write_manifest(server, data)
    took = wait_for(lambda: call(server, "UsesPip.py", "Value").status_code == 200, "the new pip imports")
    print(f"\npip: package.json saved to first answer {took:.2f} s")
    assert call(server, "UsesPip.py", "Value").json() == "live 1.0"
    wait_for(lambda: status(server)["packages"] == "installed", "the install is reported")
    assert "cfpkg-live" in server.output()

    data = manifest(server)
    data["Pips"].append({"ID": "cfpkg-nosuch==1.0"})
    write_manifest(server, data)
    wait_for(lambda: status(server)["packages"] == "failed", "the failed install is reported", 120)
    problems = status(server)["problems"]
    assert any("cfpkg-nosuch" in p for p in problems), problems
    assert call(server, "UsesPip.py", "Value").json() == "live 1.0"  # the previous set serves

    data["Pips"] = [p for p in data["Pips"] if p["ID"] != "cfpkg-nosuch==1.0"]
    write_manifest(server, data)
    wait_for(lambda: status(server)["packages"] == "installed", "a good set installs again", 120)
    assert not any("cfpkg-nosuch" in p for p in status(server)["problems"])


def agent(version: str) -> str:
    return (f'AGENT = {{"ID": "livetick", "Schedule": "0 0 1 * * ?"}}\n'
            f'def Job(t, e):\n    print("job {version}")\n'
            f'def Body(data: dict):\n    return "{version}"\n')


def test_a_new_agent_file_starts_an_edit_reloads_and_a_removal_stops_it(server: Server) -> None:
    def listed() -> dict[str, Any]:
        return {a["ID"]: a for a in server.get("/flow/agents", headers={"x-api-key": ADMIN_KEY}).json()}

    def body() -> Any:
        r = server.post("/flow/agent/livetick", json={}, headers={"x-api-key": ADMIN_KEY})
        return r.json() if r.status_code == 200 else None

    path = server.ws.mnt / "Agents" / "LiveTick.py"
    path.parent.mkdir(exist_ok=True)
    assert "livetick" not in listed()
    path.write_text(agent("v1"))
    wait_for(lambda: "livetick" in listed(), "the new agent is listed")
    assert listed()["livetick"]["State"] == "running"
    assert body() == "v1"
    path.write_text(agent("v2"))
    wait_for(lambda: body() == "v2", "the edited agent answers with its new code")
    path.unlink()
    wait_for(lambda: "livetick" not in listed(), "the removed agent is gone")
    data = manifest(server)
    data["Agents"] = [a for a in data["Agents"] if a["Name"] != "LiveTick.py"]
    write_manifest(server, data)
    wait_for(lambda: not status(server)["problems"], "no problems left")


def test_a_new_jar_is_on_the_class_path_without_restart(server: Server, index: CountingServer) -> None:
    (server.ws.mnt / "Queries" / "UsesTool.java").write_text(
        "import ext.Tool;\n\npublic class UsesTool {\n"
        "    public static String Shout(String s) { return Tool.shout(s); }\n}\n")
    wait_for(lambda: any(q["id"] == "UsesTool.java" and q["errors"] for q in status(server)["queries"]),
             "UsesTool.java does not compile without the jar")
    assert call(server, "UsesTool.java", "Shout", s="hi").status_code == 404
    data = manifest(server)
    data["Jars"].append({"Url": f"{index.url}/tool-1.0.jar"})
    write_manifest(server, data)
    took = wait_for(lambda: call(server, "UsesTool.java", "Shout", s="hi").status_code == 200, "the jar is used")
    print(f"\njar: package.json saved to first answer {took:.2f} s")
    assert call(server, "UsesTool.java", "Shout", s="hi").json() == "HI!"
    assert call(server, PING_FILE["java"], "Ping", x=1).json() == 2


def test_the_scan_skips_editor_scratch_files(tmp_path: Path) -> None:
    """A watcher scans on every save: an editor's backup must not become a query."""
    from coflows.workspace.manifest import Manifest
    from coflows.workspace.scan import scan_workspace

    for name in ("Real.py", "Real.py~", "#Real.py#", ".#Real.py", "Real.py.swp", "Real.tmp"):
        (tmp_path / "Queries").mkdir(exist_ok=True)
        (tmp_path / "Queries" / name).write_text("")
    result = scan_workspace(Manifest(ID="x"), tmp_path)
    assert result.added == ["Queries/Real.py"]
