"""OpenAPI paths of the server's own routes (health, workflows, M, flows, agents, auth, docs).

Why by hand: these routes are Starlette handlers without typed signatures; writing their
parameters, bodies and responses here keeps `/openapi.json` a true description of the whole
server, which the schemathesis fuzz test (`tests/test_fuzz_openapi.py`) walks. Keep each entry
in step with its handler (and with `docs/security.md`).
"""

from __future__ import annotations

from typing import Any

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["type", "message"], "properties": {
        "type": {"type": "string"}, "message": {"type": "string"}, "parameter": {"type": "string"},
        "origin": {"type": "string", "enum": ["user", "server"],
                   "description": "'user': raised by user code (a 500 that is not the server's fault)"},
        "language": {"type": "string"}, "stack": {"type": "string"}}}},
}
_DESCRIPTIONS = {
    "400": "bad input: the message names the parameter or field",
    "401": "an API key is required (or the key is invalid)",
    "403": "the caller lacks the permission",
    "404": "unknown workflow, query, function, topic, entry, run or agent",
    "413": "request body larger than Server.MaxBodyBytes",
    "503": "unavailable: no database, draining, or the workflow's concurrency cap is full (Retry-After)",
    "504": "the call exceeded its time limit",
}
ANY_JSON: dict[str, Any] = {}
LIMIT = {"name": "limit", "in": "query", "required": False,
         "description": "how many, newest first: 1 … 1000 (else 400)",
         "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50}}
TOPIC = {"name": "type", "in": "query", "required": True, "description": "the M topic (at most 255 characters)",
         "schema": {"type": "string", "minLength": 1, "maxLength": 255}}
WID_Q = {"name": "wid", "in": "query", "required": False,
         "description": "workflow ID or name (CoFlows compatibility; never widens access)",
         "schema": {"type": "string"}}


def _json(schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {"description": description or "OK", "content": {"application/json": {"schema": schema}}}


def responses(ok: dict[str, Any], *codes: str) -> dict[str, Any]:
    """`ok` (status → response) plus the JSON error responses named in `codes`."""
    out = dict(ok)
    for code in codes:
        out[code] = _json(ERROR, _DESCRIPTIONS[code])
    return out


def path_param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": {"type": "string"}}


def _op(op_id: str, tag: str, summary: str, ok: dict[str, Any], codes: tuple[str, ...],
        params: list[dict[str, Any]] | None = None, body: dict[str, Any] | None = None,
        body_required: bool = True) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": op_id, "tags": [tag], "summary": summary,
                          "parameters": params or [], "responses": responses(ok, *codes)}
    if body is not None:
        op["requestBody"] = {"required": body_required, "content": {"application/json": {"schema": body}}}
    return op


_RUN = {"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"},
                                         "state": {"type": "string"}, "workflow": {"type": ["string", "null"]}}}
_AGENT = {"type": "object", "properties": {"id": {"type": "string"}, "state": {"type": "string"}}}
_RAW_ENTRY = {"type": "object", "properties": {"ID": {"type": "string"}, "EntryID": {"type": "string"},
                                               "Entry": ANY_JSON, "Version": {"type": "integer"}}}
_M_PAGE = {"type": "object", "required": ["total", "offset", "limit", "entries"], "properties": {
    "topic": {"type": "string"}, "total": {"type": "integer"}, "offset": {"type": "integer"},
    "limit": {"type": "integer"}, "q": {"type": "string"},
    "level": {"type": "string", "enum": ["none", "view", "read", "write"]},
    "entries": {"type": "array", "items": {"type": "object", "properties": {
        "id": {"type": "string"}, "value": ANY_JSON, "version": {"type": "integer"},
        "updated": {"type": "string", "format": "date-time"}}}}}}
_SOURCE_ERROR = {"type": "object", "properties": {
    "file": {"type": "string"}, "line": {"type": ["integer", "null"]}, "column": {"type": ["integer", "null"]},
    "message": {"type": "string"}}}
