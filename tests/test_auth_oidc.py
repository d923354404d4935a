"""OpenID Connect login against a real provider (npm `oidc-provider`, tests/fixtures/oidc/provider.mjs)
on loopback, through a real coflows server: the whole browser flow driven with httpx (redirects
followed by hand, the provider's login and consent forms parsed and submitted)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit, urlunsplit

import httpx
import pytest

from conftest import REPO, Server, Workspace, free_port, new_workspace

WID = "0a1b2c3d-0000-4000-8000-00000000c0f1"
CLIENT_ID, CLIENT_SECRET = "coflows-test", "a-client-secret-for-tests"
PROVIDER = REPO / "tests" / "fixtures" / "oidc" / "provider.mjs"
ACCOUNTS = {
    "alice": {"email": "Alice@Example.com", "email_verified": True, "name": "Alice Liddell"},
    "bob": {"email": "bob@example.com", "email_verified": True, "name": "Bob"},
    "carol": {"email": "carol@example.com", "email_verified": False, "name": "Carol"},
}


def _node_or_skip() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("OIDC login tests need node (>= 20.19) to run the test provider: node is not on PATH")
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    major, minor = (int(x) for x in re.findall(r"\d+", version)[:2])
    if (major, minor) < (20, 19):
        pytest.skip(f"OIDC login tests need node >= 20.19 for npm oidc-provider 9; this is {version}")
    if not (REPO / "node_modules" / "oidc-provider").is_dir():
        pytest.skip("OIDC login tests need npm oidc-provider: run `npm ci` in the repository (bin/setup.sh does)")
    return node


class OidcProvider:
    """tests/fixtures/oidc/provider.mjs as a subprocess on a free loopback port."""

    def __init__(self, node: str, log: Path, port: int, redirect_uri: str, conform: bool = True) -> None:
        self.port = port
        self.issuer = f"http://127.0.0.1:{port}"
        client = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": [redirect_uri]}
        env = {**os.environ, "OIDC_CLIENT": json.dumps(client), "OIDC_ACCOUNTS": json.dumps(ACCOUNTS),
               "OIDC_CONFORM": "1" if conform else "0"}
        self.log_path = log
        self.log = open(log, "ab")
        self.proc = subprocess.Popen([node, str(PROVIDER), str(port)], cwd=REPO, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the OIDC provider exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(self.issuer + "/.well-known/openid-configuration", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the OIDC provider did not start in 30 s:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def add_users(ws: Workspace, grant: dict[str, str]) -> None:
    """Users (no passwords) and their levels on the workflow, straight into the workspace's database."""
    from coflows.auth.store import UserStore
    from coflows.store import Database, database_url

    db = Database(database_url("sqlite", "mnt/database.db", ws.root))
    try:
        store = UserStore(db)
        for email, level in grant.items():
            store.add_user(email)
            store.grant(WID, email, level)
    finally:
        db.dispose()


@pytest.fixture
def oidc_setup(tmp_path: Path) -> Iterator[Callable[..., tuple[Server, OidcProvider]]]:
    """`setup(create_users=False, conform=True, client_secret=…)`: a provider and a coflows server that
    trusts it (and knows the client secret given)."""
    node = _node_or_skip()
    started: list[Any] = []

    def setup(create_users: bool = False, conform: bool = True,
              client_secret: str = CLIENT_SECRET) -> tuple[Server, OidcProvider]:
        root = tmp_path / f"ws{len(started)}"
        ws = new_workspace(root, wid=WID, public=None)
        ws.add_query("hello.py", "def hello():\n    return 'hi'\n")
        pport = free_port()
        ws.config["Auth"] = {"SessionHours": 2, "OIDC": {
            "Issuer": f"http://127.0.0.1:{pport}", "ClientId": CLIENT_ID, "ClientSecret": client_secret,
            "Scopes": "openid email profile", "CreateUsers": create_users}}
        ws.save()
        add_users(ws, {"alice@example.com": "read"})
        server = Server(ws)
        started.append(server)
        server.start()
        provider = OidcProvider(node, root / "provider.log", pport, f"{server.base}/auth/oidc/callback", conform)
        started.append(provider)
        return server, provider

    try:
        yield setup
    finally:
        for s in reversed(started):
            s.close() if isinstance(s, Server) else s.stop()


