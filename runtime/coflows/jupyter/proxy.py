"""`/lab` and `/lab/{path}`: the server's door to its JupyterLab child (HTTP and websockets).

Who: admins only (the admin key or an admin user; key or session). A notebook runs arbitrary code
as the server's OS user, which is what an admin may do anyway; no workflow level is enough.
Anonymous browsers are sent to the login page (`/ui/login?next=…`), anonymous programs get 401,
other users 403.

What the proxy adds and removes: the upstream gets Jupyter's token (`Authorization: token …`,
which only the server knows), never the caller's coflows credentials (`x-api-key`, `_cokey`, the
session cookie are stripped). Jupyter's own XSRF check is therefore off for proxied requests; the
server's own CSRF check has already run (a state-changing request with the session cookie must
carry the session's CSRF token, which the proxy hands to JupyterLab as its `_xsrf` cookie so that
JupyterLab sends it back in `X-XSRFToken`). Messages sent to a kernel get the caller's identity
stamp (coflows.jupyter.identity), replacing any the client put there.

Bounds: request bodies ≤ Server.MaxBodyBytes (the server's body limit runs before this route), a
websocket message from the client ≤ Server.MaxBodyBytes (else closed 1009); upstream connect 5 s,
each read 120 s (504 after), at most 64 upstream connections at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from coflows.jupyter.identity import STAMP_FIELD, mint
from coflows.jupyter.process import JupyterProcess
from coflows.server.upstream import send_upstream, upstream_client
from coflows.server.auth import SESSION, SESSION_COOKIE, principal_of

log = logging.getLogger("coflows.jupyter")

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
                 "transfer-encoding", "upgrade", "host"})
DROP_REQUEST = HOP | {"x-api-key", "_cokey", "authorization", "x-csrf-token", "x-xsrftoken", "origin", "referer",
                      "cookie"}
DOWN_MAX = 64 * 1024 * 1024  # a kernel's message to the browser (outputs, images)
XSRF_COOKIE = "_xsrf"
V1 = "v1.kernel.websocket.jupyter.org"  # Jupyter's binary kernel-message framing


def _error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status, headers=headers)


def _query_without_key(query: str) -> str:
    if "_cokey" not in query:
        return query
    return urlencode([(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "_cokey"])


def _raw_path(scope: Any) -> str:
    """The path as the client sent it (still %-encoded: a file named `a?b.ipynb` stays one path)."""
    raw = scope.get("raw_path")
    return raw.decode("latin-1") if raw else quote(scope["path"])


def _cookies_without_ours(raw: str | None) -> str | None:
    if not raw:
        return None
    keep = [p.strip() for p in raw.split(";")
            if p.strip() and p.strip().partition("=")[0] not in (SESSION_COOKIE, XSRF_COOKIE)]
    return "; ".join(keep) or None


class LabProxy:
    def __init__(self, jupyter: JupyterProcess, secret: str, max_body: int) -> None:
        self.jupyter = jupyter
        self.secret = secret
        self.max_body = max_body
        self.client = upstream_client()  # keeps no cookies: JupyterLab's Set-Cookie is the browser's alone

    # -- who ------------------------------------------------------------------------------------
    def _refusal(self, request: Request) -> Response | None:
        principal = principal_of(request.scope)
        if principal.is_admin:
            return None
        if principal.is_anonymous:
            wants_html = request.method == "GET" and "text/html" in request.headers.get("accept", "")
            if wants_html:
                target = request.url.path + (f"?{_query_without_key(request.url.query)}" if request.url.query else "")
                return RedirectResponse(f"/ui/login?next={quote(target, safe='/')}", status_code=303)
            return _error(401, "Unauthenticated", "/lab (JupyterLab) needs an admin's login or API key")
        return _error(403, "Forbidden", "/lab (JupyterLab) runs code as the server: admins only")

    # -- HTTP -----------------------------------------------------------------------------------
    async def http(self, request: Request) -> Response:
        refused = self._refusal(request)
        if refused is not None:
            return refused
        if request.url.path == "/lab":
            return RedirectResponse("/lab/", status_code=307)
        if not self.jupyter.running():
            return _error(503, "Unavailable", "JupyterLab is not running (starting or restarting)", {"Retry-After": "2"})
        headers = [(k, v) for k, v in request.headers.items() if k not in DROP_REQUEST]
        cookies = _cookies_without_ours(request.headers.get("cookie"))
        if cookies:
            headers.append(("cookie", cookies))
        headers.append(("authorization", f"token {self.jupyter.token}"))
        query = _query_without_key(request.url.query)
        url = f"{self.jupyter.base}{_raw_path(request.scope)}" + (f"?{query}" if query else "")
        try:
            answer = await send_upstream(self.client, request, url, headers)
        except httpx.TimeoutException:
            return _error(504, "Timeout", "JupyterLab did not answer in time")
        except httpx.TransportError:
            return _error(503, "Unavailable", "JupyterLab is not reachable (starting or restarting)",
                          {"Retry-After": "2"})
        out = StreamingResponse(self._body(answer), status_code=answer.status_code,
                                background=BackgroundTask(answer.aclose))
        for k, v in answer.headers.multi_items():
            lk = k.lower()
            if lk in HOP or (lk == "set-cookie" and v.startswith(XSRF_COOKIE + "=")):
                continue
            if lk == "location" and v.startswith(self.jupyter.base):
                v = v[len(self.jupyter.base):] or "/"
            out.headers.append(k, v)
        session = request.scope.get(SESSION)
        if session is not None and request.cookies.get(XSRF_COOKIE) != session[1]:
            # JupyterLab sends this cookie back in X-XSRFToken: the server's CSRF check accepts it
            out.set_cookie(XSRF_COOKIE, session[1], path="/lab", samesite="strict",
                           secure=request.url.scheme == "https")
        return out

    async def _body(self, answer: httpx.Response) -> Any:
        try:
            async for chunk in answer.aiter_raw():
                yield chunk
        except httpx.TimeoutException:
            log.warning("JupyterLab stopped sending a response (timeout)")

    # -- websockets (kernels, terminals, events) ------------------------------------------------
    async def websocket(self, ws: WebSocket) -> None:
        principal = principal_of(ws.scope)
        if not principal.is_admin:
            await ws.close(4401 if principal.is_anonymous else 4403)
            return
        if not self.jupyter.running():
            await ws.close(1013)
            return
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed

        path = ws.url.path
        query = _query_without_key(ws.url.query)
        url = f"ws://127.0.0.1:{self.jupyter.port}{_raw_path(ws.scope)}" + (f"?{query}" if query else "")
        stamp = path.startswith("/lab/api/kernels/") and path.endswith("/channels")
        # the kernel protocols the proxy can stamp: Jupyter's v1 binary framing, or JSON ("legacy")
        wanted = [p for p in ws.scope.get("subprotocols", []) if p == V1] if stamp else []
        try:
            upstream = await connect(url, additional_headers={"Authorization": f"token {self.jupyter.token}",
                                                              "Origin": self.jupyter.base},
                                     subprotocols=wanted or None,  # type: ignore[arg-type]
                                     max_size=DOWN_MAX, open_timeout=10, ping_interval=None)
        except Exception as e:  # noqa: BLE001 - refused, not running, bad path
            log.info("JupyterLab refused the websocket %s: %s", path, e)
            await ws.close(1011)
            return
        protocol = upstream.subprotocol
        await ws.accept(subprotocol=protocol)

        async def down() -> None:
            async for message in upstream:
                if isinstance(message, bytes):
                    await ws.send_bytes(message)
                else:
                    await ws.send_text(message)

        async def up() -> None:
            while True:
                msg = await ws.receive()
                if msg["type"] == "websocket.disconnect":
                    return
                data = msg.get("text")
                raw = msg.get("bytes")
                size = len(data.encode()) if data is not None else len(raw or b"")
                if size > self.max_body:
                    await ws.close(1009)
                    return
                if stamp:
                    data, raw = self._stamp(data, raw, principal.id, protocol == V1)
                await upstream.send(data if data is not None else raw)

        tasks = [asyncio.ensure_future(down()), asyncio.ensure_future(up())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        except (ConnectionClosed, WebSocketDisconnect):
            pass
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(BaseException):
                    await t
            with contextlib.suppress(Exception):
                await upstream.close()
            with contextlib.suppress(Exception):
                await ws.close()

    def _stamp(self, text: str | None, raw: bytes | None, user: str, v1: bool) -> tuple[str | None, bytes | None]:
        """The message with the sender's identity in its metadata (any client-supplied stamp replaced)."""
        try:
            if v1 and raw is not None:  # [channel, header, parent_header, metadata, content, buffers…]
                from jupyter_server.services.kernels.connection.base import (
                    deserialize_msg_from_ws_v1, serialize_msg_to_ws_v1)

                channel, parts = deserialize_msg_from_ws_v1(raw)
                meta = json.loads(parts[2]) if parts[2] else {}
                meta = meta if isinstance(meta, dict) else {}
                meta[STAMP_FIELD] = mint(self.secret, user)
                parts[2] = json.dumps(meta).encode()
                return None, serialize_msg_to_ws_v1(parts, channel)
            if text is not None:
                msg = json.loads(text)
                if isinstance(msg, dict):
                    self._put(msg, user)
                    return json.dumps(msg), None
                return text, None
            from jupyter_server.services.kernels.connection.base import (
                deserialize_binary_message, serialize_binary_message)

            msg = deserialize_binary_message(raw)
            self._put(msg, user)
            return None, serialize_binary_message(msg)
        except Exception:  # noqa: BLE001 - not a Jupyter message: it goes on unstamped (runs as anonymous)
            return text, raw

    def _put(self, msg: dict[str, Any], user: str) -> None:
        meta = msg.get("metadata")
        if not isinstance(meta, dict):
            meta = msg["metadata"] = {}
        meta[STAMP_FIELD] = mint(self.secret, user)

    async def close(self) -> None:
        await self.client.aclose()

    def routes(self) -> list[BaseRoute]:
        return [Route("/lab", self.http, methods=METHODS), Route("/lab/{path:path}", self.http, methods=METHODS),
                WebSocketRoute("/lab/{path:path}", self.websocket)]
