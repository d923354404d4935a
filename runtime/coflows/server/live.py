"""`/live`: the websocket of CoFlows' real-time protocol, for M changes.

Envelope `{"Type": n, "Content": ...}`. From the client:

* `{"Type": 1, "Content": "<topic>"}` subscribe (needs Read on the topic, as `/m/data`; checked
  again when changes are delivered, so a subscriber only receives what it may read now);
* `{"Type": 2, "Content": "<topic>"}` unsubscribe (coflows addition);
* `{"Type": 14, "Content": {"TopicID", "ID", "Type": 1|3|4, "Value", "Version"?}}` a change to apply
  (add `Value`; exchange entry `ID` to `Value`; remove entry `ID`), needs Write;
* `{"Type": 15, ...}` ping: answered with the same message; `{"Type": 19, ...}` SaveM: no-op.

To the client, for every committed change of a subscribed topic (from this process, or
from another one on the same PostgreSQL database):
`{"Type": 14, "Content": {"TopicID", "ID", "Type": 1|3|4, "Value": <the JSON value>, "Version"}}`.
A request that fails is answered `{"Type": 0, "Content": {"Error": "...", "Request": <its Type>}}`.

Messages are processed in order, so once the answer to a ping arrives every earlier
subscription is active. A client that cannot keep up (more than `MAX_QUEUED` unsent
messages) is disconnected (close code 1013) rather than buffered without bound.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import deque
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from coflows.errors import ArgumentError, CoflowsError
from coflows.m.store import ADD, EXCHANGE, REMOVE, Change, MStore, check_topic
from coflows.permissions import READ, WRITE, Principal
from coflows.server.auth import principal_of
from coflows.server.limits import parse_json
from coflows.server.m_routes import as_writer, check_topic_access

if TYPE_CHECKING:
    from coflows.runtime import Runtime

log = logging.getLogger("coflows.live")

SUBSCRIBE, UNSUBSCRIBE, CRUD, PING, SAVE_M, ERROR = 1, 2, 14, 15, 19, 0
MAX_QUEUED = 100_000


def change_message(change: Change) -> str:
    return (f'{{"Type":14,"Content":{{"TopicID":{json.dumps(change.topic)},"ID":"{change.id}",'
            f'"Type":{change.kind},"Value":{change.value_json},"Version":{change.version}}}}}')


class _Client:
    __slots__ = ("ws", "principal", "queue", "topics", "closed")

    def __init__(self, ws: WebSocket, principal: Principal) -> None:
        self.ws = ws
        self.principal = principal
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.topics: set[str] = set()
        self.closed = False

    def put(self, message: str) -> None:
        if self.closed:
            return
        if self.queue.qsize() >= MAX_QUEUED:
            self.closed = True
            log.warning("live: a client fell %d messages behind; disconnecting it", MAX_QUEUED)
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait(message)


class LiveHub:
    """Fans committed M changes out to websocket clients, by topic."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.loop: asyncio.AbstractEventLoop | None = None
        self._clients: dict[str, set[_Client]] = {}
        self._unsubscribe: dict[str, Any] = {}
        self._pending: deque[Change] = deque()
        self._scheduled = False
        self._lock = threading.Lock()

    @property
    def store(self) -> MStore:
        if self.runtime.database is None:
            raise CoflowsError("M is unavailable: the server runs without a database")
        return MStore.for_database(self.runtime.database)

    # -- from writer threads ------------------------------------------------------------------
    def _on_change(self, change: Change) -> None:
        """Called in the writer's thread after commit: queue, and wake the loop once per burst."""
        loop = self.loop
        if loop is None:
            return
        with self._lock:
            self._pending.append(change)
            if self._scheduled:
                return
            self._scheduled = True
        try:
            loop.call_soon_threadsafe(self._flush)
        except RuntimeError:  # loop closed: the server is stopping
            pass

    def _flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, deque()
            self._scheduled = False
        allowed: dict[tuple[int, str], bool] = {}  # rights are checked again at delivery, once per burst
        for change in pending:
            clients = self._clients.get(change.topic)
            if not clients:
                continue
            message = change_message(change)
            for client in list(clients):
                key = (id(client), change.topic)
                ok = allowed.get(key)
                if ok is None:
                    ok = allowed[key] = self._may_read(client, change.topic)
                if ok:
                    client.put(message)

    def _may_read(self, client: _Client, topic: str) -> bool:
        """Read on the topic now (the workspace's Permissions may have changed since the subscription)."""
        try:
            check_topic_access(self.runtime, client.principal, topic, READ)
        except CoflowsError:
            return False
        return True

    # -- subscriptions (event loop) -----------------------------------------------------------
    def _subscribe(self, client: _Client, topic: str) -> None:
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
        clients = self._clients.setdefault(topic, set())
        clients.add(client)
        client.topics.add(topic)
        if topic not in self._unsubscribe:
            self._unsubscribe[topic] = self.store.subscribe(topic, self._on_change)

    def _unsubscribe_client(self, client: _Client, topic: str) -> None:
        client.topics.discard(topic)
        clients = self._clients.get(topic)
        if clients is None:
            return
        clients.discard(client)
        if not clients:
            del self._clients[topic]
            stop = self._unsubscribe.pop(topic, None)
            if stop is not None:
                stop()

    def close(self) -> None:
        for stop in self._unsubscribe.values():
            stop()
        self._unsubscribe.clear()

    # -- the endpoint -------------------------------------------------------------------------
    async def endpoint(self, ws: WebSocket) -> None:
        await ws.accept()
        client = _Client(ws, principal_of(ws.scope))
        sender = asyncio.create_task(self._send_loop(client))
        try:
            while not client.closed:
                try:
                    text = await ws.receive_text()
                except WebSocketDisconnect:
                    break
                await self._handle(client, text)
        except Exception:  # noqa: BLE001
            log.exception("live: client error")
        finally:
            for topic in list(client.topics):
                self._unsubscribe_client(client, topic)
            client.closed = True
            client.queue.put_nowait(None)
            await sender

    async def _send_loop(self, client: _Client) -> None:
        try:
            while True:
                message = await client.queue.get()
                if message is None:
                    break
                await client.ws.send_text(message)
        except Exception:  # noqa: BLE001 - the client went away
            client.closed = True
            return
        if client.closed:
            try:
                await client.ws.close(code=1013)
            except Exception:  # noqa: BLE001
                pass

    def _error(self, client: _Client, request_type: Any, exc: BaseException | str) -> None:
        message = str(exc) if isinstance(exc, (CoflowsError, str)) else f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, (CoflowsError, str)):
            log.exception("live: request failed", exc_info=exc)
        client.put(json.dumps({"Type": ERROR, "Content": {"Error": message, "Request": request_type}}))

    async def _handle(self, client: _Client, text: str) -> None:
        try:
            msg = parse_json(text, "message", None)  # depth and integer size bounded, as for bodies
        except ArgumentError as e:
            self._error(client, None, str(e))
            return
        if not isinstance(msg, dict) or "Type" not in msg:
            self._error(client, None, 'a message is {"Type": n, "Content": ...}')
            return
        kind, content = msg.get("Type"), msg.get("Content")
        try:
            if kind == SUBSCRIBE:
                topic = check_topic(content)
                check_topic_access(self.runtime, client.principal, topic, READ)
                self._subscribe(client, topic)
            elif kind == UNSUBSCRIBE:
                self._unsubscribe_client(client, check_topic(content))
            elif kind == PING:
                client.put(text)
            elif kind == SAVE_M:
                pass
            elif kind == CRUD:
                await self._apply(client, content)
            else:
                self._error(client, kind, f"unsupported message Type {kind!r}")
        except Exception as exc:  # noqa: BLE001
            self._error(client, kind, exc)

    async def _apply(self, client: _Client, content: Any) -> None:
        if not isinstance(content, dict):
            raise ArgumentError('a change is {"TopicID", "ID", "Type": 1|3|4, "Value"}')
        topic = check_topic(content.get("TopicID"))
        check_topic_access(self.runtime, client.principal, topic, WRITE)
        change = content.get("Type")
        store = self.store
        version = content.get("Version")
        if change == ADD:
            if "Value" not in content:
                raise ArgumentError("an add needs 'Value'")
            await run_in_threadpool(as_writer, client.principal, topic, store.add, topic, content["Value"])
        elif change == EXCHANGE:
            if not isinstance(content.get("ID"), str) or "Value" not in content:
                raise ArgumentError("an exchange needs 'ID' and 'Value'")
            await run_in_threadpool(as_writer, client.principal, topic, store.exchange, topic, content["ID"],
                                    content["Value"], version, "id")
        elif change == REMOVE:
            if not isinstance(content.get("ID"), str):
                raise ArgumentError("a remove needs 'ID'")
            await run_in_threadpool(as_writer, client.principal, topic, store.remove, topic, content["ID"], version,
                                    "id")
        else:
            raise ArgumentError(f"change Type must be 1 (add), 3 (exchange) or 4 (remove), not {change!r}")

    def bind(self) -> None:
        """Startup: remember the server's event loop (changes are handed to it from other threads)."""
        self.loop = asyncio.get_running_loop()


def live_routes(hub: LiveHub) -> list[BaseRoute]:
    return [WebSocketRoute("/live", hub.endpoint)]
