"""The web app: every `/ui/…` page, its static files and its npm libraries.

The app is one HTML page (`ui_static/app.html`) with Preact + htm modules (`ui_static/app.js`,
`lib/`, `pages/`) that read the same REST, SSE and websocket endpoints as any client, so the app
shows and does nothing the API does not. Page paths serve that HTML to anyone (it holds no data);
the data behind each page is authorized by the API. The libraries come from the repo's
`node_modules` (npm, pinned by package-lock.json), served under `/ui/vendor/` from a fixed list: no
CDN, so the app works offline and on a loopback-only machine.
"""

from __future__ import annotations

import asyncio
import html
import os
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from coflows.errors import NotFoundError
from coflows.flows import FlowEngine
from coflows.flows.registry_resolver import RegistryResolver
from coflows.runtime import Runtime
from coflows.server.flow_routes import FlowRoutes

STATIC = Path(__file__).resolve().parent / "ui_static"

# Public name → file inside node_modules. A fixed list: the rest of node_modules is never served.
VENDOR: dict[str, str] = {
    "cytoscape.mjs": "cytoscape/dist/cytoscape.esm.min.mjs",
    "dagre.mjs": "@dagrejs/dagre/dist/dagre.esm.js",
    "dagre.esm.js.map": "@dagrejs/dagre/dist/dagre.esm.js.map",
    "preact.mjs": "preact/dist/preact.module.js",
    "preact-hooks.mjs": "preact/hooks/dist/hooks.module.js",
    "htm-preact.mjs": "htm/preact/index.module.js",
    "htm.mjs": "htm/dist/htm.module.js",
    "uplot.mjs": "uplot/dist/uPlot.esm.js",
    "uplot.css": "uplot/dist/uPlot.min.css",
    "marked.mjs": "marked/lib/marked.esm.js",
    "dompurify.mjs": "dompurify/dist/purify.es.mjs",
    "highlight.mjs": "@highlightjs/cdn-assets/es/highlight.min.js",
    "highlight.css": "@highlightjs/cdn-assets/styles/github.min.css",
}

MEDIA = {".mjs": "text/javascript; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".html": "text/html; charset=utf-8",
         ".map": "application/json", ".svg": "image/svg+xml"}

# Every page of the app (the router in app.js knows the same paths).
APP_PAGES = (
    "/ui", "/ui/login", "/ui/workflows/{wid}", "/ui/workflows/{wid}/queries/{qid:path}", "/ui/agents", "/ui/m",
    "/ui/m/{topic:path}", "/ui/flows", "/ui/logs", "/ui/admin", "/ui/profile",
)


def node_modules() -> Path | None:
    """Where the npm packages are: `$COFLOWS_NODE_MODULES`, else the nearest `node_modules` above
    the package (the repo root for a checkout or an editable install), else the working directory's."""
    env = os.environ.get("COFLOWS_NODE_MODULES")
    if env:
        candidates = [Path(env)]
    else:
        candidates = [p / "node_modules" for p in STATIC.parents] + [Path.cwd() / "node_modules"]
    for path in candidates:
        if (path / VENDOR["preact.mjs"]).is_file():
            return path
    return None


def _page(title: str, body: str, status: int) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<link rel='stylesheet' href='/ui/static/app.css'></head>"
        f"<body><main><h1>{html.escape(title)}</h1>{body}"
        "<p><a href='/ui'>The dashboard</a></p></main></body></html>", status_code=status)


def _missing_vendor() -> HTMLResponse:
    where = os.environ.get("COFLOWS_NODE_MODULES") or "node_modules next to the coflows checkout"
    return _page("UI libraries are not installed",
                 f"<p>The web app's npm packages were not found ({html.escape(where)}). "
                 "Run <code>bin/setup.sh</code> (it runs <code>npm ci</code>) at the repo root, "
                 "or set <code>COFLOWS_NODE_MODULES</code> to a node_modules folder.</p>", 503)


def app_page(status: int = 200) -> Response:
    if node_modules() is None:
        return _missing_vendor()
    return FileResponse(STATIC / "app.html", status_code=status, media_type=MEDIA[".html"],
                        headers={"Cache-Control": "no-cache"})


class UiRoutes:
    def __init__(self, flows: FlowRoutes) -> None:
        self.flows = flows

    async def home(self, request: Request) -> Response:
        return RedirectResponse("/ui")

    async def page(self, request: Request) -> Response:
        return app_page()

    async def run(self, request: Request) -> Response:
        """The page of a flow run: 404 (the app then says so) when the caller may not see the run, as the API."""
        try:
            await asyncio.to_thread(self.flows.visible_run, request)
        except NotFoundError:
            return app_page(404)
        return app_page()

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        path = (STATIC / name).resolve()
        if (any(part.startswith(".") for part in Path(name).parts) or STATIC not in path.parents
                or not path.is_file()):
            return Response(f"no UI file {name!r}", status_code=404, media_type="text/plain")
        return FileResponse(path, media_type=MEDIA.get(path.suffix, "application/octet-stream"),
                            headers={"Cache-Control": "no-cache"})

    async def vendor(self, request: Request) -> Response:
        name = request.path_params["name"]
        rel = VENDOR.get(name)
        if rel is None:
            return Response(f"no vendor file {name!r} (served: {', '.join(VENDOR)})", status_code=404,
                            media_type="text/plain")
        root = node_modules()
        if root is None or not (root / rel).is_file():
            return _missing_vendor()
        return FileResponse(root / rel, media_type=MEDIA.get(Path(name).suffix, "application/octet-stream"),
                            headers={"Cache-Control": "public, max-age=3600"})


def ui_routes(runtime: Runtime, engine: FlowEngine, resolver: RegistryResolver) -> list[BaseRoute]:
    r = UiRoutes(FlowRoutes(runtime, engine, resolver))
    return [
        Route("/", r.home),
        *(Route(path, r.page) for path in APP_PAGES),
        Route("/ui/flows/runs/{run_id}", r.run),
        Route("/ui/static/{name:path}", r.static),
        Route("/ui/vendor/{name}", r.vendor),
    ]
