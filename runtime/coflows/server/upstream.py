"""The HTTP client of a reverse proxy (JupyterLab at /lab, apps at /dash).

Its cookie jar keeps nothing: a proxy serves many callers through one client, so a Set-Cookie
from upstream belongs to the browser that asked, and must never ride along on another caller's
request (httpx's default jar would replay it to everyone).
"""

from __future__ import annotations

from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx
from starlette.requests import Request


def upstream_client(max_connections: int = 64, read_timeout: float = 120.0) -> httpx.AsyncClient:
    jar = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
    return httpx.AsyncClient(timeout=httpx.Timeout(read_timeout, connect=5.0, pool=10.0), cookies=jar,
                             limits=httpx.Limits(max_connections=max_connections), follow_redirects=False)


async def send_upstream(client: httpx.AsyncClient, request: Request, url: str,
                        headers: list[tuple[str, str]]) -> httpx.Response:
    """Forward `request` (its method, and its body streamed when it has one) to `url`; the answer
    is streamed: the caller closes it. httpx's timeout and transport errors propagate."""
    has_body = "content-length" in request.headers or "transfer-encoding" in request.headers
    upstream = client.build_request(request.method, url, headers=headers,
                                    content=request.stream() if has_body else None)
    return await client.send(upstream, stream=True)
