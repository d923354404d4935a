"""The web UI of flows: a list of runs (`/ui/flows`) and the live DAG page of one run
(`/ui/flows/runs/{id}`).

The pages are static HTML and plain ES modules (`ui_static/`) that read the same REST and SSE
endpoints as any client (`/flows/runs/...`), so the UI shows nothing the API does not. The graph
libraries (cytoscape, dagre) come from the repo's `node_modules` (npm, pinned by
package-lock.json), served under `/ui/vendor/`: no CDN, so the page works offline and on a
loopback-only machine. Assets hold no data and need no key; the page of a run is shown only to
callers who may see the run (the same rule as `GET /flows/runs/{id}`).
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
from coflows.server.auth import principal_of
from coflows.server.flow_routes import FlowRoutes

STATIC = Path(__file__).resolve().parent / "ui_static"

# Public name → file inside node_modules. A fixed list: the rest of node_modules is never served.
VENDOR: dict[str, str] = {
    "cytoscape.mjs": "cytoscape/dist/cytoscape.esm.min.mjs",
    "dagre.mjs": "@dagrejs/dagre/dist/dagre.esm.js",
    "dagre.esm.js.map": "@dagrejs/dagre/dist/dagre.esm.js.map",
}

MEDIA = {".mjs": "text/javascript; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".html": "text/html; charset=utf-8",
         ".map": "application/json", ".svg": "image/svg+xml"}


def node_modules() -> Path | None:
    """Where the npm packages are: `$COFLOWS_NODE_MODULES`, else the nearest `node_modules` above
    the package (the repo root for a checkout or an editable install), else the working directory's."""
    env = os.environ.get("COFLOWS_NODE_MODULES")
    if env:
        candidates = [Path(env)]
    else:
        candidates = [p / "node_modules" for p in STATIC.parents] + [Path.cwd() / "node_modules"]
    for path in candidates:
        if (path / VENDOR["cytoscape.mjs"]).is_file():
            return path
    return None


def _page(title: str, body: str, status: int) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<link rel='stylesheet' href='/ui/static/ui.css'></head>"
        f"<body class='message'><h1>{html.escape(title)}</h1>{body}"
        "<p><a href='/ui/flows'>All runs</a></p></body></html>", status_code=status)


def _missing_vendor() -> HTMLResponse:
    where = os.environ.get("COFLOWS_NODE_MODULES") or "node_modules next to the coflows checkout"
    return _page("UI libraries are not installed",
                 f"<p>The web UI's npm packages were not found ({html.escape(where)}). "
                 "Run <code>bin/setup.sh</code> (it runs <code>npm ci</code>) at the repo root, "
                 "or set <code>COFLOWS_NODE_MODULES</code> to a node_modules folder.</p>", 503)


class UiRoutes:
    def __init__(self, flows: FlowRoutes) -> None:
        self.flows = flows

    async def index(self, request: Request) -> Response:
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(f"/ui/flows{query}")

    async def runs(self, request: Request) -> Response:  # needs no vendor library
        return FileResponse(STATIC / "runs.html", media_type=MEDIA[".html"])

    async def run(self, request: Request) -> Response:
        if node_modules() is None:
            return _missing_vendor()
        try:
            await asyncio.to_thread(self.flows.visible_run, request)  # unknown or not visible: 404, as the API
        except NotFoundError:
            run_id = request.path_params["run_id"]
            hint = ("" if not principal_of(request.scope).is_anonymous else
                    "<p>If the run belongs to a private workflow, open this page with "
                    "<code>?_cokey=YOUR_KEY</code>.</p>")
            return _page("Unknown flow run", f"<p>There is no flow run <code>{html.escape(run_id)}</code> "
                         f"that you may see.</p>{hint}", 404)
        return FileResponse(STATIC / "run.html", media_type=MEDIA[".html"])

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        path = STATIC / name
        if "/" in name or name.startswith(".") or not path.is_file():
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
        Route("/ui", r.index),
        Route("/ui/flows", r.runs),
        Route("/ui/flows/runs/{run_id}", r.run),
        Route("/ui/static/{name}", r.static),
        Route("/ui/vendor/{name}", r.vendor),
    ]
