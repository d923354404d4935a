"""`with_viewer(wsgi_app, path)`: an app's requests run as the coflows user viewing it.

Wrap the WSGI app an app's `run` serves (the template does: `make_server(…, with_viewer(app.server,
path))`), and inside its views and Dash callbacks `coflows.user()`, `coflows.permission(…)`, CoFlows'
`User.ContextUser` and `coflows.call("Query.py/fn", …)` (in the app's own workflow) see the viewer.

Who the viewer is comes from the proxy's `X-Coflows-Identity` header: the user ID with an expiry,
HMAC-signed with a key of this server process (`AppManager.secret`), so another local process that
connects to the app's port cannot claim to be someone else: without a valid stamp the request runs
as anonymous. `X-Coflows-User` / `X-Coflows-Level` stay for apps that only want to show the name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from coflows.context import CallContext, call_context
from coflows.jupyter.identity import verify
from coflows.permissions import ANONYMOUS, Principal, principal_from_id

IDENTITY_ENVIRON = "HTTP_X_COFLOWS_IDENTITY"


def _secret() -> str | None:
    try:
        from coflows.runtime import current_runtime

        manager = getattr(current_runtime(), "apps", None)
    except Exception:  # noqa: BLE001 - no server in this process (a script, `coflows query local`)
        return None
    return getattr(manager, "secret", None)


def viewer(environ: dict[str, Any]) -> Principal:
    """The principal the proxy stamped on this request; anonymous without a valid stamp."""
    stamp, secret = environ.get(IDENTITY_ENVIRON), _secret()
    user = verify(secret, stamp) if stamp and secret else None
    return principal_from_id(user) if user else ANONYMOUS


def with_viewer(app: Callable[..., Iterable[bytes]], path: str) -> Callable[..., Iterable[bytes]]:
    """`app` whose requests run in the call context of the viewer and of the app's workflow and query
    (`path` is the `/dash/{wid}/{qid}/` that `run` was given)."""
    parts = path.strip("/").split("/", 2)
    workflow, query = (parts[1], parts[2]) if len(parts) == 3 else ("", "")
    name = _workflow_name(workflow)

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with call_context(CallContext(workflow, query, "app", viewer(environ), name)):
            return app(environ, start_response)

    return wrapped


def _workflow_name(workflow_id: str) -> str:
    try:
        from coflows.runtime import current_runtime

        return current_runtime().registry.workflow(workflow_id).name
    except Exception:  # noqa: BLE001 - no runtime, or not loaded: tags fall back to the ID
        return ""
