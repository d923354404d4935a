"""OpenID Connect login: `GET /auth/oidc/login` → the provider → `GET /auth/oidc/callback` → a session.

The authorization code flow with PKCE (S256). The login keeps `state`, `nonce`, the PKCE verifier,
the callback URL and the page to return to in a short-lived (10 min) HttpOnly cookie, signed with
a key derived from the server's admin key (so no server-side state, and any replica of the server
accepts it). The callback checks `state` against that cookie before anything reaches the provider,
exchanges the code, verifies the ID token (signature against the provider's JWKS, issuer,
audience, expiry, nonce), asks the UserInfo endpoint when the token carries no email, and requires
a verified email. The user is the existing user of that email (lower-cased), or a new user without
password or groups when `Auth.OIDC.CreateUsers` is on. Failures answer 4xx (502 when the provider
cannot be reached) naming what failed, never a token.

The provider's discovery document is fetched once and kept; its JWKS is kept and fetched again
(at most once a minute) when a token names a key it does not hold (key rotation). Every call to
the provider is async httpx with a 10 s timeout and a 1 MB cap on the answer.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import html
import json
import logging
import re
import time
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from coflows.auth.cookies import is_tls, set_session_cookie
from coflows.auth.identity import Identities
from coflows.auth.store import Conflict, UserStore, normalize_email
from coflows.config import OidcConfig
from coflows.errors import ArgumentError, ConfigError, NotFoundError
from coflows.redact import protect

log = logging.getLogger("coflows.auth.oidc")

STATE_COOKIE = "coflows_oidc"
STATE_COOKIE_PATH = "/auth/oidc/"
STATE_LIFETIME_S = 600
HTTP_TIMEOUT_S = 10.0
MAX_ANSWER_BYTES = 1 << 20
JWKS_REFRESH_S = 60.0  # at most one JWKS refetch a minute for an unknown key ID
DISCOVERY_RETRY_S = 5.0  # after a failed discovery, answer 502 at once for this long
MAX_CALLBACKS = 32  # callbacks talking to the provider at once; more → 503
DEFAULT_NEXT = "/ui"
MAX_NEXT = 1000
# Asymmetric signatures only: never `none`, and not HS* (a client secret as a signing key).
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
_OAUTH_ERROR = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class OidcFailure(Exception):
    """A login that cannot go on: the status, a type name and a message safe to show."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


# -- the signed state cookie ----------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def seal(secret: bytes, data: dict[str, Any]) -> str:
    payload = _b64(json.dumps(data, separators=(",", ":")).encode())
    return payload + "." + _b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())


def unseal(secret: bytes, value: str, now: float | None = None) -> dict[str, Any] | None:
    """The cookie's data when its signature holds and it has not expired; else None."""
    payload, _, sig = value.partition(".")
    if not payload or not sig or len(value) > 4096:
        return None
    want = _b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(sig, want):
        return None
    try:
        data = json.loads(_unb64(payload))
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("exp"), (int, float)):
        return None
    return data if data["exp"] > (time.time() if now is None else now) else None


def safe_next(value: str | None) -> str:
    """A path on this server (one leading `/`, no scheme or host, no backslash or control
    character: browsers read `/\\evil` and `/\t/evil` as other hosts); else the default."""
    if not value or len(value) > MAX_NEXT or not value.startswith("/") or value.startswith("//"):
        return DEFAULT_NEXT
    if "\\" in value or any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
        return DEFAULT_NEXT
    return value


# -- the provider ---------------------------------------------------------------------------------
def _import_provider_libraries() -> None:
    """httpx, authlib and joserfc, imported when a Provider is made (OIDC configured): they cost
    ~0.15 s of CPU at every server start otherwise. Every use is in a Provider method or in a route
    that answers 404 without one."""
    global httpx, generate_token, prepare_grant_uri, create_s256_code_challenge, jwt, JoseError, KeySet
    import httpx
    from authlib.common.security import generate_token
    from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
    from authlib.oauth2.rfc7636 import create_s256_code_challenge
    from joserfc import jwt
    from joserfc.errors import JoseError
    from joserfc.jwk import KeySet


