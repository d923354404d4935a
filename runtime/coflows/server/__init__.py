"""The HTTP server: Starlette on uvicorn."""

from coflows.server.app import create_app

__all__ = ["create_app"]
