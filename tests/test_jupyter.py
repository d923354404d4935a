"""JupyterLab inside the server (`"Jupyter": true`): /lab through the server, admins only, and the
`coflows` kernel running the workspace's functions (Python, C#, Java, JavaScript) as the user who
sent the cell.

A real server (under its supervisor) with a real JupyterLab child; kernels are started through
/lab's REST API and driven through its websocket, as JupyterLab itself does.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conftest import Server, Workspace, new_workspace

pytest.importorskip("websockets")
if not os.environ.get("CI"):  # CI installs the jupyter extra (bin/setup.sh): there it must not skip
    pytest.importorskip("jupyterlab", reason="JupyterLab is not installed (pip install -e '.[jupyter]')")
    pytest.importorskip("ipykernel", reason="ipykernel is not installed (pip install -e '.[jupyter]')")

from websockets.exceptions import ConnectionClosed  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from ui_app import PASSWORD, add_users  # noqa: E402

ADMIN_USER, WRITER = "ada@example.com", "bob@example.com"
WID = "11111111-2222-3333-4444-555555555555"
TOPIC = f"{WID}-lab-orders"

WATCHER = f'''import coflows
AGENT = {{"ID": "lab-watch", "MID": "{TOPIC}"}}
def Add(id, value):
    print("added", value["item"], "by", coflows.user().id)
'''


def lab_workspace(root) -> Workspace:  # noqa: ANN001
    ws = new_workspace(root, name="Lab", wid=WID, Jupyter=True)
    ws.add_query("Calc.py", 'def Add(a: int, b: int) -> int:\n    """a + b"""\n    return a + b\n')
    ws.add_query("Hello.js", '/** Greets. @param {string} name */\nfunction hello(name) { return "hello " + name; }\n')
    ws.add_query("Sharp.cs", "public class Sharp {\n    public static int Mul(int x, int y) { return x * y; }\n"
                 "    public static string Who() { return Coflows.User.Current.Id; }\n}\n")
    ws.add_query("Jv.java", "public class Jv {\n    public static int Mul(int x, int y) { return x * y; }\n}\n")
    ws.add_agent("Watch.py", WATCHER)
    return ws


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    ws = lab_workspace(tmp_path_factory.mktemp("lab") / "ws")
    keys = add_users(ws, {ADMIN_USER: {"admin": True}, WRITER: {"grants": {WID: "write"}}})
    server = Server(ws).start()
    server.keys = keys  # type: ignore[attr-defined]
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            r = server.get("/lab/api/status", headers={"x-api-key": keys[ADMIN_USER]})
            if r.status_code == 200:
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"JupyterLab did not come up behind /lab:\n{server.output()[-4000:]}")
        yield server
    finally:
        server.close()


def key(lab: Any, email: str) -> dict[str, str]:
    return {"x-api-key": lab.keys[email]}


# -- who may use /lab -----------------------------------------------------------------------------

def test_lab_status_for_admins_and_refusals_for_others(lab: Any) -> None:
    r = lab.get("/lab/api/status", headers=key(lab, ADMIN_USER))
    assert r.status_code == 200 and "kernels" in r.json()
    assert lab.get("/lab/api/status", headers=lab.admin()).status_code == 200  # the admin key too
    r = lab.get("/lab/api/status")
    assert r.status_code == 401 and r.json()["error"]["type"] == "Unauthenticated"
    r = lab.get("/lab/lab", headers={"accept": "text/html"})  # a browser: to the login page, and back after
    assert r.status_code == 303 and r.headers["location"] == "/ui/login?next=/lab/lab"
    r = lab.get("/lab/api/status", headers=key(lab, WRITER))  # Write on the workflow is not enough
    assert r.status_code == 403
    assert lab.get("/lab/api/status", headers={"x-api-key": "cfk_wrong"}).status_code == 401
    r = lab.post("/lab/api/kernels", json={"name": "coflows"}, headers=key(lab, WRITER))
    assert r.status_code == 403
    # Jupyter's token never reaches the caller, and the caller's key never reaches Jupyter's logs
    page = lab.get("/lab/lab", headers=key(lab, ADMIN_USER))
    assert page.status_code == 200 and "JupyterLab" in page.text
    infos = list((lab.ws.mnt / ".coflows" / "jupyter" / "runtime").glob("jpserver-*.json"))
    assert infos, "JupyterLab's server info file"
    token = json.loads(infos[-1].read_text())["token"]
    assert len(token) >= 32 and token not in page.text and token not in lab.output()
    assert lab.keys[ADMIN_USER] not in lab.output()


def test_session_login_and_csrf(lab: Any) -> None:
    with httpx.Client(base_url=lab.base, timeout=30) as c:
        r = c.post("/auth/login", json={"email": ADMIN_USER, "password": PASSWORD})
        assert r.status_code == 200
        csrf = r.json()["csrf"]
        r = c.get("/lab/api/status")
        assert r.status_code == 200
        assert r.cookies.get("_xsrf") == csrf or c.cookies.get("_xsrf") == csrf  # what JupyterLab sends back
        assert c.post("/lab/api/kernels", json={"name": "coflows"}).status_code == 403  # no CSRF token
        r = c.post("/lab/api/kernels", json={"name": "coflows"}, headers={"X-XSRFToken": csrf})
        assert r.status_code == 201, r.text
        assert c.delete(f"/lab/api/kernels/{r.json()['id']}", headers={"X-XSRFToken": csrf}).status_code == 204
    with httpx.Client(base_url=lab.base, timeout=30) as c:  # a logged-in user who is not an admin
        assert c.post("/auth/login", json={"email": WRITER, "password": PASSWORD}).status_code == 200
        assert c.get("/lab/api/status").status_code == 403


def test_websocket_refusals(lab: Any) -> None:
    r = lab.post("/lab/api/kernels", json={"name": "coflows"}, headers=key(lab, ADMIN_USER))
    kid = r.json()["id"]
    url = f"ws://127.0.0.1:{lab.port}/lab/api/kernels/{kid}/channels"
    from websockets.exceptions import InvalidStatus

    for headers in (None, key(lab, WRITER), {"x-api-key": "cfk_wrong"}):  # refused before the handshake ends
        with pytest.raises(InvalidStatus) as info:
            with connect(url, additional_headers=headers, open_timeout=10) as ws:
                ws.recv(timeout=10)
        assert info.value.response.status_code == 403, info.value
    with connect(url, additional_headers=key(lab, ADMIN_USER), open_timeout=10):
        pass  # an admin's is accepted
    lab.client.delete(f"/lab/api/kernels/{kid}", headers=key(lab, ADMIN_USER))


# -- the coflows kernel -----------------------------------------------------------------------------

class Kernel:
    """A kernel's channels websocket through /lab (Jupyter's JSON framing)."""

    def __init__(self, lab: Any, email: str) -> None:
        self.lab, self.headers = lab, key(lab, email)
        r = lab.post("/lab/api/kernels", json={"name": "coflows"}, headers=self.headers)
        assert r.status_code == 201, r.text
        self.id = r.json()["id"]
        self.session = uuid.uuid4().hex
        self.ws = self.open(self.headers)

    def open(self, headers: dict[str, str]) -> Any:
        return connect(f"ws://127.0.0.1:{self.lab.port}/lab/api/kernels/{self.id}/channels?session_id={self.session}",
                       additional_headers=headers, open_timeout=30, max_size=None).__enter__()

    def run(self, code: str, metadata: dict | None = None, timeout: float = 120) -> dict[str, Any]:
        """Execute a cell; {"result", "stdout", "error", "seconds"}."""
        mid = uuid.uuid4().hex
        msg = {"header": {"msg_id": mid, "username": "test", "session": self.session, "msg_type": "execute_request",
                          "version": "5.3", "date": ""},
               "parent_header": {}, "metadata": metadata or {}, "channel": "shell", "buffers": [],
               "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                           "allow_stdin": False, "stop_on_error": True}}
        out: dict[str, Any] = {"result": None, "stdout": "", "error": None}
        started = time.perf_counter()
        self.ws.send(json.dumps(msg))
        deadline = time.monotonic() + timeout
        replied = idle = False
        while not (replied and idle):
            left = deadline - time.monotonic()
            assert left > 0, f"no answer to {code!r}: {out}"
            reply = json.loads(self.ws.recv(timeout=left))
            if reply.get("parent_header", {}).get("msg_id") != mid:
                continue
            kind, content = reply["header"]["msg_type"], reply["content"]
            if kind == "execute_result":
                out["result"] = content["data"]["text/plain"]
            elif kind == "stream":
                out["stdout"] += content["text"]
            elif kind == "error":
                out["error"] = f"{content['ename']}: {content['evalue']}"
            elif kind == "execute_reply":
                replied = True
                out["reply_seconds"] = time.perf_counter() - started
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
        out["seconds"] = time.perf_counter() - started
        return out

    def close(self) -> None:
        try:
            self.ws.close()
        except ConnectionClosed:
            pass
        self.lab.client.delete(f"/lab/api/kernels/{self.id}", headers=self.headers)


def test_coflows_kernel_calls_functions_as_the_logged_in_user_and_writes_m(lab: Any) -> None:
    k = Kernel(lab, ADMIN_USER)
    try:
        first = k.run('import coflows\ncoflows.call("Calc.py/Add", 1, 2)')
        assert first["error"] is None and first["result"] == "3", first
        js = k.run('coflows.call("Hello.js/hello", "lab")')  # V8 (after Mono and a JVM: the engines' order)
        assert js["result"] == "'hello lab'", js
        cs = k.run('coflows.call("Sharp.cs/Mul", 6, 7)')  # Mono, in the kernel
        assert cs["result"] == "42", cs
        jv = k.run('coflows.call("Jv.java/Mul", 6, 7)')  # a JVM, in the kernel
        assert jv["result"] == "42", jv
        assert k.run('coflows.call("Sharp.cs/Who")')["result"] == repr(ADMIN_USER)  # the caller crosses over
        who = k.run("coflows.user().id")
        assert who["result"] == repr(ADMIN_USER), who
        # a stamp the client made up is replaced by the proxy's (and a made-up one is worthless anyway)
        forged = k.run("coflows.user().id", metadata={"coflows_identity": "e30.0000"})
        assert forged["result"] == repr(ADMIN_USER), forged
        assert k.run("coflows.user().admin")["result"] == "True"
        assert k.run('import os\n"COFLOWS_JUPYTER_SECRET" in os.environ')["result"] == "False"
        # print inside a cell (and inside functions it calls) is the cell's output
        assert k.run('print("hi from", coflows.user().id)')["stdout"] == f"hi from {ADMIN_USER}\n"
        cells = [k.run('coflows.call("Calc.py/Add", 2, 3)') for _ in range(10)]
        times = [c["seconds"] for c in cells]
        replies = sorted(c["reply_seconds"] for c in cells)
        # an M write from the notebook: the server's agent sees it at once, as the user who wrote it
        wrote = k.run(f'coflows.m("{TOPIC}").add({{"item": "tea"}})')
        assert wrote["error"] is None, wrote
        deadline = time.monotonic() + 30
        runs: list[dict] = []
        while time.monotonic() < deadline:
            runs = lab.get("/flow/agent/lab-watch/runs", headers=lab.admin()).json()
            if any(r.get("Hook") == "Add" for r in runs):
                break
            time.sleep(0.2)
        adds = [r for r in runs if r.get("Hook") == "Add"]
        assert adds and adds[0]["Status"] == "ok", runs
        assert adds[0]["Output"] == f"added tea by {ADMIN_USER}\n", adds[0]
        # and the server reads the same database
        r = lab.get(f"/m/data?type={TOPIC}", headers=lab.admin())
        assert r.status_code == 200 and {"item": "tea"} in r.json()
        times.sort()
        print(f"\ncoflows kernel: first cell (loads Python) {first['seconds'] * 1000:.0f} ms; "
              f"Calc.py/Add round trip (to idle) median {times[5] * 1000:.1f} ms, max {times[-1] * 1000:.1f} ms; "
              f"to execute_reply median {replies[5] * 1000:.1f} ms; first JS call {js['seconds'] * 1000:.0f} ms, "
              f"first C# {cs['seconds'] * 1000:.0f} ms, first Java {jv['seconds'] * 1000:.0f} ms")
    finally:
        k.close()


def test_the_admin_key_runs_as_root(lab: Any) -> None:
    k = Kernel(lab, ADMIN_USER)
    k.headers = lab.admin()
    k.ws.close()
    k.ws = k.open(lab.admin())
    try:
        assert k.run("import coflows\ncoflows.user().id")["result"] == "'root'"
    finally:
        k.close()


def test_stamps_verify_only_with_the_key_and_before_expiry() -> None:
    from coflows.jupyter.identity import mint, new_secret, verify

    secret = new_secret()
    assert verify(secret, mint(secret, ADMIN_USER)) == ADMIN_USER
    assert verify(new_secret(), mint(secret, ADMIN_USER)) is None
    assert verify(secret, mint(secret, ADMIN_USER, seconds=-1)) is None
    body, _, mac = mint(secret, ADMIN_USER).rpartition(".")
    assert verify(secret, mint(secret, WRITER).rpartition(".")[0] + "." + mac) is None
    assert verify(secret, None) is None and verify(secret, "x" * 5000) is None


# -- in a browser -------------------------------------------------------------------------------------

def test_a_browser_logs_in_opens_lab_and_runs_a_cell(lab: Any) -> None:
    from ui_app import browser_or_skip, run_ui

    browser_or_skip()
    out = run_ui("lab.mjs", {"base": lab.base, "email": ADMIN_USER, "password": PASSWORD}, timeout=300)
    assert out["loginUrl"] == "/ui/login?next=/lab/lab", out
    assert out["afterLogin"].startswith("/lab/lab"), out
    assert any(c.startswith("coflows") for c in out["cards"]), out["cards"]
    assert out["add"]["text"] == "3", out
    assert out["user"]["text"] == repr(ADMIN_USER), out
    assert out["js"]["text"] == "'hello browser'", out
    assert out["problems"] == [], out["problems"]
    print(f"\nbrowser: cells answered in {out['add']['ms']} ms (first), {out['user']['ms']} ms, "
          f"{out['js']['ms']} ms (JS, starts V8); problems: {out['problems']}")


def test_files_with_odd_names_go_through_the_proxy(lab: Any) -> None:
    """Paths reach JupyterLab as sent (%-encoded), so `?`, `#` and spaces stay in the file's name."""
    h = key(lab, ADMIN_USER)
    name = "odd name?#1.txt"
    from urllib.parse import quote

    r = lab.client.put(f"/lab/api/contents/{quote(name)}", headers=h,
                       json={"type": "file", "format": "text", "content": "hello"})
    assert r.status_code in (200, 201), r.text
    assert (lab.ws.mnt / "notebooks" / name).read_text() == "hello"
    r = lab.get(f"/lab/api/contents/{quote(name)}", headers=h)
    assert r.status_code == 200 and r.json()["content"] == "hello"
    # bodies are bounded as everywhere else (Server.MaxBodyBytes, 10 MB): refused before JupyterLab sees them
    r = lab.client.put("/lab/api/contents/big.txt", headers={**h, "content-type": "application/json"},
                       content=b" " * (10 * 1024 * 1024 + 1))
    assert r.status_code == 413 and not (lab.ws.mnt / "notebooks" / "big.txt").exists()


