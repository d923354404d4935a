"""One auth layer for every route: who is calling.

A program sends an API key in the `x-api-key` or `_cokey` header, or the `_cokey` query parameter
(CoFlows compatibility): the server's `SecretKey` (the admin key) or a user's key. A browser sends
the session cookie set by `POST /auth/login`; a state-changing request made with the cookie must
carry the session's CSRF token in `X-CSRF-Token` (a websocket must come from this server's origin).
A request without either is anonymous; a request with an unknown key is refused (401), never
silently downgraded. A stale session cookie is ignored (anonymous).

Lookups of users' keys and sessions are cached (`coflows.auth.identity`); a miss reads the
database in a thread, never on the event loop.
"""

from __future__ import annotations

import hmac
import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from coflows.auth.identity import MISS
from coflows.permissions import ADMIN, ANONYMOUS, Principal
from coflows.redact import protect

PRINCIPAL = "coflows.principal"
SESSION = "coflows.session"  # (token, CSRF token) when the request came with a live session cookie
SESSION_COOKIE = "coflows_session"
CSRF_HEADER = b"x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# JSON-only POSTs that need no session (a cross-site form cannot send JSON without a preflight)
CSRF_EXEMPT = frozenset({"/auth/login"})


class Authenticator:
    """The admin key, and users' keys and sessions through `identities` (None: no user store)."""

    def __init__(self, admin_key: str, identities: Any = None) -> None:
        protect(admin_key)  # masked in every log line and error body of this process
        self._admin_key = admin_key.encode()
        self.identities = identities

    def cached(self, key: str) -> Any:
        """A Principal, None (refused) or `MISS` (ask `resolve` in a thread)."""
        if hmac.compare_digest(key.encode("utf-8", "surrogateescape"), self._admin_key):
            return ADMIN
        if self.identities is None:
            return None
        return self.identities.cached_key(key)

    def resolve(self, key: str) -> Principal | None:
        if hmac.compare_digest(key.encode("utf-8", "surrogateescape"), self._admin_key):
            return ADMIN
        if self.identities is None:
            return None
        return self.identities.resolve_key(key)

    async def principal_for_key(self, key: str) -> Principal | None:
        found = self.cached(key)
        if found is MISS:
            found = await run_in_threadpool(self.resolve, key)
        return found

    async def session(self, token: str) -> tuple[Principal, str] | None:
        ids = self.identities
        if ids is None:
            return None
        found = ids.cached_session(token)
        if found is MISS:
            found = await run_in_threadpool(ids.resolve_session, token)
        return found


def _key_from(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-api-key" or name == b"_cokey":
            return value.decode("latin-1")
    qs: bytes = scope.get("query_string", b"")
    if b"_cokey" in qs:
        for k, v in parse_qsl(qs.decode("latin-1"), keep_blank_values=True):
            if k == "_cokey":
                return v
    return None


def _header(scope: Scope, name: bytes) -> str | None:
    for n, value in scope.get("headers", ()):
        if n == name:
            return value.decode("latin-1")
    return None


def session_cookie(scope: Scope) -> str | None:
    raw = _header(scope, b"cookie")
    if not raw or SESSION_COOKIE not in raw:
        return None
    for part in raw.split(";"):
        name, _, value = part.strip().partition("=")
        if name == SESSION_COOKIE:
            return value.strip('"')
    return None


def same_origin(scope: Scope) -> bool:
    """The websocket's Origin is this server (cross-site pages must not ride the user's cookie)."""
    origin, host = _header(scope, b"origin"), _header(scope, b"host")
    return bool(origin and host and urlsplit(origin).netloc.lower() == host.lower())


async def _refuse(send: Send, status: int, kind: str, message: str) -> None:
    body = json.dumps({"error": {"type": kind, "message": message}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class AuthMiddleware:
    """Pure ASGI (no per-request task or body buffering): sets `scope["coflows.principal"]`."""

    def __init__(self, app: ASGIApp, authenticator: Authenticator) -> None:
        self.app = app
        self.authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        key = _key_from(scope)
        if key is not None:
            principal = await self.authenticator.principal_for_key(key)
            if principal is None:
                if kind == "websocket":
                    await send({"type": "websocket.close", "code": 4401})
                else:
                    await _refuse(send, 401, "Unauthenticated", "invalid API key")
                return
            scope[PRINCIPAL] = principal
            await self.app(scope, receive, send)
            return
        scope[PRINCIPAL] = ANONYMOUS
        token = session_cookie(scope) if self.authenticator.identities is not None else None
        if token:
            found = await self.authenticator.session(token)
            if found is not None:
                principal, csrf = found
                if kind == "websocket":
                    if not same_origin(scope):
                        await send({"type": "websocket.close", "code": 4403})
                        return
                elif scope["method"] not in SAFE_METHODS and scope["path"] not in CSRF_EXEMPT:
                    # X-XSRFToken: the name JupyterLab (behind /lab) sends it under (coflows/jupyter/proxy.py);
                    # X-CSRFToken: Dash's renderer (behind /dash, coflows/apps/proxy.py)
                    sent = _header(scope, CSRF_HEADER) or _header(scope, b"x-xsrftoken") or \
                        _header(scope, b"x-csrftoken") or ""
                    if not hmac.compare_digest(sent.encode("latin-1"), csrf.encode()):
                        await _refuse(send, 403, "CsrfFailed", "a request made with the session cookie must send "
                                      "its CSRF token in the X-CSRF-Token header (GET /auth/me returns it)")
                        return
                scope[PRINCIPAL] = principal
                scope[SESSION] = (token, csrf)
        await self.app(scope, receive, send)


def principal_of(scope: Scope) -> Principal:
    return scope.get(PRINCIPAL, ANONYMOUS)
