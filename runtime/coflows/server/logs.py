"""The live log of a workflow: what `print` / `console.*` in its calls, agents and flows write.

    GET /flow/logs/{wid}                        Server-Sent Events: the last `limit` (default 200)
                                                buffered lines, then each new one; Read
    GET /flow/logs/{wid}?format=json&limit=N    the last N buffered lines (1…1000), oldest first; Read

User output reaches the `coflows.user` logger as `[workflow-name/query/function] line`
(`coflows.context.TaggedStream` for Python, the JS engine's console batches). `WorkflowLogs` is a
`logging.Handler` on that logger: it keeps the last `keep` lines of each workflow in a ring buffer
and hands each new line to the streams watching that workflow. Why a handler: it sees the lines
of every language at one place, after the redaction of `coflows.redact` (applied again here, so a
secret never reaches a stream even when the record factory is not installed).

Never blocking the caller: `emit` runs in the thread that printed; it only appends to deques under
short locks. Each stream has a bounded queue; a stream that falls behind loses lines and gets a
`dropped` event saying how many. Which workflow a line belongs to: the current call's workflow ID
when the record's tag is that call's (exact even when two workflows share a name), else the
workflow whose name (or ID) begins the tag; a name two workflows share is not resolved (dropped).
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import json
import logging
import re
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from coflows.context import current
from coflows.errors import ArgumentError
from coflows.permissions import READ, require
from coflows.redact import redact
from coflows.server.auth import principal_of
from coflows.server.limits import int_param
from coflows.server.responses import error_response, json_response

if TYPE_CHECKING:
    from coflows.runtime import Runtime

KEEP = 1000  # lines kept per workflow
MAX_LINE = 4096  # characters of one line kept
QUEUE = 1000  # lines queued per stream before it drops
MAX_STREAMS = 256  # streams open at once (per server); more → 503
DEFAULT_BACKLOG = 200
KEEPALIVE_S = 15.0
STREAM_S = 600.0  # a stream ends after this long; EventSource reconnects (Last-Event-ID: no line lost
# or repeated) and the reconnect is authorized again, so a revoked grant stops the stream
_TAGGED = re.compile(r"\[([^\]\n]{1,1000})\] ?(.*)", re.S)

Event = dict[str, Any]


class Subscriber:
    """One stream's queue, filled from any thread, read on the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, maxsize: int = QUEUE) -> None:
        self.loop = loop
        self.maxsize = maxsize
        self.items: collections.deque[Event] = collections.deque()
        self.dropped = 0
        self.ready = asyncio.Event()
        self._lock = threading.Lock()
        self._signalled = False

    def offer(self, event: Event) -> None:
        """Queue `event` (or count it dropped when full); wakes the reader at most once per batch."""
        with self._lock:
            if len(self.items) >= self.maxsize:
                self.dropped += 1
                return
            self.items.append(event)
            if self._signalled:
                return
            self._signalled = True
        try:
            self.loop.call_soon_threadsafe(self.ready.set)
        except RuntimeError:  # the loop is closed: the stream is gone
            pass

    async def take(self, timeout: float) -> tuple[list[Event], int]:
        """Queued events and how many were dropped since the last take ([] , 0 after `timeout`)."""
        try:
            await asyncio.wait_for(self.ready.wait(), timeout)
        except TimeoutError:
            return [], 0
        with self._lock:
            items, self.items = list(self.items), collections.deque()
            dropped, self.dropped = self.dropped, 0
            self._signalled = False
            self.ready.clear()
        return items, dropped


class WorkflowLogs(logging.Handler):
    """Ring buffers of user output per workflow ID, and the streams watching them."""

    def __init__(self, workflows: Callable[[], list[Any]], keep: int = KEEP, max_line: int = MAX_LINE) -> None:
        super().__init__(logging.DEBUG)
        self._workflows = workflows  # () -> the loaded workflows (objects with .id and .name)
        self.keep = keep
        self.max_line = max_line
        self._buffers: dict[str, collections.deque[Event]] = {}
        self._subscribers: dict[str, set[Subscriber]] = {}
        self._data = threading.Lock()
        self._seq = 0
        self._names: dict[str, str | None] = {}  # name (lower) or ID → workflow ID (None: ambiguous)
        self._names_at = 0.0

    # -- from log records ---------------------------------------------------------------------
    def emit(self, record: logging.LogRecord) -> None:
        try:
            parsed = _tag_and_line(record)
            if parsed is None:
                return
            tag, line = parsed
            wid, function = self._workflow_of(tag)
            if wid is None:
                return
            line = redact(line)
            if len(line) > self.max_line:
                line = line[: self.max_line] + " … (line cut)"
            event = {"time": _iso(record.created), "level": record.levelname, "workflow": wid,
                     "tag": redact(tag), "function": function, "line": line}
            with self._data:
                self._seq += 1
                event["seq"] = self._seq
                buf = self._buffers.get(wid)
                if buf is None:
                    buf = self._buffers[wid] = collections.deque(maxlen=self.keep)
                buf.append(event)
                subscribers = list(self._subscribers.get(wid, ()))
            for s in subscribers:
                s.offer(event)
        except Exception:  # noqa: BLE001 - a print must never fail because of the live log
            pass

    def _workflow_of(self, tag: str) -> tuple[str | None, str]:
        """(workflow ID, the rest of the tag: `query/function`) for a record's tag."""
        ctx = current()
        if ctx is not None and ctx.workflow and ctx.tag == tag:
            return ctx.workflow, f"{ctx.query}/{ctx.function}"
        head, _, rest = tag.partition("/")
        wid = self._lookup(head)
        if wid is not None:
            return wid, rest
        if "/" in rest:  # a name holding '/': the longest known name the tag starts with
            names = self._names
            for name in sorted((n for n in names if "/" in n), key=len, reverse=True):
                if tag.lower().startswith(name + "/") and names[name]:
                    return names[name], tag[len(name) + 1:]
        return None, rest

    def _lookup(self, key: str) -> str | None:
        names = self._names
        low = key.lower()
        if low not in names and time.monotonic() - self._names_at > 1.0:  # a new workflow: look again
            names = self._refresh()
        return names.get(low)

    def _refresh(self) -> dict[str, str | None]:
        names: dict[str, str | None] = {}
        try:
            workflows = self._workflows()
        except Exception:  # noqa: BLE001
            workflows = []
        for wf in workflows:
            names[str(wf.id).lower()] = wf.id
        for wf in workflows:
            name = str(getattr(wf, "name", "") or "").lower()
            if name and name not in names:
                names[name] = wf.id
            elif name and names[name] != wf.id:
                names[name] = None  # two workflows share this name: the tag cannot tell which
        self._names, self._names_at = names, time.monotonic()
        return names

    # -- for the routes -----------------------------------------------------------------------
    def recent(self, wid: str, limit: int, after: int = 0) -> list[Event]:
        """The last `limit` buffered events of a workflow, oldest first (only those after seq `after`)."""
        with self._data:
            buf = list(self._buffers.get(wid, ()))
        if after:
            buf = [e for e in buf if e["seq"] > after]
        return buf[-limit:] if limit > 0 else []

    def subscribe(self, wid: str, loop: asyncio.AbstractEventLoop) -> Subscriber | None:
        """A new stream's queue, or None when MAX_STREAMS are open."""
        with self._data:
            if sum(len(s) for s in self._subscribers.values()) >= MAX_STREAMS:
                return None
            sub = Subscriber(loop)
            self._subscribers.setdefault(wid, set()).add(sub)
            return sub

    def unsubscribe(self, wid: str, sub: Subscriber) -> None:
        with self._data:
            subs = self._subscribers.get(wid)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subscribers[wid]


