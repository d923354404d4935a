"""The HTTP client of a reverse proxy (JupyterLab at /lab, apps at /dash).

Its cookie jar keeps nothing: a proxy serves many callers through one client, so a Set-Cookie
from upstream belongs to the browser that asked, and must never ride along on another caller's
request (httpx's default jar would replay it to everyone).
"""

from __future__ import annotations

from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx


def upstream_client(max_connections: int = 64, read_timeout: float = 120.0) -> httpx.AsyncClient:
    jar = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
    return httpx.AsyncClient(timeout=httpx.Timeout(read_timeout, connect=5.0, pool=10.0), cookies=jar,
                             limits=httpx.Limits(max_connections=max_connections), follow_redirects=False)
