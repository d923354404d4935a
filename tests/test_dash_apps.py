"""Dash/Flask apps behind coflows (`/dash/{wid}/{qid}/…`, coflows/apps) with a real server and real apps.

A Flask app query (flask is in the `test` extra) end to end through the proxy: who may see it (a Read
user by key and by session, View and anonymous refused), what the app gets (no coflows credentials,
the caller's identity), CSRF with the session cookie, a reload that restarts it on a new port (the old
one shut down), an app whose `run` raises (502 naming it; the server and other apps carry on) and
one that listens on every interface (refused). Then `coflows add dash` and its template as a real
Dash app, with dash installed into the workspace's pip folder through package.json `Pips`.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import ADMIN_KEY, Server, Workspace, edit_source, new_workspace, server_starter

from coflows.auth.store import UserStore

WID = "dddddddd-1111-2222-3333-444444444444"
PASSWORD = "correct horse battery staple"
READER, VIEWER, WRITER = "reader@example.com", "viewer@example.com", "writer@example.com"
ADMIN = {"x-api-key": ADMIN_KEY}

FLASK_APP = '''
import threading
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

VERSION = 1


def run(port, path):
    app = Flask(__name__)

    @app.route(path)
    def index():
        return f"<h1>hello v{VERSION}</h1>"

    @app.route(path + "echo", methods=["GET", "POST"])
    def echo():
        return jsonify(version=VERSION, method=request.method, path=request.path, host=request.host,
                       args=request.args, headers={k.lower(): v for k, v in request.headers.items()},
                       cookies=request.cookies, body=request.get_data(as_text=True))

    @app.route(path + "cookie")
    def cookie():
        out = jsonify(ok=True)
        out.set_cookie("coflows_session", "planted")
        out.set_cookie("app_pref", "dark")
        return out

    server = make_server("{HOST}", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
'''

# with_viewer: views run as the coflows user viewing the app, in its workflow
VIEWER_APP = '''
import threading
import coflows
from flask import Flask, jsonify
from werkzeug.serving import make_server
from coflows.apps.wsgi import with_viewer


def run(port, path):
    app = Flask(__name__)

    @app.route(path + "me")
    def me():
        return jsonify(user=coflows.user().id, level=coflows.permission("$WID$"),
                       report=coflows.call("Plain.py/run_report", 7))

    server = make_server("127.0.0.1", port, with_viewer(app, path), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
'''

# CoFlows' convention: run() returns nothing and the app stops itself on GET {path}shutdown
LEGACY_APP = '''
import threading
import time
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

VERSION = 1
STARTS = []


def run(port, path):
    time.sleep(0.5)  # as slow to start as a Dash import: the requests of a page load all wait for one start
    STARTS.append(port)
    app = Flask(__name__)
    server = make_server("127.0.0.1", port, app, threaded=True)

    @app.route(path + "echo")
    def echo():
        return jsonify(version=VERSION, host=request.host, starts=len(STARTS))

    @app.route(path + "shutdown")
    def shutdown():
        threading.Thread(target=server.shutdown).start()
        return "bye"

    threading.Thread(target=server.serve_forever, daemon=True).start()
'''

CRASH_APP = '''
def run(port, path):
    raise ValueError("no database for the dashboard")
'''

# a common mistake: serving in run() itself (Flask's app.run blocks)
BLOCKING_APP = '''
from flask import Flask


def run(port, path):
    app = Flask(__name__)

    @app.route(path)
    def index():
        return "never reached"

    app.run(host="127.0.0.1", port=port)
'''

PLAIN = '''
def run_report(n: int = 1):
    return n
'''


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def make_users(ws: Workspace) -> dict[str, str]:
    """Users in the server's database before it starts; returns email → API key."""
    from coflows.config import load_config
    from coflows.store import Database, database_url

    config = load_config(ws.config_path)
    db = Database(database_url(config.database.type, config.database.connection, config.base_dir))
    store = UserStore(db)
    keys = {}
    try:
        for email, level in ((READER, "read"), (VIEWER, "view"), (WRITER, "write")):
            store.add_user(email, name=email.split("@")[0], password=PASSWORD)
            store.grant(WID, email, level)
            keys[email] = store.new_key(email, "dash test")[1]
    finally:
        db.dispose()
    return keys


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    ws = new_workspace(tmp_path_factory.mktemp("dash") / "ws", name="Apps", wid=WID, public=None)
    ws.add_query("App.py", FLASK_APP.replace("{HOST}", "127.0.0.1"))
    ws.add_query("Other.py", FLASK_APP.replace("{HOST}", "127.0.0.1"))
    ws.add_query("Crash.py", CRASH_APP)
    ws.add_query("Legacy.py", LEGACY_APP)
    ws.add_query("Viewer.py", VIEWER_APP)
    ws.add_query("Blocking.py", BLOCKING_APP)
    ws.add_query("Wide.py", FLASK_APP.replace("{HOST}", "0.0.0.0"))
    ws.add_query("Six.py", FLASK_APP.replace("{HOST}", "::1"))  # IPv6 loopback (where "localhost" may go)
    ws.add_query("Plain.py", PLAIN)
    keys = make_users(ws)
    starter = server_starter(Server)
    try:
        yield next(starter)(ws), keys
    finally:
        starter.close()


