"""Error and result responses shared by every route."""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.responses import Response

from coflows.errors import ArgumentError, CoflowsError, UserCodeError
from coflows.permissions import Principal
from coflows.redact import redact
from coflows.serialize import to_json_bytes

log = logging.getLogger("coflows.server")


def error_body(exc: BaseException, principal: Principal | None = None) -> tuple[int, dict[str, Any]]:
    """(status, JSON body) for an exception; stacks only for admins; API keys masked (`coflows.redact`)."""
    if isinstance(exc, UserCodeError):
        err: dict[str, Any] = {"type": exc.type_name, "message": redact(exc.message), "language": exc.language,
                               "origin": "user"}  # raised by user code: a 500 that is not the server's fault
        if principal is not None and principal.is_admin and exc.stack:
            err["stack"] = redact(exc.stack)
        return exc.http_status, {"error": err}
    if isinstance(exc, CoflowsError):
        err = {"type": type(exc).__name__, "message": redact(str(exc))}
        if isinstance(exc, ArgumentError) and exc.parameter:
            err["parameter"] = exc.parameter
        return exc.http_status, {"error": err}
    log.exception("internal error", exc_info=exc)
    return 500, {"error": {"type": "InternalError", "message": redact(f"{type(exc).__name__}: {exc}"),
                           "origin": "server"}}


def error_response(exc: BaseException, principal: Principal | None = None) -> Response:
    status, body = error_body(exc, principal)
    return Response(json.dumps(body), status_code=status, media_type="application/json")


def json_response(data: Any, status: int = 200) -> Response:
    return Response(to_json_bytes(data), status_code=status, media_type="application/json")
