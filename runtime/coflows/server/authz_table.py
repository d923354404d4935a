"""The authorization table: every route, who may call it, what it reads and changes, its bounds.

One structure for three uses: `docs/security.md` renders it (`python -m coflows.server.authz_table
docs/security.md` rewrites the table between its markers), `tests/test_security_authz.py` walks it
against a real server for every kind of caller, and the same test fails when the app has a route
without a row here.

Callers: anonymous (no key, no session), a user (their API key, or the session cookie of a login),
the admin key (the server's `SecretKey`) and admin users (`coflows user add --admin`); admin users
may do what the admin key may. A user's level on a workflow is the highest of its grants: their
membership of the group whose ID is the workflow's ID, package.json `Permissions` naming their email,
package.json `Permissions` naming a group they are a member of (as View or more), and `Public`
(everyone's, anonymous callers' too). A Denied grant to the user or through one of their groups wins
over every other; an expired membership counts as none (the identity cache never outlives it).

Access kinds (levels are on the workflow that OWNS the object, never one the caller names):
- `anyone`: no level needed; holds no workflow data (the `/auth/*` rows say what a caller must be).
- `listed`: anyone; the answer lists only what the caller may see (`level` says which level).
- `view` / `read` / `write`: that level on the owning workflow.
- `call`: Read on the owning workflow and every function involved callable by the caller (a
  function's `<permissions>` narrows Read: the caller also needs the level in one of its groups).
- `run-change`: Write on the run's workflow, or being the (non-anonymous) caller who submitted it.
- `admin`: the admin key or an admin user (users, groups, memberships, anyone's API keys).
Refusals: a wrong key is 401 on every route; anonymous callers get 401, callers with a key or a
session but without the level 403; a flow run the caller may not read is 404 (its existence is
private).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

ANYONE, LISTED, VIEW, READ, WRITE, CALL, RUN_CHANGE = "anyone", "listed", "view", "read", "write", "call", "run-change"
ADMIN = "admin"
ACCESS_TEXT = {
    ANYONE: "anyone", LISTED: "anyone (filtered)", VIEW: "View", READ: "Read", WRITE: "Write",
    CALL: "Read + callable", RUN_CHANGE: "Write or submitter", ADMIN: "admin (key or admin user)",
}
LEGEND = (
    "Levels are the caller's on the workflow that owns the object: the highest of the user's membership of "
    "the workflow-ID group, package.json `Permissions` naming their email or a named group they are a member "
    "of, and `Public`; Denied (from any of these) wins; expired memberships count as none. The admin key "
    "and admin users may do everything. Refused: wrong key 401; anonymous 401; a user (key or session) "
    "without the level 403; a run the caller may not read 404. Unsafe requests made with the session "
    "cookie need its CSRF token (403 `CsrfFailed`)."
)

BODY = "body ≤ Server.MaxBodyBytes (10 MB) → 413; JSON depth ≤ 64, integers ≤ 640 digits → 400"
CALL_TIME = "Server.CallTimeout (120 s) or the function's own → 504; Server.WorkflowConcurrency → 503"


@dataclass(frozen=True)
class Rule:
    methods: tuple[str, ...]  # HEAD goes with GET; "WS" for a websocket
    path: str  # the Starlette route path
    access: str
    owner: str  # how the owning workflow is found
    reads: str
    changes: str
    bounds: str = ""
    level: str = ""  # for `listed`: the level an item needs


ROUTES: tuple[Rule, ...] = (
    Rule(("GET", "POST"), "/flow/query/{wid}/{qid:path}/{fn}", CALL, "`wid` in the path",
         "the function's result", "whatever the function does", f"{BODY}; {CALL_TIME}"),
    # CoFlows' legacy forms of the same call (server/legacy_routes.py): rewritten to the row above
    Rule(("GET",), "/flow/getquery", CALL, "`wid` query parameter", "the function's result (as /flow/query)",
         "whatever the function does", f"wid, qid, name missing, empty or repeated → 400; {CALL_TIME}"),
    *(Rule(("GET",), legacy, CALL, "`workbook` query parameter", "the function's result (as /flow/query)",
           "whatever the function does", f"workbook, id, name missing, empty or repeated → 400; {CALL_TIME}")
      for legacy in ("/m/getwb", "/flow/getwb")),
    Rule(("GET",), "/health", ANYONE, "—", "status, version, number of workflows, started engines (and the call pool's counts, for the admin)", "—"),
    Rule(("GET",), "/flow/workflows", LISTED, "each workflow", "workflows' status", "—", level="View"),
    Rule(("GET",), "/flow/openapi/{wid}/{qid:path}", VIEW, "`wid` in the path",
         "the query's OpenAPI (only functions the caller may call)", "—"),
    Rule(("GET",), "/openapi.json", LISTED, "each workflow", "OpenAPI of every function the caller may call",
         "—", level="View + callable"),
    Rule(("GET",), "/docs", ANYONE, "—", "the Swagger UI page (no data)", "—"),
    Rule(("GET",), "/flow/workflows/{wid}", VIEW, "`wid` in the path",
         "one workflow: README, queries and their errors, agents, flows, files named by package.json (sizes), "
         "packages and install state; its fixed permissions only with Write", "—",
         "README ≤ 256 KB, ≤ 1000 files; nothing outside the workflow's folder, hidden, a database or config"),
    Rule(("GET",), "/flow/source/{wid}/{qid:path}", READ, "`wid` in the path",
         "a query file's text, language, compile errors and functions' permissions", "—",
         "source ≤ 1 MB; only files of the workflow's queries, inside its folder"),
    Rule(("GET",), "/docs/static", ANYONE, "—", "Swagger UI assets", "—"),
    # flows
    Rule(("GET",), "/flows/runs", LISTED, "the run's workflow", "runs (no tasks)", "—",
         "limit 1…1000 (default 50) → else 400", level="Read"),
    Rule(("GET",), "/flows/events", LISTED, "the run's workflow", "SSE of state changes", "—",
         "10,000 queued events per client, then dropped", level="Read"),
    Rule(("GET",), "/flows/runs/{run_id}", READ, "the run's workflow", "the run and every task's output", "—"),
    Rule(("GET",), "/flows/runs/{run_id}/events", READ, "the run's workflow", "SSE of the run's changes", "—",
         "10,000 queued events per client, then dropped"),
    Rule(("POST",), "/flows/runs/{run_id}/cancel", RUN_CHANGE, "the run's workflow", "—",
         "cancels the run", BODY),
    Rule(("POST",), "/flows/runs/{run_id}/rerun", RUN_CHANGE, "the run's workflow", "—",
         "runs unfinished tasks again, as the caller; every task's function must be callable by the caller",
         f"{BODY}; tasks: their own `timeout`"),
    Rule(("POST",), "/flows/{wid}/runs", CALL, "`wid` in the path", "—",
         "a new run (as the caller) calling every node's function", f"{BODY}; tasks: their own `timeout`"),
    Rule(("GET",), "/flows/{wid}/flows", VIEW, "`wid` in the path", "the flows package.json declares", "—"),
    # UI
    Rule(("GET",), "/", ANYONE, "—", "redirect to /ui (the web app)", "—"),
    *(Rule(("GET",), page, ANYONE, "—", "the web app's page (no data; its data comes from the API, "
           "authorized there)", "—") for page in (
        "/ui", "/ui/login", "/ui/workflows/{wid}", "/ui/workflows/{wid}/queries/{qid:path}", "/ui/agents", "/ui/m",
        "/ui/m/{topic:path}", "/ui/flows", "/ui/logs", "/ui/admin", "/ui/profile")),
    Rule(("GET",), "/ui/flows/runs/{run_id}", READ, "the run's workflow",
         "the web app's page (404 status when the run is not readable); data from /flows/runs/{id}", "—"),
    Rule(("GET",), "/ui/static/{name:path}", ANYONE, "—", "the web app's files (no data; nothing outside its folder)",
         "—"),
    Rule(("GET",), "/ui/vendor/{name}", ANYONE, "—", "a fixed list of npm assets (no data)", "—"),
    # M
    Rule(("GET",), "/m/data", READ, "the topic's owner (+ `wid`, which only narrows)", "a topic's values", "—"),
    Rule(("GET",), "/m/rawdata", READ, "the topic's owner (+ `wid`)", "a topic's entries", "—"),
    Rule(("GET",), "/m/entry", READ, "the topic's owner (+ `wid`)", "one entry", "—"),
    Rule(("GET",), "/m/entries", READ, "the topic's owner (+ `wid`)",
         "one page of a topic's entries (optionally searched), their count, the caller's level", "—",
         "limit 1…1000 (default 100), offset ≥ 0, q ≤ 200 characters → else 400; counted, filtered and sliced in SQL"),
    Rule(("GET",), "/m/topics", LISTED, "each topic's owner", "topic names, counts and the caller's level", "—", level="Read"),
    Rule(("GET", "POST"), "/m/save", WRITE, "the topic's owner (+ `wid`)", "—", "nothing (writes are durable)",
         BODY),
    Rule(("POST",), "/m/add", WRITE, "the topic's owner (+ `wid`)", "—", "adds an entry", BODY),
    Rule(("POST",), "/m/addmany", WRITE, "the topic's owner (+ `wid`)", "—", "adds entries", BODY),
    Rule(("POST",), "/m/exchange", WRITE, "the topic's owner (+ `wid`)", "—", "replaces an entry", BODY),
    Rule(("POST",), "/m/remove", WRITE, "the topic's owner (+ `wid`)", "—", "removes an entry", BODY),
    Rule(("WS",), "/live", LISTED, "each topic's owner",
         "subscribe: changes of a topic (Read, checked again at delivery)", "Type 14 changes: Write",
         "100,000 unsent messages per client, then closed (1013)", level="Read / Write per message"),
    # agents
    Rule(("GET",), "/flow/agents", LISTED, "the agent's workflow", "agents' state and errors", "—", level="View"),
    Rule(("GET",), "/flow/agent/{id}/runs", READ, "the agent's workflow", "its latest runs and their output",
         "—", "limit 1…1000 (default 50) → else 400"),
    Rule(("POST",), "/flow/agent/{id}/start", WRITE, "the agent's workflow", "—", "starts its schedule and hooks",
         BODY),
    Rule(("POST",), "/flow/agent/{id}/stop", WRITE, "the agent's workflow", "—", "stops it", BODY),
    Rule(("POST",), "/flow/agent/{id}/run", WRITE, "the agent's workflow", "the run record",
         "runs its Job now, as the caller (409 while a Job run is going)",
         f"{BODY}; the Job's time limit (Server.CallTimeout or its own); wait=true|false → else 400"),
    Rule(("GET",), "/flow/logs/{wid}", READ, "`wid` in the path",
         "the workflow's user output (print/console lines, redacted): SSE, or JSON with format=json", "—",
         "limit 1…1000 (default 200) → else 400; 1,000 lines kept per workflow, 4 KB per line; "
         "1,000 queued lines per stream, then dropped (and said so); 256 streams at once → 503"),
    # cloud mode (server/cloud_routes.py): coflows build cloud, cloud log|restart|remove
    Rule(("POST",), "/flow/cloud/deploy", ADMIN, "`wid` query parameter",
         "the build report of the new sources",
         "replaces the workflow's package.json, README and Base/ Queries/ Agents/ Files/ Bins/, installs its "
         "packages, hot-reloads it (409 with the report when it does not build, unless force=true); with "
         "Server.DeployAccess \"write\" also users (never anonymous) with Write on it; runs the uploaded code",
         "body ≤ Server.MaxDeployBytes (100 MB), streamed to disk → 413; unpacked ≤ 4 × that and ≤ 10,000 "
         "entries → 413; no absolute path, '..', link, device, hidden file, cache, database or config → 400; "
         "one deploy at a time → 409; the check runs in its own process, ≤ 900 s"),
    Rule(("GET",), "/flow/cloud/log", WRITE, "`wid` query parameter",
         "the workflow's recent log lines (its live log's buffer, redacted)", "—",
         "lines 1…1000 (default 100) → else 400"),
    Rule(("POST",), "/flow/cloud/restart", ADMIN, "—", "—",
         "the supervisor stops the server process (new calls 503 meanwhile) and starts a new one; 409 without "
         "a supervisor", "grace 1…600 s (default 25) → else 400"),
    Rule(("POST",), "/flow/cloud/remove", ADMIN, "`wid` query parameter", "—",
         "unloads the workflow (its calls 404, agents stop) until the next start or deploy; purge=true also "
         "deletes its sources", "—"),
    Rule(("POST",), "/flow/agent/{id}", WRITE, "the agent's workflow", "the Body hook's result",
         "whatever its Body hook does", f"{BODY}; {CALL_TIME}"),
    Rule(("GET", "POST"), "/flow/ActiveAgentToggle", WRITE, "the agent's workflow (`id`)", "—",
         "starts or stops it", BODY),
    # auth (coflows/auth): logins and the caller's own identity and keys
    Rule(("POST",), "/auth/login", ANYONE, "—", "sets the session cookie; returns the user and the CSRF token",
         "a new session; failed attempts count towards the account's lock",
         f"{BODY}; JSON only; 5 wrong passwords → account locked 15 min (423); 20 failures/min per address → 429; "
         "2 password checks at once, 32 waiting, then 503"),
    Rule(("POST",), "/auth/logout", ANYONE, "—", "—", "ends the caller's session (clears the cookie)", BODY),
    Rule(("GET",), "/auth/me", ANYONE, "—", "the caller's identity, groups (unexpired) and CSRF token; "
         "401 when anonymous", "—"),
    Rule(("GET",), "/auth/keys", ANYONE, "—", "the caller's own API keys (IDs, labels, times; never the keys); "
         "401 when anonymous", "—"),
    Rule(("POST",), "/auth/keys", ANYONE, "—", "the new key, once",
         "a new API key of the calling user, from a login session (401 anonymous; 403 for the admin key, which "
         "has no user, and with an API key: a leaked key must not mint keys that outlive it)",
         f"{BODY}; label ≤ 200 characters; at most 100 unrevoked keys per user → 409"),
    Rule(("POST",), "/auth/keys/{key_id}/revoke", ANYONE, "—", "—",
         "revokes one of the caller's own keys (404 for anyone else's)", BODY),
    Rule(("POST",), "/auth/password", ANYONE, "—", "—",
         "the calling user's own password, from a login session with the current password (401 anonymous; 403 "
         "with a key or a wrong current password, which counts towards the lock); their other sessions end",
         f"{BODY}; password 8…1024 characters; 2 password checks at once"),
    # admin (coflows/auth/admin_routes.py): what `coflows user` and `coflows group` do
    Rule(("GET",), "/auth/users", ADMIN, "—", "users: email, name, admin, password set (never the hash), lock, "
         "memberships, number of live keys", "—", "limit 1…1000 (default 1000), offset ≥ 0 → else 400"),
    Rule(("POST",), "/auth/users", ADMIN, "—", "the new user", "adds a user (409 when the email exists)",
         f"{BODY}; name ≤ 200 characters; password 8…1024 characters"),
    Rule(("POST",), "/auth/users/{email}/remove", ADMIN, "—", "—",
         "removes the user with their memberships, keys and sessions (409 for oneself)", BODY),
    Rule(("POST",), "/auth/users/{email}/password", ADMIN, "—", "—",
         "sets the user's password, ends their sessions, lifts a lock", f"{BODY}; password 8…1024 characters"),
    Rule(("POST",), "/auth/users/{email}/admin", ADMIN, "—", "—",
         "sets or clears the user's admin flag (409 for clearing one's own)", BODY),
    Rule(("GET",), "/auth/users/{email}/keys", ADMIN, "—", "the user's API keys (IDs, labels, times; never the keys)",
         "—"),
    Rule(("POST",), "/auth/users/{email}/keys", ADMIN, "—", "the new key, once", "a new API key of the user",
         f"{BODY}; label ≤ 200 characters; at most 100 unrevoked keys per user → 409"),
    Rule(("POST",), "/auth/admin/keys/{key_id}/revoke", ADMIN, "—", "—", "revokes anyone's API key", BODY),
    Rule(("GET",), "/auth/groups", ADMIN, "—", "groups (added ones, loaded workflows' IDs, any with members) "
         "and their members with levels and expiry", "—"),
    Rule(("POST",), "/auth/groups", ADMIN, "—", "the new group", "adds a named group (409 when it exists)",
         f"{BODY}; id and name ≤ 200 characters"),
    Rule(("POST",), "/auth/groups/{group}/remove", ADMIN, "—", "—", "removes the group and every membership in it",
         BODY),
    Rule(("POST",), "/auth/groups/{group}/grant", ADMIN, "—", "—",
         "gives a user a level in the group (an added group, one with members, or a loaded workflow's ID), "
         "replacing an earlier grant; expiry in the future", BODY),
    Rule(("POST",), "/auth/groups/{group}/revoke", ADMIN, "—", "—", "takes a user out of the group", BODY),
    # JupyterLab (coflows/jupyter, "Jupyter": true): a proxy to the server's own JupyterLab child
    *(Rule(("GET", "POST", "PUT", "PATCH", "DELETE"), lab, ADMIN, "—",
           "whatever JupyterLab serves (notebooks, files under the workspace's notebooks/, kernels); anonymous "
           "HTML GETs are redirected to /ui/login", "anything: a notebook runs code as the server's OS user",
           f"{BODY.split(';')[0]}; upstream connect 5 s, read 120 s → 504; 64 upstream connections")
      for lab in ("/lab", "/lab/{path:path}")),
    Rule(("WS",), "/lab/{path:path}", ADMIN, "—", "kernels' and terminals' messages",
         "runs code (each kernel message stamped with the caller's identity)",
         "client messages ≤ Server.MaxBodyBytes → closed 1009; kernel messages ≤ 64 MB"),
    # Dash/Flask apps (coflows/apps): queries with run(port, path), proxied to their loopback server
    Rule(("GET", "POST", "PUT", "PATCH", "DELETE"), "/dash/{wid}/{path:path}", READ, "`wid` in the path",
         "whatever the app serves (anonymous HTML GETs without Read are redirected to /ui/login); the app gets "
         "X-Coflows-User and X-Coflows-Level, never the caller's key, session or CSRF token",
         "starts the app on first use (its query's run(port, path)); whatever the app does",
         f"{BODY.split(';')[0]}; run: the function's time limit, then ≤ 30 s to listen on 127.0.0.1 → 502; upstream "
         "connect 5 s, read 120 s → 504; 64 upstream connections; a failed start is retried after 10 s"),
    Rule(("GET",), "/auth/oidc/login", ANYONE, "—", "redirect to the OpenID provider (404 when OIDC is off)",
         "a short-lived signed cookie with state, nonce and PKCE verifier"),
    Rule(("GET",), "/auth/oidc/callback", ANYONE, "—", "redirect to the page the login started from",
         "a new session for the user of the provider's verified email (a new user only with "
         "Auth.OIDC.CreateUsers)", "state, nonce and PKCE checked; the token's signature, issuer, audience and "
         "expiry verified"),
)


def rule_for(path: str) -> Rule | None:
    return next((r for r in ROUTES if r.path == path), None)


def missing(app_routes: list[tuple[str, frozenset[str]]]) -> list[str]:
    """Routes of the app (path, methods) without a row, or with methods the row does not list."""
    out = []
    for path, methods in app_routes:
        rule = rule_for(path)
        if rule is None:
            out.append(f"{'/'.join(sorted(methods)) or 'ANY'} {path}: no row")
            continue
        allowed = {m for r in ROUTES if r.path == path for m in r.methods}  # a path may have a row per method
        extra = set(methods) - allowed - {"HEAD"}
        if extra:
            out.append(f"{path}: methods {sorted(extra)} not in the table")
    return out


def app_routes(app: object) -> list[tuple[str, frozenset[str]]]:
    """(path, methods) of every route of a Starlette app; websockets have method "WS", mounts none."""
    from starlette.routing import Mount, Route, WebSocketRoute

    out = []
    for r in getattr(app, "routes", []):
        if isinstance(r, WebSocketRoute):
            out.append((r.path, frozenset({"WS"})))
        elif isinstance(r, Route):
            out.append((r.path, frozenset(r.methods or ())))
        elif isinstance(r, Mount):
            out.append((r.path, frozenset()))
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown() -> str:
    lines = [LEGEND, "", "| method | path | who (level on the owning workflow) | owner | reads | changes | bounds |",
             "|---|---|---|---|---|---|---|"]
    for r in ROUTES:
        who = ACCESS_TEXT[r.access] + (f": {r.level}" if r.level else "")
        lines.append("| " + " | ".join(_cell(c) for c in (
            "/".join(r.methods), f"`{r.path}`", who, r.owner, r.reads, r.changes, r.bounds or "—")) + " |")
    return "\n".join(lines) + "\n"


START, END = "<!-- authz-table:start -->", "<!-- authz-table:end -->"


def splice(doc: str) -> str:
    """`doc` with the text between the markers replaced by the rendered table."""
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.S)
    if not pattern.search(doc):
        raise ValueError(f"no {START} … {END} markers in the document")
    return pattern.sub(lambda _: f"{START}\n{render_markdown()}{END}", doc)


if __name__ == "__main__":  # python -m coflows.server.authz_table docs/security.md
    target = Path(sys.argv[1])
    target.write_text(splice(target.read_text(encoding="utf-8")), encoding="utf-8")