def key(keys: dict[str, str], email: str) -> dict[str, str]:
    return {"x-api-key": keys[email]}


def url(qid: str, rest: str = "") -> str:
    return f"/dash/{WID}/{qid}/{rest}"


def login(s: Server, email: str) -> tuple[httpx.Client, str]:
    """A client holding a login session's cookie, and the session's CSRF token."""
    client = httpx.Client(base_url=s.base, timeout=60)
    r = client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return client, r.json()["csrf"]


def test_who_may_open_an_app(served: tuple[Server, dict[str, str]]) -> None:
    s, keys = served
    anonymous = s.get(url("App.py"))
    assert anonymous.status_code == 401, anonymous.text
    browser = s.get(url("App.py"), headers={"accept": "text/html"}, follow_redirects=False)
    assert browser.status_code == 303 and browser.headers["location"].startswith("/ui/login?next=/dash/")
    viewer = s.get(url("App.py"), headers=key(keys, VIEWER))
    assert viewer.status_code == 403, viewer.text
    assert s.get(url("App.py"), headers={"x-api-key": "wrong"}).status_code == 401
    reader = s.get(url("App.py"), headers=key(keys, READER))
    assert reader.status_code == 200 and "hello v1" in reader.text
    assert [k for k, _ in reader.headers.multi_items()].count("date") == 1  # one Date, one Server: the server's
    assert reader.headers.get_list("server") == ["uvicorn"]
    assert s.get("/dash/Apps/App.py/", headers=key(keys, READER)).text == reader.text  # by name too
    bare = s.get(f"/dash/{WID}/App.py", headers=key(keys, READER), follow_redirects=False)
    assert bare.status_code == 307 and bare.headers["location"].endswith(f"/dash/{WID}/App.py/")
    assert s.get(url("Plain.py"), headers=key(keys, READER)).status_code == 404
    assert s.get(url("Missing.py"), headers=key(keys, READER)).status_code == 404
    assert s.get("/dash/not-a-workflow/App.py/", headers=ADMIN).status_code == 404


def test_the_app_never_sees_coflows_credentials(served: tuple[Server, dict[str, str]]) -> None:
    s, keys = served
    reader_key = keys[READER]
    r = s.get(url("App.py", f"echo?x=1&_cokey={reader_key}"),
              headers={"referer": f"{s.base}{url('App.py')}?_cokey={reader_key}&tab=2",
                       "x-coflows-user": "forged@example.com", "cookie": "app_pref=light"})
    assert r.status_code == 200, r.text
    seen = r.json()
    assert seen["args"] == {"x": "1"} and seen["path"] == f"/dash/{WID}/App.py/echo"
    assert reader_key not in json.dumps(seen)
    assert seen["headers"]["x-coflows-user"] == READER and seen["headers"]["x-coflows-level"] == "read"
    assert seen["headers"]["referer"].endswith("?tab=2") and seen["cookies"] == {"app_pref": "light"}
    r = s.get(url("App.py", "echo"), headers={"x-api-key": ADMIN_KEY})
    assert ADMIN_KEY not in r.text and "x-api-key" not in r.json()["headers"]
    assert r.json()["headers"]["x-coflows-level"] == "write"
    planted = s.get(url("App.py", "cookie"), headers=key(keys, READER))
    assert planted.status_code == 200
    assert "app_pref=dark" in planted.headers.get("set-cookie", "")
    assert "coflows_session" not in planted.headers.get("set-cookie", "")  # the app cannot replace the session
    # the proxy keeps no cookie jar: one caller's app cookies never reach the app with another's request
    other = httpx.get(s.base + url("App.py", "echo"), headers=key(keys, WRITER), timeout=60).json()
    assert other["cookies"] == {} and other["headers"]["x-coflows-user"] == WRITER


