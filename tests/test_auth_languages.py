"""Code in every language asks who is calling, and the identity follows the call.

One real server (real Mono, JVM and V8) serves a workspace with the same query in Python, C#,
Java and JavaScript: `Who()` answers the caller's identity and levels (`coflows.user()`,
`Coflows.User.Current`, `coflows.User.current()`, `await coflows.user()` and each language's
`permission`), `Via(path)` calls the next query of `path` and ends with `Who()`. Users, groups,
grants and API keys are made in the server's database before it starts. Agents in the four
languages record who wrote the M entry that triggered their Add hook; flow tasks report their
run's submitter.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import ADMIN_KEY, Server, Workspace, new_workspace

WID = "11111111-2222-3333-4444-555555555555"
QUERY = {"python": "WhoPy.py", "csharp": "WhoCs.cs", "java": "WhoJava.java", "javascript": "WhoJs.js"}
LANGS = list(QUERY)
ALICE, BOB, CAROL = "alice@example.com", "bob@example.com", "carol@example.com"

WHO_PY = f'''
import coflows

WID = "{WID}"


def Who():
    u = coflows.user()
    try:
        u.groups["x"] = 2  # read-only
        read_only = False
    except TypeError:
        read_only = True
    return {{"lang": "python", "id": u.id, "email": u.email, "name": u.name, "admin": u.admin,
            "anonymous": u.anonymous, "groups": dict(u.groups), "level": coflows.permission(WID),
            "wid": coflows.permission("$WID$"), "group": coflows.permission("Analysts"),
            "public": coflows.permission("Public"), "read_only": read_only}}


def Via(path: list):
    if not path:
        return Who()
    return coflows.call(f"{{path[0]}}/Via", path[1:])


def Place(item: str) -> str:
    """An M write from user code: the agents watching 'orders' run as the caller."""
    return coflows.m("orders").add({{"item": item, "by": "code"}})
'''

WHO_CS = f'''
using System;
using System.Collections.Generic;

public class WhoCs
{{
    const string WID = "{WID}";

    public static Dictionary<string, object> Who()
    {{
        var u = Coflows.User.Current;
        return new Dictionary<string, object> {{
            {{ "lang", "csharp" }}, {{ "id", u.Id }}, {{ "email", u.Email }}, {{ "name", u.Name }},
            {{ "admin", u.IsAdmin }}, {{ "anonymous", u.IsAnonymous }}, {{ "groups", u.Groups }},
            {{ "level", Coflows.User.Permission(WID) }}, {{ "wid", Coflows.User.Permission("$WID$") }},
            {{ "group", Coflows.User.Permission("Analysts") }}, {{ "public", Coflows.User.Permission("Public") }} }};
    }}

    public static object Via(List<object> path)
    {{
        if (path.Count == 0)
            return Who();
        return Coflows.Host.Call((string)path[0], "Via", path.GetRange(1, path.Count - 1));
    }}
}}
'''

WHO_JAVA = f'''
import java.util.*;

public class WhoJava {{
    static final String WID = "{WID}";

    public static Map<String, Object> Who() {{
        coflows.User u = coflows.User.current();
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("lang", "java");
        m.put("id", u.getId());
        m.put("email", u.getEmail());
        m.put("name", u.getName());
        m.put("admin", u.isAdmin());
        m.put("anonymous", u.isAnonymous());
        m.put("groups", u.getGroups());
        m.put("level", coflows.User.permission(WID));
        m.put("wid", coflows.User.permission("$WID$"));
        m.put("group", coflows.User.permission("Analysts"));
        m.put("public", coflows.User.permission("Public"));
        return m;
    }}

    public static Object Via(List<Object> path) {{
        if (path.isEmpty()) return Who();
        return coflows.Host.call((String) path.get(0), "Via", new ArrayList<>(path.subList(1, path.size())));
    }}
}}
'''

WHO_JS = f'''
const WID = "{WID}"

async function Who() {{
  const u = await coflows.user()
  return {{lang: "javascript", id: u.id, email: u.email, name: u.name, admin: u.admin, anonymous: u.anonymous,
          groups: u.groups, level: await coflows.permission(WID), wid: await coflows.permission("$WID$"),
          group: await coflows.permission("Analysts"), public: await coflows.permission("Public"),
          read_only: Object.isFrozen(u) && Object.isFrozen(u.groups)}}
}}

async function Via(path) {{
  if (path.length === 0) return await Who()
  return await coflows.call(path[0], "Via", path.slice(1))
}}
'''

# Agents watching 'orders': each records (language, entry, who wrote it) in 'seen'.
SEEN_PY = '''
import coflows

AGENT = {"ID": "seen-py", "Name": "SeenPy", "MID": "orders"}


def Add(entry_id, value):
    coflows.m("seen").add({"lang": "python", "entry": entry_id, "by": coflows.user().id})
'''

SEEN_CS = '''
using System.Collections.Generic;
using Coflows;

public class SeenCs
{
    public static void Add(string id, object data)
    {
        M.Base("seen").Add(new Dictionary<string, object> { { "lang", "csharp" }, { "entry", id },
                                                            { "by", User.Current.Id } });
    }

    public static FPKG pkg()
    {
        return new FPKG { ID = "seen-cs", Name = "SeenCs", MID = "orders", Add = Add };
    }
}
'''

SEEN_JAVA = '''
import coflows.*;
import java.util.*;

public class SeenJava {
    public static void Add(String id, Object data) {
        M.Base("seen").add(Map.of("lang", "java", "entry", id, "by", User.current().getId()));
    }

    public static FPKG pkg() {
        return new FPKG("seen-java", "$WID$", "SeenJava", "records the writer", "orders",
            null, SeenJava::Add, null, null, null, null, null);
    }
}
'''

SEEN_JS = '''
async function Add(id, data) {
  const u = await coflows.user()
  await M.Base("seen").Add({lang: "javascript", entry: id, by: u.id})
}

function pkg() {
  return {ID: "seen-js", Name: "SeenJs", MID: "orders", Add: Add}
}
'''


def _make_users(ws: Workspace) -> dict[str, str]:
    """Users, groups, grants and API keys in the server's database (before it starts)."""
    from coflows.auth.store import UserStore
    from coflows.store import Database, database_url

    db = Database(database_url("sqlite", ws.config["Database"]["Connection"], ws.root))
    try:
        store = UserStore(db)
        store.add_user(ALICE, name="Alice Analyst")
        store.add_user(BOB, name="Bob Builder")
        store.add_user(CAROL, name="Carol Admin", admin=True)
        store.add_group("Analysts", name="Analysts")
        store.grant(WID, ALICE, "write")  # the workflow's ID is a group
        store.grant("Analysts", ALICE, "read")
        return {who: store.new_key(who, "test")[1] for who in (ALICE, BOB, CAROL)}
    finally:
        db.dispose()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str], Workspace]]:
    ws = new_workspace(tmp_path_factory.mktemp("authlang") / "ws", public=1, Auth={"CacheSeconds": 0})
    ws.add_query("WhoPy.py", WHO_PY)
    ws.add_query("WhoCs.cs", WHO_CS)
    ws.add_query("WhoJava.java", WHO_JAVA)
    ws.add_query("WhoJs.js", WHO_JS)
    ws.add_agent("SeenPy.py", SEEN_PY)
    ws.add_agent("SeenCs.cs", SEEN_CS)
    ws.add_agent("SeenJava.java", SEEN_JAVA)
    ws.add_agent("SeenJs.js", SEEN_JS)
    keys = _make_users(ws)
    keys["admin"] = ADMIN_KEY
    server = Server(ws).start()
    try:
        yield server, keys, ws
    finally:
        server.close()


