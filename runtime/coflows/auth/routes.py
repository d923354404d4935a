"""`/auth/*`: log in and out, who am I, a user's own API keys.

Why each choice (think of the attacker first):
- Login takes JSON only (`content-type: application/json`): a cross-site form cannot send it
  without a CORS preflight this server never answers, which is why the route is CSRF-exempt.
- Unknown user, user without a password and wrong password answer the same 401, after the same
  argon2 work (a dummy hash), so neither the answer nor its timing tells whether an email exists.
- `Auth.MaxFailedLogins` wrong passwords in a row lock the account for `Auth.LockMinutes`, in the
  database (survives restarts, shared by replicas); a locked account says so (423, until when),
  even with the right password, and costs no hashing while locked.
- More than `Auth.AddressFailuresPerMinute` failures per minute from one address → 429
  (`coflows.auth.ratelimit`, in memory and bounded).
- Password checks run in threads of their own, never on the event loop, two at a time (one argon2
  check holds 64 MB); a queue longer than `MAX_WAITING` answers 503 at once rather than piling up.
- Every answer carries `Cache-Control: no-store`; no password, session token or key is ever
  logged or echoed in an error (a new key is returned once, in the body of its creation).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.to_thread
import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from coflows.auth import schema
from coflows.auth.cookies import clear_session_cookie, set_session_cookie
from coflows.auth.credentials import Busy, digest, verify_password
from coflows.auth.identity import Identities
from coflows.auth.ratelimit import AddressLimiter, address_key
from coflows.auth.store import _EMAIL, LEVEL_NAMES, Conflict, UserStore
from coflows.errors import ArgumentError, NotFoundError, PermissionDenied, Unauthenticated
from coflows.permissions import Principal
from coflows.server.auth import SESSION, principal_of, session_cookie
from coflows.server.limits import parse_json
from coflows.server.responses import error_response, json_response

log = logging.getLogger("coflows.auth")

NO_STORE = "no-store"
MAX_WAITING = 32  # logins queued for a password check; more → 503
MAX_KEYS = 100  # unrevoked API keys per user; more → 409
MAX_LABEL = 200
WRONG = "wrong email or password"


def _iso(t: float | None) -> str | None:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="seconds") if t else None


def _error(status: int, kind: str, message: str, retry_after: int | None = None) -> Response:
    r = json_response({"error": {"type": kind, "message": message}}, status)
    if retry_after is not None:
        r.headers["Retry-After"] = str(retry_after)
    return r


def _no_store(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """Every answer (errors too) is marked not to be cached; errors become JSON error bodies."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            response = await handler(request)
        except Exception as exc:  # noqa: BLE001 - CoflowsErrors carry their status; others are 500s
            response = error_response(exc, principal_of(request.scope))
        response.headers["Cache-Control"] = NO_STORE
        response.headers["Pragma"] = "no-cache"
        return response

    return wrapped


def memberships(store: UserStore, uid: str, now: float) -> list[dict[str, Any]]:
    """The user's unexpired memberships: group ID, level name, expiry."""
    m = schema.memberships
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(m.c.group_id, m.c.level, m.c.expires)
                            .where(m.c.user_id == uid).order_by(m.c.group_id)).all()
    return [{"id": g, "level": LEVEL_NAMES.get(level, str(level)), "expires": _iso(exp)}
            for g, level, exp in rows if exp is None or exp > now]


def identity_json(store: UserStore, principal: Principal) -> dict[str, Any]:
    """What `/auth/me` and a login say about a user (reads the database: call in a thread)."""
    if not principal.is_user:  # the admin key: no user behind it
        return {"id": principal.id, "email": None, "name": principal.name, "admin": principal.is_admin,
                "groups": []}
    return {"id": principal.id, "email": principal.id, "name": principal.name, "admin": principal.is_admin,
            "groups": memberships(store, principal.id, time.time())}