def test_a_browser_session_with_csrf(served: tuple[Server, dict[str, str]]) -> None:
    s, _ = served
    client, csrf = login(s, READER)
    with contextlib.closing(client):
        page = client.get(url("App.py"))
        assert page.status_code == 200 and "hello v1" in page.text
        assert client.cookies.get("_csrf_token") == csrf  # what Dash's renderer sends back as X-CSRFToken
        seen = client.get(url("App.py", "echo")).json()
        assert "coflows_session" not in seen["cookies"] and "_csrf_token" not in seen["cookies"]
        assert seen["headers"]["x-coflows-user"] == READER
        refused = client.post(url("App.py", "echo"), content=b'{"a": 1}', headers={"content-type": "application/json"})
        assert refused.status_code == 403 and refused.json()["error"]["type"] == "CsrfFailed"
        posted = client.post(url("App.py", "echo"), content=b'{"a": 1}',
                             headers={"content-type": "application/json", "x-csrftoken": csrf})
        assert posted.status_code == 200, posted.text
        assert posted.json()["body"] == '{"a": 1}' and "x-csrftoken" not in posted.json()["headers"]
    viewer, _ = login(s, VIEWER)
    with contextlib.closing(viewer):
        assert viewer.get(url("App.py")).status_code == 403


def test_with_viewer_runs_views_as_the_viewer(served: tuple[Server, dict[str, str]]) -> None:
    s, keys = served
    assert s.get(url("Viewer.py", "me"), headers=key(keys, READER)).json() == {"user": READER, "level": 1, "report": 7}
    assert s.get(url("Viewer.py", "me"), headers=key(keys, WRITER)).json()["level"] == 2
    assert s.get(url("Viewer.py", "me"), headers=ADMIN).json()["user"] == "root"
    # straight to the app's port, past the proxy: a forged identity counts for nothing
    port = int(re.search(r"Apps/Viewer\.py: app listening on 127\.0\.0\.1:(\d+)", s.output()).group(1))
    forged = httpx.get(f"http://127.0.0.1:{port}{url('Viewer.py', 'me')}", timeout=30,
                       headers={"x-coflows-user": "root", "x-coflows-identity": "e30.0000"}).json()
    assert forged["user"] == "anonymous" and forged["level"] < 0


def test_workflows_list_the_apps(served: tuple[Server, dict[str, str]]) -> None:
    s, keys = served
    listed = {q["id"]: q for w in s.get("/flow/workflows", headers=key(keys, READER)).json() for q in w["queries"]}
    assert listed["App.py"]["app"] == f"/dash/{WID}/App.py/"
    assert listed["Crash.py"]["app"] == f"/dash/{WID}/Crash.py/"
    assert listed["Plain.py"]["app"] is None
    page = {q["id"]: q for q in s.get(f"/flow/workflows/{WID}", headers=key(keys, READER)).json()["queries"]}
    assert page["App.py"]["app"] == f"/dash/{WID}/App.py/" and page["Plain.py"]["app"] is None  # the web app's link


def test_a_crashing_app_is_a_502_naming_it(served: tuple[Server, dict[str, str]]) -> None:
    s, keys = served
    r = s.get(url("Crash.py"), headers=key(keys, READER))
    assert r.status_code == 502, r.text
    message = r.json()["error"]["message"]
    assert "Crash.py" in message and "no database for the dashboard" in message and "ValueError" in message
    assert s.get(url("Crash.py", "x"), headers=key(keys, READER)).status_code == 502  # remembered, not retried
    assert s.get("/health").status_code == 200
    assert s.get(url("Other.py"), headers=key(keys, READER)).status_code == 200


def test_a_run_that_serves_itself_is_stopped_and_said_so(served: tuple[Server, dict[str, str]]) -> None:
    s, keys = served
    r = s.get(url("Blocking.py"), headers=key(keys, READER))
    assert r.status_code == 502, r.text
    message = r.json()["error"]["message"]
    assert "Blocking.py" in message and "does not return" in message and "thread" in message
    port = int(re.search(r"127\.0\.0\.1:(\d+)", message).group(1))
    deadline = time.monotonic() + 30
    while accepts(port):  # its run() was stopped, and its server with it
        assert time.monotonic() < deadline, f"the blocking app still listens on {port}"
        time.sleep(0.1)
    assert s.get(url("App.py"), headers=key(keys, READER)).status_code == 200


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_an_app_on_ipv6_loopback_is_served(served: tuple[Server, dict[str, str]]) -> None:
    if not _ipv6_loopback():
        pytest.skip("no IPv6 loopback on this machine")
    s, keys = served
    r = s.get(url("Six.py", "echo"), headers=key(keys, READER))
    assert r.status_code == 200, r.text
    assert r.json()["host"].startswith("[::1]:") and r.json()["headers"]["x-coflows-user"] == READER


