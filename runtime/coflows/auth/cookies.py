"""The session cookie: one place sets and clears it, with the same attributes everywhere.

HttpOnly (scripts cannot read it), SameSite=Lax (cross-site requests do not carry it, except
top-level GET navigations, which change nothing), Secure when the request came over TLS
(directly or through a proxy that uvicorn trusts), Path=/.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response

from coflows.server.auth import SESSION_COOKIE


def is_tls(request: Request) -> bool:
    return request.url.scheme in ("https", "wss")


def set_session_cookie(response: Response, request: Request, token: str, expires: float) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=max(0, int(expires - time.time())), path="/",
                        httponly=True, samesite="lax", secure=is_tls(request))


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=is_tls(request))
