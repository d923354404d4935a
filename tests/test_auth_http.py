"""`/auth/*` against a real server: login, the session cookie and CSRF, logout, lockout, per-address
limit, users' API keys, websockets with the cookie, expired sessions.

Users are made in the workspace's SQLite database with `UserStore` (the server reads them from
there; `Auth.CacheSeconds` is 0 so changes show at once). Requests go through httpx without a
cookie jar: every cookie a test sends is explicit. Each test uses its own client address
(`X-Forwarded-For`, honoured by uvicorn from 127.0.0.1) so the per-address limit of one test
does not leak into another.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conftest import ADMIN_KEY, new_workspace, server_starter
from test_m_harness import MServer

from coflows.auth import schema
from coflows.auth.credentials import SESSION_PREFIX, digest, new_token
from coflows.auth.store import UserStore
from coflows.store import Database

WID = "11111111-2222-3333-4444-555555555555"
TOPIC = f"{WID}-orders"
PASSWORD = "correct horse battery staple"
PER_ADDRESS = 6  # Auth.AddressFailuresPerMinute of the test server
_addresses = itertools.count(1)


def address() -> dict[str, str]:
    """A fresh client address for one test (the server trusts X-Forwarded-For from 127.0.0.1)."""
    return {"x-forwarded-for": f"198.51.100.{next(_addresses)}"}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MServer, UserStore]]:
    ws = new_workspace(tmp_path_factory.mktemp("auth") / "ws", public=None,
                       Auth={"CacheSeconds": 0, "AddressFailuresPerMinute": PER_ADDRESS})
    ws.add_query("Hello.py", "def hello():\n    return 'hi'\n")
    db = Database(f"sqlite:///{ws.root / 'mnt' / 'database.db'}")
    store = UserStore(db)
    starter = server_starter(MServer)
    start = next(starter)
    try:
        yield start(ws), store
    finally:
        starter.close()
        db.dispose()


def user(store: UserStore, name: str, level: str | None = "write") -> str:
    email = f"{name}@example.com"
    store.add_user(email, name=name.capitalize() + " Test", password=PASSWORD)
    if level:
        store.grant(WID, email, level)
    return email


def call(s: MServer, method: str, path: str, **kw: Any) -> httpx.Response:
    """One request without a cookie jar (cookies only when the test sends them)."""
    return httpx.request(method, s.base + path, timeout=60, **kw)


def login(s: MServer, email: str, password: str = PASSWORD, headers: dict[str, str] | None = None) -> httpx.Response:
    return call(s, "POST", "/auth/login", json={"email": email, "password": password}, headers=headers or address())


def session_of(r: httpx.Response) -> tuple[dict[str, str], str]:
    """(Cookie header for the session, CSRF token) of a successful login."""
    assert r.status_code == 200, r.text
    return {"cookie": f"coflows_session={r.cookies['coflows_session']}"}, r.json()["csrf"]


def set_cookie(r: httpx.Response) -> dict[str, str | bool]:
    """The session cookie's attributes from Set-Cookie (names lower-cased)."""
    [line] = [h for h in r.headers.get_list("set-cookie") if h.startswith("coflows_session=")]
    first, *attrs = [p.strip() for p in line.split(";")]
    out: dict[str, str | bool] = {"value": first.partition("=")[2]}
    for a in attrs:
        k, eq, v = a.partition("=")
        out[k.lower()] = v if eq else True
    return out


# -- login, cookie, me ---------------------------------------------------------------------------

