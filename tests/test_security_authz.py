"""Authorization on every route: walk the table of docs/security.md against a real server.

One server serves four workflows: View (Public may View), Pub (Public may Read), Wri (Public may
Write) and Priv (no Public grant). Every row of `coflows.server.authz_table.ROUTES` is called as
anonymous on each workflow, with a wrong key, and as the admin; the status must follow the row's
access kind. Plus the findings of issue 14 as explicit tests.
"""

from __future__ import annotations

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
NEEDED = {table.VIEW: 0, table.READ: 1, table.WRITE: 2, table.CALL: 1, table.RUN_CHANGE: 2}
WRONG = {"x-api-key": "not-the-key"}
ADMIN = {"x-api-key": ADMIN_KEY}


def make_workspaces(root: Path) -> Any:
    paths = []
    first = None
    for kind, (wid, public, _) in KINDS.items():
        ws = new_workspace(root / kind, name=kind.capitalize(), wid=wid, public=public)
        ws.add_query("Data.py", DATA)
        ws.add_agent("Echo.py", AGENT.format(kind=kind))
        ws.manifest["Flows"] = [{"Name": "daily", "Spec": "Data.py/fetch"}]
        ws.save()
        paths.append(str(ws.mnt / "package.json"))
        first = first or ws
    first.config["Workflow"] = paths
    first.save()
    return first


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MServer]:
    ws = make_workspaces(tmp_path_factory.mktemp("authz"))
    starter = server_starter(MServer)
    start = next(starter)
    try:
        yield start(ws)
    finally:
        starter.close()


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


def admin_run(s: MServer, kind: str, spec: Any = "Data.py/fetch", wait: bool = True) -> str:
    r = s.post(f"/flows/{wid(kind)}/runs", json={"spec": spec}, headers=ADMIN)
    assert r.status_code == 201, r.text
    run_id = r.json()["run_id"]
    if wait:
        wait_run(s, run_id)
    return run_id


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
    "/flow/openapi/{wid}/{qid:path}": lambda s, k: Probe("GET", f"/flow/openapi/{wid(k)}/Data.py"),
    "/flows/runs/{run_id}": lambda s, k: Probe("GET", f"/flows/runs/{admin_run(s, k)}"),
    "/flows/runs/{run_id}/events": lambda s, k: Probe("GET", f"/flows/runs/{admin_run(s, k)}/events"),
    "/flows/runs/{run_id}/cancel": lambda s, k: Probe("POST", f"/flows/runs/{admin_run(s, k)}/cancel"),
    "/flows/runs/{run_id}/rerun": lambda s, k: Probe("POST", f"/flows/runs/{admin_run(s, k, 'Data.py/boom')}/rerun"),
    "/flows/{wid}/runs": lambda s, k: Probe("POST", f"/flows/{wid(k)}/runs", 201, {"spec": "Data.py/fetch"}),
    "/flows/{wid}/flows": lambda s, k: Probe("GET", f"/flows/{wid(k)}/flows"),
    "/ui/flows/runs/{run_id}": lambda s, k: Probe("GET", f"/ui/flows/runs/{admin_run(s, k)}"),
    "/m/data": lambda s, k: Probe("GET", f"/m/data?type={topic(k)}"),
    "/m/rawdata": lambda s, k: Probe("GET", f"/m/rawdata?type={topic(k)}"),
    "/m/entry": lambda s, k: Probe("GET", f"/m/entry?type={topic(k)}&id={m_add(s, k, _value())}"),
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
    "/flow/ActiveAgentToggle": lambda s, k: Probe("GET", f"/flow/ActiveAgentToggle?id=echo-{k}"),
}

ANYONE_PROBES = {
    "/health": Probe("GET", "/health"),
    "/docs": Probe("GET", "/docs"),
    "/docs/static": Probe("GET", "/docs/static/swagger-ui.css"),
    "/ui": Probe("GET", "/ui", 307),
    "/ui/flows": Probe("GET", "/ui/flows"),
    "/ui/static/{name}": Probe("GET", "/ui/static/ui.css"),
    "/ui/vendor/{name}": Probe("GET", "/ui/vendor/cytoscape.mjs"),
}


def send(s: MServer, p: Probe, headers: dict[str, str] | None = None) -> httpx.Response:
    if p.url.endswith("/events"):  # SSE: the status is in the first response line; do not read on
        with s.client.stream(p.method, p.url, headers=headers) as r:
            return httpx.Response(r.status_code)
    kw: dict[str, Any] = {"headers": headers}
    if p.body is not None:
        kw["json"] = p.body
    return s.client.request(p.method, p.url, **kw)


def expected_anonymous(rule: table.Rule, kind: str, ok: int) -> int:
    level = KINDS[kind][2]
    if level >= NEEDED[rule.access]:
        return ok
    if "{run_id}" in rule.path and level < 1:
        return 404  # a run the caller may not read does not exist for them
    return 401


# -- the walk --------------------------------------------------------------------------------------

OWNED = [r for r in table.ROUTES if r.access not in (table.ANYONE, table.LISTED)]


