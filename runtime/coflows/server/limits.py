"""Bounded input: request body size (413) and one safe JSON body parser (400s that say why).

Why here and not in each route: every route that reads a body must refuse the same
things the same way, before any of it reaches user code or the store:

- a body larger than `Server.MaxBodyBytes` → 413, from its `content-length` before a byte is
  read, or as soon as a chunked body passes the limit (`BodyLimitMiddleware`);
- a body that is not UTF-8, JSON nested deeper than `MAX_JSON_DEPTH`, or an integer longer
  than `MAX_INT_DIGITS` digits → `ArgumentError` (400 with a JSON body naming the problem).

The middleware is pure ASGI: a request with a `content-length` within the limit passes with
one header look-up and no wrapper, so the hot path of a query call stays as it was.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coflows.errors import ArgumentError, CoflowsError

MAX_JSON_DEPTH = 64  # arrays/objects inside each other
MAX_INT_DIGITS = 640  # an integer literal longer than this is refused (Python's own limit is 4300)
_LONG_INT = re.compile(rb"-?[0-9]{%d,}" % (MAX_INT_DIGITS + 1))


class PayloadTooLarge(CoflowsError):
    """The request body is larger than `Server.MaxBodyBytes`."""

    http_status = 413


class BodyLimitMiddleware:
    """413 for a body over `max_bytes`: at once from `content-length`, or while a chunked body streams in."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"]:  # %00 in a path: no route, id or name has one; databases refuse it
            await _reply(send, 400, {"error": {"type": "ArgumentError", "message": "the URL path contains NUL (%00)"}})
            return
        length: bytes | None = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
            elif name == b"transfer-encoding":
                chunked = True
        if length is not None and not chunked:
            try:
                declared = int(length)
            except ValueError:
                declared = -1
            if declared > self.max_bytes:
                await _reply_413(send, self.max_bytes)
                return
            if declared >= 0:
                # the HTTP server delivers no more than content-length: nothing to count
                await self.app(scope, receive, send)
                return
        elif not chunked:
            await self.app(scope, receive, send)  # no body at all (a GET): nothing to count
            return
        await self._counted(scope, receive, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A body of unknown length (chunked): count it as it arrives."""
        limit = self.max_bytes
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLarge(f"request body larger than {limit} bytes (Server.MaxBodyBytes)")
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except PayloadTooLarge:
            if started:
                raise
            await _reply_413(send, limit)


async def _reply_413(send: Send, limit: int) -> None:
    await _reply(send, 413, {"error": {"type": "PayloadTooLarge",
                                       "message": f"request body larger than {limit} bytes (Server.MaxBodyBytes)"}},
                 close=True)


async def _reply(send: Send, status: int, error: dict[str, Any], close: bool = False) -> None:
    body = json.dumps(error).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))  # the unread body must not be taken for the next request
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _long_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ArgumentError(f"request body: an integer has {len(text.lstrip('-'))} digits "
                            f"(at most {MAX_INT_DIGITS})", "body")
    return int(text)


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of parsed JSON, without recursion, stopping once past `limit`."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                return deepest
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return deepest


def decode_utf8(body: bytes, what: str = "request body", parameter: str | None = "body") -> str:
    """The body as text, or a 400 if it is not UTF-8."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ArgumentError(f"{what}: not UTF-8 text (invalid byte at offset {e.start})", parameter) from None


def parse_json(body: bytes | str, what: str = "request body", parameter: str | None = "body") -> Any:
    """JSON from a request body, or a 400 `ArgumentError` saying what is wrong with it.

    Not UTF-8, malformed, nested deeper than `MAX_JSON_DEPTH` or holding an integer of more
    than `MAX_INT_DIGITS` digits: each is the caller's mistake, never a 500. The checks cost
    two C-speed scans of the bytes on the common (small, shallow) body.
    """
    if isinstance(body, (bytes, bytearray)):
        raw = bytes(body)
        text = decode_utf8(raw, what, parameter)
    else:
        text = body
        raw = body.encode("utf-8", "surrogatepass")
    if text.startswith("\ufeff"):
        text = text[1:]
    hooks: dict[str, Any] = {}
    if _LONG_INT.search(raw):
        hooks["parse_int"] = _long_int  # only then: a Python call per integer is not free
    try:
        data = json.loads(text, **hooks)
    except json.JSONDecodeError as e:
        raise ArgumentError(f"{what}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}", parameter) from None
    except RecursionError:
        raise ArgumentError(f"{what}: JSON nested deeper than {MAX_JSON_DEPTH} levels", parameter) from None
    except ValueError as e:  # e.g. Python's own int-digits limit
        raise ArgumentError(f"{what}: {e}", parameter) from None
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and _depth(data, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise ArgumentError(f"{what}: JSON nested deeper than {MAX_JSON_DEPTH} levels", parameter)
    return data


def int_param(params: Any, name: str, default: int, minimum: int = 0, maximum: int = 10_000) -> int:
    """An integer query parameter within [minimum, maximum], or a 400 naming it."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    text = raw.strip()
    if not re.fullmatch(r"[+-]?[0-9]{1,18}", text):
        raise ArgumentError(f"query parameter '{name}': expected an integer from {minimum} to {maximum}, "
                            f"got {raw[:40]!r}", name)
    value = int(text)
    if not minimum <= value <= maximum:
        raise ArgumentError(f"query parameter '{name}': expected an integer from {minimum} to {maximum}, "
                            f"got {value}", name)
    return value


def text_param(params: Any, name: str, max_length: int = 1024) -> str | None:
    """A text query parameter, at most `max_length` characters and without NUL, or a 400 naming it."""
    raw = params.get(name)
    if raw is None:
        return None
    if len(raw) > max_length or "\x00" in raw:
        raise ArgumentError(f"query parameter '{name}': at most {max_length} characters, no NUL", name)
    return raw
