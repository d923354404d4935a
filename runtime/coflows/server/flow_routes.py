"""REST and live events for DAG runs: `/flows/...`.

- `POST /flows/{wid}/runs` `{"spec": …, "format"?, "inputs"?, "aliases"?, "name"?}` or `{"flow": "<name in package.json Flows>", "inputs"?}` → 201 `{"run_id"}`
- `GET /flows/runs?limit=&state=` · `GET /flows/runs/{id}` (every task's state, times, attempts, output)
- `POST /flows/runs/{id}/cancel` · `POST /flows/runs/{id}/rerun`
- `GET /flows/runs/{id}/events` and `GET /flows/events`: Server-Sent Events of state changes
- `GET /flows/{wid}/flows`: the flows a workflow declares

Rights (docs/security.md): a run belongs to the workflow it was submitted to. Reading a run (get,
list, events) needs Read there, and a run the caller may not read is a 404 (its existence is
private). Submit needs Read and every task's function callable by the caller. Cancel and rerun
need Write on the workflow, or being the (non-anonymous) caller who submitted the run; a rerun
also needs every task's function callable by the caller, and its tasks then run as that caller.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from coflows.errors import ArgumentError, NotFoundError
from coflows.flows import FlowEngine, parse_spec
from coflows.flows.registry_resolver import RegistryResolver
from coflows.permissions import READ, VIEW, WRITE, Principal, can_call, denied, require, workflow_level
from coflows.runtime import Runtime
from coflows.server.auth import principal_of
from coflows.server.limits import int_param, parse_json, text_param
from coflows.server.responses import error_response, json_response

TERMINAL = {"finished", "failed", "cancelled", "interrupted"}
MAX_LIST = 1000  # `limit` of GET /flows/runs: 1 … 1000, else 400


class FlowRoutes:
    def __init__(self, runtime: Runtime, engine: FlowEngine, resolver: RegistryResolver) -> None:
        self.runtime = runtime
        self.engine = engine
        self.resolver = resolver

    # -- helpers ----------------------------------------------------------------------------
    def _visible(self, principal: Principal, workflow_id: str | None) -> bool:
        """May the caller read runs of this workflow (Read)? Runs without a workflow: admin only."""
        if principal.is_admin:
            return True
        if workflow_id is None:
            return False
        try:
            return workflow_level(self.runtime.registry.workflow(workflow_id), principal) >= READ
        except NotFoundError:
            return False

    def readable_workflows(self, principal: Principal) -> list[str] | None:
        """IDs of the workflows whose runs the caller may read (None: all, for the admin)."""
        if principal.is_admin:
            return None
        return [wf.id for wf in self.runtime.registry.workflows() if workflow_level(wf, principal) >= READ]

    def visible_run(self, request: Request) -> Any:
        """The run named in the path, if the caller may read it; else NotFoundError (never a 403: no leak)."""
        principal = principal_of(request.scope)
        run = self.engine.get(request.path_params["run_id"])
        if not self._visible(principal, run.workflow):
            raise NotFoundError(f"unknown run '{request.path_params['run_id']}'")
        return run

    def changeable_run(self, request: Request) -> Any:
        """The run, if the caller may cancel or rerun it: Write on its workflow, or its own submitter."""
        principal = principal_of(request.scope)
        run = self.visible_run(request)
        if principal.is_admin or (not principal.is_anonymous and run.submitted_by == principal.id):
            return run
        require(self.runtime.registry.workflow(run.workflow), principal, WRITE, f"run '{run.id}'")
        return run

    def check_callable(self, run: Any, principal: Principal) -> None:
        """Every task's function must be callable by `principal` (a rerun runs as the caller)."""
        for task in run.tasks:
            wf, fn = self.resolver.resolve(task.ref)
            if not can_call(wf, fn, principal):
                raise denied(principal, f"node '{task.node}' calls {task.ref}")

    def build_spec(self, wid: str, body: dict[str, Any], principal: Principal) -> tuple[Any, str]:
        """Parse and validate the spec against the workflow, qualify every ref, check permissions."""
        wf = self.runtime.registry.workflow(wid)
        require(wf, principal, READ, "submitting a flow run")
        bound = self.resolver.bound(wf.id)
        aliases = body.get("aliases")
        source = body.get("spec")
        fmt = body.get("format")
        if "flow" in body:
            entry = next((f for f in wf.manifest.Flows if f.Name == body["flow"]), None)
            if entry is None:
                raise NotFoundError(f"workflow '{wf.name}' has no flow named '{body['flow']}'")
            source = entry.Spec
            if source is None and entry.Content:
                path = (wf.root / entry.Content)
                source = path.read_text(encoding="utf-8")
                fmt = fmt or {".yaml": "yaml", ".yml": "yaml", ".json": "json"}.get(Path(entry.Content).suffix)
            aliases = {**entry.Aliases, **(aliases or {})}
        if source is None:
            raise ArgumentError("request body: give 'spec' (graph string, YAML, JSON) or 'flow' (a name)", "spec")
        spec = parse_spec(source, format=fmt, aliases=aliases, resolver=bound, name=body.get("name"))
        nodes = []
        for node in spec.nodes:
            w, fn = bound.resolve(node.ref)
            if not can_call(w, fn, principal):
                raise denied(principal, f"node '{node.name}' calls {node.ref}")
            nodes.append(node.model_copy(update={"ref": bound.qualify(node.ref)}))
        return spec.model_copy(update={"nodes": nodes}), wf.id

    # -- endpoints --------------------------------------------------------------------------
    async def submit(self, request: Request) -> Response:
        principal = principal_of(request.scope)
        try:
            body = parse_json(await request.body() or b"{}")
            if not isinstance(body, dict):
                raise ArgumentError("request body: expected a JSON object")
            spec, wid = await asyncio.to_thread(self.build_spec, request.path_params["wid"], body, principal)
            run_id = await asyncio.to_thread(self.engine.submit, spec, body.get("inputs"), wid,
                                             submitted_by=principal.id)
        except Exception as exc:  # noqa: BLE001
            return error_response(exc, principal)
        return json_response({"run_id": run_id, "url": f"/flows/runs/{run_id}"}, status=201)

    async def get(self, request: Request) -> Response:
        try:
            run = await asyncio.to_thread(self.visible_run, request)
        except Exception as exc:  # noqa: BLE001
            return error_response(exc, principal_of(request.scope))
        return json_response(run.to_dict())

    async def list(self, request: Request) -> Response:
        principal = principal_of(request.scope)
        try:
            limit = int_param(request.query_params, "limit", 50, minimum=1, maximum=MAX_LIST)
            state = text_param(request.query_params, "state", 32)
        except ArgumentError as exc:
            return error_response(exc, principal)
        runs = await asyncio.to_thread(self.engine.list_runs, limit, state, self.readable_workflows(principal))
        return json_response([r.to_dict(tasks=False) for r in runs])

    async def cancel(self, request: Request) -> Response:
        principal = principal_of(request.scope)
        try:
            run = await asyncio.to_thread(self.changeable_run, request)
            cancelled = await asyncio.to_thread(self.engine.cancel, run.id)
        except Exception as exc:  # noqa: BLE001
            return error_response(exc, principal)
        return json_response({"run_id": run.id, "cancelled": cancelled})

    async def rerun(self, request: Request) -> Response:
        principal = principal_of(request.scope)
        try:
            run = await asyncio.to_thread(self.changeable_run, request)
            await asyncio.to_thread(self.check_callable, run, principal)
            run_id = await asyncio.to_thread(self.engine.rerun, run.id, principal.id)
        except Exception as exc:  # noqa: BLE001
            return error_response(exc, principal)
        return json_response({"run_id": run_id})

    async def flows(self, request: Request) -> Response:
        principal = principal_of(request.scope)
        try:
            wf = self.runtime.registry.workflow(request.path_params["wid"])
            require(wf, principal, VIEW, "its flows")
        except Exception as exc:  # noqa: BLE001
            return error_response(exc, principal)
        return json_response([f.model_dump(mode="json") for f in wf.manifest.Flows])

    async def events(self, request: Request) -> Response:
        """SSE: a snapshot event, then every state change (of one run, or all visible runs)."""
        principal = principal_of(request.scope)
        run_id = request.path_params.get("run_id")
        snapshot = None
        if run_id is not None:
            try:
                snapshot = await asyncio.to_thread(self.visible_run, request)
            except Exception as exc:  # noqa: BLE001
                return error_response(exc, principal)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[dict] = asyncio.Queue(maxsize=10_000)

        def on_event(event: dict) -> None:
            if run_id is not None and event.get("run_id") != run_id:
                return
            if run_id is None and not self._visible(principal, event.get("workflow")):
                return
            loop.call_soon_threadsafe(_offer, queue, event)

        unsubscribe = self.engine.subscribe(on_event)

        async def stream() -> AsyncIterator[bytes]:
            try:
                if snapshot is not None:
                    yield _sse("snapshot", snapshot.to_dict())
                    if snapshot.state in TERMINAL:
                        return
                while True:
                    try:
                        event = await asyncio.wait_for(queue.get(), timeout=15)
                    except TimeoutError:
                        yield b": keep-alive\n\n"
                        continue
                    yield _sse(event.get("type", "event"), event)
                    if run_id is not None and event.get("type") == "run" and event.get("state") in TERMINAL:
                        return
            finally:
                unsubscribe()

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _offer(queue: asyncio.Queue, event: dict) -> None:
    try:
        queue.put_nowait(event)
    except asyncio.QueueFull:
        pass  # a client that does not read loses events, never the server


def _sse(kind: str, data: Any) -> bytes:
    from coflows.serialize import to_json_bytes

    return b"event: " + kind.encode() + b"\ndata: " + to_json_bytes(data) + b"\n\n"


def flow_routes(runtime: Runtime, engine: FlowEngine, resolver: RegistryResolver) -> list[BaseRoute]:
    r = FlowRoutes(runtime, engine, resolver)
    return [
        Route("/flows/runs", r.list),
        Route("/flows/events", r.events),
        Route("/flows/runs/{run_id}", r.get),
        Route("/flows/runs/{run_id}/events", r.events),
        Route("/flows/runs/{run_id}/cancel", r.cancel, methods=["POST"]),
        Route("/flows/runs/{run_id}/rerun", r.rerun, methods=["POST"]),
        Route("/flows/{wid}/runs", r.submit, methods=["POST"]),
        Route("/flows/{wid}/flows", r.flows),
    ]