async def _get_json(client: httpx.AsyncClient, url: str, what: str, headers: dict[str, str] | None = None) -> Any:
    """GET a JSON document of the provider, at most MAX_ANSWER_BYTES."""
    try:
        async with client.stream("GET", url, headers=headers) as r:
            body = bytearray()
            async for chunk in r.aiter_bytes():
                body += chunk
                if len(body) > MAX_ANSWER_BYTES:
                    raise OidcFailure(502, "OidcProviderError", f"the provider's {what} is larger than 1 MB")
            status = r.status_code
    except httpx.HTTPError as e:
        raise OidcFailure(502, "OidcProviderError", f"the provider's {what} could not be fetched "
                          f"({type(e).__name__})") from None
    if status != 200:
        raise OidcFailure(502, "OidcProviderError", f"the provider's {what} answered HTTP {status}")
    try:
        return json.loads(bytes(body))
    except ValueError:
        raise OidcFailure(502, "OidcProviderError", f"the provider's {what} is not JSON") from None


class Provider:
    """One OpenID provider: its discovery document and keys (cached), the code exchange and the
    ID token's verification."""

    def __init__(self, config: OidcConfig) -> None:
        _import_provider_libraries()
        self.config = config
        self.issuer = config.issuer.rstrip("/")
        self._meta: dict[str, Any] | None = None
        self._meta_failed = 0.0
        self._keys: KeySet | None = None
        self._keys_fetched = 0.0
        self._lock: asyncio.Lock | None = None

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=HTTP_TIMEOUT_S, follow_redirects=False)

    def _guard(self) -> asyncio.Lock:
        if self._lock is None:  # made on the server's event loop, at first use
            self._lock = asyncio.Lock()
        return self._lock

    async def metadata(self) -> dict[str, Any]:
        if self._meta is not None:
            return self._meta
        async with self._guard():
            if self._meta is not None:
                return self._meta
            if time.monotonic() - self._meta_failed < DISCOVERY_RETRY_S:
                raise OidcFailure(502, "OidcProviderError", "the provider's discovery document could not be "
                                  "fetched (retrying in a few seconds)")
            try:
                async with self.client() as c:
                    doc = await _get_json(c, self.issuer + "/.well-known/openid-configuration",
                                          "discovery document")
                self._meta = self._check_metadata(doc)
            except OidcFailure:
                self._meta_failed = time.monotonic()
                raise
            return self._meta

    def _check_metadata(self, doc: Any) -> dict[str, Any]:
        if not isinstance(doc, dict):
            raise OidcFailure(502, "OidcProviderError", "the provider's discovery document is not a JSON object")
        if str(doc.get("issuer", "")).rstrip("/") != self.issuer:
            raise OidcFailure(502, "OidcProviderError", f"the provider's discovery document names issuer "
                              f"{str(doc.get('issuer'))[:200]!r}, not Auth.OIDC.Issuer {self.issuer!r}")
        for field in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(doc.get(field), str) or not doc[field]:
                raise OidcFailure(502, "OidcProviderError", f"the provider's discovery document has no {field}")
        return doc

    async def keys(self, refresh: bool = False) -> KeySet:
        if self._keys is not None and not refresh:
            return self._keys
        async with self._guard():
            if self._keys is not None and (not refresh or time.monotonic() - self._keys_fetched < JWKS_REFRESH_S):
                return self._keys
            meta = await self._metadata_unlocked()
            async with self.client() as c:
                doc = await _get_json(c, meta["jwks_uri"], "JWKS")
            if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
                raise OidcFailure(502, "OidcProviderError", "the provider's JWKS has no keys")
            usable = [k for k in doc["keys"] if isinstance(k, dict) and k.get("use", "sig") == "sig"]
            try:
                self._keys = KeySet.import_key_set({"keys": usable})
            except (JoseError, ValueError, TypeError):
                raise OidcFailure(502, "OidcProviderError", "the provider's JWKS could not be read") from None
            self._keys_fetched = time.monotonic()
            return self._keys

    async def _metadata_unlocked(self) -> dict[str, Any]:
        if self._meta is None:  # keys() is only called after metadata() succeeded
            raise OidcFailure(502, "OidcProviderError", "the provider's discovery document is not loaded")
        return self._meta

    def authorization_url(self, meta: dict[str, Any], redirect_uri: str, state: str, nonce: str,
                          verifier: str) -> str:
        return prepare_grant_uri(meta["authorization_endpoint"], self.config.client_id, "code",
                                 redirect_uri=redirect_uri, scope=self.config.scopes, state=state, nonce=nonce,
                                 code_challenge=create_s256_code_challenge(verifier), code_challenge_method="S256")

    async def exchange(self, code: str, verifier: str, redirect_uri: str) -> dict[str, Any]:
        """The token endpoint's answer for the code (client_secret_basic, else client_secret_post)."""
        meta = await self.metadata()
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                "code_verifier": verifier}
        auth: httpx.Auth | None = None
        methods = meta.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        secret = self.config.client_secret
        if not secret:
            form["client_id"] = self.config.client_id  # a public client: PKCE is its proof
        elif "client_secret_basic" in methods:
            auth = httpx.BasicAuth(quote(self.config.client_id, safe=""), quote(secret, safe=""))
        elif "client_secret_post" in methods:
            form.update(client_id=self.config.client_id, client_secret=secret)
        else:
            raise OidcFailure(502, "OidcProviderError", "the provider accepts neither client_secret_basic nor "
                              "client_secret_post at its token endpoint")
        try:
            async with self.client() as c:
                r = await c.post(meta["token_endpoint"], data=form, auth=auth,
                                 headers={"accept": "application/json"})
        except httpx.HTTPError as e:
            raise OidcFailure(502, "OidcProviderError", f"the provider's token endpoint could not be reached "
                              f"({type(e).__name__})") from None
        if len(r.content) > MAX_ANSWER_BYTES:
            raise OidcFailure(502, "OidcProviderError", "the provider's token answer is larger than 1 MB")
        try:
            body = r.json()
        except ValueError:
            body = None
        if r.status_code != 200 or not isinstance(body, dict):
            err = body.get("error") if isinstance(body, dict) else None
            err = err if isinstance(err, str) and _OAUTH_ERROR.match(err) else f"HTTP {r.status_code}"
            raise OidcFailure(400 if r.status_code == 400 else 502, "OidcCodeRefused",
                              f"the provider refused the authorization code ({err})")
        if not isinstance(body.get("id_token"), str):
            raise OidcFailure(502, "OidcProviderError", "the provider's token answer has no id_token "
                              "(is `openid` in Auth.OIDC.Scopes?)")
        return body

    async def verify_id_token(self, token: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims once its signature, issuer, audience, times and nonce hold."""
        meta = await self.metadata()
        try:
            header = json.loads(_unb64(token.split(".", 1)[0]))
            kid = header.get("kid") if isinstance(header, dict) else None
        except (ValueError, IndexError):
            raise OidcFailure(401, "OidcTokenInvalid", "the ID token is not a JWT") from None
        keys = await self.keys()
        if kid is not None and not any(k.kid == kid for k in keys.keys):
            keys = await self.keys(refresh=True)  # the provider rotated its keys
        try:
            decoded = jwt.decode(token, keys, algorithms=list(ALGORITHMS))
        except (JoseError, ValueError) as e:
            raise OidcFailure(401, "OidcTokenInvalid", f"the ID token's signature does not verify against the "
                              f"provider's keys ({type(e).__name__})") from None
        claims = decoded.claims
        registry = jwt.JWTClaimsRegistry(
            leeway=60, iss={"essential": True, "value": meta["issuer"]},
            aud={"essential": True, "value": self.config.client_id}, exp={"essential": True},
            iat={"essential": True}, sub={"essential": True}, nonce={"essential": True, "value": nonce})
        try:
            registry.validate(claims)
        except JoseError as e:
            raise OidcFailure(401, "OidcTokenInvalid", f"the ID token was refused: {e.error}"
                              f"{' (' + e.description + ')' if e.description else ''}") from None
        aud = claims["aud"]
        if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != self.config.client_id:
            raise OidcFailure(401, "OidcTokenInvalid", "the ID token has several audiences and its azp is "
                              "not this client")
        return claims

    async def userinfo(self, access_token: str, sub: str) -> dict[str, Any]:
        """The UserInfo claims (email, name), for providers that keep them out of the ID token."""
        meta = await self.metadata()
        url = meta.get("userinfo_endpoint")
        if not isinstance(url, str) or not url:
            return {}
        async with self.client() as c:
            info = await _get_json(c, url, "UserInfo", headers={"authorization": f"Bearer {access_token}",
                                                                 "accept": "application/json"})
        if not isinstance(info, dict) or info.get("sub") != sub:
            raise OidcFailure(401, "OidcTokenInvalid", "the provider's UserInfo is about another subject than "
                              "the ID token")
        return info


def verified_email(claims: dict[str, Any]) -> str:
    email = claims.get("email")
    if not isinstance(email, str) or not email:
        raise OidcFailure(403, "OidcNoEmail", "the provider gave no email for this account (is `email` in "
                          "Auth.OIDC.Scopes?)")
    if claims.get("email_verified") not in (True, "true"):
        raise OidcFailure(403, "OidcEmailNotVerified", "the provider has not verified this account's email")
    try:
        return normalize_email(email)
    except ArgumentError:
        raise OidcFailure(403, "OidcNoEmail", "the provider's email for this account is not an email address") \
            from None


# -- the routes -----------------------------------------------------------------------------------
def _failure(request: Request, f: OidcFailure) -> Response:
    """JSON for programs, a small page for browsers; the message never holds a token."""
    if "text/html" in request.headers.get("accept", ""):
        page = (f"<!doctype html><meta charset=utf-8><title>Login failed</title><h1>Login failed</h1>"
                f"<p>{html.escape(f.message)}</p><p><a href=\"/auth/oidc/login\">Try again</a></p>")
        response: Response = HTMLResponse(page, status_code=f.status)
    else:
        response = JSONResponse({"error": {"type": f.kind, "message": f.message}}, status_code=f.status)
    response.headers["cache-control"] = "no-store"
    return response


def _state_secret(runtime: Any) -> bytes:
    return hmac.new(runtime.config.admin_key().encode(), b"coflows/auth/oidc/state-cookie",
                    hashlib.sha256).digest()


def oidc_routes(runtime: Any, store: UserStore, identities: Identities) -> list[BaseRoute]:
    config: OidcConfig = runtime.config.auth.oidc
    session_s = runtime.config.auth.session_hours * 3600
    enabled = bool(config.issuer.strip())
    if enabled and not config.client_id:
        raise ConfigError("Auth.OIDC.ClientId: required when Auth.OIDC.Issuer is set")
    if config.client_secret:
        protect(config.client_secret)
    provider = Provider(config) if enabled else None
    secret = _state_secret(runtime) if enabled else b""
    busy = 0

    def off(request: Request) -> Response:
        return _failure(request, OidcFailure(404, "NotFound", "OIDC login is not configured (Auth.OIDC.Issuer)"))

    async def login(request: Request) -> Response:
        if provider is None:
            return off(request)
        try:
            meta = await provider.metadata()
        except OidcFailure as f:
            log.warning("OIDC login: %s", f.message)
            return _failure(request, f)
        redirect_uri = config.redirect_url or str(request.url_for("oidc_callback"))
        state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
        cookie = seal(secret, {"state": state, "nonce": nonce, "verifier": verifier, "redirect_uri": redirect_uri,
                               "next": safe_next(request.query_params.get("next")),
                               "exp": time.time() + STATE_LIFETIME_S})
        response = RedirectResponse(provider.authorization_url(meta, redirect_uri, state, nonce, verifier), 303)
        response.set_cookie(STATE_COOKIE, cookie, max_age=STATE_LIFETIME_S, path=STATE_COOKIE_PATH, httponly=True,
                            samesite="lax", secure=is_tls(request))
        response.headers["cache-control"] = "no-store"
        return response

    async def callback(request: Request) -> Response:
        nonlocal busy
        if provider is None:
            return off(request)
        if busy >= MAX_CALLBACKS:
            return _failure(request, OidcFailure(503, "Busy", "too many OIDC logins at once; try again"))
        busy += 1
        try:
            response = await _callback(request)
        except OidcFailure as f:
            log.info("OIDC login refused: %s", f.message)
            response = _failure(request, f)
        finally:
            busy -= 1
        # the state is single-use: whatever happened, the cookie goes
        response.delete_cookie(STATE_COOKIE, path=STATE_COOKIE_PATH, httponly=True, samesite="lax",
                               secure=is_tls(request))
        return response

    async def _callback(request: Request) -> Response:
        assert provider is not None
        q = request.query_params
        saved = unseal(secret, request.cookies.get(STATE_COOKIE, ""))
        if saved is None:
            raise OidcFailure(400, "OidcStateMismatch", "no login in progress in this browser (the login cookie "
                              "is missing, expired after 10 minutes, or not signed by this server)")
        if not hmac.compare_digest(str(q.get("state", "")).encode(), str(saved.get("state", "")).encode()):
            raise OidcFailure(400, "OidcStateMismatch", "state mismatch: this answer is not for the login started "
                              "in this browser")
        iss = q.get("iss")  # RFC 9207: which provider answered (a mix-up attack sends another's)
        if iss is not None and iss.rstrip("/") != provider.issuer:
            raise OidcFailure(400, "OidcIssuerMismatch", "the answer comes from another issuer than "
                              "Auth.OIDC.Issuer")
        if "error" in q:
            err = q["error"] if _OAUTH_ERROR.match(q["error"]) else "error"
            raise OidcFailure(403 if err == "access_denied" else 400, "OidcLoginRefused",
                              f"the provider did not log you in ({err})")
        code = q.get("code", "")
        if not code or len(code) > 4096:
            raise OidcFailure(400, "OidcNoCode", "the provider's answer has no authorization code")
        tokens = await provider.exchange(code, saved["verifier"], saved["redirect_uri"])
        claims = await provider.verify_id_token(tokens["id_token"], saved["nonce"])
        if "email" not in claims and isinstance(tokens.get("access_token"), str):
            claims = {**(await provider.userinfo(tokens["access_token"], claims["sub"])), **claims}
        email = verified_email(claims)
        name = claims.get("name") if isinstance(claims.get("name"), str) else ""
        name = "".join(c for c in name if ord(c) >= 32 and ord(c) != 127)[:200]  # as `coflows user add` allows
        uid = await run_in_threadpool(_user_for, email, name)
        token, _csrf, expires = await run_in_threadpool(store.new_session, uid, session_s, "oidc")
        log.info("OIDC login of %s", uid)
        response = RedirectResponse(safe_next(saved.get("next")), 303)
        set_session_cookie(response, request, token, expires)
        response.headers["cache-control"] = "no-store"
        return response

    def _user_for(email: str, name: str) -> str:
        try:
            return store.user(email).id
        except NotFoundError:
            if not config.create_users:
                raise OidcFailure(403, "OidcUnknownUser", f"{email} has no user on this server (ask an admin "
                                  "to add it, or turn on Auth.OIDC.CreateUsers)") from None
        try:
            uid = store.add_user(email, name=name).id
            log.info("OIDC login created user %s", uid)
        except Conflict:  # made by a concurrent login
            uid = store.user(email).id
        identities.invalidate()
        return uid

    return [Route("/auth/oidc/login", login, methods=["GET"], name="oidc_login"),
            Route("/auth/oidc/callback", callback, methods=["GET"], name="oidc_callback")]
