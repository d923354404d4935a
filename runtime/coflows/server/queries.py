"""`/flow/query/{wid}/{qid}/{fn}`: every function of every query file as a URL.

Arguments, in CoFlows' order: `p[0]`, `p[1]`, … are positional; beyond
CoFlows, other keys are parameter names. A POST body that is a JSON object
gives named arguments (a function with exactly one string parameter gets the
raw JSON text instead, as in CoFlows); a JSON array gives positional ones.
The whole call (lookup with hot-reload check, permission, conversion, user
code, serialization) runs in one hop to a worker thread: user code never runs
on the event loop.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import Receive, Scope, Send

from coflows.context import CallContext, call_context
from coflows.errors import ArgumentError, PermissionDenied, Unauthenticated
from coflows.permissions import Principal, can_call
from coflows.runtime import Runtime
from coflows.serialize import to_csv, to_json_bytes, to_text
from coflows.server.auth import principal_of
from coflows.server.inline import InlinePolicy
from coflows.server.limits import decode_utf8, parse_json
from coflows.server.responses import error_body

_POSITIONAL = re.compile(r"^p(?:\[(\d*)\])?$")
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

def execute(runtime: Runtime, principal: Principal, wid: str, qid: str, name: str, fmt: str,
            positional: list[Any], named: dict[str, Any], body: bytes | None,
            refresh: bool = True) -> tuple[int, bytes, str, float, float, bool]:
    """The whole call. Returns (status, body, media type, wall and CPU seconds in user code, may run inline)."""
    spent = cpu = 0.0
    inline_ok = False
    try:
        workflow, fn = runtime.registry.function(wid, qid, name, refresh)
        engine = runtime.engines.running(fn.language)
        inline_ok = engine is None or engine.inline_calls
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
        started, started_cpu = time.perf_counter(), time.thread_time()
        try:
            with call_context(CallContext(workflow.id, fn.query_id, fn.name, principal)):
                result = fn.invoke(args, kwargs)
        finally:
            spent, cpu = time.perf_counter() - started, time.thread_time() - started_cpu
        if fmt == "json":
            return 200, to_json_bytes(result), _MEDIA["json"], spent, cpu, inline_ok
        text = to_csv(result) if fmt == "csv" else to_text(result)
        return 200, text.encode("utf-8"), _MEDIA[fmt], spent, cpu, inline_ok
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - every failure (SystemExit in user code too) is a response
        status, err = error_body(exc, principal)
        return status, to_json_bytes(err), _MEDIA["json"], spent, cpu, inline_ok

class QueryEndpoint:
    """A raw ASGI endpoint bound to the runtime: no Request/Response objects on the hot path.

    Calls run inline or on the worker pool as `InlinePolicy` decides.
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.policy = InlinePolicy(enabled=runtime.config.server.inline_calls)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        params = scope["path_params"]
        name, fmt = _split_format(params["fn"])
        principal = principal_of(scope)
        try:
            positional, named = parse_arguments(scope["query_string"])
        except ArgumentError as exc:
            status, err = error_body(exc, principal)
            await _respond(send, status, to_json_bytes(err), _MEDIA["json"])
            return
        body = await _read_body(receive) if scope["method"] == "POST" else None
        wid, qid = params["wid"], params["qid"]
        key = (wid, qid, name)
        if self.policy.inline(key) and self.runtime.registry.is_fresh(wid, qid):
            status, content, media, wall, cpu, allowed = execute(self.runtime, principal, wid, qid, name, fmt,
                                                                 positional, named, body, False)
            self.policy.record(key, wall, cpu, inline=True, allowed=allowed)
        else:
            loop = asyncio.get_running_loop()
            status, content, media, wall, cpu, allowed = await loop.run_in_executor(
                self.runtime.executor, execute, self.runtime, principal, wid, qid, name, fmt,
                positional, named, body,
            )
            self.policy.record(key, wall, cpu, inline=False, allowed=allowed)
        await _respond(send, status, content, media)

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

async def _respond(send: Send, status: int, content: bytes, media: str) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", media.encode()), (b"content-length", str(len(content)).encode())]})
    await send({"type": "http.response.body", "body": content})