def test_an_app_listening_on_every_interface_is_refused(served: tuple[Server, dict[str, str]]) -> None:
    s, keys = served
    r = s.get(url("Wide.py"), headers=key(keys, READER))
    assert r.status_code == 502, r.text
    message = r.json()["error"]["message"]
    assert "Wide.py" in message and "0.0.0.0" in message and "127.0.0.1" in message
    port = int(re.search(r":(\d+),", message).group(1))
    assert not accepts(port)  # it was shut down


def test_a_reload_restarts_the_app(served: tuple[Server, dict[str, str]]) -> None:
    s, keys = served
    before = s.get(url("App.py", "echo"), headers=key(keys, READER)).json()
    assert before["version"] == 1
    old_port = int(before["host"].rsplit(":", 1)[1])
    assert old_port != s.port and accepts(old_port)
    path = s.ws.mnt / "Queries" / "App.py"
    edit_source(path, path.read_text().replace("VERSION = 1", "VERSION = 2"))
    after = _version_after_edit(s, keys, "App.py", 1)
    assert after["version"] == 2
    assert int(after["host"].rsplit(":", 1)[1]) != old_port
    assert not accepts(old_port)  # the old server was shut down
    assert "hello v2" in s.get(url("App.py"), headers=key(keys, READER)).text
    edit_source(path, path.read_text() + "\ndef broken(:\n")  # no longer loads: the last good version serves
    deadline = time.monotonic() + 30
    while "x-coflows-stale" not in (r := s.get(url("App.py", "echo"), headers=key(keys, READER))).headers:
        assert time.monotonic() < deadline, "the broken edit was not noticed"
        time.sleep(0.2)
    assert r.status_code == 200 and r.json()["version"] == 2 and "App.py" in r.headers["x-coflows-stale"]
    assert "App.py: restarting the app (its query was reloaded)" in s.output() or \
        "App.py: stopping the app (its query was reloaded)" in s.output()


def _version_after_edit(s: Server, keys: dict[str, str], qid: str, old: int) -> dict[str, Any]:
    deadline = time.monotonic() + 30  # the proxy looks at the file at most once a second
    while (seen := s.get(url(qid, "echo"), headers=key(keys, READER)).json())["version"] == old:
        assert time.monotonic() < deadline, f"the edited {qid} was not restarted"
        time.sleep(0.2)
    return seen


def test_one_start_for_a_burst_and_the_shutdown_convention(served: tuple[Server, dict[str, str]]) -> None:
    s, keys = served
    with ThreadPoolExecutor(12) as pool:  # a page load: many requests before the app is up
        answers = list(pool.map(lambda _: httpx.get(s.base + url("Legacy.py", "echo"), headers=key(keys, READER),
                                                   timeout=60), range(12)))
    assert [a.status_code for a in answers] == [200] * 12
    assert {a.json()["starts"] for a in answers} == {1}  # run() was called once
    old_port = int(answers[0].json()["host"].rsplit(":", 1)[1])
    path = s.ws.mnt / "Queries" / "Legacy.py"
    edit_source(path, path.read_text().replace("VERSION = 1", "VERSION = 2"))
    after = _version_after_edit(s, keys, "Legacy.py", 1)
    assert after["version"] == 2 and int(after["host"].rsplit(":", 1)[1]) != old_port
    assert not accepts(old_port)  # stopped through GET {path}shutdown: run() returned no server


# -- coflows add dash: the template as a real Dash app ----------------------------------------------

def test_add_dash_writes_the_template_and_the_pip(tmp_path: Path) -> None:
    ws = new_workspace(tmp_path / "ws", wid=WID)
    out = subprocess.run([sys.executable, "-m", "coflows", "add", "dash", "Board", "--config", str(ws.config_path)],
                         capture_output=True, text=True, cwd=ws.root)
    assert out.returncode == 0, out.stdout + out.stderr
    source = (ws.mnt / "Queries" / "Board.py").read_text()
    assert "def run(port: int, path: str):" in source and 'make_server("127.0.0.1", port' in source
    manifest = json.loads((ws.mnt / "package.json").read_text())
    assert {"Name": "Board.py", "Content": "Queries/Board.py", "ID": "Board.py"}.items() <= \
        next(q for q in manifest["Queries"] if q["ID"] == "Board.py").items()
    assert [p["ID"] for p in manifest["Pips"]] == ["dash>=2.11"]
    again = subprocess.run([sys.executable, "-m", "coflows", "add", "dash", "Board", "--config", str(ws.config_path)],
                           capture_output=True, text=True, cwd=ws.root)
    assert again.returncode != 0 and "already exists" in again.stdout + again.stderr