def _key(keys: dict[str, str], who: str | None) -> dict[str, str]:
    return {} if who is None else {"x-api-key": keys[who]}


def who(server: Server, keys: dict[str, str], lang: str, caller: str | None) -> dict[str, Any]:
    r = server.post(f"/flow/query/{WID}/{QUERY[lang]}/Who", json=[], headers=_key(keys, caller))
    assert r.status_code == 200, (lang, caller, r.text, server.output()[-3000:])
    return r.json()


# (caller, id, email, name, admin, anonymous, level on the workflow, level in Analysts)
CASES = [
    (ALICE, ALICE, ALICE, "Alice Analyst", False, False, 2, 1),
    (BOB, BOB, BOB, "Bob Builder", False, False, 1, -2),  # Read through Public, no Analysts membership
    (CAROL, CAROL, CAROL, "Carol Admin", True, False, 2, 2),  # a user admin: Write everywhere
    ("admin", "root", None, "admin", True, False, 2, 2),  # the server's admin key
    (None, "anonymous", None, "", False, True, 1, -2),  # no key: anonymous, Read through Public
]


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("case", CASES, ids=[str(c[0]) for c in CASES])
def test_each_language_sees_the_caller(env, lang: str, case: tuple) -> None:
    server, keys, _ = env
    caller, uid, email, name, admin, anonymous, level, group = case
    got = who(server, keys, lang, caller)
    assert got["lang"] == lang
    assert got["id"] == uid and got["email"] == email and got["name"] == name
    assert got["admin"] is admin and got["anonymous"] is anonymous
    assert got["level"] == level and got["wid"] == level  # the workflow's ID and "$WID$" agree
    assert got["group"] == group
    assert got["public"] == (2 if admin else 1)
    if caller == ALICE:
        assert got["groups"] == {WID: 2, "Analysts": 1}
    elif not admin:
        assert got["groups"] == {}
    if lang in ("python", "javascript"):
        assert got["read_only"] is True