def _tag_and_line(record: logging.LogRecord) -> tuple[str, str] | None:
    args = record.args
    if record.msg == "[%s] %s" and isinstance(args, tuple) and len(args) == 2:
        return str(args[0]), str(args[1])
    try:
        m = _TAGGED.fullmatch(record.getMessage())
    except Exception:  # noqa: BLE001 - a malformed record (user code logging to coflows.user)
        return None
    return (m.group(1), m.group(2)) if m else None


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="milliseconds")


def _sse(data: Any, event: str | None = None, seq: int | None = None) -> bytes:
    head = (f"event: {event}\n" if event else "") + (f"id: {seq}\n" if seq is not None else "")
    return (head + "data: " + json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n\n").encode()


class LogRoutes:
    def __init__(self, runtime: Runtime, logs: WorkflowLogs) -> None:
        self.runtime = runtime
        self.logs = logs
        self.stream_s = STREAM_S

    async def get(self, request: Request) -> Response:
        principal = principal_of(request.scope)
        params = request.query_params
        try:
            wf = self.runtime.registry.workflow(request.path_params["wid"])
            require(wf, principal, READ, "its log")
            fmt = params.get("format") or "sse"
            if fmt not in ("sse", "json"):
                raise ArgumentError("query parameter 'format': sse or json", "format")
            limit = int_param(params, "limit", DEFAULT_BACKLOG, minimum=1, maximum=KEEP)
            after = _last_event_id(request)
        except Exception as exc:  # noqa: BLE001
            return error_response(exc, principal)
        if fmt == "json":
            return json_response(self.logs.recent(wf.id, limit))
        sub = self.logs.subscribe(wf.id, asyncio.get_running_loop())
        if sub is None:
            body = {"error": {"type": "TooManyStreams", "message": f"{MAX_STREAMS} log streams are open; retry later"}}
            return Response(json.dumps(body), 503, {"Retry-After": "5"}, media_type="application/json")
        backlog = self.logs.recent(wf.id, limit, after)  # after subscribing: no line falls between
        return StreamingResponse(self._stream(wf.id, sub, backlog), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def _stream(self, wid: str, sub: Subscriber, backlog: list[Event]) -> AsyncIterator[bytes]:
        try:
            last = 0
            yield b"retry: 2000\n\n"
            for event in backlog:
                last = event["seq"]
                yield _sse(event, seq=last)
            loop = asyncio.get_running_loop()
            end = loop.time() + self.stream_s
            while (left := end - loop.time()) > 0:
                events, dropped = await sub.take(min(KEEPALIVE_S, left))
                if dropped:
                    yield _sse({"dropped": dropped, "workflow": wid}, "dropped")
                for event in events:
                    if event["seq"] > last:
                        last = event["seq"]
                        yield _sse(event, seq=last)
                if not events and not dropped:
                    yield b": keep-alive\n\n"
        finally:
            self.logs.unsubscribe(wid, sub)


def _last_event_id(request: Request) -> int:
    """An EventSource's reconnect (`Last-Event-ID`): only lines after it are sent again."""
    raw = request.headers.get("last-event-id", "")
    return int(raw) if raw.isdigit() and len(raw) < 19 else 0


def install(runtime: Runtime) -> list[BaseRoute]:
    """Attach a `WorkflowLogs` to the `coflows.user` logger for this runtime's life; its routes."""
    logs = WorkflowLogs(runtime.registry.workflows)
    logger = logging.getLogger("coflows.user")
    logger.addHandler(logs)
    runtime.on_close(lambda: logger.removeHandler(logs))
    runtime.logs = logs  # type: ignore[attr-defined]
    routes = LogRoutes(runtime, logs)
    return [Route("/flow/logs/{wid}", routes.get)]
