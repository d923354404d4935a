"""REST access to M: read a topic, add / exchange / remove entries.

    GET  /m/data?type=<topic>        [value, ...]                         (insertion order)
    GET  /m/rawdata?type=<topic>     [{"ID", "EntryID", "Entry", "Version"}, ...]
    GET  /m/entry?type=<topic>&id=   {"ID", "EntryID", "Entry", "Version"} or 404
    GET  /m/entries?type=<topic>&offset=&limit=&q=
                                     {"topic", "total", "offset", "limit", "q", "level",
                                      "entries": [{"id", "value", "version", "updated"}]}  (one page)
    GET  /m/topics                   [{"Topic", "Count", "Level"}, ...] (topics the caller may read)
    GET  /m/save?type=<topic>        no-op (writes are committed already), for CoFlows clients
    POST /m/add?type=<topic>         body: the value                 → {"ID", "Created"}
    POST /m/addmany?type=<topic>     body: [values]                  → {"IDs": [...]}
    POST /m/exchange?type=<topic>    body: {"ID" | "Old", "Value", "Version"?} → {"ID", "Version", "Entry"}
    POST /m/remove?type=<topic>      body: {"ID" | "Value", "Version"?} → {"Removed": true} or 404

A topic nobody wrote to is empty (200 with `[]`), not an error. Permissions: see
`check_topic_access`.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from coflows.context import CallContext, call_context
from coflows.errors import ArgumentError, CoflowsError, NotFoundError
from coflows.m.store import MStore, check_topic
from coflows.permissions import LEVEL_NAMES, READ, WRITE, Principal, denied, workflow_level
from coflows.server.auth import principal_of
from coflows.server.limits import int_param, parse_json, text_param
from coflows.server.responses import error_response, json_response

if TYPE_CHECKING:
    from coflows.runtime import Runtime
    from coflows.workflow import Workflow

class NoDatabase(CoflowsError):
    http_status = 503


def topic_owner(runtime: Runtime, topic: str) -> Workflow | None:
    """The workflow that owns a topic: the one whose ID the topic is or starts with, followed by a
    non-alphanumeric character (CoFlows' `<WID>`, `<WID>--Queries`, `<WID>-agent...`); the longest
    such ID wins. None: no workflow owns it (a shared topic)."""
    best: Workflow | None = None
    for wf in runtime.registry.workflows():
        if topic.startswith(wf.id) and (len(topic) == len(wf.id) or not topic[len(wf.id)].isalnum()):
            if best is None or len(wf.id) > len(best.id):
                best = wf
    return best


def topic_workflows(runtime: Runtime, topic: str, wid: str | None = None) -> list[Workflow]:
    """The workflows whose permissions govern a topic; a caller needs the level on EVERY one.

    The owner (`topic_owner`) governs its topics; a topic no workflow owns is shared by all the
    server's workflows. `wid` can only narrow access, never widen it: that workflow is added to
    the list (an unknown `wid` is a 404), it never replaces the owner.
    """
    owner = topic_owner(runtime, topic)
    workflows = [owner] if owner is not None else list(runtime.registry.workflows())
    if wid:
        extra = runtime.registry.workflow(wid)
        if all(wf.id != extra.id for wf in workflows):
            workflows.append(extra)
    return workflows


def topic_level(runtime: Runtime, principal: Principal, topic: str) -> int:
    """The caller's level on a topic: the lowest of their levels on `topic_workflows` (what
    `check_topic_access` compares), so the web app shows write controls only where writes pass."""
    if principal.is_admin:
        return WRITE
    levels = [workflow_level(wf, principal) for wf in topic_workflows(runtime, topic)]
    return min(levels) if levels else -2


LEVEL_WORDS = {0: "view", 1: "read", 2: "write"}
MAX_PAGE = 1000
MAX_SEARCH = 200


def level_word(level: int) -> str:
    return LEVEL_WORDS.get(level, "none")


def check_topic_access(runtime: Runtime, principal: Principal, topic: str, level: int,
                       wid: str | None = None) -> None:
    """Admin always; otherwise `level` (READ to read, WRITE to write) on every workflow of `topic_workflows`."""
    if principal.is_admin:
        return
    workflows = topic_workflows(runtime, topic, wid)
    if workflows and all(workflow_level(wf, principal) >= level for wf in workflows):
        return
    names = ", ".join(f"'{wf.name}'" for wf in workflows) or "(none)"
    raise denied(principal, f"M topic '{topic}' needs {LEVEL_NAMES[level]} on workflow {names}")


def parse_json_body(body: bytes) -> Any:
    if not body.strip():
        raise ArgumentError("empty body: expected a JSON value", "body")
    return parse_json(body)


def _field(body: Any, *names: str) -> tuple[bool, Any]:
    if not isinstance(body, dict):
        raise ArgumentError("the body must be a JSON object", "body")
    for n in names:
        if n in body:
            return True, body[n]
    return False, None


def _version(body: dict[str, Any]) -> int | None:
    v = body.get("Version")
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise ArgumentError("'Version' must be an integer", "Version")
    return v


def _raw_entry(topic_json: str, entry_id: str, value_json: str, version: int) -> str:
    return f'{{"ID":{topic_json},"EntryID":"{entry_id}","Entry":{value_json},"Version":{version}}}'


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def as_writer(principal: Principal, topic: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Run `fn(*args)` (an M write of `topic`) as the request's caller: the store records them as the
    writer of its changes, and the agents those changes trigger run as them."""
    with call_context(CallContext("", "M", topic, principal)):
        return fn(*args)