@pytest.mark.parametrize("rule", OWNED, ids=lambda r: f"{'/'.join(r.methods)} {r.path}")
def test_owned_routes_follow_the_table(server: MServer, rule: table.Rule) -> None:
    prober = PROBES[rule.path]
    failures = []
    for kind in KINDS:
        p = prober(server, kind)
        got = send(server, p).status_code
        want = expected_anonymous(rule, kind, p.ok)
        if got != want:
            failures.append(f"anonymous on {kind}: {p.method} {p.url} → {got}, expected {want}")
        p = prober(server, kind)
        if (got := send(server, p, WRONG).status_code) != 401:
            failures.append(f"wrong key on {kind}: {p.method} {p.url} → {got}, expected 401")
        p = prober(server, kind)
        if (got := send(server, p, ADMIN).status_code) != p.ok:
            failures.append(f"admin on {kind}: {p.method} {p.url} → {got}, expected {p.ok}")
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
    assert send(server, p).status_code == p.ok
    assert send(server, p, ADMIN).status_code == p.ok
    assert send(server, p, WRONG).status_code == 401  # a wrong key is refused, never downgraded


def _listed(s: MServer, path: str, headers: dict | None) -> Any:
    r = s.get(path, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def test_lists_show_only_what_the_caller_may_see(server: MServer) -> None:
    s = server
    for kind in KINDS:
        admin_run(s, kind)
        m_add(s, kind, {"listed": kind})
    readable, viewable = {"pub", "wri"}, {"view", "pub", "wri"}
    # workflows and agents: View
    assert {w["id"] for w in _listed(s, "/flow/workflows", None)} == {wid(k) for k in viewable}
    assert {w["id"] for w in _listed(s, "/flow/workflows", ADMIN)} == {wid(k) for k in KINDS}
    assert {a["ID"] for a in _listed(s, "/flow/agents", None)} == {f"echo-{k}" for k in viewable}
    assert {a["ID"] for a in _listed(s, "/flow/agents", ADMIN)} == {f"echo-{k}" for k in KINDS}
    # openapi: callable functions only (Read, not Secret)
    paths = [p for p in _listed(s, "/openapi.json", None)["paths"] if p.startswith("/flow/query/")]
    assert {p.split("/")[3] for p in paths} == {wid(k) for k in readable}
    assert not any(p.endswith("/Secret") for p in paths)
    assert any(p.endswith("/Secret") for p in _listed(s, "/openapi.json", ADMIN)["paths"])
    # runs and topics: Read; the filter is applied before `limit`
    assert {r["workflow"] for r in _listed(s, "/flows/runs?limit=1000", None)} == {wid(k) for k in readable}
    assert {r["workflow"] for r in _listed(s, "/flows/runs?limit=1000", ADMIN)} == {wid(k) for k in KINDS}
    anon_first = _listed(s, "/flows/runs?limit=1", None)
    assert len(anon_first) == 1 and anon_first[0]["workflow"] in {wid(k) for k in readable}
    topics = {t["Topic"] for t in _listed(s, "/m/topics", None)}
    assert topics == {topic(k) for k in readable}
    assert {topic(k) for k in KINDS} <= {t["Topic"] for t in _listed(s, "/m/topics", ADMIN)}
    for path in ("/flow/workflows", "/flow/agents", "/openapi.json", "/flows/runs", "/m/topics"):
        assert s.get(path, headers=WRONG).status_code == 401


def test_the_all_runs_event_stream_shows_only_readable_runs(server: MServer) -> None:
    s = server
    seen: list[dict] = []
    with httpx.stream("GET", f"{s.base}/flows/events", timeout=30) as r:
        assert r.status_code == 200
        private = admin_run(s, "priv", wait=False)
        public = admin_run(s, "pub", wait=False)
        for line in r.iter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line[6:]))
                if seen[-1].get("run_id") == public and seen[-1].get("type") == "run" and \
                        seen[-1].get("state") == "finished":
                    break
    ids = {e.get("run_id") for e in seen}
    assert public in ids and private not in ids


def test_live_subscriptions_need_read_on_the_topics_owner(server: MServer) -> None:
    s = server
    live = Live(s.ws_url(key=None))
    try:
        live.subscribe(topic("pub"))  # Read: allowed
        live.send({"Type": 1, "Content": topic("priv")})
        live.send({"Type": 1, "Content": topic("view")})
        live.send({"Type": 14, "Content": {"TopicID": topic("pub"), "Type": 1, "Value": {"live": 1}}})
        live.send({"Type": 15, "Content": "sync"})
        errors = []
        while (msg := live.recv())["Type"] != 15:
            if msg["Type"] == 0:
                errors.append(msg["Content"])
        assert [e["Request"] for e in errors] == [1, 1, 14], errors
        assert all("API key" in e["Error"] for e in errors)
        m_add(s, "priv", {"private": 1})
        m_add(s, "pub", {"public": 1})
        got = live.changes(1)
        assert got[0]["TopicID"] == topic("pub") and got[0]["Value"] == {"public": 1}
    finally:
        live.close()
    from websockets.exceptions import InvalidHandshake

    with pytest.raises(InvalidHandshake):  # a wrong key: the handshake is refused, never downgraded
        Live(s.ws_url(key="not-the-key")).close()


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
    assert {p for p, _ in routes} >= {r.path for r in table.ROUTES} - {"/docs/static"}
    covered = set(PROBES) | set(ANYONE_PROBES) | {r.path for r in table.ROUTES if r.access == table.LISTED}
    assert {r.path for r in table.ROUTES} <= covered  # the walk calls every row


