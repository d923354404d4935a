"""OpenAPI 3.1 built from the Functions' signatures and docs.

Per query at `/flow/openapi/{wid}/{qid}` and for everything the caller may
call at `/openapi.json` (with the server's own routes: `openapi_routes.py`).
Functions the caller may not call are left out.
"""

from __future__ import annotations

import re
from typing import Any

from coflows import __version__
from coflows.functions import Function
from coflows.permissions import Principal, can_call
from coflows.server.openapi_routes import ERROR, responses
from coflows.workflow import Query, Workflow

_API_KEY = {"type": "apiKey", "in": "header", "name": "x-api-key"}
_API_KEY_QUERY = {"type": "apiKey", "in": "query", "name": "_cokey"}
_ERROR = ERROR


def _op_id(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", "_".join(parts)).strip("_")


def _operations(wf: Workflow, q: Query, fn: Function) -> dict[str, Any]:
    tag = f"{wf.name}/{q.id}"
    desc = fn.docs.description or ""
    codes = responses({"200": {"description": fn.docs.returns or "the function's result",
                               "content": {"application/json": {"schema": fn.returns.json_schema()}}}},
                      "400", "401", "403", "404", "413", "503", "504")
    codes["500"] = {"description": "the function raised an error (error.origin is 'user')",
                    "content": {"application/json": {"schema": _ERROR}}}
    params = [
        {"name": p.name, "in": "query", "required": p.required,
         "description": p.description or f"{p.type.label}",
         "schema": p.type.json_schema() | ({"default": p.default} if not p.required and _plain(p.default) else {})}
        for p in fn.params
    ]
    ops: dict[str, Any] = {
        "get": {"operationId": _op_id(wf.name, q.id, fn.name, "get"), "tags": [tag],
                "summary": fn.name, "description": desc, "parameters": params, "responses": codes},
    }
    if fn.raw_body:
        body_schema: dict[str, Any] = {"type": "object", "description": "passed as raw JSON text"}
    else:
        body_schema = {
            "type": "object",
            "properties": {p.name: p.type.json_schema() | ({"description": p.description} if p.description else {})
                           for p in fn.params},
            "required": [p.name for p in fn.params if p.required],
            "additionalProperties": False,
        }
    ops["post"] = {"operationId": _op_id(wf.name, q.id, fn.name, "post"), "tags": [tag],
                   "summary": fn.name, "description": desc,
                   "requestBody": {"required": bool(fn.params),
                                   "content": {"application/json": {"schema": body_schema}}},
                   "responses": codes}
    return ops


def _plain(v: Any) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


def build_openapi(items: list[tuple[Workflow, Query]], principal: Principal, title: str = "coflows",
                  info: dict[str, str] | None = None, server_paths: dict[str, Any] | None = None) -> dict[str, Any]:
    """The functions of `items` the caller may call, plus `server_paths` (the server's own routes)."""
    paths: dict[str, Any] = dict(server_paths or {})
    tags = []
    for wf, q in items:
        visible = [fn for _, fn in sorted(q.functions.items()) if can_call(wf, fn, principal)]
        if not visible:
            continue
        tags.append({"name": f"{wf.name}/{q.id}", "description": f"{q.language} query {q.source.name} of {wf.name}"})
        for fn in visible:
            paths[f"/flow/query/{wf.id}/{q.id}/{fn.name}"] = _operations(wf, q, fn)
    doc_info = {"title": title, "version": __version__}
    if info:
        doc_info |= {k: v for k, v in info.items() if k in ("title", "description", "version", "termsOfService")}
    return {
        "openapi": "3.1.0",
        "info": doc_info,
        "paths": paths,
        "tags": tags,
        "components": {"securitySchemes": {"apiKey": _API_KEY, "cokey": _API_KEY_QUERY}},
        "security": [{}, {"apiKey": []}, {"cokey": []}],
    }
