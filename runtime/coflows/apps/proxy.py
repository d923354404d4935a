"""`/dash/{wid}/{qid}/…`: the server's door to a query's app (HTTP only; no websockets).

Who: Read on the app's workflow (API key, `_cokey` or the session cookie, as every route). An
anonymous browser asking for a page is sent to the login page (`/ui/login?next=…`); other anonymous
requests get 401, callers without Read 403. Unknown workflows and queries, and queries that are not
apps, are 404; an app that cannot start or does not answer is a 502 naming the query.

What the proxy removes and adds: the app never sees the caller's coflows credentials (`x-api-key`,
`_cokey` in the query string and the Referer, `authorization`, the session and CSRF cookies and
headers) nor client-made `X-Coflows-*` headers; it gets `X-Coflows-User` (the caller's ID) and
`X-Coflows-Level` (`read` or `write`). Its responses cannot set coflows' cookies.

CSRF: a state-changing request made with the session cookie must carry the session's CSRF token (the
auth layer checks it before this route). Dash's renderer sends the `_csrf_token` cookie back in an
`X-CSRFToken` header with every POST, so the proxy sets that cookie (path: the app's prefix,
SameSite=Strict) to the session's token: Dash's callbacks work in a logged-in browser, and a
cross-site page can neither read the cookie nor send the header.

Bounds: request bodies ≤ Server.MaxBodyBytes (the server's body limit runs first); upstream connect
5 s, each read 120 s (504 after); at most 64 upstream connections at once; responses are streamed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import httpx
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from coflows.apps.detect import PREFIX, app_path
from coflows.apps.manager import App, AppManager
from coflows.errors import CoflowsError, NotFoundError
from coflows.jupyter.identity import mint
from coflows.permissions import LEVEL_NAMES, READ, require, workflow_level
from coflows.server.auth import SESSION, SESSION_COOKIE, principal_of
from coflows.server.responses import error_response
from coflows.server.upstream import send_upstream, upstream_client

log = logging.getLogger("coflows.apps")

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
ROUTE = PREFIX + "/{wid}/{path:path}"
HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
                 "transfer-encoding", "upgrade", "host"})
CREDENTIALS = frozenset({"x-api-key", "_cokey", "authorization", "x-csrf-token", "x-xsrftoken", "x-csrftoken",
                         "cookie", "referer"})
OWN_HEADERS = frozenset({"date", "server"})  # the server's own (uvicorn's), not the app's second copy
CSRF_COOKIE = "_csrf_token"  # the cookie Dash's renderer echoes in X-CSRFToken
OUR_COOKIES = frozenset({SESSION_COOKIE, CSRF_COOKIE})
USER_HEADER, LEVEL_HEADER, IDENTITY_HEADER = "x-coflows-user", "x-coflows-level", "x-coflows-identity"


class _QuietForwards(logging.Filter):
    """Drops httpx's INFO line for each request forwarded to an app (a page load makes dozens)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        target = str(args[1]) if len(args) >= 2 else ""
        return not (target.startswith("http://127.0.0.1:") and f"{PREFIX}/" in target)


def _error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status)


