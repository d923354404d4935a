"""The baseline: a bare Starlette app with one route returning the same JSON as the no-op query."""

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def noop(request: Request) -> JSONResponse:
    return JSONResponse(int(request.query_params.get("p[0]", "0")))


def noop_sync(request: Request) -> JSONResponse:
    return JSONResponse(int(request.query_params.get("p[0]", "0")))


app = Starlette(routes=[Route("/noop", noop), Route("/noop_sync", noop_sync)])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
