"""`/auth/users…`, `/auth/groups…`, `/auth/admin/keys…`: what `coflows user` / `coflows group` do, over HTTP,
for admins (the admin key or an admin user); and `POST /auth/password` for any logged-in user.

Why each choice:
- Admin only, checked first: anonymous 401, every other caller 403, before the body is read.
- The same rules as the CLI (`coflows.cli_users`): names ≤ 200 characters without control characters,
  passwords by `check_password_rules`, a grant needs an existing group (added, with members, or a
  loaded workflow's ID) and an expiry in the future.
- Every change drops the identity cache (`Identities.invalidate`), so it holds on the next request.
- An admin cannot remove themself or take their own admin flag away here: a browser click must not
  lock the only admin out (the CLI still can, with a note).
- Changing one's own password needs the current one, checked with argon2 in a thread; a wrong one
  counts towards the account's lock like a wrong login, so a stolen session cannot guess it freely.
- No password, hash, session token or key is ever in an answer, except a new key in its creation's body.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import anyio
import anyio.to_thread
import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from coflows.auth import schema
from coflows.auth.credentials import Busy, check_password_rules, digest, verify_password
from coflows.auth.identity import Identities
from coflows.auth.routes import MAX_KEYS, MAX_LABEL, _error, _iso, _no_store
from coflows.auth.store import _GROUP, LEVEL_NAMES, Conflict, UserStore, normalize_email, parse_expiry, parse_level
from coflows.errors import ArgumentError, NotFoundError, PermissionDenied, Unauthenticated
from coflows.permissions import Principal
from coflows.server.auth import SESSION, principal_of
from coflows.server.limits import parse_json
from coflows.server.responses import json_response

log = logging.getLogger("coflows.auth")

MAX_NAME = 200
MAX_USERS = 1000  # one answer of GET /auth/users at most (limit 1…1000, offset)


def _caller(request: Request) -> Principal:
    principal = principal_of(request.scope)
    if principal.is_anonymous:
        raise Unauthenticated("log in (POST /auth/login) or send an API key")
    return principal


def _admin(request: Request) -> Principal:
    principal = _caller(request)
    if not principal.is_admin:
        raise PermissionDenied("only admins (the admin key or an admin user) may manage users, groups and keys")
    return principal


async def _body(request: Request, fields: dict[str, tuple[type, bool]]) -> dict[str, Any]:
    """The JSON object of the body with `fields` (name → (type, required)); 400 naming the field."""
    raw = await request.body()
    data = parse_json(raw) if raw.strip() else {}
    if not isinstance(data, dict):
        raise ArgumentError("request body: expected a JSON object", "body")
    unknown = sorted(set(data) - set(fields))
    if unknown:
        name = str(unknown[0])[:40]
        raise ArgumentError(f"request body: unknown field {name!r} (only {', '.join(fields)})", name)
    for name, (kind, required) in fields.items():
        if name not in data or data[name] is None:
            if required:
                raise ArgumentError(f"{name}: required", name)
            data.pop(name, None)
            continue
        if not isinstance(data[name], kind) or (kind is not bool and isinstance(data[name], bool)):
            raise ArgumentError(f"{name}: expected a {'boolean' if kind is bool else 'string'}", name)
    return data


def _text(value: str, field: str, limit: int = MAX_NAME) -> str:
    text = value.strip()
    if len(text) > limit:
        raise ArgumentError(f"{field}: at most {limit} characters", field)
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise ArgumentError(f"{field}: no control characters (newlines, tabs)", field)
    return text


def _email(value: str, field: str = "email") -> str:
    try:
        return normalize_email(value)
    except ArgumentError:
        raise ArgumentError(f"{field}: not an email address", field) from None


def _limit(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ArgumentError(f"{name}: an integer {low}…{high}", name) from None
    if not low <= value <= high:
        raise ArgumentError(f"{name}: an integer {low}…{high}", name)
    return value


class AdminRoutes:
    """The handlers, sharing the store, the identity cache and the password-check slots."""

    def __init__(self, runtime, store: UserStore, identities: Identities) -> None:  # noqa: ANN001
        self.runtime = runtime
        self.config = runtime.config.auth
        self.store = store
        self.identities = identities
        self.threads = anyio.CapacityLimiter(2)  # argon2 work: as many as coflows.auth.credentials' slots

    async def _thread(self, fn: Any, *args: Any) -> Any:
        return await anyio.to_thread.run_sync(fn, *args)

    async def _hashing(self, fn: Any, *args: Any) -> Any:
        """Run `fn` (which hashes a password) in a thread; too many at once → 503."""
        try:
            return await anyio.to_thread.run_sync(fn, *args, limiter=self.threads)
        except Busy:
            return _error(503, "Busy", "too many password checks at once; try again shortly", retry_after=1)

    def _changed(self, what: str, principal: Principal) -> None:
        self.identities.invalidate()
        log.info("admin: %s (by %s)", what, principal.id)

    # -- users --------------------------------------------------------------------------------
    async def list_users(self, request: Request) -> Response:
        _admin(request)
        limit = _limit(request, "limit", MAX_USERS, 1, MAX_USERS)
        offset = _limit(request, "offset", 0, 0, 10**9)
        return json_response(await self._thread(self._users, limit, offset))

    def _users(self, limit: int, offset: int) -> list[dict[str, Any]]:
        users = self.store.users(limit=limit, offset=offset)
        ids = [u.id for u in users]
        m = schema.memberships
        with self.store.engine.connect() as conn:
            rows = conn.execute(sa.select(m.c.user_id, m.c.group_id, m.c.level, m.c.expires)
                                .where(m.c.user_id.in_(ids)).order_by(m.c.group_id)).all() if ids else []
            keys = dict(conn.execute(sa.select(schema.api_keys.c.user_id, sa.func.count())
                                     .where(schema.api_keys.c.user_id.in_(ids), schema.api_keys.c.revoked.is_(None))
                                     .group_by(schema.api_keys.c.user_id)).all()) if ids else {}
        groups: dict[str, list[dict[str, Any]]] = {}
        now = time.time()
        for uid, gid, level, expires in rows:
            groups.setdefault(uid, []).append({"group": gid, "level": LEVEL_NAMES.get(level, str(level)),
                                               "expires": _iso(expires),
                                               "expired": expires is not None and expires <= now})
        return [{**u.to_json(), "groups": groups.get(u.id, []), "keys": keys.get(u.id, 0)} for u in users]

    async def add_user(self, request: Request) -> Response:
        principal = _admin(request)
        data = await _body(request, {"email": (str, True), "name": (str, False), "password": (str, False),
                                     "admin": (bool, False)})
        uid = _email(data["email"])
        name = _text(data.get("name", ""), "name")
        password = data.get("password")
        if password is not None:
            check_password_rules(password)
        user = await self._hashing(self.store.add_user, uid, name, password, bool(data.get("admin", False)))
        if isinstance(user, Response):
            return user
        self._changed(f"added user {uid}", principal)
        return json_response({**user.to_json(), "groups": [], "keys": 0}, 201)

    async def remove_user(self, request: Request) -> Response:
        principal = _admin(request)
        uid = _email(request.path_params["email"])
        if uid == principal.id:
            raise Conflict("you cannot remove yourself (another admin can, or `coflows user remove`)")
        await self._thread(self.store.remove_user, uid)
        self._changed(f"removed user {uid}", principal)
        return json_response({"removed": uid})

    async def set_password(self, request: Request) -> Response:
        principal = _admin(request)
        uid = _email(request.path_params["email"])
        data = await _body(request, {"password": (str, True)})
        check_password_rules(data["password"])
        await self._thread(self.store.user, uid)  # 404 before the hashing
        done = await self._hashing(self.store.set_password, uid, data["password"])
        if isinstance(done, Response):
            return done
        self._changed(f"password of {uid} set", principal)
        return json_response(await self._thread(lambda: self.store.user(uid).to_json()))

    async def set_admin(self, request: Request) -> Response:
        principal = _admin(request)
        uid = _email(request.path_params["email"])
        data = await _body(request, {"admin": (bool, True)})
        if uid == principal.id and not data["admin"]:
            raise Conflict("you cannot take away your own admin flag (another admin can, or `coflows user admin`)")
        await self._thread(self.store.set_admin, uid, data["admin"])
        self._changed(f"{uid} {'made' if data['admin'] else 'no longer'} admin", principal)
        return json_response(await self._thread(lambda: self.store.user(uid).to_json()))

    # -- groups -------------------------------------------------------------------------------
    def _workflows(self) -> dict[str, str]:
        registry = getattr(self.runtime, "registry", None)
        return {wf.id: (wf.name or wf.id) for wf in (registry.workflows() if registry else [])}

    async def list_groups(self, request: Request) -> Response:
        _admin(request)
        return json_response(await self._thread(self._groups))

    def _groups(self) -> list[dict[str, Any]]:
        workflows = self._workflows()
        groups = {g["id"]: g for g in self.store.groups()}
        for wid in workflows:
            groups.setdefault(wid, {"id": wid, "name": "", "members": []})
        now = time.time()
        out = []
        for gid in sorted(groups):
            g = groups[gid]
            for member in g["members"]:
                member["expired"] = bool(member["expires"]) and _ts(member["expires"]) <= now
            out.append({**g, "workflow": workflows.get(gid)})
        return out

    async def add_group(self, request: Request) -> Response:
        principal = _admin(request)
        data = await _body(request, {"id": (str, True), "name": (str, False)})
        name = _text(data.get("name", ""), "name")
        gid = data["id"].strip()
        if not _GROUP.match(gid):
            raise ArgumentError("id: not a group ID (letters, digits, . _ - : @ and spaces; at most 200)", "id")
        await self._thread(self.store.add_group, gid, name)
        self._changed(f"added group {gid}", principal)
        return json_response({"id": gid, "name": name or gid, "members": [], "workflow": self._workflows().get(gid)},
                             201)

    async def remove_group(self, request: Request) -> Response:
        principal = _admin(request)
        gid = request.path_params["group"]
        await self._thread(self.store.remove_group, gid)
        self._changed(f"removed group {gid}", principal)
        return json_response({"removed": gid})

    async def grant(self, request: Request) -> Response:
        principal = _admin(request)
        gid = request.path_params["group"]
        data = await _body(request, {"user": (str, True), "level": (str, True), "expires": (str, False)})
        uid = _email(data["user"], "user")
        level = parse_level(data["level"])
        until = parse_expiry(data.get("expires") or None)
        if until is not None and until <= time.time():
            raise ArgumentError("expires: in the past (revoke the membership to end it)", "expires")
        known = {g["id"] for g in await self._thread(self.store.groups)} | set(self._workflows())
        if gid not in known:
            raise NotFoundError(f"group: no group {gid[:200]!r} (add it first, or use a loaded workflow's ID)")
        await self._thread(self.store.user, uid)  # 404 for an unknown user
        await self._thread(self.store.grant, gid, uid, level, until)
        self._changed(f"{uid}: {LEVEL_NAMES[level]} in {gid}", principal)
        return json_response({"group": gid, "user": uid, "level": LEVEL_NAMES[level], "expires": _iso(until)})

    async def revoke(self, request: Request) -> Response:
        principal = _admin(request)
        gid = request.path_params["group"]
        data = await _body(request, {"user": (str, True)})
        uid = _email(data["user"], "user")
        await self._thread(self.store.revoke, gid, uid)
        self._changed(f"{uid} out of {gid}", principal)
        return json_response({"group": gid, "user": uid, "revoked": True})

    # -- keys ---------------------------------------------------------------------------------
    async def user_keys(self, request: Request) -> Response:
        _admin(request)
        uid = _email(request.path_params["email"])
        await self._thread(self.store.user, uid)
        return json_response(await self._thread(self.store.keys, uid))

    async def mint_key(self, request: Request) -> Response:
        principal = _admin(request)
        uid = _email(request.path_params["email"])
        data = await _body(request, {"label": (str, False)})
        label = _text(data.get("label", ""), "label", MAX_LABEL)
        kid, key = await self._thread(self._make_key, uid, label)
        self._changed(f"API key {kid} made for {uid}", principal)
        return json_response({"id": kid, "key": key, "label": label, "user": uid}, 201)

    def _make_key(self, uid: str, label: str) -> tuple[str, str]:
        self.store.user(uid)
        if sum(1 for k in self.store.keys(uid) if k["revoked"] is None) >= MAX_KEYS:
            raise Conflict(f"at most {MAX_KEYS} API keys per user: revoke one first")
        return self.store.new_key(uid, label)

    async def revoke_key(self, request: Request) -> Response:
        principal = _admin(request)
        kid = request.path_params["key_id"]
        item = await self._thread(self._revoke_any, kid)
        self._changed(f"API key {kid} of {item['user']} revoked", principal)
        return json_response(item)

    def _revoke_any(self, kid: str) -> dict[str, Any]:
        found = {k["id"]: k for k in self.store.keys()}.get(kid)
        if found is None:
            raise NotFoundError("key_id: no API key with this ID")
        if found["revoked"] is None:
            self.store.revoke_key(kid)
            found = {k["id"]: k for k in self.store.keys(found["user"])}[kid]
        return found

    # -- one's own password ---------------------------------------------------------------------
    async def own_password(self, request: Request) -> Response:
        principal = _caller(request)
        live = request.scope.get(SESSION)
        if not principal.is_user or live is None:
            raise PermissionDenied("a password is changed from a login session (the admin key has no password; "
                                   "an API key may not change one)")
        data = await _body(request, {"current": (str, True), "new": (str, True)})
        try:
            check_password_rules(data["new"])
        except ArgumentError as e:
            raise ArgumentError(str(e).replace("password:", "new:", 1), "new") from None
        try:
            outcome = await anyio.to_thread.run_sync(self._change_own, principal.id, data["current"], data["new"],
                                                     digest(live[0]), limiter=self.threads)
        except Busy:
            return _error(503, "Busy", "too many password checks at once; try again shortly", retry_after=1)
        self.identities.invalidate()
        if outcome[0] == "locked":
            return _error(423, "AccountLocked", f"this account is locked after {self.config.max_failed_logins} "
                          f"wrong passwords in a row, until {_iso(outcome[1])}",
                          retry_after=max(1, int(outcome[1] - time.time()) + 1))
        if outcome[0] == "wrong":
            raise PermissionDenied("current: not your current password")
        log.info("password changed by %s", principal.id)
        return json_response({"changed": True, "other_sessions_ended": True})

    def _change_own(self, uid: str, current: str, new: str, keep: str) -> tuple[str, Any]:
        """("ok", None) | ("wrong", None) | ("locked", until); in a thread."""
        found = self.store.password_hash(uid)
        if found is not None and found[1] is not None and found[1] > time.time():
            return "locked", found[1]
        if found is None or not verify_password(found[0], current):
            locked = self.store.login_failed(uid, self.config.max_failed_logins, self.config.lock_minutes * 60)
            return ("locked", locked) if locked else ("wrong", None)
        self.store.set_password(uid, new, keep_session=keep)
        return "ok", None


def _ts(iso: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(iso).timestamp()


def admin_routes(runtime, store: UserStore, identities: Identities) -> list[BaseRoute]:  # noqa: ANN001
    h = AdminRoutes(runtime, store, identities)
    return [
        Route("/auth/users", _no_store(h.list_users), methods=["GET"]),
        Route("/auth/users", _no_store(h.add_user), methods=["POST"]),
        Route("/auth/users/{email}/remove", _no_store(h.remove_user), methods=["POST"]),
        Route("/auth/users/{email}/password", _no_store(h.set_password), methods=["POST"]),
        Route("/auth/users/{email}/admin", _no_store(h.set_admin), methods=["POST"]),
        Route("/auth/users/{email}/keys", _no_store(h.user_keys), methods=["GET"]),
        Route("/auth/users/{email}/keys", _no_store(h.mint_key), methods=["POST"]),
        Route("/auth/groups", _no_store(h.list_groups), methods=["GET"]),
        Route("/auth/groups", _no_store(h.add_group), methods=["POST"]),
        Route("/auth/groups/{group}/remove", _no_store(h.remove_group), methods=["POST"]),
        Route("/auth/groups/{group}/grant", _no_store(h.grant), methods=["POST"]),
        Route("/auth/groups/{group}/revoke", _no_store(h.revoke), methods=["POST"]),
        Route("/auth/admin/keys/{key_id}/revoke", _no_store(h.revoke_key), methods=["POST"]),
        Route("/auth/password", _no_store(h.own_password), methods=["POST"]),
    ]