def test_the_doc_shows_the_table() -> None:
    doc = (REPO / "docs" / "security.md").read_text(encoding="utf-8")
    assert table.splice(doc) == doc, "run: python -m coflows.server.authz_table docs/security.md"


# -- callers with a key but without the level: 403 (users come later; the runtime's hook serves) ---

def test_keyed_callers_without_the_level_get_403_and_submitters_own_their_runs(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from coflows.config import load_config
    from coflows.permissions import Principal
    from coflows.runtime import Runtime
    from coflows.server.app import create_app

    ws = make_workspaces(tmp_path)
    runtime = Runtime(load_config(ws.config_path))
    runtime.load()
    users = {"alice-key": Principal("alice", groups={wid("priv"): 1}),  # Read on Priv
             "bob-key": Principal("bob")}  # no grant beyond Public
    runtime.lookup_principal = users.get
    alice, bob = {"x-api-key": "alice-key"}, {"x-api-key": "bob-key"}
    with TestClient(create_app(runtime)) as c:
        def run(spec: str, headers: dict) -> str:
            r = c.post(f"/flows/{wid('priv')}/runs", json={"spec": spec}, headers=headers)
            assert r.status_code == 201, r.text
            run_id = r.json()["run_id"]
            deadline = time.monotonic() + 30
            while c.get(f"/flows/runs/{run_id}", headers=ADMIN).json()["state"] not in ("finished", "failed"):
                assert time.monotonic() < deadline
                time.sleep(0.05)
            return run_id

        assert c.get(f"/flow/openapi/{wid('priv')}/Data.py", headers=bob).status_code == 403
        assert c.get(f"/flow/openapi/{wid('priv')}/Data.py", headers=alice).status_code == 200
        # M: Read, not Write
        assert c.post(f"/m/add?type={topic('priv')}", json={"a": 1}, headers=ADMIN).status_code == 200
        assert c.get(f"/m/data?type={topic('priv')}", headers=alice).json() == [{"a": 1}]
        r = c.get(f"/m/data?type={topic('priv')}", headers=bob)
        assert r.status_code == 403 and "Read on workflow 'Priv'" in r.json()["error"]["message"]
        assert c.post(f"/m/add?type={topic('priv')}", json={"b": 1}, headers=alice).status_code == 403
        # agents: Read for runs, Write to start
        assert c.get("/flow/agent/echo-priv/runs", headers=alice).status_code == 200
        assert c.get("/flow/agent/echo-priv/runs", headers=bob).status_code == 403
        assert c.post("/flow/agent/echo-priv/start", headers=alice).status_code == 403
        assert c.post("/flow/agent/echo-priv", json={}, headers=alice).status_code == 403
        # runs: the admin's are readable, not changeable; her own are hers to cancel and rerun
        admins = run("Data.py/boom", ADMIN)
        assert c.get(f"/flows/runs/{admins}", headers=alice).status_code == 200
        assert c.get(f"/flows/runs/{admins}", headers=bob).status_code == 404
        r = c.post(f"/flows/runs/{admins}/rerun", headers=alice)
        assert r.status_code == 403 and "Write" in r.json()["error"]["message"]
        assert c.post(f"/flows/runs/{admins}/cancel", headers=alice).status_code == 403
        hers = run("Data.py/boom", alice)
        assert c.get(f"/flows/runs/{hers}", headers=ADMIN).json()["submitted_by"] == "alice"
        assert c.post(f"/flows/runs/{hers}/rerun", headers=alice).status_code == 200
        assert c.post(f"/flows/runs/{hers}/cancel", headers=alice).status_code == 200
        assert c.post(f"/flows/runs/{hers}/cancel", headers=bob).status_code == 404
        r = c.post(f"/flows/{wid('priv')}/runs", json={"spec": "Data.py/Secret"}, headers=alice)
        assert r.status_code == 403 and "Data.py/Secret" in r.json()["error"]["message"]
        assert c.post(f"/flows/{wid('priv')}/runs", json={"spec": "Data.py/fetch"}, headers=bob).status_code == 403
        # lists
        assert {w["id"] for w in c.get("/flow/workflows", headers=bob).json()} == {wid(k) for k in
                                                                                   ("view", "pub", "wri")}
        assert wid("priv") in {r["workflow"] for r in c.get("/flows/runs", headers=alice).json()}
        assert wid("priv") not in {r["workflow"] for r in c.get("/flows/runs", headers=bob).json()}


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