class _Forms(HTMLParser):
    """The <form>s of a page: action, method and inputs (name → value)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "method": a.get("method", "get").lower(),
                               "inputs": {}})
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1]["inputs"][a["name"]] = a.get("value", "")


def log_in_at_provider(browser: httpx.Client, start: str, login: str) -> str:
    """From coflows' login URL through the provider's login and consent pages; returns the URL the
    provider sends the browser back to (coflows' callback, not fetched yet)."""
    url, method, data = start, "GET", None
    for _ in range(20):
        r = browser.request(method, url, data=data)
        method, data = "GET", None
        if r.is_redirect:
            url = urljoin(str(r.url), r.headers["location"])
            if urlsplit(url).path == "/auth/oidc/callback":
                return url
            continue
        assert r.status_code == 200, f"{r.status_code} from {r.url}: {r.text[:500]}"
        parser = _Forms()
        parser.feed(r.text)
        posts = [f for f in parser.forms if f["method"] == "post"]
        assert posts, f"no form on {r.url}: {r.text[:500]}"
        form = posts[0]
        data = dict(form["inputs"])
        if "login" in data:  # the dev login form: any password, the login name picks the account
            data.update(login=login, password="any password")
        url, method = urljoin(str(r.url), form["action"]), "POST"
    raise AssertionError("the provider did not send the browser back to coflows")


def start_login(browser: httpx.Client, server: Server, login: str, next_: str | None = None) -> str:
    query = f"?{urlencode({'next': next_})}" if next_ is not None else ""
    return log_in_at_provider(browser, f"{server.base}/auth/oidc/login{query}", login)


def workflows(client: httpx.Client, server: Server) -> list[str]:
    r = client.get(f"{server.base}/flow/workflows")
    assert r.status_code == 200, r.text
    return [w["id"] for w in r.json()]


def test_login_creates_a_session_for_the_existing_user(oidc_setup: Callable[..., Any]) -> None:
    server, _ = oidc_setup()
    with httpx.Client(timeout=30) as browser:
        assert WID not in workflows(browser, server)  # anonymous: the workflow is not Public
        callback = start_login(browser, server, "alice", next_="/flow/workflows")
        r = browser.get(callback)
        assert r.status_code == 303, r.text
        assert r.headers["location"] == "/flow/workflows"
        set_cookie = "; ".join(r.headers.get_list("set-cookie")).lower()
        assert "coflows_session=cfs_" in set_cookie and "httponly" in set_cookie and "samesite=lax" in set_cookie
        assert "coflows_oidc=" in set_cookie  # the state cookie is cleared (single use)
        assert "id_token" not in r.text and "access_token" not in r.text
        # the session is alice's: she holds Read on the workflow, so she sees it
        assert WID in workflows(browser, server)
        me = browser.get(f"{server.base}/auth/me")
        if me.status_code != 404:  # /auth/me lands with the password-login routes
            assert me.status_code == 200, me.text
            assert "alice@example.com" in me.text
        # the same callback again: the state cookie is gone, so it is refused
        again = browser.get(callback, headers={"accept": "application/json"})
        assert again.status_code == 400
        assert again.json()["error"]["type"] == "OidcStateMismatch"


def test_a_user_not_in_the_database_is_refused(oidc_setup: Callable[..., Any]) -> None:
    server, _ = oidc_setup()
    with httpx.Client(timeout=30, headers={"accept": "application/json"}) as browser:
        r = browser.get(start_login(browser, server, "bob"))
        assert r.status_code == 403, r.text
        err = r.json()["error"]
        assert err["type"] == "OidcUnknownUser" and "bob@example.com" in err["message"]
        assert "coflows_session=cfs_" not in " ".join(r.headers.get_list("set-cookie"))
        assert WID not in workflows(browser, server)


def test_an_unverified_email_is_refused(oidc_setup: Callable[..., Any]) -> None:
    server, _ = oidc_setup(create_users=True)
    with httpx.Client(timeout=30) as browser:
        r = browser.get(start_login(browser, server, "carol"), headers={"accept": "text/html"})
        assert r.status_code == 403
        assert r.headers["content-type"].startswith("text/html")
        assert "not verified" in r.text
        assert "coflows_session=cfs_" not in " ".join(r.headers.get_list("set-cookie"))


def test_create_users_makes_a_new_user_without_groups(oidc_setup: Callable[..., Any]) -> None:
    # conform=False: the provider puts email and name in the ID token (no UserInfo call needed)
    server, _ = oidc_setup(create_users=True, conform=False)
    with httpx.Client(timeout=30) as browser:
        r = browser.get(start_login(browser, server, "bob"))
        assert r.status_code == 303, r.text
        assert r.headers["location"] == "/ui"  # no `next`: the UI
        assert "coflows_session=cfs_" in " ".join(r.headers.get_list("set-cookie"))
        assert WID not in workflows(browser, server)  # a new user has no groups
    from coflows.auth.store import UserStore
    from coflows.store import Database, database_url

    db = Database(database_url("sqlite", "mnt/database.db", server.ws.root))
    try:
        store = UserStore(db)
        bob = store.user("bob@example.com")
        assert bob.name == "Bob" and not bob.has_password and not bob.is_admin
        principal, _ = store.principal("bob@example.com")
        assert principal.groups == {}
    finally:
        db.dispose()
    # an existing user still logs in with CreateUsers on (email matched case-insensitively)
    with httpx.Client(timeout=30) as browser:
        r = browser.get(start_login(browser, server, "alice", next_="/flow/workflows"))
        assert r.status_code == 303 and r.headers["location"] == "/flow/workflows", r.text
        assert WID in workflows(browser, server)


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    q.update(changes)
    return urlunsplit(parts._replace(query=urlencode(q)))


def test_a_tampered_state_is_refused(oidc_setup: Callable[..., Any]) -> None:
    server, _ = oidc_setup()
    with httpx.Client(timeout=30, headers={"accept": "application/json"}) as browser:
        callback = start_login(browser, server, "alice")
        state = parse_qs(urlsplit(callback).query)["state"][0]
        r = browser.get(_with_query(callback, state=state[:-1] + ("A" if state[-1] != "A" else "B")))
        assert r.status_code == 400
        assert r.json()["error"]["type"] == "OidcStateMismatch"
        assert "state mismatch" in r.json()["error"]["message"]
        assert "coflows_session=cfs_" not in " ".join(r.headers.get_list("set-cookie"))
        assert WID not in workflows(browser, server)
    # a callback from a browser that never started a login (no state cookie): refused too
    with httpx.Client(timeout=30, headers={"accept": "application/json"}) as other:
        r = other.get(callback)
        assert r.status_code == 400 and r.json()["error"]["type"] == "OidcStateMismatch"
    # a forged state cookie (not signed by this server): refused
    with httpx.Client(timeout=30, headers={"accept": "application/json"}) as forger:
        forger.cookies.set("coflows_oidc", "eyJzdGF0ZSI6IngifQ.AAAA", domain="127.0.0.1", path="/auth/oidc/")
        r = forger.get(_with_query(callback, state="x"))
        assert r.status_code == 400 and r.json()["error"]["type"] == "OidcStateMismatch"


@pytest.mark.parametrize("next_", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "/\t/evil.example",
                                   "javascript:alert(1)"])
