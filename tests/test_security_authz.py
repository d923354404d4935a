"""Authorization on every route: walk the table of docs/security.md against a real server, for every caller.

One server serves four workflows: View (Public may View), Pub (Public may Read), Wri (Public may Write)
and Priv (no Public grant). The users are real: made in the server's database before it starts
(`UserStore`), with API keys from `UserStore.new_key`. Every row of
`coflows.server.authz_table.ROUTES` is called on each workflow as: anonymous, a wrong key, a user
Denied on the workflow, a View, a Read and a Write user (levels through the workflow-ID group), the
admin key, an admin user and a user whose Write membership expired; the status must follow the row's
access kind, and lists are checked by their content. Grants through package.json `Permissions` (an
email, a named group), per-function `<permissions>`, sessions with CSRF, a membership expiring while
cached, and the findings of issue 14 are explicit tests.

Grants are all made before the server starts and never change while it runs, so the server keeps
`Auth.CacheSeconds` at 30: the walk goes through the identity cache as production does.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import ADMIN_KEY, REPO, new_workspace, server_starter
from test_m_harness import Live, MServer

from coflows.auth.store import UserStore
from coflows.permissions import DENIED, READ, VIEW, WRITE
from coflows.server import authz_table as table

DATA = '''
import os
from coflows.context import current

def fetch(n: int = 2):
    return list(range(n))

### <api name="Secret">
###   <permissions><group id="Admins" permission="read"/></permissions>
### </api>
def Secret():
    return "secret"

### <api name="Guarded">
###   <permissions><group id="Admins" permission="read"/></permissions>
### </api>
def Guarded():
    raise RuntimeError("guarded fails")

def boom():
    raise ValueError("boom")

def who_fail(marker: str):
    with open(marker, "a") as f:
        f.write(current().principal.id + "\\n")
    raise ValueError("who fails")
'''

APP = '''
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def run(port, path):
    class Page(BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"app page"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
'''

AGENT = '''
def Body(data):
    return {{"echo": data}}

AGENT = {{"ID": "echo-{kind}", "Name": "Echo {kind}", "Schedule": "0 0 3 ? * *"}}
def Job(t, e): pass
'''

KINDS = {  # name → (workflow id, Public level or None, anonymous's level)
    "view": ("aaaaaaaa-0000-0000-0000-000000000000", 0, 0),
    "pub": ("bbbbbbbb-0000-0000-0000-000000000000", 1, 1),
    "wri": ("cccccccc-0000-0000-0000-000000000000", 2, 2),
    "priv": ("dddddddd-0000-0000-0000-000000000000", None, -2),
}
NEEDED = {table.VIEW: VIEW, table.READ: READ, table.WRITE: WRITE, table.CALL: READ, table.RUN_CHANGE: WRITE}
WRONG = {"x-api-key": "not-the-key"}
ADMIN = {"x-api-key": ADMIN_KEY}
PASSWORD = "correct horse battery staple"
# Extra package.json Permissions: an email (mixed case: emails match lower-cased), a named group, Denied
EXTRA_PERMISSIONS = {
    "priv": [{"ID": "Pkg.User@Example.com", "Permission": 1}, {"ID": "Analysts", "Permission": 1},
             {"ID": "conflict@example.com", "Permission": 2}],
    "pub": [{"ID": "pkg-denied@example.com", "Permission": -1}],
}


def _public(kind: str) -> int:
    return KINDS[kind][2]


@dataclass(frozen=True)
class Caller:
    """One kind of caller of the walk: its email (None: no user), level on each kind of workflow."""

    name: str
    email: str | None
    level: Callable[[str], int]
    grant: str | None = None  # the level granted through each workflow's ID group
    expired: bool = False
    admin: bool = False  # an admin (the key or a user): may do everything


WALK = (
    Caller("anonymous", None, _public),
    Caller("denied user", "denied@example.com", lambda k: DENIED, "denied"),
    Caller("view user", "viewer@example.com", lambda k: max(VIEW, _public(k)), "view"),
    Caller("read user", "reader@example.com", lambda k: max(READ, _public(k)), "read"),
    Caller("write user", "writer@example.com", lambda k: WRITE, "write"),
    Caller("admin key", None, lambda k: WRITE, admin=True),
    Caller("admin user", "boss@example.com", lambda k: WRITE, admin=True),
    Caller("expired user", "expired@example.com", _public, "write", expired=True),
)
# Users of the explicit tests: email → {group: level} (a group is a workflow kind or a named group)
OTHERS: dict[str, dict[str, str]] = {
    "alice@example.com": {"priv": "read"},  # Read on Priv: submits runs of her own there
    "bob@example.com": {},  # no grant beyond Public
    "pkg.user@example.com": {},  # Read on Priv through package.json naming the email
    "pkg-denied@example.com": {},  # Denied on Pub through package.json (Public may Read there)
    "analyst@example.com": {"Analysts": "read"},  # Read on Priv through the named group
    "analyst-denied@example.com": {"Analysts": "denied"},  # a Denied member is not in the group
    "conflict@example.com": {"priv": "denied"},  # Write by package.json, Denied by the group: Denied wins
    "narrow@example.com": {"priv": "read", "Admins": "read"},  # may call Secret
    "admins-only@example.com": {"Admins": "read"},  # in the function's group, no Read on the workflow
}
EXPIRED_OTHERS = {"analyst-expired@example.com": {"Analysts": "read"}}
SOON = "soon@example.com"  # given Write on Priv for a few seconds by the test of expiry
KEYS: dict[str, str] = {}  # email → API key
SPARE_KEYS: dict[str, tuple[str, str]] = {}  # email → (key id, key), revoked by the /auth walk


def headers(c: Caller) -> dict[str, str] | None:
    if c.email is not None:
        return {"x-api-key": KEYS[c.email]}
    return ADMIN if c.admin else None


def user(email: str) -> dict[str, str]:
    return {"x-api-key": KEYS[email]}


def group_of(name: str) -> str:
    return KINDS[name][0] if name in KINDS else name


def make_workspaces(root: Path) -> Any:
    paths = []
    first = None
    for kind, (wid_, public, _) in KINDS.items():
        ws = new_workspace(root / kind, name=kind.capitalize(), wid=wid_, public=public)
        ws.manifest["Permissions"] += EXTRA_PERMISSIONS.get(kind, [])
        ws.add_query("Data.py", DATA)
        ws.add_query("App.py", APP)  # a Dash/Flask-style app (coflows/apps): /dash/{wid}/App.py/
        ws.add_agent("Echo.py", AGENT.format(kind=kind))
        ws.manifest["Flows"] = [{"Name": "daily", "Spec": "Data.py/fetch"}]
        ws.save()
        paths.append(str(ws.mnt / "package.json"))
        first = first or ws
    first.config["Workflow"] = paths
    first.config["Auth"] = {"CacheSeconds": 30}
    first.save()
    return first


def user_store(ws: Any) -> UserStore:
    from coflows.config import load_config
    from coflows.store import Database, database_url

    config = load_config(ws.config_path)
    return UserStore(Database(database_url(config.database.type, config.database.connection, config.base_dir)))


def make_users(store: UserStore) -> None:
    """Every user of the module, their memberships and keys, in the server's database."""
    past = time.time() - 3600
    for c in WALK:
        if c.email is None:
            continue
        store.add_user(c.email, name=c.name.title(), password=PASSWORD if c.grant == "read" else None,
                       admin=c.admin)
        for kind in KINDS if c.grant else ():
            store.grant(group_of(kind), c.email, c.grant, expires=past if c.expired else None)
    for email, grants in {**OTHERS, **EXPIRED_OTHERS}.items():
        store.add_user(email)
        for group, level in grants.items():
            store.grant(group_of(group), email, level, expires=past if email in EXPIRED_OTHERS else None)
    store.add_user(SOON)
    for u in store.users():
        KEYS[u.id] = store.new_key(u.id, "authz walk")[1]
        SPARE_KEYS[u.id] = store.new_key(u.id, "revoked by the walk")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MServer]:
    ws = make_workspaces(tmp_path_factory.mktemp("authz"))
    store = user_store(ws)
    make_users(store)
    starter = server_starter(MServer)
    start = next(starter)
    try:
        s = start(ws)
        s.users = store  # type: ignore[attr-defined]
        yield s
    finally:
        starter.close()
        store.engine.dispose()


