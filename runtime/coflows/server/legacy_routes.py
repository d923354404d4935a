"""CoFlows' older URL forms of a query call, answered by the `/flow/query/{wid}/{qid}/{fn}` endpoint itself.

- `GET /flow/getquery?wid=&qid=&name=&p=…`: CoFlows' `FlowController.GetQuery` (its web app's form).
- `GET /m/getwb?workbook=&id=&name=&p[0]=…`: the form of the CoFlows workspace docs (`Files/docs/Queries/*.md`),
  workbook = workflow ID, id = query ID, name = function; `/flow/getwb` is the same form as later CoFlows docs
  spell it.

Why a rewrite rather than handlers of their own: the call then goes through the very code of `/flow/query`
(authentication, permission checks, the bulkhead, time limits, the disconnect watch, errors, the `.csv` /
`.txt` suffix of the function name), so the legacy forms can never drift from it. The rewrite takes the three
naming parameters out of the query string and leaves every other value, in order, as the arguments, exactly as
`/flow/query` reads its query string (`p[0]`, `p[1]`, … or repeated `p`; other keys by parameter name;
`_cokey` is the API key). A naming parameter that is missing, empty or given twice is a 400 naming it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from coflows.errors import ArgumentError
from coflows.server.auth import principal_of
from coflows.server.queries import QueryEndpoint, _respond_error

# route path → (workflow key, query key, function key), in the order the error names a missing one
LEGACY_FORMS: dict[str, tuple[str, str, str]] = {
    "/flow/getquery": ("wid", "qid", "name"),
    "/m/getwb": ("workbook", "id", "name"),
    "/flow/getwb": ("workbook", "id", "name"),
}


def split_legacy(query_string: bytes, keys: tuple[str, str, str]) -> tuple[list[str], bytes]:
    """The values of `keys` (workflow, query, function) and the query string without them, other parts untouched.

    Raises ArgumentError naming the parameter that is missing, empty or repeated.
    """
    found: dict[str, str] = {}
    rest: list[str] = []
    for part in query_string.decode("utf-8", "replace").split("&"):
        if not part:
            continue
        raw_key, _, raw_value = part.partition("=")
        key = unquote_plus(raw_key)
        if key in keys:
            if key in found:
                raise ArgumentError(f"query parameter '{key}' given twice", key)
            found[key] = unquote_plus(raw_value)
        else:
            rest.append(part)
    for key in keys:
        if not found.get(key, "").strip():
            raise ArgumentError(f"query parameter '{key}' is missing or empty", key)
    return [found[k] for k in keys], "&".join(rest).encode("utf-8")


class LegacyQuery:
    """An ASGI endpoint: one legacy form rewritten to the `/flow/query` endpoint's path parameters."""

    def __init__(self, query: QueryEndpoint, keys: tuple[str, str, str]) -> None:
        self.query = query
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            (wid, qid, name), rest = split_legacy(scope["query_string"], self.keys)
        except ArgumentError as exc:
            await _respond_error(send, exc, principal_of(scope))
            return
        inner: dict[str, Any] = dict(scope)
        inner["path_params"] = {"wid": wid, "qid": qid, "fn": name}
        inner["query_string"] = rest
        await self.query(inner, receive, send)


def legacy_routes(query: QueryEndpoint) -> list[BaseRoute]:
    """The legacy forms, sharing the `/flow/query` endpoint (and its disconnect watches)."""
    return [Route(path, LegacyQuery(query, keys), methods=["GET"]) for path, keys in LEGACY_FORMS.items()]


def legacy_openapi() -> dict[str, Any]:
    """OpenAPI entries of the legacy forms (merged into the server's own paths)."""
    from coflows.server.openapi_routes import _json, _op

    def param(name: str, description: str) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": True, "description": description,
                "schema": {"type": "string", "minLength": 1}}

    args = {"name": "p", "in": "query", "required": False, "style": "form", "explode": True,
            "description": "positional arguments (also p[0], p[1], …; other keys are arguments by parameter name)",
            "schema": {"type": "array", "items": {"type": "string"}}}
    codes = ("400", "401", "403", "404", "503", "504")
    ok = {"200": _json({}, "the function's result (text/csv or text/plain with a .csv / .txt name)")}
    out: dict[str, Any] = {}
    for path, (w, q, n) in LEGACY_FORMS.items():
        op_id = "legacy_" + path.strip("/").replace("/", "_")
        out[path] = {"get": _op(op_id, "legacy", f"CoFlows' {path} form of /flow/query/{{wid}}/{{qid}}/{{fn}}",
                                ok, codes, [param(w, "workflow ID or name"), param(q, "query ID"),
                                            param(n, "function name (a .csv or .txt suffix sets the format)"),
                                            args])}
    return out
