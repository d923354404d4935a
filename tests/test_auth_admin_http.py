"""The admin routes (`/auth/users…`, `/auth/groups…`, `/auth/admin/keys…`) and `POST /auth/password`
against a real server: who may call them, validation (400 naming the field, 404, 409), no-store, no
secret in any answer but a new key's, and changes holding at once although the server caches
identities for 30 s (`Auth.CacheSeconds`).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conftest import ADMIN_KEY, new_workspace, server_starter
from test_m_harness import MServer

from coflows.auth.store import UserStore
from coflows.store import Database

WID = "aaaa1111-2222-3333-4444-555555555555"
PASSWORD = "correct horse battery staple"
ADMIN = {"x-api-key": ADMIN_KEY}
_addresses = itertools.count(1)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MServer, UserStore]]:
    ws = new_workspace(tmp_path_factory.mktemp("admin") / "ws", wid=WID, name="Books", public=None,
                       Auth={"CacheSeconds": 30, "MaxFailedLogins": 3})
    ws.add_query("Hello.py", "def hello():\n    return 'hi'\n")
    db = Database(f"sqlite:///{ws.root / 'mnt' / 'database.db'}")
    store = UserStore(db)
    store.add_user("root@example.com", "Root", password=PASSWORD, admin=True)
    store.add_user("joe@example.com", "Joe", password=PASSWORD)
    starter = server_starter(MServer)
    start = next(starter)
    try:
        yield start(ws), store
    finally:
        starter.close()
        db.dispose()


def call(s: MServer, method: str, path: str, **kw: Any) -> httpx.Response:
    headers = {"x-forwarded-for": f"198.51.100.{next(_addresses) % 250 + 1}", **kw.pop("headers", {})}
    return httpx.request(method, s.base + path, timeout=60, headers=headers, **kw)


def session(s: MServer, email: str, password: str = PASSWORD) -> dict[str, str]:
    """Headers of a login session (cookie + CSRF token)."""
    r = call(s, "POST", "/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return {"cookie": f"coflows_session={r.cookies['coflows_session']}", "x-csrf-token": r.json()["csrf"]}


def key_of(store: UserStore, email: str) -> dict[str, str]:
    return {"x-api-key": store.new_key(email, "test")[1]}


def err(r: httpx.Response, status: int, parameter: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["cache-control"] == "no-store"
    e = r.json()["error"]
    if parameter is not None:
        assert e.get("parameter") == parameter or e["message"].startswith(parameter + ":"), e
    return e


def test_only_admins_may_call_the_admin_routes(env) -> None:
    s, store = env
    joe_session, joe_key = session(s, "joe@example.com"), key_of(store, "joe@example.com")
    root_session = session(s, "root@example.com")
    body = {"email": "x1@example.com"}
    assert call(s, "POST", "/auth/users", json=body).status_code == 401
    for h in (joe_session, joe_key):
        err(call(s, "POST", "/auth/users", json=body, headers=h), 403)
        err(call(s, "GET", "/auth/users", headers=h), 403)
        err(call(s, "GET", "/auth/groups", headers=h), 403)
    assert call(s, "POST", "/auth/users", json=body, headers={"x-api-key": "nope"}).status_code == 401
    # an admin's session needs its CSRF token like every unsafe request
    no_csrf = {"cookie": root_session["cookie"]}
    assert call(s, "POST", "/auth/users", json=body, headers=no_csrf).status_code == 403
    r = call(s, "POST", "/auth/users", json=body, headers=root_session)
    assert r.status_code == 201 and r.headers["cache-control"] == "no-store", r.text
    r = call(s, "POST", "/auth/users", json={"email": "x2@example.com"}, headers=key_of(store, "root@example.com"))
    assert r.status_code == 201, r.text  # an admin user's key administers too


def test_users_add_list_password_admin_remove(env) -> None:
    s, store = env
    r = call(s, "POST", "/auth/users", headers=ADMIN,
             json={"email": " Mia@Example.com ", "name": "Mia", "password": "mia password", "admin": False})
    assert r.status_code == 201, r.text
    mia = r.json()
    assert mia["email"] == "mia@example.com" and mia["password"] is True and mia["admin"] is False
    assert "mia password" not in r.text and "argon2" not in r.text
    err(call(s, "POST", "/auth/users", headers=ADMIN, json={"email": "MIA@example.com"}), 409)
    err(call(s, "POST", "/auth/users", headers=ADMIN, json={"email": "not an email"}), 400, "email")
    err(call(s, "POST", "/auth/users", headers=ADMIN, json={"name": "x"}), 400, "email")
    err(call(s, "POST", "/auth/users", headers=ADMIN, json={"email": "a@b.c", "password": "short"}), 400, "password")
    err(call(s, "POST", "/auth/users", headers=ADMIN, json={"email": "a@b.c", "name": "a\nb"}), 400, "name")
    err(call(s, "POST", "/auth/users", headers=ADMIN, json={"email": "a@b.c", "admin": "yes"}), 400, "admin")
    err(call(s, "POST", "/auth/users", headers=ADMIN, json={"email": "a@b.c", "role": "x"}), 400, "role")
    err(call(s, "POST", "/auth/users", headers=ADMIN, content=b"{nope"), 400, "body")
    err(call(s, "POST", "/auth/users", headers=ADMIN, json=["a@b.c"]), 400, "body")

    listed = call(s, "GET", "/auth/users", headers=ADMIN)
    assert listed.status_code == 200 and listed.headers["cache-control"] == "no-store"
    by_id = {u["id"]: u for u in listed.json()}
    assert by_id["mia@example.com"]["groups"] == [] and by_id["root@example.com"]["admin"] is True
    assert "cfk_" not in listed.text and "argon2" not in listed.text
    assert len(call(s, "GET", "/auth/users?limit=1", headers=ADMIN).json()) == 1
    err(call(s, "GET", "/auth/users?limit=0", headers=ADMIN), 400, "limit")
    err(call(s, "GET", "/auth/users?limit=1001", headers=ADMIN), 400, "limit")
    err(call(s, "GET", "/auth/users?offset=x", headers=ADMIN), 400, "offset")

    # a new password ends Mia's sessions and lifts a lock
    mia_session = session(s, "mia@example.com", "mia password")
    for _ in range(3):  # Auth.MaxFailedLogins of this server
        call(s, "POST", "/auth/login", json={"email": "mia@example.com", "password": "wrong password"})
    assert call(s, "POST", "/auth/login", json={"email": "mia@example.com", "password": "mia password"}).status_code == 423
    assert call(s, "GET", "/users", headers=ADMIN).status_code == 404  # (no such route: a sanity check of call)
    locked = {u["id"]: u for u in call(s, "GET", "/auth/users", headers=ADMIN).json()}["mia@example.com"]
    assert locked["locked_until"]
    err(call(s, "POST", "/auth/users/mia@example.com/password", headers=ADMIN, json={"password": "short"}), 400,
        "password")
    err(call(s, "POST", "/auth/users/nobody@example.com/password", headers=ADMIN, json={"password": "long enough"}),
        404)
    r = call(s, "POST", "/auth/users/mia@example.com/password", headers=ADMIN, json={"password": "mia new password"})
    assert r.status_code == 200 and r.json()["locked_until"] is None and "mia new password" not in r.text
    assert call(s, "GET", "/auth/me", headers=mia_session).status_code == 401  # her session ended at once
    session(s, "mia@example.com", "mia new password")

    # admin flag: takes effect at once (the server caches identities for 30 s)
    mia_key = key_of(store, "mia@example.com")
    assert call(s, "GET", "/auth/users", headers=mia_key).status_code == 403
    r = call(s, "POST", "/auth/users/mia@example.com/admin", headers=ADMIN, json={"admin": True})
    assert r.status_code == 200 and r.json()["admin"] is True
    assert call(s, "GET", "/auth/users", headers=mia_key).status_code == 200
    err(call(s, "POST", "/auth/users/mia@example.com/admin", headers=ADMIN, json={}), 400, "admin")
    err(call(s, "POST", "/auth/users/mia@example.com/admin", headers=mia_key, json={"admin": False}), 409)  # herself
    err(call(s, "POST", "/auth/users/mia@example.com/remove", headers=mia_key), 409)  # herself
    err(call(s, "POST", "/auth/users/nobody@example.com/admin", headers=ADMIN, json={"admin": True}), 404)

    r = call(s, "POST", "/auth/users/mia@example.com/remove", headers=ADMIN)
    assert r.status_code == 200 and r.json() == {"removed": "mia@example.com"}
    assert call(s, "GET", "/auth/me", headers=mia_key).status_code == 401  # her keys went with her, at once
    err(call(s, "POST", "/auth/users/mia@example.com/remove", headers=ADMIN), 404)
    err(call(s, "POST", "/auth/users/not-an-email/remove", headers=ADMIN), 400, "email")


def test_groups_grant_revoke_take_effect_at_once(env) -> None:
    s, store = env
    store.add_user("gus@example.com", "Gus")
    gus = key_of(store, "gus@example.com")
    assert call(s, "GET", f"/flow/query/{WID}/Hello.py/hello", headers=gus).status_code == 403

    r = call(s, "POST", "/auth/groups", headers=ADMIN, json={"id": "Analysts", "name": "The analysts"})
    assert r.status_code == 201 and r.json()["name"] == "The analysts"
    err(call(s, "POST", "/auth/groups", headers=ADMIN, json={"id": "Analysts"}), 409)
    err(call(s, "POST", "/auth/groups", headers=ADMIN, json={"id": "/bad"}), 400, "id")
    err(call(s, "POST", "/auth/groups", headers=ADMIN, json={"name": "x"}), 400, "id")
    groups = {g["id"]: g for g in call(s, "GET", "/auth/groups", headers=ADMIN).json()}
    assert groups[WID]["workflow"] == "Books" and groups["Analysts"]["workflow"] is None  # the workflow is a group

    soon = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 86400))
    grant = f"/auth/groups/{WID}/grant"
    r = call(s, "POST", grant, headers=ADMIN, json={"user": "Gus@example.com", "level": "read", "expires": soon})
    assert r.status_code == 200 and r.json()["level"] == "read" and r.json()["expires"].startswith(soon[:10])
    assert call(s, "GET", f"/flow/query/{WID}/Hello.py/hello", headers=gus).json() == "hi"  # at once
    member = {g["id"]: g for g in call(s, "GET", "/auth/groups", headers=ADMIN).json()}[WID]["members"]
    assert member == [{"user": "gus@example.com", "level": "read", "expires": member[0]["expires"], "expired": False}]
    err(call(s, "POST", grant, headers=ADMIN, json={"user": "gus@example.com", "level": "owner"}), 400, "level")
    err(call(s, "POST", grant, headers=ADMIN, json={"user": "gus@example.com", "level": "read",
                                                     "expires": "2001-01-01"}), 400, "expires")
    err(call(s, "POST", grant, headers=ADMIN, json={"user": "gus@example.com", "level": "read",
                                                     "expires": "tomorrow"}), 400, "expires")
    err(call(s, "POST", grant, headers=ADMIN, json={"level": "read"}), 400, "user")
    err(call(s, "POST", grant, headers=ADMIN, json={"user": "nobody@example.com", "level": "read"}), 404)
    err(call(s, "POST", "/auth/groups/NoSuchGroup/grant", headers=ADMIN,
             json={"user": "gus@example.com", "level": "read"}), 404)
    r = call(s, "POST", "/auth/groups/Analysts/grant", headers=ADMIN, json={"user": "gus@example.com", "level": "view"})
    assert r.status_code == 200 and r.json()["expires"] is None
    users = {u["id"]: u for u in call(s, "GET", "/auth/users", headers=ADMIN).json()}
    assert {(g["group"], g["level"]) for g in users["gus@example.com"]["groups"]} == {(WID, "read"), ("Analysts", "view")}

    r = call(s, "POST", f"/auth/groups/{WID}/revoke", headers=ADMIN, json={"user": "gus@example.com"})
    assert r.status_code == 200
    assert call(s, "GET", f"/flow/query/{WID}/Hello.py/hello", headers=gus).status_code == 403  # at once
    err(call(s, "POST", f"/auth/groups/{WID}/revoke", headers=ADMIN, json={"user": "gus@example.com"}), 404)
    r = call(s, "POST", "/auth/groups/Analysts/remove", headers=ADMIN)
    assert r.status_code == 200
    assert "Analysts" not in {g["id"] for g in call(s, "GET", "/auth/groups", headers=ADMIN).json()}
    err(call(s, "POST", "/auth/groups/Analysts/remove", headers=ADMIN), 404)


def test_admins_mint_list_and_revoke_anyones_keys(env) -> None:
    s, store = env
    store.add_user("kim@example.com", "Kim")
    store.grant(WID, "kim@example.com", "read")
    r = call(s, "POST", "/auth/users/kim@example.com/keys", headers=ADMIN, json={"label": "laptop"})
    assert r.status_code == 201 and r.headers["cache-control"] == "no-store"
    minted = r.json()
    assert minted["key"].startswith("cfk_") and minted["user"] == "kim@example.com" and minted["label"] == "laptop"
    kim = {"x-api-key": minted["key"]}
    assert call(s, "GET", f"/flow/query/{WID}/Hello.py/hello", headers=kim).json() == "hi"
    listed = call(s, "GET", "/auth/users/kim@example.com/keys", headers=ADMIN)
    assert [k["id"] for k in listed.json()] == [minted["id"]] and "cfk_" not in listed.text
    err(call(s, "GET", "/auth/users/nobody@example.com/keys", headers=ADMIN), 404)
    err(call(s, "POST", "/auth/users/nobody@example.com/keys", headers=ADMIN), 404)
    err(call(s, "POST", "/auth/users/kim@example.com/keys", headers=ADMIN, json={"label": "x" * 201}), 400, "label")
    err(call(s, "POST", "/auth/users/kim@example.com/keys", headers=kim), 403)  # not an admin
    err(call(s, "POST", f"/auth/admin/keys/{minted['id']}/revoke", headers=kim), 403)
    r = call(s, "POST", f"/auth/admin/keys/{minted['id']}/revoke", headers=ADMIN)
    assert r.status_code == 200 and r.json()["revoked"] and "cfk_" not in r.text
    assert call(s, "GET", "/auth/me", headers=kim).status_code == 401  # at once
    assert call(s, "POST", f"/auth/admin/keys/{minted['id']}/revoke", headers=ADMIN).status_code == 200  # idempotent
    err(call(s, "POST", "/auth/admin/keys/ffffffffffff/revoke", headers=ADMIN), 404)


def test_a_user_changes_their_own_password(env) -> None:
    s, store = env
    store.add_user("pat@example.com", "Pat", password=PASSWORD)
    here, elsewhere = session(s, "pat@example.com"), session(s, "pat@example.com")
    url = "/auth/password"
    assert call(s, "POST", url, json={"current": PASSWORD, "new": "a new password"}).status_code == 401
    err(call(s, "POST", url, headers=key_of(store, "pat@example.com"),
             json={"current": PASSWORD, "new": "a new password"}), 403)  # a key may not
    err(call(s, "POST", url, headers=ADMIN, json={"current": PASSWORD, "new": "a new password"}), 403)
    no_csrf = call(s, "POST", url, headers={"cookie": here["cookie"]}, json={"current": PASSWORD, "new": "x" * 9})
    assert no_csrf.status_code == 403 and no_csrf.json()["error"]["type"] == "CsrfFailed"
    err(call(s, "POST", url, headers=here, json={"current": PASSWORD, "new": "short"}), 400, "new")
    err(call(s, "POST", url, headers=here, json={"new": "long enough"}), 400, "current")
    e = err(call(s, "POST", url, headers=here, json={"current": "not my password", "new": "long enough"}), 403)
    assert "current" in e["message"]
    r = call(s, "POST", url, headers=here, json={"current": PASSWORD, "new": "pat's new password"})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store", r.text
    assert "pat's new password" not in r.text
    assert call(s, "GET", "/auth/me", headers=here).status_code == 200  # this session stays
    assert call(s, "GET", "/auth/me", headers=elsewhere).status_code == 401  # the others end
    assert call(s, "POST", "/auth/login", json={"email": "pat@example.com", "password": PASSWORD}).status_code == 401
    session(s, "pat@example.com", "pat's new password")


def test_wrong_current_passwords_lock_the_account(env) -> None:
    """A stolen session cannot guess the password through /auth/password more freely than at the login."""
    s, store = env
    store.add_user("lou@example.com", "Lou", password=PASSWORD)
    h = session(s, "lou@example.com")
    codes = [call(s, "POST", "/auth/password", headers=h, json={"current": f"guess {n}!", "new": "long enough"})
             .status_code for n in range(4)]
    assert codes == [403, 403, 423, 423]  # Auth.MaxFailedLogins = 3
    assert call(s, "POST", "/auth/login", json={"email": "lou@example.com", "password": PASSWORD}).status_code == 423
