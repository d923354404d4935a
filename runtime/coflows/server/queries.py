"""`/flow/query/{wid}/{qid}/{fn}`: every function of every query file as a URL.

Arguments, in CoFlows' order: `p[0]`, `p[1]`, … are positional; beyond
CoFlows, other keys are parameter names. A POST body that is a JSON object
gives named arguments (a function with exactly one string parameter gets the
raw JSON text instead, as in CoFlows); a JSON array gives positional ones.
The whole call (lookup with hot-reload check, permission, conversion, user
code, serialization) runs in one hop to the call pool (`coflows.calls`): user
code never runs on the event loop. On the loop stay only constant-time steps:
argument splitting, a look at the workflow's bulkhead, the function's own time limit
(when its source is loaded and current) and, for calls that last, a watch for
the client going away (which stops the call as a timeout does).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import Receive, Scope, Send

from coflows.calls import CallStopped
from coflows.context import CallContext, call_context
from coflows.errors import ArgumentError, CoflowsError, PermissionDenied, Unauthenticated
from coflows.permissions import Principal, can_call
from coflows.runtime import Runtime
from coflows.serialize import to_csv, to_json_bytes, to_text
from coflows.server.auth import principal_of
from coflows.server.limits import decode_utf8, parse_json
from coflows.server.responses import error_body

_POSITIONAL = re.compile(r"^p(?:\[(\d{0,9})\])?$")  # an index of 10+ digits is no position: a 400
_MEDIA = {"json": "application/json", "csv": "text/csv; charset=utf-8", "txt": "text/plain; charset=utf-8"}

def _pairs(query_string: bytes) -> list[tuple[str, str]]:
    text = query_string.decode("utf-8", "replace")
    if "%" in text or "+" in text or ";" in text:
        return parse_qsl(text, keep_blank_values=True)
    # nothing to unescape: a plain split is several times faster than parse_qsl
    return [(k, v) for k, _, v in (part.partition("=") for part in text.split("&") if part)]

def parse_arguments(query_string: bytes) -> tuple[list[Any], dict[str, Any]]:
    """`p[0]=1&p[1]=2&x=3` → ([1, 2], {x: 3}) as strings; `_cokey` is not an argument."""
    if not query_string:
        return [], {}
    indexed: dict[int, str] = {}
    appended: list[str] = []
    named: dict[str, Any] = {}
    for key, value in _pairs(query_string):
        if key == "_cokey":
            continue
        m = _POSITIONAL.match(key)
        if m:
            if m.group(1):
                index = int(m.group(1))
                if index in indexed:
                    raise ArgumentError(f"argument p[{index}] given twice", f"p[{index}]")
                indexed[index] = value
            else:
                appended.append(value)
        elif key in named:
            prev = named[key]
            named[key] = (prev if isinstance(prev, list) else [prev]) + [value]
        else:
            named[key] = value
    positional: list[Any] = []
    if indexed:
        expected = list(range(len(indexed)))
        if sorted(indexed) != expected:
            missing = next(i for i in expected if i not in indexed)
            raise ArgumentError(f"argument p[{missing}] is missing (positional arguments must be p[0], p[1], …)",
                                f"p[{missing}]")
        positional = [indexed[i] for i in expected]
    return positional + appended, named

def _split_format(name: str) -> tuple[str, str]:
    for suffix in ("csv", "txt"):
        if name.endswith("." + suffix):
            return name[: -len(suffix) - 1], suffix
    return name, "json"

def stale_header(error: Any, base_errors: list[Any] | None = None) -> list[tuple[bytes, bytes]]:
    """`X-Coflows-Stale: <file>:<line>: <message>`: the source no longer compiles, the last good
    version answered. A broken Base is the cause when there is one (the query then fails to import
    it), so its error is named. One line of latin-1 (a header cannot carry newlines), at most 1000
    characters."""
    first = base_errors[0] if base_errors else (error.errors[0] if getattr(error, "errors", None) else error)
    text = " ".join(str(first).split())
    return [(b"x-coflows-stale", text[:1000].encode("latin-1", "replace"))]


def execute(runtime: Runtime, principal: Principal, wid: str, qid: str, name: str, fmt: str,
            positional: list[Any], named: dict[str, Any], body: bytes | None
            ) -> tuple[int, bytes, str, list[tuple[bytes, bytes]] | None]:
    """The whole call, on a pool thread. Returns (status, body, media type, extra headers or None).

    The extra header is `X-Coflows-Stale` when the query's source failed to reload and its last
    good version answered (one attribute look-up otherwise)."""
    extra = None
    try:
        workflow, fn = runtime.registry.function(wid, qid, name)
        q = workflow.queries.get(qid)
        if q is not None and q.error is not None:
            extra = stale_header(q.error, workflow.base_errors)
        if not can_call(workflow, fn, principal):
            if principal.is_anonymous:
                raise Unauthenticated(f"{wid}/{qid}/{name}: an API key is required")
            raise PermissionDenied(f"{wid}/{qid}/{name}: permission denied for '{principal.id}'")
        if body:
            if fn.raw_body and not positional and not named:
                positional = [decode_utf8(body)]
            else:
                data = parse_json(body)
                if isinstance(data, dict):
                    overlap = set(data) & set(named)
                    if overlap:
                        raise ArgumentError(f"parameter '{sorted(overlap)[0]}' given twice", sorted(overlap)[0])
                    named = {**named, **data}
                elif isinstance(data, list):
                    positional = positional + data
                else:
                    raise ArgumentError("request body: expected a JSON object (by parameter name) or array")
        fn = fn.for_arity(len(positional) + len(named))
        args, kwargs = fn.bind(positional, named)
        with call_context(CallContext(workflow.id, fn.query_id, fn.name, principal, workflow.name)):
            result = fn.invoke(args, kwargs)
        if fmt == "json":
            return 200, to_json_bytes(result), _MEDIA["json"], extra
        text = to_csv(result) if fmt == "csv" else to_text(result)
        return 200, text.encode("utf-8"), _MEDIA[fmt], extra
    except (KeyboardInterrupt, CallStopped):
        raise  # a stop (timeout, gone client): the watchdog has answered the caller
    except BaseException as exc:  # noqa: BLE001 - every failure (SystemExit in user code too) is a response
        status, err = error_body(exc, principal)
        return status, to_json_bytes(err), _MEDIA["json"], extra


class Draining(CoflowsError):
    """The server is stopping (shutdown, memory limit): new calls are refused until it is back."""

    http_status = 503
    retry_after = 5


# A call running this long gets a watch for its client going away.
WATCH_AFTER_S = 0.2


class QueryEndpoint:
    """A raw ASGI endpoint bound to the runtime: no Request/Response objects on the hot path."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.calls = runtime.calls
        # Calls awaiting their result, and the disconnect watches of those that lasted. A fast call
        # costs two dict operations here; one sweep every WATCH_AFTER_S starts the watches.
        self._inflight: dict[Any, Receive] = {}
        self._watches: dict[Any, asyncio.Task] = {}
        self._sweeper: asyncio.Task | None = None

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(WATCH_AFTER_S)
            now = time.monotonic()
            for call, receive in list(self._inflight.items()):
                if call not in self._watches and call.started and now - call.started >= WATCH_AFTER_S:
                    self._watches[call] = loop.create_task(_watch_disconnect(self.calls, call, receive))

    def _limits(self, wid: str, qid: str, name: str) -> tuple[str, str, float | None, str]:
        """(bulkhead key, label, own timeout, language) from what is loaded: dict lookups, no reload,
        no user code."""
        registry = self.runtime.registry
        try:
            wf = registry.workflow(wid)
        except CoflowsError:
            return wid, f"{wid}/{qid}/{name}", None, ""  # the worker answers 404
        q = wf.queries.get(qid)
        fn = q.functions.get(name) if q is not None else None
        if fn is None:
            return wf.id, f"{wf.name}/{qid}/{name}", None, ""
        return wf.id, f"{wf.name}/{qid}/{name}", fn.docs.timeout, fn.language

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        params = scope["path_params"]
        name, fmt = _split_format(params["fn"])
        principal = principal_of(scope)
        try:
            if self.runtime.draining:
                raise Draining("the server is restarting or shutting down; retry shortly")
            positional, named = parse_arguments(scope["query_string"])
        except CoflowsError as exc:
            await _respond_error(send, exc, principal)
            return
        body = await _read_body(receive) if scope["method"] == "POST" else None
        wid, qid = params["wid"], params["qid"]
        key, label, own, language = self._limits(wid, qid, name)
        calls = self.calls
        workflow_name = label.partition("/")[0]
        if calls.bulkheads.full(key):  # refused before the hop; the worker checks again, exactly
            await _respond_error(send, calls.bulkheads.busy(workflow_name), principal)
            return
        call, fut = calls.start_async(execute, (self.runtime, principal, wid, qid, name, fmt, positional, named,
                                                body), label=label, timeout=own, slot=key, slot_name=workflow_name,
                                      language=language)
        inflight = self._inflight
        inflight[call] = receive
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())
        try:
            await fut
        except asyncio.CancelledError:
            calls.cancel(call)
            raise
        finally:
            del inflight[call]
            watch = self._watches.pop(call, None)
            if watch is not None:
                watch.cancel()
        if call.ok:
            status, content, media, extra = call.value
            await _respond(send, status, content, media, extra)
        else:
            await _respond_error(send, call.value, principal)


async def _watch_disconnect(calls: Any, call: Any, receive: Receive) -> None:
    """Reads `receive()` while a long call runs: `http.disconnect` stops the call."""
    while not call.settled:
        message = await receive()
        if message["type"] == "http.disconnect":
            if not call.settled:
                calls.cancel(call)
            return


async def _respond_error(send: Send, exc: BaseException, principal: Principal) -> None:
    status, err = error_body(exc, principal)
    retry = getattr(exc, "retry_after", None)
    await _respond(send, status, to_json_bytes(err), _MEDIA["json"],
                   [(b"retry-after", str(retry).encode())] if retry else None)

async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)

async def _respond(send: Send, status: int, content: bytes, media: str,
                   extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", media.encode()), (b"content-length", str(len(content)).encode())]
    if extra:
        headers += extra
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})