# -- helpers ---------------------------------------------------------------------------------------

def wid(kind: str) -> str:
    return KINDS[kind][0]


def topic(kind: str) -> str:
    return f"{wid(kind)}-orders"


def wait_run(s: MServer, run_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = s.get(f"/flows/runs/{run_id}", headers=ADMIN).json()
        if run["state"] in ("finished", "failed", "cancelled"):
            return run
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} did not end: {run}")


def submit(s: MServer, kind: str, spec: Any, hdrs: dict[str, str] | None, wait: bool = True) -> str:
    r = s.post(f"/flows/{wid(kind)}/runs", json={"spec": spec}, headers=hdrs)
    assert r.status_code == 201, r.text
    run_id = r.json()["run_id"]
    if wait:
        wait_run(s, run_id)
    return run_id


def admin_run(s: MServer, kind: str, spec: Any = "Data.py/fetch", wait: bool = True) -> str:
    return submit(s, kind, spec, ADMIN, wait)


_finished: dict[str, str] = {}


def finished_run(s: MServer, kind: str) -> str:
    """One finished admin run per workflow, for the rows that only read a run."""
    if kind not in _finished:
        _finished[kind] = admin_run(s, kind)
    return _finished[kind]


def m_add(s: MServer, kind: str, value: Any) -> str:
    r = s.post(f"/m/add?type={topic(kind)}", json=value, headers=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()["ID"]


@dataclass
class Probe:
    """One request for a row, on the object owned by `kind`; `ok` is the status when allowed."""

    method: str
    url: str
    ok: int = 200
    body: Any = None


Prober = Callable[[MServer, str], Probe]
_n = iter(range(1_000_000))


def _value() -> dict:
    return {"n": next(_n), "t": time.time()}


PROBES: dict[str, Prober] = {
    "/flow/query/{wid}/{qid:path}/{fn}": lambda s, k: Probe("GET", f"/flow/query/{wid(k)}/Data.py/fetch"),
    "/flow/getquery": lambda s, k: Probe("GET", f"/flow/getquery?wid={wid(k)}&qid=Data.py&name=fetch&p=1"),
    "/m/getwb": lambda s, k: Probe("GET", f"/m/getwb?workbook={wid(k)}&id=Data.py&name=fetch&p[0]=1"),
    "/flow/getwb": lambda s, k: Probe("GET", f"/flow/getwb?workbook={wid(k)}&id=Data.py&name=fetch"),
    "/flow/openapi/{wid}/{qid:path}": lambda s, k: Probe("GET", f"/flow/openapi/{wid(k)}/Data.py"),
    "/flow/workflows/{wid}": lambda s, k: Probe("GET", f"/flow/workflows/{wid(k)}"),
    "/flow/source/{wid}/{qid:path}": lambda s, k: Probe("GET", f"/flow/source/{wid(k)}/Data.py"),
    "/flows/runs/{run_id}": lambda s, k: Probe("GET", f"/flows/runs/{finished_run(s, k)}"),
    "/flows/runs/{run_id}/events": lambda s, k: Probe("GET", f"/flows/runs/{finished_run(s, k)}/events"),
    "/flows/runs/{run_id}/cancel": lambda s, k: Probe("POST", f"/flows/runs/{admin_run(s, k)}/cancel"),
    "/flows/runs/{run_id}/rerun": lambda s, k: Probe("POST", f"/flows/runs/{admin_run(s, k, 'Data.py/boom')}/rerun"),
    "/flows/{wid}/runs": lambda s, k: Probe("POST", f"/flows/{wid(k)}/runs", 201, {"spec": "Data.py/fetch"}),
    "/flows/{wid}/flows": lambda s, k: Probe("GET", f"/flows/{wid(k)}/flows"),
    "/ui/flows/runs/{run_id}": lambda s, k: Probe("GET", f"/ui/flows/runs/{finished_run(s, k)}"),
    "/m/data": lambda s, k: Probe("GET", f"/m/data?type={topic(k)}"),
    "/m/rawdata": lambda s, k: Probe("GET", f"/m/rawdata?type={topic(k)}"),
    "/m/entry": lambda s, k: Probe("GET", f"/m/entry?type={topic(k)}&id={m_add(s, k, _value())}"),
    "/m/entries": lambda s, k: Probe("GET", f"/m/entries?type={topic(k)}&limit=5&q=n"),
    "/m/save": lambda s, k: Probe("POST", f"/m/save?type={topic(k)}"),
    "/m/add": lambda s, k: Probe("POST", f"/m/add?type={topic(k)}", body=_value()),
    "/m/addmany": lambda s, k: Probe("POST", f"/m/addmany?type={topic(k)}", body=[_value(), _value()]),
    "/m/exchange": lambda s, k: Probe("POST", f"/m/exchange?type={topic(k)}",
                                      body={"ID": m_add(s, k, _value()), "Value": _value()}),
    "/m/remove": lambda s, k: Probe("POST", f"/m/remove?type={topic(k)}", body={"ID": m_add(s, k, _value())}),
    "/flow/agent/{id}/runs": lambda s, k: Probe("GET", f"/flow/agent/echo-{k}/runs"),
    "/flow/agent/{id}/start": lambda s, k: Probe("POST", f"/flow/agent/echo-{k}/start"),
    "/flow/agent/{id}/stop": lambda s, k: Probe("POST", f"/flow/agent/echo-{k}/stop"),
    "/flow/agent/{id}": lambda s, k: Probe("POST", f"/flow/agent/echo-{k}", body={"hi": 1}),
    "/flow/agent/{id}/run": lambda s, k: Probe("POST", f"/flow/agent/echo-{k}/run"),
    "/flow/logs/{wid}": lambda s, k: Probe("GET", f"/flow/logs/{wid(k)}?format=json"),
    "/flow/cloud/log": lambda s, k: Probe("GET", f"/flow/cloud/log?wid={wid(k)}&lines=5"),
    "/flow/ActiveAgentToggle": lambda s, k: Probe("GET", f"/flow/ActiveAgentToggle?id=echo-{k}"),
    "/dash/{wid}/{path:path}": lambda s, k: Probe("GET", f"/dash/{wid(k)}/App.py/"),
}

ANYONE_PROBES = {
    "/health": Probe("GET", "/health"),
    "/docs": Probe("GET", "/docs"),
    "/docs/static": Probe("GET", "/docs/static/swagger-ui.css"),
    "/": Probe("GET", "/", 307),
    "/ui/static/{name:path}": Probe("GET", "/ui/static/pages/login.js"),
    "/ui/vendor/{name}": Probe("GET", "/ui/vendor/cytoscape.mjs"),
    # the web app's pages: the same HTML for everyone (the data comes from the API)
    **{page: Probe("GET", page.replace("{wid}", "w").replace("{qid:path}", "q/Calc.py").replace("{topic:path}", "t"))
       for page in ("/ui", "/ui/login", "/ui/workflows/{wid}", "/ui/workflows/{wid}/queries/{qid:path}", "/ui/agents",
                    "/ui/m", "/ui/m/{topic:path}", "/ui/flows", "/ui/logs", "/ui/admin", "/ui/profile")},
}
AUTH_ROWS = {r.path for r in table.ROUTES if r.path.startswith("/auth/") and r.access != table.ADMIN}


def send(s: MServer, p: Probe, hdrs: dict[str, str] | None = None) -> httpx.Response:
    """The probe's request, never with a cookie (a login's cookie would turn later calls into a user's)."""
    s.client.cookies.clear()
    try:
        if p.url.endswith("/events"):  # SSE: the status is in the first response line; do not read on
            with s.client.stream(p.method, p.url, headers=hdrs) as r:
                return httpx.Response(r.status_code)
        kw: dict[str, Any] = {"headers": hdrs}
        if p.body is not None:
            kw["json"] = p.body
        return s.client.request(p.method, p.url, **kw)
    finally:
        s.client.cookies.clear()


def expected(rule: table.Rule, c: Caller, kind: str, ok: int) -> int:
    level = c.level(kind)
    if level >= NEEDED[rule.access]:
        return ok
    if "{run_id}" in rule.path and level < READ:
        return 404  # a run the caller may not read does not exist for them
    return 401 if headers(c) is None else 403


# -- the walk --------------------------------------------------------------------------------------

OWNED = [r for r in table.ROUTES if r.access not in (table.ANYONE, table.LISTED, table.ADMIN)]


@pytest.mark.parametrize("rule", OWNED, ids=lambda r: f"{'/'.join(r.methods)} {r.path}")
def test_owned_routes_follow_the_table(server: MServer, rule: table.Rule) -> None:
    prober = PROBES[rule.path]
    failures = []
    for kind in KINDS:
        p = prober(server, kind)
        if (got := send(server, p, WRONG).status_code) != 401:
            failures.append(f"wrong key on {kind}: {p.method} {p.url} → {got}, expected 401")
        for c in WALK:
            p = prober(server, kind)
            r = send(server, p, headers(c))
            want = expected(rule, c, kind, p.ok)
            if r.status_code != want:
                failures.append(f"{c.name} on {kind}: {p.method} {p.url} → {r.status_code}, expected {want}: "
                                f"{r.text[:200]}")
    assert not failures, "\n".join(failures)


def test_the_docs_page_loads_only_this_servers_specs(server: MServer) -> None:
    page = server.get("/docs?url=https://evil.example/spec.json").text
    assert "evil.example" not in page and "/openapi.json" in page
    assert "/flow/openapi/x/Q.py" in server.get("/docs?url=/flow/openapi/x/Q.py").text
    assert "evil" not in server.get("/docs?url=//evil.example/x").text


@pytest.mark.parametrize("path", sorted(ANYONE_PROBES))
def test_routes_open_to_anyone(server: MServer, path: str) -> None:
    assert table.rule_for(path) is not None and table.rule_for(path).access == table.ANYONE
    p = ANYONE_PROBES[path]
    if path == "/docs/static" and send(server, p, ADMIN).status_code == 404:
        pytest.skip("swagger-ui assets are not installed")
    for c in WALK:
        assert send(server, p, headers(c)).status_code == p.ok, c.name
    assert send(server, p, WRONG).status_code == 401  # a wrong key is refused, never downgraded


def _listed(s: MServer, path: str, hdrs: dict | None) -> Any:
    r = s.get(path, headers=hdrs)
    assert r.status_code == 200, r.text
    return r.json()


def test_lists_show_only_what_the_caller_may_see(server: MServer) -> None:
    s = server
    for kind in KINDS:
        admin_run(s, kind)
        m_add(s, kind, {"listed": kind})
    ours = {topic(k) for k in KINDS}
    for c in WALK:
        h, who = headers(c), c.name
        viewable = {k for k in KINDS if c.level(k) >= VIEW}
        readable = {k for k in KINDS if c.level(k) >= READ}
        # workflows and agents: View
        assert {w["id"] for w in _listed(s, "/flow/workflows", h)} == {wid(k) for k in viewable}, who
        assert {a["ID"] for a in _listed(s, "/flow/agents", h)} == {f"echo-{k}" for k in viewable}, who
        # openapi: callable functions only (Read; Secret needs the Admins group)
        paths = [p for p in _listed(s, "/openapi.json", h)["paths"] if p.startswith("/flow/query/")]
        assert {p.split("/")[3] for p in paths} == {wid(k) for k in readable}, who
        assert any(p.endswith("/Secret") for p in paths) == c.admin, who
        # runs and topics: Read; the filter is applied before `limit`
        assert {r["workflow"] for r in _listed(s, "/flows/runs?limit=1000", h)} == {wid(k) for k in readable}, who
        first = _listed(s, "/flows/runs?limit=1", h)
        assert [r["workflow"] in {wid(k) for k in readable} for r in first] == [True] * bool(readable), who
        topics = {t["Topic"] for t in _listed(s, "/m/topics", h)} & ours
        assert topics == {topic(k) for k in readable}, who
    assert {w["id"] for w in _listed(s, "/flow/workflows", user("bob@example.com"))} == \
        {wid(k) for k in ("view", "pub", "wri")}  # a user without grants sees what Public sees
    for path in ("/flow/workflows", "/flow/agents", "/openapi.json", "/flows/runs", "/m/topics"):
        assert s.get(path, headers=WRONG).status_code == 401


def test_the_all_runs_event_stream_shows_each_caller_only_readable_runs(server: MServer) -> None:
    """Every caller's stream is open while one run per workflow runs (Wri's last); then each is read."""
    s = server
    seen: dict[str, list[dict]] = {}
    with contextlib.ExitStack() as stack:
        streams = {}
        for c in WALK:
            r = stack.enter_context(httpx.stream("GET", f"{s.base}/flows/events", headers=headers(c),
                                                 timeout=httpx.Timeout(30, read=2)))
            assert r.status_code == 200, c.name
            streams[c.name] = r
        runs = {kind: admin_run(s, kind) for kind in ("priv", "view", "pub", "wri")}  # one after the other
        for c in WALK:
            seen[c.name] = events = []
            try:
                for line in streams[c.name].iter_lines():
                    if line.startswith("data: "):
                        events.append(json.loads(line[6:]))
                        e = events[-1]
                        if e.get("run_id") == runs["wri"] and e.get("type") == "run" and e.get("state") == "finished":
                            break  # events come in order: every earlier run's are in
            except httpx.ReadTimeout:
                pass  # nothing more for this caller
    for c in WALK:
        got = {e.get("run_id") for e in seen[c.name]} & set(runs.values())
        assert got == {runs[k] for k in runs if c.level(k) >= READ}, c.name


def test_live_follows_each_callers_levels(server: MServer) -> None:
    """/live per caller and workflow: subscribing needs Read, a change (Type 14) needs Write."""
    s = server
    failures = []
    for c in WALK:
        key = (headers(c) or {}).get("x-api-key")
        live = Live(s.ws_url(key=key))
        try:
            for kind in KINDS:
                live.send({"Type": 1, "Content": topic(kind)})
                live.send({"Type": 14, "Content": {"TopicID": topic(kind), "Type": 1, "Value": {"live": c.name}}})
                live.send({"Type": 15, "Content": kind})
                errors = []
                while (msg := live.recv())["Type"] != 15:
                    if msg["Type"] == 0:
                        errors.append(msg["Content"])
                want = ([1] if c.level(kind) < READ else []) + ([14] if c.level(kind) < WRITE else [])
                if [e["Request"] for e in errors] != want:
                    failures.append(f"{c.name} on {kind}: errors {errors}, expected for requests {want}")
                word = "API key" if key is None else "permission denied"
                if not all(word in e["Error"] for e in errors):
                    failures.append(f"{c.name} on {kind}: errors {errors} do not say {word!r}")
        finally:
            live.close()
    assert not failures, "\n".join(failures)
    from websockets.exceptions import InvalidHandshake

    with pytest.raises(InvalidHandshake):  # a wrong key: the handshake is refused, never downgraded
        Live(s.ws_url(key="not-the-key")).close()


def test_live_subscriptions_need_read_on_the_topics_owner(server: MServer) -> None:
    s = server
    live = Live(s.ws_url(key=None))
    try:
        live.subscribe(topic("pub"))  # Read: allowed
        m_add(s, "priv", {"private": 1})
        m_add(s, "pub", {"public": 1})
        got = live.changes(1)
        assert got[0]["TopicID"] == topic("pub") and got[0]["Value"] == {"public": 1}
    finally:
        live.close()


# -- /auth/*: the caller's own identity and keys --------------------------------------------------

def _auth_check(s: MServer, path: str, c: Caller | None) -> list[str]:
    """The /auth row `path` called as `c` (None: a wrong key); a list of what differs from the row."""
    h = headers(c) if c is not None else WRONG
    name = c.name if c is not None else "wrong key"
    anonymous = c is not None and h is None
    out: list[str] = []

    def want(r: httpx.Response, status: int) -> bool:
        if r.status_code != status:
            out.append(f"{name}: {r.request.method} {r.request.url.path} → {r.status_code}, expected {status}: "
                       f"{r.text[:200]}")
            return False
        return True

    def call(method: str, url: str, **kw: Any) -> httpx.Response:
        return send(s, Probe(method, url, body=kw.get("json")), h)

    if c is None:  # a wrong key is refused on every /auth route, never downgraded to anonymous
        method = next(r.methods[0] for r in table.ROUTES if r.path == path)
        want(call(method, path.replace("{key_id}", "x")), 401)
        return out
    if path == "/auth/login":  # anyone may log in; the body's credentials decide
        r = call("POST", path, json={"email": "Reader@Example.com", "password": PASSWORD})
        if want(r, 200):
            assert r.json()["user"]["email"] == "reader@example.com" and r.json()["csrf"]
            cookie = r.headers.get("set-cookie", "")
            if not ("coflows_session=cfs_" in cookie and "httponly" in cookie.lower()
                    and "samesite=lax" in cookie.lower()):
                out.append(f"{name}: login cookie {cookie!r}")
    elif path == "/auth/logout":  # no session: nothing to end
        r = call("POST", path)
        if want(r, 200) and r.json() != {"ended": False}:
            out.append(f"{name}: logout said {r.text}")
    elif path == "/auth/me":
        r = call("GET", path)
        if want(r, 401 if anonymous else 200) and not anonymous:
            me = r.json()
            groups = {g["id"]: g["level"] for g in me["groups"]}
            mine = {} if c.grant is None or c.expired else {wid(k): c.grant for k in KINDS}
            if (me["email"], me["admin"], groups) != (c.email, c.admin, mine):
                out.append(f"{name}: /auth/me said {me}")
    elif path == "/auth/keys" and c is not None:
        r = call("GET", path)
        if want(r, 401 if anonymous else 200) and not anonymous:
            ids = {k["id"] for k in r.json()}
            stored = {k["id"] for k in s.users.keys(c.email)} if c.email else set()  # type: ignore[attr-defined]
            if ids != stored or "cfk_" in r.text:
                out.append(f"{name}: keys {r.text[:300]}, expected the IDs {stored}, never a key")
        # a new key comes from a login session only: never anonymous, never with a key (the admin's included)
        want(call("POST", path), 401 if anonymous else 403)
    elif path == "/auth/keys/{key_id}/revoke":
        other = SPARE_KEYS["bob@example.com"]
        want(call("POST", f"/auth/keys/{other[0]}/revoke"), 401 if anonymous else 404)  # not theirs
        if c.email is not None:
            kid, key = SPARE_KEYS[c.email]
            if want(call("POST", f"/auth/keys/{kid}/revoke"), 200):
                want(s.get("/auth/me", headers={"x-api-key": key}), 401)  # the revoked key is refused at once
    elif path == "/auth/password":  # one's own password: from a login session only, never with a key
        want(call("POST", path, json={"current": PASSWORD, "new": "a new password!"}), 401 if anonymous else 403)
    elif path in ("/auth/oidc/login", "/auth/oidc/callback"):  # no Auth.OIDC.Issuer: not configured
        want(call("GET", path), 404)
    else:
        out.append(f"no check for {path}")
    return out


@pytest.mark.parametrize("path", sorted(AUTH_ROWS - {"/auth/keys/{key_id}/revoke"}) + ["/auth/keys/{key_id}/revoke"])
def test_auth_routes_follow_their_rows(server: MServer, path: str) -> None:
    failures = _auth_check(server, path, None)
    for c in WALK:
        failures += _auth_check(server, path, c)
    assert not failures, "\n".join(failures)
    if path == "/auth/keys/{key_id}/revoke":  # someone else's key was never revoked
        assert server.get("/auth/me", headers={"x-api-key": SPARE_KEYS["bob@example.com"][1]}).status_code == 200


# -- admin routes (users, groups, anyone's keys): admins 200, others 401/403 ------------------------

_fresh = iter(range(1_000_000))


def _throwaway(s: MServer) -> str:
    """A new user in the server's database, for one probe of an admin route to change."""
    email = f"walk-{next(_fresh)}@example.com"
    s.users.add_user(email)  # type: ignore[attr-defined]
    return email


def _granted(s: MServer) -> tuple[str, str]:
    email = _throwaway(s)
    s.users.grant("Analysts", email, "read")  # type: ignore[attr-defined]
    return "Analysts", email


def _group(s: MServer) -> str:
    gid = f"walk-group-{next(_fresh)}"
    s.users.add_group(gid)  # type: ignore[attr-defined]
    return gid


ADMIN_PROBES: dict[tuple[str, str], Callable[[MServer], Probe]] = {
    ("GET", "/auth/users"): lambda s: Probe("GET", "/auth/users"),
    ("POST", "/auth/users"): lambda s: Probe("POST", "/auth/users", 201,
                                             {"email": f"walk-new-{next(_fresh)}@example.com", "name": "New"}),
    ("POST", "/auth/users/{email}/remove"): lambda s: Probe("POST", f"/auth/users/{_throwaway(s)}/remove"),
    ("POST", "/auth/users/{email}/password"): lambda s: Probe("POST", f"/auth/users/{_throwaway(s)}/password",
                                                              body={"password": "a walk password"}),
    ("POST", "/auth/users/{email}/admin"): lambda s: Probe("POST", f"/auth/users/{_throwaway(s)}/admin",
                                                           body={"admin": False}),
    ("GET", "/auth/users/{email}/keys"): lambda s: Probe("GET", "/auth/users/bob@example.com/keys"),
    ("POST", "/auth/users/{email}/keys"): lambda s: Probe("POST", f"/auth/users/{_throwaway(s)}/keys", 201,
                                                          {"label": "walk"}),
    ("POST", "/auth/admin/keys/{key_id}/revoke"): lambda s: Probe(
        "POST", f"/auth/admin/keys/{s.users.new_key(_throwaway(s))[0]}/revoke"),  # type: ignore[attr-defined]
    ("GET", "/auth/groups"): lambda s: Probe("GET", "/auth/groups"),
    ("POST", "/auth/groups"): lambda s: Probe("POST", "/auth/groups", 201, {"id": f"walk-new-{next(_fresh)}"}),
    ("POST", "/auth/groups/{group}/remove"): lambda s: Probe("POST", f"/auth/groups/{_group(s)}/remove"),
    ("POST", "/auth/groups/{group}/grant"): lambda s: Probe(
        "POST", f"/auth/groups/{wid('priv')}/grant", body={"user": _throwaway(s), "level": "view"}),
    ("POST", "/auth/groups/{group}/revoke"): lambda s: (lambda g: Probe(
        "POST", f"/auth/groups/{g[0]}/revoke", body={"user": g[1]}))(_granted(s)),
    # cloud mode: each allowed call stops at a check after the authorization (no deploy, restart or removal)
    ("POST", "/flow/cloud/deploy"): lambda s: Probe("POST", f"/flow/cloud/deploy?wid={wid('wri')}", 400),
    ("POST", "/flow/cloud/restart"): lambda s: Probe("POST", "/flow/cloud/restart?grace=0", 400),
    ("POST", "/flow/cloud/remove"): lambda s: Probe("POST", "/flow/cloud/remove?wid=no-such-workflow", 404),
}
# /lab (JupyterLab, admins only) exists only with "Jupyter": true: tests/test_jupyter.py walks it
LAB_ROWS = {r.path for r in table.ROUTES if r.path == "/lab" or r.path.startswith("/lab/")}
ADMIN_ROWS = [r for r in table.ROUTES if r.access == table.ADMIN and r.path not in LAB_ROWS]


@pytest.mark.parametrize("rule", ADMIN_ROWS, ids=lambda r: f"{'/'.join(r.methods)} {r.path}")
def test_admin_routes_follow_the_table(server: MServer, rule: table.Rule) -> None:
    prober = ADMIN_PROBES[(rule.methods[0], rule.path)]
    failures = []
    if (got := send(server, prober(server), WRONG).status_code) != 401:
        failures.append(f"wrong key: {rule.path} → {got}, expected 401")
    for c in WALK:
        p = prober(server)
        r = send(server, p, headers(c))
        want = p.ok if c.admin else 401 if headers(c) is None else 403
        if r.status_code != want:
            failures.append(f"{c.name}: {p.method} {p.url} → {r.status_code}, expected {want}: {r.text[:200]}")
        elif r.headers.get("cache-control") != "no-store":
            failures.append(f"{c.name}: {p.method} {p.url}: Cache-Control {r.headers.get('cache-control')!r}")
    assert not failures, "\n".join(failures)
    if rule.path == "/auth/users":  # the admins' list never holds a secret
        text = send(server, ADMIN_PROBES[("GET", "/auth/users")](server), ADMIN).text
        assert "cfk_" not in text and "argon2" not in text and PASSWORD not in text


# -- users' levels from every source ---------------------------------------------------------------

def test_package_json_permissions_grant_to_emails_and_named_groups(server: MServer) -> None:
    s = server
    call = f"/flow/query/{wid('priv')}/Data.py/fetch"
    write = f"/m/add?type={topic('priv')}"
    # package.json names the email (in another case): Read, not Write
    assert s.get(call, headers=user("pkg.user@example.com")).status_code == 200
    assert s.post(write, json={"x": 1}, headers=user("pkg.user@example.com")).status_code == 403
    assert wid("priv") in {w["id"] for w in _listed(s, "/flow/workflows", user("pkg.user@example.com"))}
    # package.json gives the named group Analysts Read: its members have Read; expired or Denied members do not
    assert s.get(call, headers=user("analyst@example.com")).json() == [0, 1]
    assert s.post(write, json={"x": 1}, headers=user("analyst@example.com")).status_code == 403
    for email in ("analyst-expired@example.com", "analyst-denied@example.com"):
        assert s.get(call, headers=user(email)).status_code == 403, email
        assert wid("priv") not in {w["id"] for w in _listed(s, "/flow/workflows", user(email))}, email
    # package.json Permission -1 for an email: denied where Public may Read
    pub = f"/flow/query/{wid('pub')}/Data.py/fetch"
    assert s.get(pub).status_code == 200
    r = s.get(pub, headers=user("pkg-denied@example.com"))
    assert r.status_code == 403 and "pkg-denied@example.com" in r.json()["error"]["message"]
    assert wid("pub") not in {w["id"] for w in _listed(s, "/flow/workflows", user("pkg-denied@example.com"))}
    # Write by package.json, Denied through the workflow's group: Denied wins
    assert s.get(call, headers=user("conflict@example.com")).status_code == 403
    assert s.post(write, json={"x": 1}, headers=user("conflict@example.com")).status_code == 403


def test_function_permissions_narrow_who_may_call(server: MServer) -> None:
    s = server
    secret = f"/flow/query/{wid('priv')}/Data.py/Secret"
    reader = {"x-api-key": KEYS["reader@example.com"]}  # Read on every workflow, not in Admins
    assert s.get(f"/flow/query/{wid('priv')}/Data.py/fetch", headers=reader).status_code == 200
    assert s.get(secret, headers=reader).status_code == 403
    assert s.get(secret, headers=user("narrow@example.com")).json() == "secret"  # Read + in Admins
    # the function's group alone does not give Read on the workflow ("Read + callable")
    assert s.get(secret, headers=user("admins-only@example.com")).status_code == 403
    doc = _listed(s, f"/flow/openapi/{wid('priv')}/Data.py", user("narrow@example.com"))
    assert any(p.endswith("/Secret") for p in doc["paths"])
    doc = _listed(s, f"/flow/openapi/{wid('priv')}/Data.py", reader)
    assert not any(p.endswith("/Secret") for p in doc["paths"]) and any(p.endswith("/fetch") for p in doc["paths"])
    # a flow naming the function is refused the same way
    r = s.post(f"/flows/{wid('priv')}/runs", json={"spec": "Data.py/Secret"}, headers=reader)
    assert r.status_code == 403 and "Data.py/Secret" in r.json()["error"]["message"]


def test_a_membership_that_expires_while_cached_stops_counting(server: MServer) -> None:
    """Write on Priv for 4 s: the server caches the user for 30 s, but never past a membership's expiry."""
    s = server
    h, write = user(SOON), f"/m/add?type={topic('priv')}"
    for _ in range(3):  # the grant is made here, in the database, unseen by the server until the key's first use
        until = time.time() + 4
        s.users.grant(wid("priv"), SOON, "write", expires=until)  # type: ignore[attr-defined]
        r = s.post(write, json={"soon": 1}, headers=h)  # the user and the grant are cached now
        if time.time() < until - 0.5:
            break  # answered well before the expiry (else: a slow machine, try again)
    assert r.status_code == 200, r.text
    while time.time() <= until:
        time.sleep(0.1)
    assert s.post(write, json={"soon": 2}, headers=h).status_code == 403
    assert s.get(f"/flow/query/{wid('priv')}/Data.py/fetch", headers=h).status_code == 403
    assert s.get("/auth/me", headers=h).json()["groups"] == []


def test_a_session_carries_the_users_levels_and_unsafe_requests_need_its_csrf_token(server: MServer) -> None:
    s = server
    with httpx.Client(base_url=s.base, timeout=30) as c:
        r = c.post("/auth/login", json={"email": "reader@example.com", "password": PASSWORD})
        assert r.status_code == 200, r.text
        csrf = {"X-CSRF-Token": r.json()["csrf"]}
        assert c.get(f"/flow/query/{wid('priv')}/Data.py/fetch").status_code == 200  # Read through the session
        assert c.get("/auth/me").json()["via"] == "session"
        add = f"/m/add?type={topic('wri')}"  # Public may Write on Wri
        r = c.post(add, json={"s": 1})
        assert r.status_code == 403 and r.json()["error"]["type"] == "CsrfFailed"
        assert c.post(add, json={"s": 1}, headers={"X-CSRF-Token": "wrong"}).status_code == 403
        assert c.post(add, json={"s": 1}, headers=csrf).status_code == 200
        assert c.post(f"/m/add?type={topic('priv')}", json={"s": 1}, headers=csrf).status_code == 403  # Read only
        # a key is made from the session, shown once, and works as the user
        r = c.post("/auth/keys", json={"label": "laptop"}, headers=csrf)
        assert r.status_code == 201, r.text
        key = r.json()["key"]
        assert s.get("/auth/me", headers={"x-api-key": key}).json()["email"] == "reader@example.com"
        assert key not in c.get("/auth/keys").text
        assert c.post("/auth/logout", headers=csrf).json() == {"ended": True}
        assert c.get(f"/flow/query/{wid('priv')}/Data.py/fetch").status_code == 401  # anonymous again


# -- callers with a key but without the level: 403; submitters own their runs ----------------------

def test_keyed_callers_without_the_level_get_403_and_submitters_own_their_runs(server: MServer) -> None:
    s = server
    alice, bob = user("alice@example.com"), user("bob@example.com")  # Read on Priv; nothing beyond Public
    assert s.get(f"/flow/openapi/{wid('priv')}/Data.py", headers=bob).status_code == 403
    assert s.get(f"/flow/openapi/{wid('priv')}/Data.py", headers=alice).status_code == 200
    # M: Read, not Write
    m_add(s, "priv", {"a": "alice-reads"})
    assert {"a": "alice-reads"} in s.get(f"/m/data?type={topic('priv')}", headers=alice).json()
    r = s.get(f"/m/data?type={topic('priv')}", headers=bob)
    assert r.status_code == 403 and "Read on workflow 'Priv'" in r.json()["error"]["message"]
    assert s.post(f"/m/add?type={topic('priv')}", json={"b": 1}, headers=alice).status_code == 403
    # agents: Read for runs, Write to start
    assert s.get("/flow/agent/echo-priv/runs", headers=alice).status_code == 200
    assert s.get("/flow/agent/echo-priv/runs", headers=bob).status_code == 403
    assert s.post("/flow/agent/echo-priv/start", headers=alice).status_code == 403
    assert s.post("/flow/agent/echo-priv", json={}, headers=alice).status_code == 403
    # runs: the admin's are readable, not changeable; her own are hers to cancel and rerun
    admins = admin_run(s, "priv", "Data.py/boom")
    assert s.get(f"/flows/runs/{admins}", headers=alice).status_code == 200
    assert s.get(f"/flows/runs/{admins}", headers=bob).status_code == 404
    r = s.post(f"/flows/runs/{admins}/rerun", headers=alice)
    assert r.status_code == 403 and "Write" in r.json()["error"]["message"]
    assert s.post(f"/flows/runs/{admins}/cancel", headers=alice).status_code == 403
    hers = submit(s, "priv", "Data.py/boom", alice)
    assert s.get(f"/flows/runs/{hers}", headers=ADMIN).json()["submitted_by"] == "alice@example.com"
    assert s.post(f"/flows/runs/{hers}/rerun", headers=alice).status_code == 200
    assert s.post(f"/flows/runs/{hers}/cancel", headers=alice).status_code == 200
    assert s.post(f"/flows/runs/{hers}/cancel", headers=bob).status_code == 404
    r = s.post(f"/flows/{wid('priv')}/runs", json={"spec": "Data.py/Secret"}, headers=alice)
    assert r.status_code == 403 and "Data.py/Secret" in r.json()["error"]["message"]
    assert s.post(f"/flows/{wid('priv')}/runs", json={"spec": "Data.py/fetch"}, headers=bob).status_code == 403
    # lists
    assert wid("priv") in {r["workflow"] for r in s.get("/flows/runs", headers=alice).json()}
    assert wid("priv") not in {r["workflow"] for r in s.get("/flows/runs", headers=bob).json()}


def test_a_flow_task_runs_as_its_submitter_with_the_users_current_groups(server: MServer, tmp_path: Path) -> None:
    s = server
    marker = tmp_path / "who.txt"
    spec = [{"nodename": "who", "funcname": "Data.py/who_fail", "kwargs": {"marker": str(marker)}}]
    run_id = submit(s, "priv", spec, user("alice@example.com"))
    assert wait_run(s, run_id)["submitted_by"] == "alice@example.com"
    assert marker.read_text().split() == ["alice@example.com"]


# -- the findings of issue 14 -----------------------------------------------------------------------

def test_anonymous_cannot_cancel_or_rerun_an_admins_run(server: MServer) -> None:
    s = server
    run_id = admin_run(s, "pub", "Data.py/boom")  # failed: a rerun would run it again
    before = s.get(f"/flows/runs/{run_id}").json()  # Public may Read: the run is visible
    assert before["state"] == "failed"
    r = s.post(f"/flows/runs/{run_id}/rerun")
    assert r.status_code == 401 and "Write" in r.json()["error"]["message"]
    r = s.post(f"/flows/runs/{run_id}/cancel")
    assert r.status_code == 401
    time.sleep(0.3)
    after = s.get(f"/flows/runs/{run_id}").json()
    assert (after["state"], after["generation"], after["tasks"][0]["attempts"]) == \
        (before["state"], before["generation"], before["tasks"][0]["attempts"])


def test_a_rerun_is_refused_when_a_task_is_not_callable_by_the_caller(server: MServer) -> None:
    s = server  # Public may Write on wri, but Guarded needs the Admins group
    run_id = admin_run(s, "wri", "Data.py/Guarded")
    before = s.get(f"/flows/runs/{run_id}").json()
    assert before["state"] == "failed"
    r = s.post(f"/flows/runs/{run_id}/rerun")
    assert r.status_code == 401, r.text
    assert "Data.py/Guarded" in r.json()["error"]["message"]
    assert s.get(f"/flow/query/{wid('wri')}/Data.py/Guarded").status_code == 401  # the same rule as a call
    after = s.get(f"/flows/runs/{run_id}").json()
    assert (after["generation"], after["tasks"][0]["attempts"]) == (before["generation"], 1)
    # submitting such a flow is refused the same way
    r = s.post(f"/flows/{wid('wri')}/runs", json={"spec": "Data.py/Guarded"})
    assert r.status_code == 401 and "Data.py/Guarded" in r.json()["error"]["message"]


def test_a_rerun_runs_with_the_rights_of_the_caller_who_asks(server: MServer, tmp_path: Path) -> None:
    s = server
    marker = tmp_path / "who.txt"
    spec = [{"nodename": "who", "funcname": "Data.py/who_fail", "kwargs": {"marker": str(marker)}}]
    run_id = admin_run(s, "wri", spec)
    r = s.post(f"/flows/runs/{run_id}/rerun")  # Public may Write on wri
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 30
    while marker.read_text().count("\n") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.read_text().split() == ["root", "anonymous"]
    run = wait_run(s, run_id)
    assert run["submitted_by"] == "anonymous" and run["generation"] == 1


def test_m_wid_cannot_widen_access_to_a_private_topic(server: MServer) -> None:
    s = server
    m_add(s, "priv", {"secret": 42})
    for path in ("/m/data", "/m/rawdata", "/m/topics"):
        r = s.get(f"{path}?type={topic('priv')}&wid={wid('pub')}")
        assert "42" not in r.text
    assert s.get(f"/m/data?type={topic('priv')}&wid={wid('pub')}").status_code == 401
    assert s.get(f"/m/data?type={topic('priv')}&wid=Pub").status_code == 401
    assert s.post(f"/m/add?type={topic('priv')}&wid={wid('wri')}", json={"x": 1}).status_code == 401
    # a shared topic (no workflow owns it) needs the level on every workflow: wid cannot pick one
    r = s.post("/m/add?type=shared-orders", json={"secret": 43}, headers=ADMIN)
    assert r.status_code == 200
    r = s.get(f"/m/data?type=shared-orders&wid={wid('pub')}")
    assert r.status_code == 401 and "43" not in r.text
    # wid narrows: a public topic read through a private wid is refused
    assert s.get(f"/m/data?type={topic('pub')}").status_code == 200
    assert s.get(f"/m/data?type={topic('pub')}&wid={wid('priv')}").status_code == 401
    assert s.get(f"/m/data?type={topic('pub')}&wid=no-such-workflow").status_code == 404
    assert {"secret": 42} in s.get(f"/m/data?type={topic('priv')}&wid={wid('pub')}", headers=ADMIN).json()


def test_a_topic_belongs_to_the_workflow_with_the_longest_matching_id() -> None:
    from types import SimpleNamespace

    from coflows.server.m_routes import topic_owner

    a, ab = SimpleNamespace(id="abc"), SimpleNamespace(id="abc-def")
    runtime = SimpleNamespace(registry=SimpleNamespace(workflows=lambda: [a, ab]))
    assert topic_owner(runtime, "abc-def-orders") is ab
    assert topic_owner(runtime, "abc--Queries") is a
    assert topic_owner(runtime, "abc") is a
    assert topic_owner(runtime, "abcd-orders") is None  # "abc" followed by a letter: not its topic


# -- the table itself --------------------------------------------------------------------------------

def test_every_route_of_the_app_has_a_row(tmp_path: Path) -> None:
    from coflows.config import load_config
    from coflows.runtime import Runtime
    from coflows.server.app import create_app

    ws = new_workspace(tmp_path / "ws")
    runtime = Runtime(load_config(ws.config_path))
    try:
        runtime.load()
        routes = table.app_routes(create_app(runtime))
    finally:
        runtime.close()
    assert len(routes) > 30
    assert table.missing(routes) == []
    assert {p for p, _ in routes} >= {r.path for r in table.ROUTES} - {"/docs/static"} - LAB_ROWS
    covered = (set(PROBES) | set(ANYONE_PROBES) | AUTH_ROWS | {path for _, path in ADMIN_PROBES} | LAB_ROWS
               | {r.path for r in table.ROUTES if r.access == table.LISTED})
    assert {r.path for r in table.ROUTES} <= covered  # the walk calls every row


def test_the_doc_shows_the_table() -> None:
    doc = (REPO / "docs" / "security.md").read_text(encoding="utf-8")
    assert table.splice(doc) == doc, "run: python -m coflows.server.authz_table docs/security.md"


def test_live_checks_rights_again_when_it_delivers() -> None:
    """A subscriber whose Read was taken away (the workspace's Permissions changed) receives nothing more."""
    import asyncio
    from types import SimpleNamespace

    from coflows.m.store import Change
    from coflows.permissions import ANONYMOUS
    from coflows.server.live import LiveHub, _Client

    async def scenario() -> list[str]:
        wf = SimpleNamespace(id=wid("pub"), name="Pub", permissions={"Public": 1})
        hub = LiveHub(SimpleNamespace(registry=SimpleNamespace(workflows=lambda: [wf])))
        client = _Client(None, ANONYMOUS)  # type: ignore[arg-type]
        hub._clients[topic("pub")] = {client}
        got = []
        for n, level in enumerate((1, -1, 1)):
            wf.permissions["Public"] = level
            hub._pending.append(Change(topic("pub"), f"id{n}", 1, str(n), 1))
            hub._flush()
            while not client.queue.empty():
                got.append(json.loads(client.queue.get_nowait())["Content"]["ID"])
        return got

    assert asyncio.run(scenario()) == ["id0", "id2"]