def _login_fields(data: Any) -> tuple[str, str]:
    """(normalized email, password) from the login body, or a 400 naming the field (never echoing it)."""
    if not isinstance(data, dict):
        raise ArgumentError("request body: expected a JSON object {\"email\": …, \"password\": …}", "body")
    unknown = sorted(set(data) - {"email", "password"})
    if unknown:
        raise ArgumentError(f"request body: unknown field {unknown[0][:40]!r} (only email and password)", unknown[0][:40])
    email, password = data.get("email"), data.get("password")
    if not isinstance(email, str):
        raise ArgumentError("email: required, a string", "email")
    if not isinstance(password, str):
        raise ArgumentError("password: required, a string", "password")
    uid = email.strip().lower()
    if not _EMAIL.match(uid):
        raise ArgumentError("email: not an email address", "email")  # the value is not echoed: it may be a password
    return uid, password


class AuthRoutes:
    """The handlers, sharing the store, the identity cache and the address limiter."""

    def __init__(self, runtime, store: UserStore, identities: Identities) -> None:  # noqa: ANN001
        self.config = runtime.config.auth
        self.store = store
        self.identities = identities
        self.limiter = AddressLimiter(self.config.address_failures_per_minute)
        self.threads = anyio.CapacityLimiter(2)  # matches the argon2 slots of coflows.auth.credentials
        self.waiting = 0

    async def _thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a database read or write in a thread (never on the event loop)."""
        return await anyio.to_thread.run_sync(fn, *args)

    # -- login --------------------------------------------------------------------------------
    async def login(self, request: Request) -> Response:
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media != "application/json":
            return _error(415, "UnsupportedMediaType", "content-type: POST /auth/login takes application/json "
                          "({\"email\": …, \"password\": …})")
        uid, password = _login_fields(parse_json(await request.body()))
        address = address_key(request.client.host if request.client else None)
        mark, retry = self.limiter.begin(address)
        if mark is None:
            return _error(429, "TooManyRequests", "too many failed logins from this address; try again in "
                          f"{retry} s", retry_after=retry)
        if self.waiting >= MAX_WAITING:
            self.limiter.forgive(address, mark)
            return _error(503, "Busy", "too many logins at once; try again shortly", retry_after=1)
        self.waiting += 1
        try:
            outcome, detail = await anyio.to_thread.run_sync(self._check, uid, password, limiter=self.threads)
        except Busy:
            self.limiter.forgive(address, mark)
            return _error(503, "Busy", "too many logins at once; try again shortly", retry_after=1)
        finally:
            self.waiting -= 1
        if outcome == "locked":
            retry_after = max(1, int(detail - time.time()) + 1)
            log.info("login refused: account %s is locked until %s (from %s)", uid, _iso(detail), address)
            return _error(423, "AccountLocked", f"this account is locked after {self.config.max_failed_logins} "
                          f"wrong passwords in a row, until {_iso(detail)}; try again then, or ask an "
                          "admin to set a new password", retry_after=retry_after)
        if outcome == "wrong":
            log.info("login refused: wrong email or password for %s (from %s)", uid, address)
            return _error(401, "Unauthenticated", WRONG)
        self.limiter.forgive(address, mark)
        token, csrf, expires, user = detail
        old = request.scope.get(SESSION)
        if old is not None:  # a new login replaces the session the browser had
            await self._thread(self.store.end_session, digest(old[0]))
            self.identities.invalidate()
        log.info("login: %s (from %s)", uid, address)
        response = json_response({"user": user, "csrf": csrf, "expires": _iso(expires)})
        set_session_cookie(response, request, token, expires)
        return response

    def _check(self, uid: str, password: str) -> tuple[str, Any]:
        """("locked", until) | ("wrong", None) | ("ok", (token, csrf, expires, user JSON)); in a thread."""
        found = self.store.password_hash(uid)
        if found is not None and found[1] is not None and found[1] > time.time():
            return "locked", found[1]  # no hashing while locked: the lock is not a secret
        if not verify_password(found[0] if found else None, password):
            if found is None:
                return "wrong", None
            locked = self.store.login_failed(uid, self.config.max_failed_logins, self.config.lock_minutes * 60)
            return ("locked", locked) if locked else ("wrong", None)
        self.store.login_succeeded(uid)
        token, csrf, expires = self.store.new_session(uid, self.config.session_hours * 3600)
        resolved = self.store.principal(uid)
        user = identity_json(self.store, resolved[0]) if resolved else {"id": uid}
        return "ok", (token, csrf, expires, user)

    # -- logout, me -----------------------------------------------------------------------------
    async def logout(self, request: Request) -> Response:
        live = request.scope.get(SESSION)
        if live is not None:
            await self._thread(self.store.end_session, digest(live[0]))
            self.identities.invalidate()
        response = json_response({"ended": live is not None})
        if live is not None or session_cookie(request.scope):
            clear_session_cookie(response, request)
        return response

    async def me(self, request: Request) -> Response:
        principal = self._caller(request)
        body = await self._thread(identity_json, self.store, principal)
        live = request.scope.get(SESSION)
        if live is not None:
            body["csrf"] = live[1]
        body["via"] = "session" if live is not None else ("key" if principal.is_user else "admin-key")
        return json_response(body)

    # -- API keys -------------------------------------------------------------------------------
    async def list_keys(self, request: Request) -> Response:
        principal = self._caller(request)
        if not principal.is_user:
            return json_response([])  # the admin key has no user, hence no keys of its own
        return json_response(await self._thread(self._own_keys, principal.id))

    async def new_key(self, request: Request) -> Response:
        principal = self._caller(request)
        if not principal.is_user:
            raise PermissionDenied("the admin key has no user to own an API key (use `coflows user key EMAIL`)")
        if request.scope.get(SESSION) is None:
            raise PermissionDenied("new API keys are made from a login session (or `coflows user key EMAIL`), "
                                   "not with another API key")
        body = await request.body()
        label = ""
        if body.strip():
            data = parse_json(body)
            if not isinstance(data, dict):
                raise ArgumentError("request body: expected a JSON object {\"label\": …}", "body")
            unknown = sorted(set(data) - {"label"})
            if unknown:
                raise ArgumentError(f"request body: unknown field {unknown[0][:40]!r} (only label)", unknown[0][:40])
            label = data.get("label", "")
            if not isinstance(label, str) or len(label) > MAX_LABEL:
                raise ArgumentError(f"label: a string of at most {MAX_LABEL} characters", "label")
        kid, key = await self._thread(self._make_key, principal.id, label.strip())
        self.identities.invalidate()
        log.info("API key %s made by %s", kid, principal.id)
        return json_response({"id": kid, "key": key, "label": label.strip()}, 201)

    def _own_keys(self, uid: str) -> list[dict[str, Any]]:
        return [{k: v for k, v in item.items() if k != "user"} for item in self.store.keys(uid)]

    def _make_key(self, uid: str, label: str) -> tuple[str, str]:
        live = sum(1 for k in self.store.keys(uid) if k["revoked"] is None)
        if live >= MAX_KEYS:
            raise Conflict(f"at most {MAX_KEYS} API keys per user: revoke one first")
        return self.store.new_key(uid, label)

    async def revoke_key(self, request: Request) -> Response:
        principal = self._caller(request)
        kid = request.path_params["key_id"]
        found = await self._thread(self._revoke_own, principal, kid)
        self.identities.invalidate()
        log.info("API key %s revoked by %s", found["id"], principal.id)
        return json_response(found)

    def _revoke_own(self, principal: Principal, kid: str) -> dict[str, Any]:
        mine = {k["id"]: k for k in self._own_keys(principal.id)} if principal.is_user else {}
        item = mine.get(kid)
        if item is None:
            raise NotFoundError("key_id: you have no API key with this ID")
        if item["revoked"] is None:
            self.store.revoke_key(kid)
            item = {k["id"]: k for k in self._own_keys(principal.id)}[kid]
        return item

    @staticmethod
    def _caller(request: Request) -> Principal:
        principal = principal_of(request.scope)
        if principal.is_anonymous:
            raise Unauthenticated("log in (POST /auth/login) or send an API key")
        return principal


def auth_routes(runtime, store: UserStore, identities: Identities) -> list[BaseRoute]:  # noqa: ANN001
    h = AuthRoutes(runtime, store, identities)
    return [
        Route("/auth/login", _no_store(h.login), methods=["POST"]),
        Route("/auth/logout", _no_store(h.logout), methods=["POST"]),
        Route("/auth/me", _no_store(h.me), methods=["GET"]),
        Route("/auth/keys", _no_store(h.list_keys), methods=["GET"]),
        Route("/auth/keys", _no_store(h.new_key), methods=["POST"]),
        Route("/auth/keys/{key_id}/revoke", _no_store(h.revoke_key), methods=["POST"]),
    ]
