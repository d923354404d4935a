"""`/auth/*`: login, logout, who am I (placeholder until the routes land)."""

from __future__ import annotations

from starlette.routing import BaseRoute


def auth_routes(runtime, store, identities) -> list[BaseRoute]:  # noqa: ANN001
    return []
