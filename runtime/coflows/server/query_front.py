"""The hot route ahead of Starlette: `GET`/`POST /flow/query/{wid}/{qid}/{fn}` skip its router and wrappers.

A no-op query spent more time in Starlette's layers (the error and exception
wrappers, a closure around `send` per layer, the router's regex per route) than
in the call itself: uvicorn with a bare ASGI callable answers ~2.7 times as many
requests as uvicorn with a one-route Starlette app (bench/http_query.py prints
both). This front answers the query route with the same pure-ASGI middlewares
the app has (body limit, draining, authentication, in that order) around
`QueryEndpoint`, and hands every other request (other methods on that path
too: Starlette's 405 with `Allow`) to the full app. An unexpected error is
what Starlette's outermost wrapper would make of it: uvicorn logs it and answers
500 without its text (or closes the connection if the answer had begun).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


PREFIX = "/flow/query/"
_METHODS = ("GET", "POST")


def query_params(path: str) -> dict[str, str] | None:
    """`{wid}/{qid:path}/{fn}` after the prefix, as Starlette's route matches it: wid and fn are one segment
    each (not empty), qid is what lies between (it may hold slashes); None when the path does not match."""
    rest = path[len(PREFIX):]
    wid, sep, tail = rest.partition("/")
    if not wid or not sep:
        return None
    qid, sep, fn = tail.rpartition("/")
    if not sep or not fn:
        return None
    return {"wid": wid, "qid": qid, "fn": fn}


class QueryFront:
    """Routes `/flow/query/…` (GET, POST) to `query` (the middlewares around the endpoint), the rest to `app`."""

    def __init__(self, app: ASGIApp, query: ASGIApp) -> None:
        self.app = app
        self.query = query

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in _METHODS:
            path: str = scope["path"]
            root = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root):]
            if path.startswith(PREFIX):
                params = query_params(path)
                if params is not None:
                    scope["path_params"] = params
                    await self.query(scope, receive, send)
                    return
        await self.app(scope, receive, send)
