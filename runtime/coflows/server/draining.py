"""While the server drains (`runtime.draining`), routes that start user code or change data get 503.

The server drains before a restart (its memory limit: `server/memory.py`): calls
in flight may finish, new ones are refused with `Retry-After` so clients come
back to the next server process. Reads, `/health`, the UI and `/live` stay
served. The middleware also counts the guarded requests in flight, so the
drain can end as soon as they are done instead of always waiting its grace.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

RETRY_AFTER_SECONDS = 5

_ALWAYS = ("/flow/query/", "/flow/ActiveAgentToggle", "/m/save", "/m/add", "/m/exchange", "/m/remove")
_POST = ("/flow/agent/", "/flows/")
_BODY = json.dumps({"error": {"type": "Draining", "message": "the server is restarting (it passed its memory "
                              f"limit); try again in {RETRY_AFTER_SECONDS} s"}}).encode()


class InFlight:
    """How many guarded requests are running now (changed on the event loop only)."""

    def __init__(self) -> None:
        self.count = 0


def guarded(scope: Scope) -> bool:
    """Queries, M writes, agent actions and flow submissions/reruns: the routes that start work."""
    path: str = scope["path"]
    if path.startswith(_ALWAYS):
        return True
    return scope["method"] == "POST" and path.startswith(_POST) and not path.endswith("/cancel")


class DrainingMiddleware:
    """503 + Retry-After for guarded routes while `runtime.draining`; counts guarded requests in flight."""

    def __init__(self, app: ASGIApp, runtime: Any, in_flight: InFlight) -> None:
        self.app = app
        self.runtime = runtime
        self.in_flight = in_flight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not guarded(scope):
            await self.app(scope, receive, send)
            return
        if self.runtime.draining:
            await send({"type": "http.response.start", "status": 503,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
                                    (b"content-length", str(len(_BODY)).encode())]})
            await send({"type": "http.response.body", "body": _BODY})
            return
        self.in_flight.count += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight.count -= 1