def test_login_sets_the_session_cookie_and_me_says_who(env) -> None:
    s, store = env
    email = user(store, "ann")
    store.grant("Old", email, "read", expires=time.time() - 60)  # expired: not shown
    store.grant("Team", email, "view", expires=time.time() + 86400)
    r = login(s, "  ANN@example.com ")  # emails are case- and space-insensitive
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["user"]["email"] == email and body["user"]["name"] == "Ann Test" and body["user"]["admin"] is False
    assert body["csrf"] and body["expires"].startswith("20")
    cookie = set_cookie(r)
    assert cookie["value"].startswith("cfs_")
    assert cookie["httponly"] is True and cookie["samesite"].lower() == "lax" and cookie["path"] == "/"
    assert "secure" not in cookie  # plain http: a Secure cookie would never come back
    assert 11 * 3600 < int(cookie["max-age"]) <= 12 * 3600  # Auth.SessionHours

    headers, csrf = session_of(r)
    me = call(s, "GET", "/auth/me", headers=headers)
    assert me.status_code == 200 and me.headers["cache-control"] == "no-store"
    me = me.json()
    assert me["id"] == email and me["via"] == "session" and me["csrf"] == csrf
    groups = {g["id"]: g for g in me["groups"]}
    assert set(groups) == {WID, "Team"}
    assert groups[WID] == {"id": WID, "level": "write", "expires": None}
    assert groups["Team"]["level"] == "view" and groups["Team"]["expires"]
    # the session really authorizes: GET needs no CSRF token
    assert call(s, "GET", f"/m/data?type={TOPIC}", headers=headers).status_code == 200
    assert call(s, "GET", f"/m/data?type={TOPIC}").status_code == 401


def test_the_cookie_is_secure_behind_a_tls_proxy(env) -> None:
    s, store = env
    email = user(store, "tls")
    r = login(s, email, headers={**address(), "x-forwarded-proto": "https"})
    assert r.status_code == 200, r.text
    assert set_cookie(r)["secure"] is True


def test_me_for_anonymous_the_admin_key_and_a_user_key(env) -> None:
    s, store = env
    r = call(s, "GET", "/auth/me")
    assert r.status_code == 401 and r.json()["error"]["type"] == "Unauthenticated"
    assert r.headers["cache-control"] == "no-store"
    admin = call(s, "GET", "/auth/me", headers={"x-api-key": ADMIN_KEY}).json()
    assert admin["id"] == "root" and admin["admin"] is True and admin["via"] == "admin-key" and "csrf" not in admin
    email = user(store, "keyme", level="read")
    _, key = store.new_key(email, "cli")
    me = call(s, "GET", "/auth/me", headers={"x-api-key": key}).json()
    assert me["id"] == email and me["via"] == "key" and "csrf" not in me
    assert me["groups"] == [{"id": WID, "level": "read", "expires": None}]