def test_grant_changes_are_seen_by_code(env) -> None:
    """With Auth.CacheSeconds 0, a new grant shows in the next call's permission()."""
    server, keys, ws = env
    from coflows.auth.store import UserStore
    from coflows.store import Database, database_url

    db = Database(database_url("sqlite", ws.config["Database"]["Connection"], ws.root))
    store = UserStore(db)
    try:
        store.grant("Analysts", BOB, "write")
        store.grant(WID, BOB, "write")
        for lang in LANGS:
            got = who(server, keys, lang, BOB)
            assert (got["group"], got["level"], got["groups"]) == (2, 2, {"Analysts": 2, WID: 2}), (lang, got)
        store.grant(WID, BOB, "denied")  # denied wins over Public's Read: Bob can no longer call at all
        r = server.post(f"/flow/query/{WID}/WhoPy.py/Who", json=[], headers=_key(keys, BOB))
        assert r.status_code in (401, 403)
    finally:
        store.revoke("Analysts", BOB)
        store.revoke(WID, BOB)
        db.dispose()
    assert who(server, keys, "csharp", BOB)["group"] == -2


CHAINS = [
    ["javascript", "csharp", "java", "python"],
    ["python", "java", "javascript", "csharp"],
    ["csharp", "python", "javascript", "java"],
    ["java", "csharp", "python", "javascript"],
]


@pytest.mark.parametrize("chain", CHAINS, ids=["->".join(c) for c in CHAINS])
@pytest.mark.parametrize("caller", [ALICE, BOB, None])
def test_identity_follows_cross_language_calls(env, chain: list[str], caller: str | None) -> None:
    server, keys, _ = env
    path = [QUERY[lang] for lang in chain[1:]]
    r = server.post(f"/flow/query/{WID}/{QUERY[chain[0]]}/Via", json=[path], headers=_key(keys, caller))
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["lang"] == chain[-1]
    assert got["id"] == (caller or "anonymous")
    assert got["level"] == (2 if caller == ALICE else 1)
    assert got["group"] == (1 if caller == ALICE else -2)


def _seen(server: Server, entry: str, n: int = 4, timeout: float = 30) -> dict[str, str]:
    """{language: who} of the agents' records of `entry`, once all `n` agents recorded it."""
    deadline = time.monotonic() + timeout
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        r = server.get("/m/data?type=seen", headers=server.admin())
        assert r.status_code == 200, r.text
        rows = [x for x in r.json() if x["entry"] == entry]
        if len(rows) >= n:
            break
        time.sleep(0.1)
    return {x["lang"]: x["by"] for x in rows}


def test_agents_all_running(env) -> None:
    server, _, _ = env
    agents = {a["ID"]: a for a in server.get("/flow/agents", headers=server.admin()).json()}
    for aid in ("seen-py", "seen-cs", "seen-java", "seen-js"):
        assert agents[aid]["State"] == "running", (aid, agents[aid].get("Error"))


@pytest.mark.parametrize("writer,expected", [(ALICE, ALICE), ("admin", "root")])
def test_agents_run_as_the_http_writer(env, writer: str, expected: str) -> None:
    server, keys, _ = env
    r = server.post("/m/add?type=orders", json={"item": f"tea for {writer}"}, headers=_key(keys, writer))
    assert r.status_code == 200, r.text
    entry = r.json()["ID"]
    assert _seen(server, entry) == {lang: expected for lang in LANGS}


def test_agents_run_as_the_live_websocket_writer(env) -> None:
    """An M add sent over /live (the user's key in `_cokey`) triggers the agents as that user."""
    from test_m_harness import Live

    server, keys, _ = env
    live = Live(f"ws://127.0.0.1:{server.port}/live?_cokey={keys[ALICE]}")
    try:
        live.subscribe("orders")
        live.send({"Type": 14, "Content": {"TopicID": "orders", "Type": 1, "Value": {"item": "over the socket"}}})
        entry = live.changes(1)[0]["ID"]
    finally:
        live.close()
    assert _seen(server, entry) == {lang: ALICE for lang in LANGS}


