"""OpenID Connect login (placeholder until it lands)."""

from __future__ import annotations

from starlette.routing import BaseRoute


def oidc_routes(runtime, store, identities) -> list[BaseRoute]:  # noqa: ANN001
    return []