def test_login_input_errors_name_the_field_and_echo_nothing(env) -> None:
    s, _ = env
    h = address()
    r = call(s, "POST", "/auth/login", data={"email": "a@example.com", "password": "x"}, headers=h)
    assert r.status_code == 415 and "application/json" in r.json()["error"]["message"]
    r = call(s, "POST", "/auth/login", json={"email": "a@example.com"}, headers=h)
    assert r.status_code == 400 and r.json()["error"]["parameter"] == "password"
    r = call(s, "POST", "/auth/login", json={"email": "hunter2-not-an-email", "password": "x"}, headers=h)
    assert r.status_code == 400 and r.json()["error"]["parameter"] == "email"
    assert "hunter2" not in r.text  # a password typed in the wrong field is never echoed
    r = call(s, "POST", "/auth/login", json={"email": "a@example.com", "password": "x", "admin": True}, headers=h)
    assert r.status_code == 400 and r.json()["error"]["parameter"] == "admin"
    r = call(s, "POST", "/auth/login", content=b"{not json", headers={**h, "content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "ArgumentError"
    assert r.headers["cache-control"] == "no-store"


def test_unknown_user_and_wrong_password_look_the_same(env) -> None:
    s, store = env
    email = user(store, "same")
    wrong = login(s, email, "not the password")
    unknown = login(s, "nobody@example.com", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert "set-cookie" not in wrong.headers


# -- CSRF, logout ----------------------------------------------------------------------------------

def test_state_changes_with_the_cookie_need_the_csrf_token(env) -> None:
    s, store = env
    headers, csrf = session_of(login(s, user(store, "csrf")))
    url = f"/m/add?type={TOPIC}"
    r = call(s, "POST", url, json={"n": 1}, headers=headers)
    assert r.status_code == 403 and r.json()["error"]["type"] == "CsrfFailed"
    r = call(s, "POST", url, json={"n": 1}, headers={**headers, "x-csrf-token": csrf[:-1] + "A"})
    assert r.status_code == 403 and r.json()["error"]["type"] == "CsrfFailed"
    r = call(s, "POST", url, json={"n": 1}, headers={**headers, "x-csrf-token": csrf})
    assert r.status_code == 200, r.text
    rows = call(s, "GET", f"/m/data?type={TOPIC}", headers={"x-api-key": ADMIN_KEY}).json()
    assert {"n": 1} in rows
    # a user with Read only is refused the write even with the token (the level still applies)
    reader_headers, reader_csrf = session_of(login(s, user(store, "reader", level="read")))
    r = call(s, "POST", url, json={"n": 2}, headers={**reader_headers, "x-csrf-token": reader_csrf})
    assert r.status_code == 403 and r.json()["error"]["type"] != "CsrfFailed"


def test_logout_ends_the_session(env) -> None:
    s, store = env
    headers, csrf = session_of(login(s, user(store, "bye")))
    assert call(s, "GET", "/auth/me", headers=headers).status_code == 200
    r = call(s, "POST", "/auth/logout", headers=headers)
    assert r.status_code == 403 and r.json()["error"]["type"] == "CsrfFailed"  # a cross-site page cannot log out
    r = call(s, "POST", "/auth/logout", headers={**headers, "x-csrf-token": csrf})
    assert r.status_code == 200 and r.json() == {"ended": True}
    assert r.headers["cache-control"] == "no-store"
    cleared = set_cookie(r)
    assert cleared["value"] in ("", '""') and int(cleared["max-age"]) == 0
    assert call(s, "GET", "/auth/me", headers=headers).status_code == 401  # the old cookie is dead
    r = call(s, "POST", "/auth/logout")  # nobody logged in: still fine
    assert r.status_code == 200 and r.json() == {"ended": False}


def test_an_expired_session_is_anonymous(env) -> None:
    s, store = env
    email = user(store, "late")
    token = new_token(SESSION_PREFIX)
    with store.engine.begin() as conn:
        conn.execute(schema.sessions.insert().values(digest=digest(token), user_id=email, csrf="x" * 32,
                                                     created=time.time() - 7200, expires=time.time() - 60,
                                                     via="password"))
    headers = {"cookie": f"coflows_session={token}"}
    assert call(s, "GET", "/auth/me", headers=headers).status_code == 401
    assert call(s, "GET", f"/m/data?type={TOPIC}", headers=headers).status_code == 401
    # with a future expiry the same kind of row is a live session (the test above is not vacuous)
    with store.engine.begin() as conn:
        conn.execute(schema.sessions.update().where(schema.sessions.c.digest == digest(token))
                     .values(expires=time.time() + 600))
    me = call(s, "GET", "/auth/me", headers=headers)
    assert me.status_code == 200 and me.json()["id"] == email


# -- lockout and the per-address limit ---------------------------------------------------------------

def test_five_wrong_passwords_lock_the_account(env) -> None:
    s, store = env
    email = user(store, "locked")
    h = address()
    for _ in range(4):
        assert login(s, email, "wrong password", h).status_code == 401
    r = login(s, email, "wrong password", h)
    assert r.status_code == 423, r.text
    message = r.json()["error"]["message"]
    assert "locked" in message and "until" in message
    assert 14 * 60 < int(r.headers["retry-after"]) <= 15 * 60 + 1
    assert r.headers["cache-control"] == "no-store"
    r = login(s, email, PASSWORD, address())  # the right password, from elsewhere: still locked
    assert r.status_code == 423 and "set-cookie" not in r.headers
    _, locked_until = store.password_hash(email)
    assert locked_until is not None and locked_until > time.time() + 14 * 60  # in the database: survives restarts
    store.set_password(email, PASSWORD)  # an admin's new password lifts the lock
    assert login(s, email, PASSWORD, address()).status_code == 200


def test_a_right_password_resets_the_count(env) -> None:
    s, store = env
    email = user(store, "resets")
    h = address()
    for _ in range(4):
        assert login(s, email, "wrong password", h).status_code == 401
    assert login(s, email, PASSWORD, address()).status_code == 200
    h = address()
    for _ in range(4):
        assert login(s, email, "wrong password", h).status_code == 401  # not 423: the count started again


def test_failures_per_address_get_429(env) -> None:
    s, store = env
    email = user(store, "sprayed")
    h = address()
    for i in range(PER_ADDRESS):  # a different account each time: no account lock involved
        assert login(s, f"victim{i}@example.com", "guess", h).status_code == 401
    r = login(s, email, PASSWORD, h)  # even the right password: the address is refused before any check
    assert r.status_code == 429, r.text
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert r.headers["cache-control"] == "no-store"
    assert login(s, email, PASSWORD, address()).status_code == 200  # another address is not affected


def test_successful_logins_do_not_count_against_the_address(env) -> None:
    s, store = env
    email = user(store, "often")
    h = address()
    for _ in range(PER_ADDRESS + 2):
        assert login(s, email, PASSWORD, h).status_code == 200


# -- users' API keys -------------------------------------------------------------------------------

def test_users_manage_their_own_api_keys(env) -> None:
    s, store = env
    email = user(store, "keys", level="read")
    other = user(store, "other")
    other_kid, other_key = store.new_key(other, "theirs")
    headers, csrf = session_of(login(s, email))
    unsafe = {**headers, "x-csrf-token": csrf}

    r = call(s, "POST", "/auth/keys", json={"label": "laptop"}, headers=unsafe)
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["label"] == "laptop" and made["key"].startswith("cfk_") and made["id"]
    assert r.headers["cache-control"] == "no-store"
    key = made["key"]
    assert call(s, "POST", "/auth/keys", headers=headers).status_code == 403  # CSRF applies here too
    r = call(s, "POST", "/auth/keys", headers=unsafe)  # no body: no label
    assert r.status_code == 201 and r.json()["label"] == ""
    r = call(s, "POST", "/auth/keys", json={"label": "x" * 201}, headers=unsafe)
    assert r.status_code == 400 and r.json()["error"]["parameter"] == "label"

    listed = call(s, "GET", "/auth/keys", headers=headers).json()
    assert len(listed) == 2 and made["id"] in {k["id"] for k in listed} and other_kid not in {k["id"] for k in listed}
    assert key not in json.dumps(listed) and all("key" not in k for k in listed)

    # the key works like the admin key does: x-api-key, _cokey header, _cokey query parameter
    for how in ({"headers": {"x-api-key": key}}, {"headers": {"_cokey": key}}, {"params": {"_cokey": key}}):
        me = call(s, "GET", "/auth/me", **how)
        assert me.status_code == 200 and me.json()["id"] == email and me.json()["via"] == "key", how
        assert call(s, "GET", f"/flow/query/{WID}/Hello.py/hello", **how).json() == "hi"
    # Read: the key's user may read but not write
    assert call(s, "POST", f"/m/add?type={TOPIC}", json={"k": 1}, headers={"x-api-key": key}).status_code == 403
    # a key cannot mint keys (a leaked key must not outlive its revocation); nor can the admin key (no user)
    assert call(s, "POST", "/auth/keys", json={}, headers={"x-api-key": key}).status_code == 403
    assert call(s, "POST", "/auth/keys", json={}, headers={"x-api-key": ADMIN_KEY}).status_code == 403
    assert call(s, "GET", "/auth/keys", headers={"x-api-key": key}).status_code == 200
    assert call(s, "GET", "/auth/keys").status_code == 401

    # someone else's key: 404, and it keeps working
    r = call(s, "POST", f"/auth/keys/{other_kid}/revoke", headers=unsafe)
    assert r.status_code == 404
    assert call(s, "GET", "/auth/me", headers={"x-api-key": other_key}).status_code == 200
    assert call(s, "POST", f"/auth/keys/{other_kid}/revoke", headers={"x-api-key": ADMIN_KEY}).status_code == 404
    assert call(s, "POST", f"/auth/keys/{other_kid}/revoke").status_code == 401

    r = call(s, "POST", f"/auth/keys/{made['id']}/revoke", headers=unsafe)
    assert r.status_code == 200 and r.json()["revoked"]
    for how in ({"headers": {"x-api-key": key}}, {"params": {"_cokey": key}}):
        r = call(s, "GET", "/auth/me", **how)
        assert r.status_code == 401 and "invalid API key" in r.text  # refused, never downgraded
    revoked = {k["id"]: k for k in call(s, "GET", "/auth/keys", headers=headers).json()}
    assert revoked[made["id"]]["revoked"]


# -- websockets with the cookie ------------------------------------------------------------------------

def test_live_with_the_cookie_needs_this_servers_origin(env) -> None:
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    s, store = env
    headers, _ = session_of(login(s, user(store, "sock")))
    url = f"ws://127.0.0.1:{s.port}/live"
    # the auth layer closes (4403) before accepting: uvicorn turns that into a refused handshake (HTTP 403)
    with pytest.raises(InvalidStatus) as refused:
        connect(url, additional_headers=headers, origin="http://evil.example", open_timeout=10)
    assert refused.value.response.status_code == 403
    with pytest.raises(InvalidStatus):  # no Origin at all: refused too
        connect(url, additional_headers=headers, open_timeout=10)
    with connect(url, additional_headers=headers, origin=f"http://127.0.0.1:{s.port}", open_timeout=10) as ws:
        ws.send(json.dumps({"Type": 1, "Content": TOPIC}))
        ws.send(json.dumps({"Type": 15, "Content": "sync"}))
        while (msg := json.loads(ws.recv(timeout=10)))["Type"] != 15:
            assert msg["Type"] != 0, msg  # an error: the session did not authorize the subscription
        r = call(s, "POST", f"/m/add?type={TOPIC}", json={"live": 1}, headers={"x-api-key": ADMIN_KEY})
        assert r.status_code == 200
        while (msg := json.loads(ws.recv(timeout=10)))["Type"] != 14:
            pass
        assert "live" in json.dumps(msg["Content"])


# -- nothing secret in the log ---------------------------------------------------------------------

def test_no_password_or_token_in_the_log(env) -> None:
    s, store = env
    email = user(store, "quiet")
    headers, csrf = session_of(login(s, email))
    login(s, email, "a-wrong-secret-password")
    token = headers["cookie"].partition("=")[2]
    log = s.output()
    assert "login: quiet@example.com" in log  # logins are logged ...
    for secret in (PASSWORD, "a-wrong-secret-password", token, csrf):
        assert secret not in log  # ... without their secrets


def test_a_new_login_ends_the_browsers_previous_session(env) -> None:
    s, store = env
    email = user(store, "twice")
    first, _ = session_of(login(s, email))
    again = call(s, "POST", "/auth/login", json={"email": email, "password": PASSWORD},
                 headers={**first, **address()})  # the login route needs no CSRF token (JSON only)
    second, _ = session_of(again)
    assert second != first
    assert call(s, "GET", "/auth/me", headers=first).status_code == 401
    assert call(s, "GET", "/auth/me", headers=second).status_code == 200


def test_the_address_limiter_is_bounded() -> None:
    """Random addresses cannot grow memory without bound; IPv6 counts per /64 (a host owns one)."""
    from coflows.auth.ratelimit import AddressLimiter, address_key

    now = [1000.0]
    limiter = AddressLimiter(3, max_addresses=50, clock=lambda: now[0])
    for i in range(10_000):
        limiter.begin(f"203.0.113.{i}")
    assert len(limiter) == 50
    assert [limiter.begin("a")[1] for _ in range(4)] == [0, 0, 0, 60]  # the 4th in the minute waits
    now[0] += 30
    assert limiter.begin("a") == (None, 30)
    now[0] += 30.5
    assert limiter.begin("a")[1] == 0  # the first failure aged out
    mark, _ = limiter.begin("b")
    limiter.forgive("b", mark)  # a success takes its attempt back
    assert [limiter.begin("b")[1] for _ in range(3)] == [0, 0, 0]
    assert address_key("2001:db8::1") == address_key("2001:db8::ffff:2") == "2001:db8::/64"
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"