_WORKFLOW = {"type": "object", "properties": {
    "id": {"type": "string"}, "name": {"type": "string"}, "level": {"type": "integer"},
    "readme": {"type": ["object", "null"]},
    "queries": {"type": "array", "items": {"type": "object", "properties": {
        "id": {"type": "string"}, "file": {"type": "string"}, "language": {"type": ["string", "null"]},
        "functions": {"type": "array", "items": {"type": "string"}},
        "errors": {"type": "array", "items": _SOURCE_ERROR}, "stale": {"type": "boolean"}}}},
    "agents": {"type": "array"}, "flows": {"type": "array"}, "files": {"type": "object"},
    "packages": {"type": "object"}, "problems": {"type": "array", "items": {"type": "string"}},
    "base_errors": {"type": "array", "items": _SOURCE_ERROR},
    "permissions": {"type": ["array", "null"], "description": "package.json Permissions (callers with Write)"}}}
_SOURCE = {"type": "object", "properties": {
    "id": {"type": "string"}, "file": {"type": "string"}, "language": {"type": ["string", "null"]},
    "text": {"type": "string"}, "truncated": {"type": "boolean"}, "size": {"type": "integer"},
    "errors": {"type": "array", "items": _SOURCE_ERROR}, "stale": {"type": "boolean"},
    "functions": {"type": "array", "items": {"type": "object"}}}}
_SSE = {"description": "Server-Sent Events (snapshot, then state changes)",
        "content": {"text/event-stream": {"schema": {"type": "string"}}}}
_READ_CODES = ("400", "401", "403", "404", "503")
_WRITE_CODES = ("400", "401", "403", "404", "413", "503")