class MRoutes:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    @property
    def store(self) -> MStore:
        if self.runtime.database is None:
            raise NoDatabase("M is unavailable: the server runs without a database")
        return MStore.for_database(self.runtime.database)

    def _topic(self, request: Request, principal: Principal, level: int) -> str:
        topic = request.query_params.get("type") or request.query_params.get("topic")
        if not topic:
            raise ArgumentError("query parameter 'type' (the M topic) is required", "type")
        check_topic(topic)
        check_topic_access(self.runtime, principal, topic, level, request.query_params.get("wid"))
        return topic

    async def _handle(self, request: Request, level: int,
                      work: Callable[[MStore, str, Any], Any], with_body: bool = False) -> Response:
        principal = principal_of(request.scope)
        try:
            topic = self._topic(request, principal, level)
            body = parse_json_body(await request.body()) if with_body else None
            store = self.store
            result = await run_in_threadpool(as_writer, principal, topic, work, store, topic, body)
        except Exception as exc:  # noqa: BLE001
            return error_response(exc, principal)
        if isinstance(result, Response):
            return result
        return json_response(result)

    # -- reads --------------------------------------------------------------------------------
    async def data(self, request: Request) -> Response:
        def work(store: MStore, topic: str, _: Any) -> Response:
            rows = store.rows(topic)
            return Response("[" + ",".join(r[1] for r in rows) + "]", media_type="application/json")

        return await self._handle(request, READ, work)

    async def rawdata(self, request: Request) -> Response:
        def work(store: MStore, topic: str, _: Any) -> Response:
            t = json.dumps(topic)
            body = "[" + ",".join(_raw_entry(t, r[0], r[1], r[2]) for r in store.rows(topic)) + "]"
            return Response(body, media_type="application/json")

        return await self._handle(request, READ, work)

    async def entry(self, request: Request) -> Response:
        def work(store: MStore, topic: str, _: Any) -> Response:
            entry_id = text_param(request.query_params, "id", 255)
            if not entry_id:
                raise ArgumentError("query parameter 'id' (the entry id) is required", "id")
            row = store.get(topic, entry_id)
            if row is None:
                raise NotFoundError(f"no entry '{entry_id}' in M topic '{topic}'")
            return Response(_raw_entry(json.dumps(topic), row[0], row[1], row[2]), media_type="application/json")

        return await self._handle(request, READ, work)

    async def entries(self, request: Request) -> Response:
        """One page of a topic, optionally searched: what the web app's M browser shows."""
        principal = principal_of(request.scope)

        def work(store: MStore, topic: str, _: Any) -> Response:
            params = request.query_params
            offset = int_param(params, "offset", 0, minimum=0, maximum=2_000_000_000)
            limit = int_param(params, "limit", 100, minimum=1, maximum=MAX_PAGE)
            search = text_param(params, "q", MAX_SEARCH) or None
            total, rows = store.page(topic, offset, limit, search)
            head = json.dumps({"topic": topic, "total": total, "offset": offset, "limit": limit, "q": search or "",
                               "level": level_word(topic_level(self.runtime, principal, topic))})
            # values are stored as canonical JSON text: embedded as they are, not parsed and re-encoded
            items = ",".join(f'{{"id":"{r[0]}","value":{r[1]},"version":{r[2]},"updated":"{_iso(r[3])}"}}'
                             for r in rows)
            return Response(f'{head[:-1]},"entries":[{items}]}}', media_type="application/json")

        return await self._handle(request, READ, work)

    async def save(self, request: Request) -> Response:
        return await self._handle(request, WRITE, lambda store, topic, _: {"Saved": True})

    async def topics(self, request: Request) -> Response:
        principal = principal_of(request.scope)
        try:
            rows = await run_in_threadpool(self.store.topics)
            visible = []
            for topic, n in rows:
                try:
                    check_topic_access(self.runtime, principal, topic, READ)
                except CoflowsError:
                    continue
                visible.append({"Topic": topic, "Count": n,
                                "Level": level_word(topic_level(self.runtime, principal, topic))})
        except Exception as exc:  # noqa: BLE001
            return error_response(exc, principal)
        return json_response(visible)

    # -- writes -------------------------------------------------------------------------------
    async def add(self, request: Request) -> Response:
        def work(store: MStore, topic: str, value: Any) -> dict[str, Any]:
            entry_id, created = store.add(topic, value)
            return {"ID": entry_id, "Created": created}

        return await self._handle(request, WRITE, work, with_body=True)

    async def add_many(self, request: Request) -> Response:
        def work(store: MStore, topic: str, values: Any) -> dict[str, Any]:
            if not isinstance(values, list):
                raise ArgumentError("the body must be a JSON array of values", "body")
            return {"IDs": store.add_many(topic, values)}

        return await self._handle(request, WRITE, work, with_body=True)

    async def exchange(self, request: Request) -> Response:
        def work(store: MStore, topic: str, body: Any) -> dict[str, Any]:
            has_value, value = _field(body, "Value")
            if not has_value:
                raise ArgumentError("field 'Value' (the new value) is required", "Value")
            has_id, entry_id = _field(body, "ID")
            has_old, old = _field(body, "Old")
            if has_id == has_old:
                raise ArgumentError("give exactly one of 'ID' (the entry id) or 'Old' (its current value)", "ID")
            if has_id:
                if not isinstance(entry_id, str):
                    raise ArgumentError("'ID' must be a string", "ID")
                done = store.exchange(topic, entry_id, value, _version(body), by="id")
            else:
                done = store.exchange(topic, old, value, _version(body), by="value")
            return {"ID": done["id"], "Version": done["version"], "Entry": done["value"]}

        return await self._handle(request, WRITE, work, with_body=True)

    async def remove(self, request: Request) -> Response:
        def work(store: MStore, topic: str, body: Any) -> dict[str, Any]:
            has_id, entry_id = _field(body, "ID")
            has_value, value = _field(body, "Value")
            if has_id == has_value:
                raise ArgumentError("give exactly one of 'ID' (the entry id) or 'Value'", "ID")
            if has_id and not isinstance(entry_id, str):
                raise ArgumentError("'ID' must be a string", "ID")
            removed = store.remove(topic, entry_id if has_id else value, _version(body),
                                   by="id" if has_id else "value")
            if not removed:
                what = f"entry '{entry_id}'" if has_id else "such value"
                raise NotFoundError(f"no {what} in M topic '{topic}'")
            return {"Removed": True}

        return await self._handle(request, WRITE, work, with_body=True)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/m/data", self.data),
            Route("/m/rawdata", self.rawdata),
            Route("/m/entry", self.entry),
            Route("/m/entries", self.entries),
            Route("/m/topics", self.topics),
            Route("/m/save", self.save, methods=["GET", "POST"]),
            Route("/m/add", self.add, methods=["POST"]),
            Route("/m/addmany", self.add_many, methods=["POST"]),
            Route("/m/exchange", self.exchange, methods=["POST"]),
            Route("/m/remove", self.remove, methods=["POST"]),
        ]