def test_m_write_needs_write_so_a_reader_cannot_trigger_agents(env) -> None:
    server, keys, _ = env
    r = server.post("/m/add?type=orders", json={"item": "not bob's"}, headers=_key(keys, BOB))
    assert r.status_code == 403


def test_agents_run_as_the_caller_of_code_that_wrote(env) -> None:
    """Bob (Read) calls a Python function that writes 'orders': the agents run as Bob."""
    server, keys, _ = env
    r = server.post(f"/flow/query/{WID}/WhoPy.py/Place", json=["ink"], headers=_key(keys, BOB))
    assert r.status_code == 200, r.text
    assert _seen(server, r.json()) == {lang: BOB for lang in LANGS}


def _run(server: Server, keys: dict[str, str], caller: str, spec: str) -> dict[str, Any]:
    r = server.post(f"/flows/{WID}/runs", json={"spec": spec}, headers=_key(keys, caller))
    assert r.status_code == 201, r.text
    url = r.json()["url"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run = server.get(url, headers=_key(keys, caller)).json()
        if run["state"] in ("finished", "failed", "cancelled"):
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {url} did not end: {run}")


@pytest.mark.parametrize("lang", LANGS)
def test_flow_tasks_run_as_the_submitter(env, lang: str) -> None:
    server, keys, _ = env
    run = _run(server, keys, ALICE, f"{QUERY[lang]}/Who")
    assert run["state"] == "finished", run
    assert run["submitted_by"] == ALICE
    out = run["tasks"][0]["output"]
    assert (out["lang"], out["id"], out["level"], out["group"]) == (lang, ALICE, 2, 1)


def test_outside_a_call_the_caller_is_anonymous() -> None:
    import coflows

    u = coflows.user()
    assert (u.id, u.email, u.admin, u.anonymous, dict(u.groups)) == ("anonymous", None, False, True, {})
    assert coflows.permission("Public") == 1
    assert coflows.permission("Analysts") == -2
    assert coflows.permission("$WID$") == -2
    with pytest.raises(Exception, match="group_id"):
        coflows.permission("")  # type: ignore[arg-type]


def test_code_context_principals() -> None:
    """`coflows.user()` reads the thread's call; admin → Write in any group; it is restored after."""
    import coflows
    from coflows.context import CallContext, call_context
    from coflows.permissions import ADMIN, Principal

    p = Principal("dora@example.com", groups={"Ops": 0, "Analysts": -1}, name="Dora")
    with call_context(CallContext("", "q", "f", p)):
        u = coflows.user()
        assert (u.id, u.email, u.name, u.groups["Ops"]) == ("dora@example.com", "dora@example.com", "Dora", 0)
        assert coflows.permission("Ops") == 0 and coflows.permission("Analysts") == -1
        with call_context(CallContext("", "q", "g", ADMIN)):
            assert coflows.user().id == "root" and coflows.permission("Anything") == 2
        assert coflows.user().id == "dora@example.com"
    assert coflows.user().anonymous


def test_m_change_records_its_author(tmp_path: Path) -> None:
    """The M store stamps each change with the writing call's principal id (None outside a call)."""
    from coflows.context import CallContext, call_context
    from coflows.m.store import REMOVE, Change, MStore
    from coflows.permissions import Principal
    from coflows.store import Database

    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        store = MStore(db)
        got: list[tuple[str, str | None]] = []
        store.subscribe("t", lambda c: got.append((c.name, c.author)))
        with call_context(CallContext("", "q", "f", Principal("eve@example.com"))):
            eid, _ = store.add("t", {"a": 1})
            store.add_many("t", [{"b": 1}])
            store.exchange("t", eid, {"a": 2})
        store.remove("t", eid)
        assert got == [("add", "eve@example.com"), ("add", "eve@example.com"), ("exchange", "eve@example.com"),
                       ("remove", None)]
        # across processes (Postgres NOTIFY): the payload carries the author, the receiver keeps it
        payload = store._payloads([Change("t", "id1", REMOVE, '{"z":1}', 3, author="eve@example.com")])
        other = MStore(db)  # another origin, as a second process would be
        heard: list[tuple[str, str | None]] = []
        other.subscribe("t", lambda c: heard.append((c.id, c.author)))
        other.receive(payload[0])
        assert heard == [("id1", "eve@example.com")]
    finally:
        db.dispose()