def server_paths() -> dict[str, Any]:
    """Every route of the server besides `/flow/query/...` (those come from the functions)."""
    m_read = lambda op_id, summary, schema, extra=(): {  # noqa: E731
        "get": _op(op_id, "M", summary, {"200": _json(schema)}, _READ_CODES, [TOPIC, WID_Q, *extra])}
    m_write = lambda op_id, summary, body, schema: {  # noqa: E731
        "post": _op(op_id, "M", summary, {"200": _json(schema)}, _WRITE_CODES, [TOPIC, WID_Q], body)}
    run_id = path_param("run_id", "a flow run ID")
    wid = path_param("wid", "workflow ID or name")
    agent_id = path_param("id", "an agent ID")
    from coflows.server.legacy_routes import legacy_openapi

    return {
        **legacy_openapi(),  # CoFlows' /flow/getquery and /m/getwb forms (server/legacy_routes.py)
        "/health": {"get": _op("health", "server", "liveness, version, workflows and started engines",
                               {"200": _json({"type": "object"})}, ())},
        # only with "Jupyter": true (docs/jupyter.md): a proxy, not an API of its own
        "/lab": {"get": _op("lab", "jupyter", "JupyterLab (admins only): redirects to /lab/; everything under "
                            "/lab/ is proxied to the server's JupyterLab child (Jupyter Server's REST API at "
                            "/lab/api/…, kernels' websockets at /lab/api/kernels/{id}/channels)",
                            {"307": {"description": "to /lab/"}}, ("401", "403"))},
        "/flow/workflows": {"get": _op("workflows", "server", "the workflows the caller may view",
                                       {"200": _json({"type": "array", "items": {"type": "object"}})}, ())},
        "/openapi.json": {"get": _op("openapi", "server", "this document (what the caller may call)",
                                     {"200": _json({"type": "object"})}, ())},
        "/flow/openapi/{wid}/{qid}": {"get": _op(
            "openapi_query", "server", "OpenAPI of one query", {"200": _json({"type": "object"})},
            ("401", "404"), [wid, path_param("qid", "query ID"),
                             {"name": "format", "in": "query", "required": False,
                              "schema": {"type": "string", "enum": ["json", "yaml"]}}])},
        "/flow/workflows/{wid}": {"get": _op(
            "workflow", "server", "one workflow: README, queries, errors, agents, flows, files, packages "
            "(permissions with Write)", {"200": _json(_WORKFLOW)}, ("401", "403", "404"), [wid])},
        "/flow/source/{wid}/{qid}": {"get": _op(
            "query_source", "server", "a query file's source, language and compile errors (Read)",
            {"200": _json(_SOURCE)}, ("401", "403", "404"), [wid, path_param("qid", "query ID")])},
        "/m/data": m_read("m_data", "a topic's values, in insertion order", {"type": "array"}),
        "/m/rawdata": m_read("m_rawdata", "a topic's entries with IDs and versions",
                             {"type": "array", "items": _RAW_ENTRY}),
        "/m/entry": m_read("m_entry", "one entry of a topic", _RAW_ENTRY,
                           ({"name": "id", "in": "query", "required": True, "schema": {"type": "string"}},)),
        "/m/entries": m_read("m_entries", "one page of a topic's entries, optionally searched", _M_PAGE, (
            {"name": "offset", "in": "query", "required": False, "description": "entries to skip: ≥ 0 (else 400)",
             "schema": {"type": "integer", "minimum": 0, "maximum": 2_000_000_000, "default": 0}},
            {"name": "limit", "in": "query", "required": False, "description": "page size: 1 … 1000 (else 400)",
             "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
            {"name": "q", "in": "query", "required": False,
             "description": "case-insensitive substring of the entry's JSON text or id (% and _ are literal)",
             "schema": {"type": "string", "maxLength": 200}})),
        "/m/topics": {"get": _op("m_topics", "M", "the topics the caller may read",
                                 {"200": _json({"type": "array", "items": {"type": "object"}})}, ("503",))},
        "/m/save": {"get": _op("m_save", "M", "no-op (writes are committed already)",
                               {"200": _json({"type": "object"})}, _READ_CODES, [TOPIC, WID_Q])},
        "/m/add": m_write("m_add", "add a value", ANY_JSON, {"type": "object"}),
        "/m/addmany": m_write("m_addmany", "add several values", {"type": "array"}, {"type": "object"}),
        "/m/exchange": m_write("m_exchange", "replace an entry (by ID or by its current value)",
                               {"type": "object", "properties": {"ID": {"type": "string"}, "Old": ANY_JSON,
                                                                 "Value": ANY_JSON, "Version": {"type": "integer"}}},
                               {"type": "object"}),
        "/m/remove": m_write("m_remove", "remove an entry (by ID or by value)",
                             {"type": "object", "properties": {"ID": {"type": "string"}, "Value": ANY_JSON,
                                                               "Version": {"type": "integer"}}},
                             {"type": "object"}),
        "/flows/runs": {"get": _op("flow_runs", "flows", "the latest runs the caller may view",
                                   {"200": _json({"type": "array", "items": _RUN})}, ("400",),
                                   [LIMIT, {"name": "state", "in": "query", "required": False,
                                            "schema": {"type": "string", "maxLength": 32}}])},
        "/flows/events": {"get": _op("flow_events", "flows", "state changes of every visible run (SSE)",
                                     {"200": _SSE}, ())},
        "/flows/runs/{run_id}": {"get": _op("flow_run", "flows", "a run with every task",
                                            {"200": _json(_RUN)}, ("404",), [run_id])},
        "/flows/runs/{run_id}/events": {"get": _op("flow_run_events", "flows", "a run's state changes (SSE)",
                                                   {"200": _SSE}, ("404",), [run_id])},
        "/flows/runs/{run_id}/cancel": {"post": _op(
            "flow_cancel", "flows", "cancel a run", {"200": _json({"type": "object"})},
            ("401", "403", "404"), [run_id])},
        "/flows/runs/{run_id}/rerun": {"post": _op(
            "flow_rerun", "flows", "run a finished run again, with the caller's rights",
            {"200": _json({"type": "object"})}, ("400", "401", "403", "404", "503"), [run_id])},
        "/flows/{wid}/runs": {"post": _op(
            "flow_submit", "flows", "start a run of a spec (graph string, YAML, JSON) or a declared flow",
            {"201": _json({"type": "object", "properties": {"run_id": {"type": "string"}}})},
            ("400", "401", "403", "404", "413", "503"), [wid],
            {"type": "object", "properties": {
                "spec": {"type": "string", "maxLength": 1_000_000}, "flow": {"type": "string"},
                "format": {"type": "string", "enum": ["graph", "yaml", "json", "colonyos"]},
                "inputs": ANY_JSON, "aliases": {"type": "object"}, "name": {"type": "string"}}})},
        "/flows/{wid}/flows": {"get": _op("flow_declared", "flows", "the flows a workflow declares",
                                          {"200": _json({"type": "array"})}, ("401", "403", "404"), [wid])},
        "/flow/agents": {"get": _op("agents", "agents", "the agents the caller may view",
                                    {"200": _json({"type": "array", "items": _AGENT})}, ())},
        "/flow/agent/{id}/runs": {"get": _op("agent_runs", "agents", "an agent's latest runs",
                                             {"200": _json({"type": "array"})}, _READ_CODES, [agent_id, LIMIT])},
        "/flow/agent/{id}/start": {"post": _op("agent_start", "agents", "start an agent",
                                               {"200": _json(_AGENT)}, ("401", "403", "404"), [agent_id])},
        "/flow/agent/{id}/stop": {"post": _op("agent_stop", "agents", "stop an agent",
                                              {"200": _json(_AGENT)}, ("401", "403", "404"), [agent_id])},
        "/flow/agent/{id}/run": {"post": _op(
            "agent_run", "agents", "run the agent's Job now, as the caller (409 while a Job run is going)",
            {"200": _json({"type": "object"}, "the finished run"),
             "202": _json({"type": "object"}, "the run, still going (wait=false)"),
             "409": _json(ERROR, "a Job run is already going, the agent has no Job hook, or it is in error")},
            ("400", "401", "403", "404", "413", "503"),
            [agent_id, {"name": "wait", "in": "query", "required": False,
                        "description": "wait for the run to end (default true)",
                        "schema": {"type": "string", "enum": ["true", "false", "1", "0"]}}])},
        "/flow/logs/{wid}": {"get": _op(
            "workflow_logs", "server", "a workflow's user output: the latest lines, then live (SSE), or JSON",
            {"200": {"description": "SSE of {seq, time, level, workflow, tag, function, line} (format=json: "
                                    "an array of them, oldest first)",
                     "content": {"text/event-stream": {"schema": {"type": "string"}},
                                 "application/json": {"schema": {"type": "array", "items": {"type": "object"}}}}}},
            ("400", "401", "403", "404", "503"),
            [wid, {"name": "format", "in": "query", "required": False,
                   "schema": {"type": "string", "enum": ["sse", "json"]}},
             {**LIMIT, "description": "how many buffered lines: 1 … 1000 (else 400)",
              "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 200}}])},
        "/flow/agent/{id}": {"post": _op("agent_body", "agents", "call the agent's Body hook with the JSON body",
                                         {"200": _json(ANY_JSON)},
                                         ("400", "401", "403", "404", "413", "503", "504"), [agent_id], ANY_JSON)},
        "/flow/ActiveAgentToggle": {"get": _op(
            "agent_toggle", "agents", "start the agent if stopped, stop it if running",
            {"200": _json(_AGENT)}, ("400", "401", "403", "404"),
            [{"name": "id", "in": "query", "required": True, "schema": {"type": "string", "maxLength": 255}}])},
        **_cloud_paths(),
        **_auth_paths(),
        **_admin_paths(),
    }


# -- /flow/cloud/* (server/cloud_routes.py) ------------------------------------------------------
def _cloud_paths() -> dict[str, Any]:
    wid_q = {"name": "wid", "in": "query", "required": True, "description": "the workflow's ID",
             "schema": {"type": "string", "maxLength": 200}}
    flag = {"type": "string", "enum": ["true", "false", "1", "0"]}
    report = {"type": "object", "properties": {
        "exit": {"type": "integer", "enum": [0, 1, 2]}, "errors": {"type": "array", "items": {"type": "string"}},
        "warnings": {"type": "array", "items": {"type": "string"}}, "queries": {"type": "array"},
        "agents": {"type": "array"}, "packages": {"type": "array"}, "added": {"type": "array"}}}
    return {
        "/flow/cloud/deploy": {"post": {
            **_op("cloud_deploy", "cloud", "deploy a workspace (zip or tar.gz): checked, installed, hot-reloaded",
                  {"200": _json({"type": "object", "properties": {
                      "workflow": {"type": "string"}, "deployed": {"type": "boolean"}, "forced": {"type": "boolean"},
                      "report": report, "status": {"type": "object"}}}),
                   "409": _json({"type": "object", "properties": {"error": ERROR, "report": report}},
                                "the new sources do not build (not deployed), or another deploy is running")},
                  ("400", "401", "403", "404", "413"),
                  [wid_q, {"name": "force", "in": "query", "required": False,
                           "description": "deploy even when the sources do not build", "schema": flag}]),
            "requestBody": {"required": True, "description": "the workspace as a tar.gz or zip (coflows build cloud)",
                            "content": {"application/octet-stream": {"schema": {"type": "string",
                                                                                "format": "binary"}}}}}},
        "/flow/cloud/log": {"get": _op(
            "cloud_log", "cloud", "a workflow's recent log lines",
            {"200": _json({"type": "object", "properties": {"workflow": {"type": "string"},
                                                             "lines": {"type": "array", "items": {"type": "object"}}}})},
            ("400", "401", "403", "404"),
            [wid_q, {"name": "lines", "in": "query", "required": False,
                     "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}}])},
        "/flow/cloud/restart": {"post": _op(
            "cloud_restart", "cloud", "restart the server process (its supervisor starts a new one)",
            {"202": _json({"type": "object", "properties": {"restarting": {"type": "boolean"},
                                                             "pid": {"type": "integer"}}}),
             "409": _json(ERROR, "the server runs without a supervisor (--no-supervisor)")},
            ("400", "401", "403"),
            [{"name": "grace", "in": "query", "required": False,
              "schema": {"type": "integer", "minimum": 1, "maximum": 600, "default": 25}}])},
        "/flow/cloud/remove": {"post": _op(
            "cloud_remove", "cloud", "unload a workflow from the running server",
            {"200": _json({"type": "object", "properties": {"removed": {"type": "string"},
                                                             "purged": {"type": "boolean"}}})},
            ("400", "401", "403", "404"),
            [wid_q, {"name": "purge", "in": "query", "required": False, "schema": flag}])},
    }


# -- /auth/* (coflows/auth/routes.py) ------------------------------------------------------------
_IDENTITY = {"type": "object", "properties": {
    "id": {"type": "string"}, "email": {"type": ["string", "null"]}, "name": {"type": "string"},
    "admin": {"type": "boolean"},
    "groups": {"type": "array", "items": {"type": "object", "properties": {
        "id": {"type": "string"}, "level": {"type": "string", "enum": ["invited", "denied", "view", "read", "write"]},
        "expires": {"type": ["string", "null"]}}}}}}
_KEY = {"type": "object", "properties": {"id": {"type": "string"}, "label": {"type": "string"},
                                         "created": {"type": "string"}, "last_used": {"type": ["string", "null"]},
                                         "revoked": {"type": ["string", "null"]}}}


def _auth_paths() -> dict[str, Any]:
    err = lambda text: _json(ERROR, text)  # noqa: E731
    login = {"type": "object", "required": ["email", "password"], "additionalProperties": False,
             "properties": {"email": {"type": "string", "maxLength": 320},
                            "password": {"type": "string", "maxLength": 1024}}}
    return {
        "/auth/login": {"post": _op(
            "auth_login", "auth", "log in with email and password: sets the session cookie (HttpOnly, "
            "SameSite=Lax, Secure over TLS); send the returned csrf in X-CSRF-Token on state-changing requests",
            {"200": _json({"type": "object", "properties": {
                "user": _IDENTITY, "csrf": {"type": "string"}, "expires": {"type": "string"}}}),
             "401": err("wrong email or password (the same answer for an unknown email)"),
             "415": err("the body must be application/json"),
             "423": err("the account is locked after too many wrong passwords (Retry-After)"),
             "429": err("too many failed logins from this address (Retry-After)")},
            ("400", "413", "503"), body=login)},
        "/auth/logout": {"post": _op("auth_logout", "auth", "end the session of the cookie and clear it",
                                     {"200": _json({"type": "object", "properties": {"ended": {"type": "boolean"}}})},
                                     ())},
        "/auth/me": {"get": _op(
            "auth_me", "auth", "who is calling: identity, unexpired groups, the CSRF token (with the cookie)",
            {"200": _json({**_IDENTITY, "properties": {
                **_IDENTITY["properties"], "csrf": {"type": "string"},
                "via": {"type": "string", "enum": ["session", "key", "admin-key"]}}})}, ("401",))},
        "/auth/keys": {
            "get": _op("auth_keys", "auth", "the caller's own API keys (never the keys themselves)",
                       {"200": _json({"type": "array", "items": _KEY})}, ("401",)),
            "post": _op("auth_new_key", "auth", "a new API key of the logged-in user, shown once",
                        {"201": _json({"type": "object", "properties": {
                            "id": {"type": "string"}, "key": {"type": "string"}, "label": {"type": "string"}}}),
                         "409": err("at most 100 unrevoked API keys per user")},
                        ("400", "401", "403", "413"),
                        body={"type": "object", "additionalProperties": False,
                              "properties": {"label": {"type": "string", "maxLength": 200}}},
                        body_required=False)},
        "/auth/keys/{key_id}/revoke": {"post": _op(
            "auth_revoke_key", "auth", "revoke one of the caller's own API keys", {"200": _json(_KEY)},
            ("401", "404"), [path_param("key_id", "the key's ID (from GET /auth/keys)")])},
    }


# -- admin: /auth/users…, /auth/groups…, /auth/admin/keys… (coflows/auth/admin_routes.py) ------------------
_USER = {"type": "object", "properties": {
    "id": {"type": "string"}, "email": {"type": "string"}, "name": {"type": "string"}, "admin": {"type": "boolean"},
    "password": {"type": "boolean", "description": "a password is set (never the password or its hash)"},
    "created": {"type": ["string", "null"]}, "locked_until": {"type": ["string", "null"]},
    "keys": {"type": "integer", "description": "unrevoked API keys"},
    "groups": {"type": "array", "items": {"type": "object", "properties": {
        "group": {"type": "string"}, "level": {"type": "string"}, "expires": {"type": ["string", "null"]},
        "expired": {"type": "boolean"}}}}}}
_GROUP = {"type": "object", "properties": {
    "id": {"type": "string"}, "name": {"type": "string"},
    "workflow": {"type": ["string", "null"], "description": "the workflow's name when the ID is a loaded workflow's"},
    "members": {"type": "array", "items": {"type": "object", "properties": {
        "user": {"type": "string"}, "level": {"type": "string"}, "expires": {"type": ["string", "null"]},
        "expired": {"type": "boolean"}}}}}}
_LEVEL = {"type": "string", "enum": ["invited", "denied", "view", "read", "write"]}
_PASSWORD = {"type": "string", "minLength": 8, "maxLength": 1024}


def _admin_paths() -> dict[str, Any]:
    err = lambda text: _json(ERROR, text)  # noqa: E731
    codes = ("400", "401", "403", "404", "413")
    email = [path_param("email", "the user's email")]
    group = [path_param("group", "a group's ID or a workflow's ID")]
    dup = {"409": err("it exists already (or: not allowed on yourself)")}
    obj = lambda props, required=(): {"type": "object", "additionalProperties": False,  # noqa: E731
                                      "required": list(required), "properties": props}
    return {
        "/auth/users": {
            "get": _op("admin_users", "admin", "every user with memberships (admin only)",
                       {"200": _json({"type": "array", "items": _USER})}, ("400", "401", "403"), [
                           {**LIMIT, "description": "how many: 1 … 1000 (default 1000; else 400)",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 1000}},
                           {"name": "offset", "in": "query", "required": False,
                            "schema": {"type": "integer", "minimum": 0, "default": 0}}]),
            "post": _op("admin_add_user", "admin", "add a user (admin only)", {"201": _json(_USER), **dup},
                        ("400", "401", "403", "413", "503"),
                        body=obj({"email": {"type": "string", "maxLength": 320}, "name": {"type": "string", "maxLength": 200},
                                  "password": _PASSWORD, "admin": {"type": "boolean"}}, ["email"]))},
        "/auth/users/{email}/remove": {"post": _op(
            "admin_remove_user", "admin", "remove a user with their memberships, keys and sessions (admin only)",
            {"200": _json({"type": "object", "properties": {"removed": {"type": "string"}}}), **dup}, codes, email)},
        "/auth/users/{email}/password": {"post": _op(
            "admin_set_password", "admin", "set a user's password: their sessions end, a lock is lifted (admin only)",
            {"200": _json(_USER)}, (*codes, "503"), email, obj({"password": _PASSWORD}, ["password"]))},
        "/auth/users/{email}/admin": {"post": _op(
            "admin_set_admin", "admin", "make a user an admin or not (admin only)", {"200": _json(_USER), **dup},
            codes, email, obj({"admin": {"type": "boolean"}}, ["admin"]))},
        "/auth/users/{email}/keys": {
            "get": _op("admin_user_keys", "admin", "a user's API keys, never the keys themselves (admin only)",
                       {"200": _json({"type": "array", "items": {**_KEY, "properties": {
                           **_KEY["properties"], "user": {"type": "string"}}}})}, ("400", "401", "403", "404"), email),
            "post": _op("admin_mint_key", "admin", "a new API key for a user, shown once (admin only)",
                        {"201": _json({"type": "object", "properties": {
                            "id": {"type": "string"}, "key": {"type": "string"}, "label": {"type": "string"},
                            "user": {"type": "string"}}}), "409": err("at most 100 unrevoked API keys per user")},
                        codes, email, obj({"label": {"type": "string", "maxLength": 200}}), body_required=False)},
        "/auth/admin/keys/{key_id}/revoke": {"post": _op(
            "admin_revoke_key", "admin", "revoke anyone's API key (admin only)", {"200": _json(_KEY)},
            ("401", "403", "404"), [path_param("key_id", "the key's ID (from GET /auth/users/{email}/keys)")])},
        "/auth/groups": {
            "get": _op("admin_groups", "admin", "every group (added, workflows' IDs, with members) and its members "
                       "(admin only)", {"200": _json({"type": "array", "items": _GROUP})}, ("401", "403")),
            "post": _op("admin_add_group", "admin", "add a named group (admin only)", {"201": _json(_GROUP), **dup},
                        ("400", "401", "403", "413"),
                        body=obj({"id": {"type": "string", "minLength": 1, "maxLength": 200},
                                  "name": {"type": "string", "maxLength": 200}}, ["id"]))},
        "/auth/groups/{group}/remove": {"post": _op(
            "admin_remove_group", "admin", "remove a group and every membership in it (admin only)",
            {"200": _json({"type": "object", "properties": {"removed": {"type": "string"}}})}, codes, group)},
        "/auth/groups/{group}/grant": {"post": _op(
            "admin_grant", "admin", "give a user a level in a group, replacing an earlier grant (admin only)",
            {"200": _json({"type": "object", "properties": {"group": {"type": "string"}, "user": {"type": "string"},
                                                            "level": _LEVEL, "expires": {"type": ["string", "null"]}}})},
            codes, group, obj({"user": {"type": "string", "maxLength": 320}, "level": _LEVEL,
                               "expires": {"type": ["string", "null"], "description": "YYYY-MM-DD (00:00 UTC) or an "
                                           "ISO 8601 time, in the future; absent: never"}}, ["user", "level"]))},
        "/auth/groups/{group}/revoke": {"post": _op(
            "admin_revoke", "admin", "take a user out of a group (admin only)",
            {"200": _json({"type": "object", "properties": {"group": {"type": "string"}, "user": {"type": "string"},
                                                            "revoked": {"type": "boolean"}}})},
            codes, group, obj({"user": {"type": "string", "maxLength": 320}}, ["user"]))},
        "/auth/password": {"post": _op(
            "auth_password", "auth", "change your own password (from a login session, with the current one); "
            "your other sessions end",
            {"200": _json({"type": "object", "properties": {"changed": {"type": "boolean"},
                                                            "other_sessions_ended": {"type": "boolean"}}}),
             "423": err("the account is locked after too many wrong passwords (Retry-After)")},
            ("400", "401", "403", "413", "503"), body=obj({"current": {"type": "string", "maxLength": 1024},
                                                           "new": _PASSWORD}, ["current", "new"]))},
    }