def _without_key(query: str) -> str:
    if "_cokey" not in query:
        return query
    return urlencode([(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "_cokey"])


def _referer(value: str) -> str:
    parts = urlsplit(value)
    return urlunsplit(parts._replace(query=_without_key(parts.query))) if "_cokey" in parts.query else value


def _cookies_without_ours(raw: str | None) -> str | None:
    if not raw:
        return None
    keep = [p.strip() for p in raw.split(";") if p.strip() and p.strip().partition("=")[0] not in OUR_COOKIES]
    return "; ".join(keep) or None


def _split(workflow: Any, rest: str) -> tuple[Any, str] | None:
    """(query, what follows its ID) for `rest` = `{qid}/…`; the longest matching ID wins (IDs may hold '/')."""
    best = None
    for qid, query in list(workflow.queries.items()):
        if (rest == qid or rest.startswith(qid + "/")) and (best is None or len(qid) > len(best[0].id)):
            best = (query, rest[len(qid):])
    return best


class AppProxy:
    def __init__(self, runtime: Any, manager: AppManager) -> None:
        self.runtime = runtime
        self.manager = manager
        self._starting: dict[tuple[str, str], asyncio.Lock] = {}
        quiet = logging.getLogger("httpx")
        if not any(isinstance(f, _QuietForwards) for f in quiet.filters):
            quiet.addFilter(_QuietForwards())
        self.client = upstream_client()  # keeps no cookies: an app's Set-Cookie is the browser's alone

    def _anonymous(self, request: Request, what: str) -> Response:
        if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            query = _without_key(request.url.query)
            target = request.url.path + (f"?{query}" if query else "")
            return RedirectResponse(f"/ui/login?next={quote(target, safe='/')}", status_code=303)
        return _error(401, "Unauthenticated", f"{what} needs Read on its workflow: log in or send an API key")

    async def http(self, request: Request) -> Response:
        principal = principal_of(request.scope)
        wid, rest = request.path_params["wid"], request.path_params["path"]
        try:
            workflow = self.runtime.registry.workflow(wid)
            found = _split(workflow, rest)
            what = f"the app {found[0].id if found else rest.partition('/')[0]}"
            if principal.is_anonymous and workflow_level(workflow, principal) < READ:
                return self._anonymous(request, what)
            require(workflow, principal, READ, what)
            if found is None:
                raise NotFoundError(f"unknown app '{rest.partition('/')[0]}' in workflow '{workflow.name}'")
        except CoflowsError as exc:
            return error_response(exc, principal)
        query, tail = found
        if tail == "":  # Dash serves its page at the prefix with its slash
            target = request.url.path + "/" + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(target, status_code=307)
        app = self.manager.current(workflow, query)
        if app is None:
            # one thread per app at a time: the other requests of a page load wait here, on the loop,
            # not in threads of their own (which would starve the thread pool while an app starts)
            lock = self._starting.setdefault((workflow.id, query.id), asyncio.Lock())
            try:
                async with lock:
                    app = self.manager.current(workflow, query) or \
                        await run_in_threadpool(self.manager.ensure, workflow, query)
            except CoflowsError as exc:  # AppFailed (502), or the query is no longer an app (404)
                return error_response(exc, principal)
        return await self._forward(request, app, principal, workflow, query, tail)

    def _upstream_path(self, request: Request, app: App, query: Any, tail: str) -> str:
        """The app's prefix and the rest of the path as the client sent it (still %-encoded)."""
        raw = request.scope.get("raw_path")
        if raw:
            parts = raw.decode("latin-1").split("/")  # ['', 'dash', wid, *qid segments, *rest]
            return app.path + "/".join(parts[3 + query.id.count("/") + 1:])
        return app.path + quote(tail[1:])

    async def _forward(self, request: Request, app: App, principal: Any, workflow: Any, query: Any,
                       tail: str) -> Response:
        headers = [(k, v) for k, v in request.headers.items()
                   if k not in HOP and k not in CREDENTIALS and not k.startswith("x-coflows-")]
        cookies = _cookies_without_ours(request.headers.get("cookie"))
        if cookies:
            headers.append(("cookie", cookies))
        if "referer" in request.headers:
            headers.append(("referer", _referer(request.headers["referer"])))
        level = 2 if principal.is_admin else workflow_level(workflow, principal)
        headers += [(USER_HEADER, principal.id), (LEVEL_HEADER, LEVEL_NAMES.get(level, str(level)).lower()),
                    (IDENTITY_HEADER, mint(self.manager.secret, principal.id))]  # for with_viewer (wsgi.py)
        query_string = _without_key(request.url.query)
        url = app.base + self._upstream_path(request, app, query, tail) + (f"?{query_string}" if query_string else "")
        try:
            answer = await send_upstream(self.client, request, url, headers)
        except httpx.TimeoutException:
            return _error(504, "Timeout", f"{app.label}: the app did not answer in time")
        except httpx.TransportError as e:
            self.manager.mark_dead(app)
            log.warning("%s: the app on port %d does not answer: %s", app.label, app.port, e)
            return _error(502, "AppFailed", f"{app.label}: the app does not answer (its server stopped?); the next "
                          "request starts it again")
        out = StreamingResponse(self._body(answer, app), status_code=answer.status_code,
                                background=BackgroundTask(answer.aclose))
        for k, v in answer.headers.multi_items():
            lk = k.lower()
            if lk in HOP or lk in OWN_HEADERS or (lk == "set-cookie" and v.partition("=")[0].strip() in OUR_COOKIES):
                continue
            if lk == "location" and v.startswith(app.base):
                v = v[len(app.base):] or "/"
            out.headers.append(k, v)
        session = request.scope.get(SESSION)
        if session is not None and request.cookies.get(CSRF_COOKIE) != session[1]:
            prefix = request.url.path[: request.url.path.index("/", len(PREFIX) + 1) + 1] + query.id + "/"
            out.set_cookie(CSRF_COOKIE, session[1], path=prefix, samesite="strict",
                           secure=request.url.scheme == "https")
        if query.error is not None:  # the source no longer loads: its last good version answered
            from coflows.server.queries import stale_header

            for k, v in stale_header(query.error, workflow.base_errors):
                out.headers.append(k.decode(), v.decode("latin-1"))
        return out

    async def _body(self, answer: httpx.Response, app: App) -> Any:
        try:
            async for chunk in answer.aiter_raw():
                yield chunk
        except httpx.HTTPError as e:
            log.warning("%s: the app stopped sending a response: %s", app.label, e)

    async def close(self) -> None:
        await self.client.aclose()

    def routes(self) -> list[BaseRoute]:
        return [Route(ROUTE, self.http, methods=METHODS)]


__all__ = ["AppProxy", "ROUTE", "app_path"]