# -- supervision (last: it kills JupyterLab) -----------------------------------------------------------

def _jupyter_pid(lab: Any) -> int:
    infos = sorted((lab.ws.mnt / ".coflows" / "jupyter" / "runtime").glob("jpserver-*.json"),
                   key=lambda p: p.stat().st_mtime)
    return int(json.loads(infos[-1].read_text())["pid"])


def test_jupyterlab_is_restarted_when_it_dies_and_stops_with_the_server(lab: Any) -> None:
    import signal

    from conftest import pid_alive

    first = _jupyter_pid(lab)
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        r = lab.get("/lab/api/status", headers=key(lab, ADMIN_USER))
        if r.status_code == 200:
            break
        assert r.status_code == 503 and r.headers.get("retry-after"), r.text  # meanwhile: try again later
        time.sleep(0.5)
    assert r.status_code == 200, lab.output()[-3000:]
    second = _jupyter_pid(lab)
    assert second != first and pid_alive(second)
    k = Kernel(lab, ADMIN_USER)  # the new one has the coflows kernel too
    try:
        assert k.run('import coflows\ncoflows.call("Calc.py/Add", 20, 22)')["result"] == "42"
    finally:
        k.close()
    # the server process dies hard: its JupyterLab goes with it (and the supervisor starts both again)
    child = lab.child_pid()
    os.kill(child, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while pid_alive(second) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not pid_alive(second)
