"""One auth layer for every route: who is calling.

The key may come in the `x-api-key` or `_cokey` header, or the `_cokey` query
parameter (CoFlows compatibility). The server's `SecretKey` is the admin key;
other keys are looked up through `Authenticator.lookup` (users and their
secrets come with the users issue). A request without a key is anonymous; a
request with an unknown key is refused (401), never silently downgraded.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from coflows.permissions import ADMIN, ANONYMOUS, Principal
from coflows.redact import protect

PRINCIPAL = "coflows.principal"


class Authenticator:
    def __init__(self, admin_key: str, lookup: Callable[[str], Principal | None] | None = None) -> None:
        protect(admin_key)  # masked in every log line and error body of this process
        self._admin_key = admin_key.encode()
        self._lookup = lookup

    def resolve(self, key: str) -> Principal | None:
        if hmac.compare_digest(key.encode(), self._admin_key):
            return ADMIN
        if self._lookup is not None:
            return self._lookup(key)
        return None


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


class AuthMiddleware:
    """Pure ASGI (no per-request task or body buffering): sets `scope["coflows.principal"]`."""

    def __init__(self, app: ASGIApp, authenticator: Authenticator) -> None:
        self.app = app
        self.authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        key = _key_from(scope)
        if key is None:
            scope[PRINCIPAL] = ANONYMOUS
        else:
            principal = self.authenticator.resolve(key)
            if principal is None:
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 4401})
                    return
                body = json.dumps({"error": {"type": "Unauthenticated", "message": "invalid API key"}}).encode()
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
            scope[PRINCIPAL] = principal
        await self.app(scope, receive, send)


def principal_of(scope: Scope) -> Principal:
    return scope.get(PRINCIPAL, ANONYMOUS)