def test_next_is_only_a_path_on_this_server(oidc_setup: Callable[..., Any], next_: str) -> None:
    server, _ = oidc_setup()
    with httpx.Client(timeout=30) as browser:
        r = browser.get(start_login(browser, server, "alice", next_=next_))
        assert r.status_code == 303, r.text
        assert r.headers["location"] == "/ui"
        assert "coflows_session=cfs_" in " ".join(r.headers.get_list("set-cookie"))


def test_a_wrong_client_secret_gets_no_session(oidc_setup: Callable[..., Any]) -> None:
    server, _ = oidc_setup(client_secret="not-the-secret")
    with httpx.Client(timeout=30, headers={"accept": "application/json"}) as browser:
        r = browser.get(start_login(browser, server, "alice"))
        assert r.status_code in (400, 502), r.text
        err = r.json()["error"]
        assert err["type"] == "OidcCodeRefused" and "invalid_client" in err["message"]
        assert "not-the-secret" not in r.text and "not-the-secret" not in server.output()
        assert "coflows_session=cfs_" not in " ".join(r.headers.get_list("set-cookie"))


def test_an_unreachable_provider_is_502(oidc_setup: Callable[..., Any]) -> None:
    server, provider = oidc_setup()
    provider.stop()
    r = server.get("/auth/oidc/login", headers={"accept": "application/json"})
    assert r.status_code == 502
    assert r.json()["error"]["type"] == "OidcProviderError" and "discovery" in r.json()["error"]["message"]


def test_login_is_404_when_oidc_is_off(tmp_path: Path) -> None:
    ws = new_workspace(tmp_path / "ws", wid=WID)
    server = Server(ws).start()
    try:
        for path in ("/auth/oidc/login", "/auth/oidc/callback?code=x&state=y"):
            r = server.get(path, headers={"accept": "application/json"})
            assert r.status_code == 404
            assert "OIDC login is not configured" in r.json()["error"]["message"]
    finally:
        server.close()


def test_the_state_cookie_is_signed_and_expires() -> None:
    from coflows.auth.oidc import safe_next, seal, unseal

    secret = b"k" * 32
    value = seal(secret, {"state": "s", "exp": time.time() + 60})
    assert unseal(secret, value)["state"] == "s"
    assert unseal(b"j" * 32, value) is None  # another server's key
    payload, sig = value.split(".")
    assert unseal(secret, payload[:-2] + "xx." + sig) is None  # a changed payload
    assert unseal(secret, seal(secret, {"state": "s", "exp": time.time() - 1})) is None  # expired
    assert unseal(secret, "") is None and unseal(secret, "no-dot") is None
    assert safe_next("/flow/workflows?x=1") == "/flow/workflows?x=1"
    assert safe_next("/ui/flows/runs/abc#top") == "/ui/flows/runs/abc#top"
    for bad in (None, "", "ui", "//evil", "/\\evil", "https://evil/", "/a\nb", "/" + "a" * 2000):
        assert safe_next(bad) == "/ui"
