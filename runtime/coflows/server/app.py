"""The Starlette application: routes, the auth layer and the runtime's lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import html
import json
import logging
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from coflows import __version__
from coflows.permissions import VIEW, can_view, require
from coflows.runtime import Runtime
from coflows.server.auth import AuthMiddleware, Authenticator, principal_of
from coflows.server.draining import DrainingMiddleware, InFlight
from coflows.server.legacy_routes import legacy_routes
from coflows.server.cloud_routes import BodyLimits
from coflows.server.openapi import build_openapi
from coflows.server.openapi_routes import server_paths
from coflows.server.queries import QueryEndpoint
from coflows.server.query_front import QueryFront
from coflows.server.responses import error_response, json_response
from coflows.server.workflow_routes import workflow_routes

log = logging.getLogger("coflows.server")

# GIL switch interval (normal, while a call runs over 50 ms); bench/spin_health.py measures it.
SWITCH_INTERVALS_S = tuple(float(x) for x in os.environ.get("COFLOWS_SWITCH_INTERVALS", "0.001,0.0002").split(","))


def _swagger_static() -> Path | None:
    """swagger-ui's static files, found without importing the package (jinja2 & co. at every start)."""
    import importlib.util

    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "static"
    return path if (path / "swagger-ui-bundle.js").exists() else None


_DOCS_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({{url: {url}, dom_id: "#swagger-ui", deepLinking: true,
  requestInterceptor: (req) => {{ const k = new URLSearchParams(location.search).get("_cokey");
    if (k) req.headers["x-api-key"] = k; return req; }} }});
</script></body></html>"""


class Api:
    """Route handlers that need the runtime."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.started = time.monotonic()

    async def health(self, request: Request) -> Response:
        body = {"status": "ok", "version": __version__, "workflows": len(self.runtime.registry.workflows()),
                "engines": sorted(self.runtime.engines.started()),
                "uptime_s": round(time.monotonic() - self.started, 1),
                "login": {"password": self.runtime.users is not None,
                          "oidc": bool(self.runtime.config.auth.oidc.issuer)}}
        if principal_of(request.scope).is_admin:  # the pool's load is the operator's business only
            body["calls"] = self.runtime.calls.stats()
            body["pid"] = os.getpid()  # `coflows cloud restart` sees the new server process
        return JSONResponse(body)

    async def workflows(self, request: Request) -> Response:
        principal = principal_of(request.scope)
        visible = [wf.status() for wf in self.runtime.registry.workflows() if can_view(wf, principal)]
        return json_response(visible)

    async def openapi_all(self, request: Request) -> Response:
        principal = principal_of(request.scope)
        items = [(wf, q) for wf in self.runtime.registry.workflows() if can_view(wf, principal)
                 for q in wf.queries.values()]
        installed = {getattr(r, "path", None) for r in request.app.routes}
        own = {path: ops for path, ops in server_paths().items() if path in installed}
        return json_response(build_openapi(items, principal, "coflows", server_paths=own))

    async def openapi_query(self, request: Request) -> Response:
        principal = principal_of(request.scope)
        try:
            wf = self.runtime.registry.workflow(request.path_params["wid"])
            require(wf, principal, VIEW, "its OpenAPI")  # 401 anonymous, 403 with a key (docs/security.md)
            q = self.runtime.registry.query(wf, request.path_params["qid"])
        except Exception as exc:  # noqa: BLE001
            return error_response(exc, principal)
        info = q.loaded.info if q.loaded else {}
        doc = build_openapi([(wf, q)], principal, f"{wf.name} / {q.id}", info)
        if request.query_params.get("format") == "yaml":
            import yaml

            return Response(yaml.safe_dump(doc, sort_keys=False), media_type="application/yaml")
        return json_response(doc)

    async def docs(self, request: Request) -> Response:
        url = request.query_params.get("url", "/openapi.json")
        if not url.startswith("/") or url.startswith("//") or "\\" in url:
            url = "/openapi.json"  # this server's specs only: a link must not load someone else's page
        return HTMLResponse(_DOCS_PAGE.format(title="coflows API", url=json.dumps(html.escape(url))))


def build_routes(runtime: Runtime, query: QueryEndpoint) -> list[BaseRoute]:
    api = Api(runtime)
    routes: list[BaseRoute] = [
        # GET and POST are answered by QueryFront before the router; the route stays for the rest (405, HEAD)
        # and for the OpenAPI document's list of paths
        Route("/flow/query/{wid}/{qid:path}/{fn}", query, methods=["GET", "POST"]),
        Route("/health", api.health),
        Route("/flow/workflows", api.workflows),
        Route("/flow/openapi/{wid}/{qid:path}", api.openapi_query),
        Route("/openapi.json", api.openapi_all),
        Route("/docs", api.docs),
        *workflow_routes(runtime),  # the web app's workflow and query pages
        *legacy_routes(query),  # CoFlows' /flow/getquery and /m/getwb forms of a call
    ]
    static = _swagger_static()
    if static is not None:
        routes.append(Mount("/docs/static", StaticFiles(directory=static), name="swagger"))
    return routes


class CoflowsApp(Starlette):
    """Starlette with `QueryFront` outermost: query calls skip the router and Starlette's own wrappers."""

    def __init__(self, query: ASGIApp, **kwargs: Any) -> None:
        self.query = query
        super().__init__(**kwargs)

    def build_middleware_stack(self) -> ASGIApp:
        return QueryFront(super().build_middleware_stack(), self.query)


def create_app(runtime: Runtime, extra_routes: list[BaseRoute] | None = None) -> Starlette:
    """The ASGI app for a loaded runtime. Components (agents, M, flows) add their routes."""

    # A thread running Python code keeps the GIL until another asks for it and a switch interval
    # passes (5 ms by default); the event loop needs it back for every request, so with calls
    # spinning it would wait that long, many times over. The watchdog shortens it while calls last.
    runtime.calls.watchdog.switch_intervals = SWITCH_INTERVALS_S
    sys.setswitchinterval(SWITCH_INTERVALS_S[0])

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if runtime.changes is not None:
            runtime.changes.attach(asyncio.get_running_loop())
        for start in runtime.startups:
            start()
        # Everything loaded so far (libraries, engines, user modules) lives as long as the
        # server: move it out of the collector's sight so full collections stay cheap.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            if runtime.changes is not None:
                runtime.changes.detach()
            runtime.close()

    from coflows.components import install_all

    query = QueryEndpoint(runtime)
    routes = build_routes(runtime, query) + install_all(runtime) + list(extra_routes or [])
    authenticator = Authenticator(runtime.config.admin_key(), runtime.identities)
    in_flight = InFlight()
    # the body limit first: an oversized body is refused before anything else looks at the request
    # (the cloud deploy route bounds its own body by Server.MaxDeployBytes: server/cloud_routes.py)
    middleware = [Middleware(BodyLimits, max_bytes=runtime.config.server.max_body_bytes),
                  Middleware(DrainingMiddleware, runtime=runtime, in_flight=in_flight),
                  Middleware(AuthMiddleware, authenticator=authenticator)]
    # the same middlewares, in the same order, around the query endpoint alone (server/query_front.py)
    hot: ASGIApp = query
    for cls, args, kwargs in reversed(middleware):
        hot = cls(hot, *args, **kwargs)
    app = CoflowsApp(hot, routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.in_flight = in_flight  # read by the memory monitor (server/memory.py) while it drains
    return app