def _dash_update(points: int) -> dict[str, Any]:
    return {"output": "..chart.figure...who.children..",
            "outputs": [{"id": "chart", "property": "figure"}, {"id": "who", "property": "children"}],
            "inputs": [{"id": "points", "property": "value", "value": points}],
            "changedPropIds": ["points.value"], "state": []}


@pytest.fixture(scope="module")
def dash_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    """A server on a workspace made by `add_dash`: dash from PyPI into its pip/ folder (package.json Pips)."""
    from coflows.workspace.add import add_dash
    from coflows.workspace.manifest import load_manifest, save_manifest

    ws = new_workspace(tmp_path_factory.mktemp("dash-real") / "ws", name="Boards", wid=WID, public=None)
    manifest = load_manifest(ws.mnt / "package.json")
    add_dash(manifest, ws.mnt, "Board")
    save_manifest(ws.mnt / "package.json", manifest)
    ws.manifest = json.loads((ws.mnt / "package.json").read_text())
    keys = make_users(ws)
    starter = server_starter(Server)
    try:
        yield next(starter)(ws), keys
    finally:
        starter.close()


@pytest.mark.network
def test_the_dash_template_serves_a_real_dash_app(dash_server: tuple[Server, dict[str, str]]) -> None:
    """The page, its scripts and callbacks through the proxy, by key and by session with CSRF."""
    s, keys = dash_server
    reader = key(keys, READER)
    page = s.get(url("Board.py"), headers=reader)
    assert page.status_code == 200, page.text
    assert "_dash-config" in page.text and f"/dash/{WID}/Board.py/" in page.text
    layout = s.get(url("Board.py", "_dash-layout"), headers=reader)
    assert layout.status_code == 200 and "points" in layout.text
    deps = s.get(url("Board.py", "_dash-dependencies"), headers=reader)
    assert deps.status_code == 200 and "chart.figure" in deps.text
    scripts = [src for src in re.findall(r'src="([^"]+)"', page.text) if src.startswith("/dash/")]
    assert scripts, page.text
    for src in scripts:  # the page's JS (renderer, React, components) through the proxy
        assert s.get(src, headers=reader).status_code == 200, src
    update = s.post(url("Board.py", "_dash-update-component"), json=_dash_update(3), headers=reader)
    assert update.status_code == 200, update.text
    answer = update.json()["response"]
    assert answer["chart"]["figure"]["data"][0]["y"] == [0, 1, 4]
    assert answer["who"]["children"] == f"{READER} (read)"
    client, csrf = login(s, READER)  # the browser's way: session cookie, the CSRF cookie echoed
    with contextlib.closing(client):
        assert client.get(url("Board.py")).status_code == 200
        token = client.cookies.get("_csrf_token")
        assert token == csrf
        r = client.post(url("Board.py", "_dash-update-component"), json=_dash_update(2),
                        headers={"X-CSRFToken": token})
        assert r.status_code == 200 and r.json()["response"]["chart"]["figure"]["data"][0]["y"] == [0, 1]
        assert client.post(url("Board.py", "_dash-update-component"), json=_dash_update(2)).status_code == 403
    assert s.get(url("Board.py"), headers=key(keys, VIEWER)).status_code == 403
    assert s.get(url("Board.py")).status_code == 401
    # run() itself is no URL for Read users (the template's <permissions>): only the server starts apps
    assert s.get(f"/flow/query/{WID}/Board.py/run?port=1&path=/", headers=reader).status_code == 403


@pytest.mark.network
def test_the_dash_app_in_a_browser(dash_server: tuple[Server, dict[str, str]]) -> None:
    """Headless Chromium: login redirect, the Dash page's scripts, its callbacks with the session's CSRF token."""
    from ui_app import browser_or_skip, run_ui

    browser_or_skip()
    s, _ = dash_server
    out = run_ui("dash.mjs", {"base": s.base, "app": url("Board.py"), "email": READER, "password": PASSWORD})
    assert out["loginUrl"] == f"/ui/login?next={url('Board.py')}"
    assert out["who"] == f"{READER} (read)"
    assert out["updates"] and all(u["status"] == 200 and u["csrf"] for u in out["updates"]), out["updates"]
    assert out["moreUpdates"] and out["title"] == "Board"
    assert out["problems"] == [], out["problems"]
