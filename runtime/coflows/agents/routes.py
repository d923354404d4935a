"""HTTP routes of agents.

    GET  /flow/agents                    every agent the caller may view, with state and errors
    GET  /flow/agent/{id}/runs?limit=50  its latest runs (running first, then newest first); Read
    POST /flow/agent/{id}                call its Body with the JSON body; the result is the response; Write
    POST /flow/agent/{id}/start|stop     start or stop it (schedule and M hooks); Write
    POST /flow/agent/{id}/run?wait=true  run its Job now, as the caller: the run record when it ends
                                         (202 and the running record with wait=false); 409 while a
                                         Job run is going; Write
    GET  /flow/ActiveAgentToggle?id=     CoFlows' toggle (start if stopped, stop if running); Write
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from coflows.errors import ArgumentError, PermissionDenied, Unauthenticated
from coflows.permissions import LEVEL_NAMES, READ, WRITE, Principal, can_view, workflow_level
from coflows.server.auth import principal_of
from coflows.server.limits import int_param, text_param
from coflows.server.m_routes import parse_json_body
from coflows.server.responses import error_response, json_response

if TYPE_CHECKING:
    from coflows.agents.manager import AgentManager
    from coflows.agents.runner import AgentRunner

_NAMES = {READ: "Read", WRITE: "Write"}


class AgentRoutes:
    def __init__(self, manager: AgentManager) -> None:
        self.manager = manager

    def _agent(self, agent_id: str, principal: Principal, level: int) -> AgentRunner:
        runner = self.manager.get(agent_id)
        if principal.is_admin:
            return runner
        wf = self.manager.workflow_of(agent_id)
        if workflow_level(wf, principal) >= level:
            return runner
        if principal.is_anonymous:
            raise Unauthenticated("an API key is required")
        raise PermissionDenied(f"{_NAMES[level]} on workflow '{wf.name}' is needed for agent '{agent_id}'")

    async def list(self, request: Request) -> Response:
        principal = principal_of(request.scope)
        out = []
        for agent_id, runner in list(self.manager.runners.items()):
            try:
                wf = self.manager.workflow_of(agent_id)
            except Exception:  # noqa: BLE001
                continue
            if can_view(wf, principal):
                # the caller's level, so the web app shows Write controls only to who may use them
                level = workflow_level(wf, principal)
                out.append({**runner.status(), "Level": LEVEL_NAMES.get(level, str(level)).lower()})
        return json_response(out)

    async def runs(self, request: Request) -> Response:
        principal = principal_of(request.scope)
        try:
            agent_id = request.path_params["id"]
            self._agent(agent_id, principal, READ)
            limit = int_param(request.query_params, "limit", 50, minimum=1, maximum=1000)
            runs = await run_in_threadpool(self.manager.runs, agent_id, limit)
        except Exception as exc:  # noqa: BLE001
            return error_response(exc, principal)
        return json_response([r.to_json() for r in runs])

    async def body(self, request: Request) -> Response:
        principal = principal_of(request.scope)
        try:
            agent_id = request.path_params["id"]
            self._agent(agent_id, principal, WRITE)
            data = parse_json_body(await request.body())
            result = await asyncio.wrap_future(self.manager.body(agent_id, data, principal))
        except Exception as exc:  # noqa: BLE001
            return error_response(exc, principal)
        return json_response(result)

    async def run(self, request: Request) -> Response:
        """Run Job now, as the caller; waits for the run (under the hook's time limit) unless wait=false."""
        principal = principal_of(request.scope)
        try:
            agent_id = request.path_params["id"]
            self._agent(agent_id, principal, WRITE)
            wait = _bool_param(request.query_params, "wait", True)
            rec, done = await run_in_threadpool(self.manager.run_now, agent_id, principal)
            if wait:
                await asyncio.wrap_future(done)
        except Exception as exc:  # noqa: BLE001
            return error_response(exc, principal)
        return json_response(rec.to_json(), 200 if wait else 202)

    async def _switch(self, request: Request, agent_id: str | None, action: str) -> Response:
        principal = principal_of(request.scope)
        try:
            if not agent_id:
                raise ArgumentError("query parameter 'id' (the agent ID) is required", "id")
            self._agent(agent_id, principal, WRITE)
            fn = {"start": self.manager.start, "stop": self.manager.stop, "toggle": self.manager.toggle}[action]
            runner = await run_in_threadpool(fn, agent_id)
        except Exception as exc:  # noqa: BLE001
            return error_response(exc, principal)
        return json_response(runner.status())

    async def start(self, request: Request) -> Response:
        return await self._switch(request, request.path_params["id"], "start")

    async def stop(self, request: Request) -> Response:
        return await self._switch(request, request.path_params["id"], "stop")

    async def toggle(self, request: Request) -> Response:
        try:
            agent_id = text_param(request.query_params, "id", 255)
        except ArgumentError as exc:
            return error_response(exc, principal_of(request.scope))
        return await self._switch(request, agent_id, "toggle")

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/flow/agents", self.list),
            Route("/flow/agent/{id}/runs", self.runs),
            Route("/flow/agent/{id}/start", self.start, methods=["POST"]),
            Route("/flow/agent/{id}/stop", self.stop, methods=["POST"]),
            Route("/flow/agent/{id}/run", self.run, methods=["POST"]),
            Route("/flow/agent/{id}", self.body, methods=["POST"]),
            Route("/flow/ActiveAgentToggle", self.toggle, methods=["GET", "POST"]),
        ]


def _bool_param(params: object, name: str, default: bool) -> bool:
    """true/false/1/0 (any case), or a 400 naming the parameter."""
    raw = params.get(name)  # type: ignore[attr-defined]
    if raw is None or raw == "":
        return default
    value = {"true": True, "1": True, "false": False, "0": False}.get(raw.strip().lower())
    if value is None:
        raise ArgumentError(f"query parameter '{name}': true or false", name)
    return value
