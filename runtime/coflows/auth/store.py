"""Users, groups, memberships, API keys and sessions on the server's database (SQLite or Postgres).

Every method is a short transaction; callers on the event loop run them in a thread. Who-may-do-what
is not decided here (see `coflows.permissions`): this module only turns a stored identity into a
`Principal` with its unexpired group levels.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from coflows.auth import schema
from coflows.auth.credentials import KEY_PREFIX, SESSION_PREFIX, digest, hash_password, new_token
from coflows.errors import ArgumentError, CoflowsError, NotFoundError
from coflows.permissions import DENIED, INVITED, READ, VIEW, WRITE, Principal
from coflows.store import Database

LEVELS = {"invited": INVITED, "denied": DENIED, "view": VIEW, "read": READ, "write": WRITE}
LEVEL_NAMES = {v: k for k, v in LEVELS.items()}
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")
_GROUP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._:@-]{0,199}$")


class Conflict(CoflowsError):
    http_status = 409


def normalize_email(email: str) -> str:
    e = (email or "").strip().lower()
    if not _EMAIL.match(e):
        raise ArgumentError(f"email: {email!r} is not an email address", "email")
    return e


def parse_level(text: str | int) -> int:
    if isinstance(text, int) and text in LEVEL_NAMES:
        return text
    level = LEVELS.get(str(text).strip().lower())
    if level is None:
        raise ArgumentError(f"level: {text!r} is not one of {', '.join(LEVELS)}", "level")
    return level


def parse_expiry(text: str | None) -> float | None:
    """`2027-01-31` or an ISO 8601 time (UTC when no zone) → UNIX seconds; None/'' → never."""
    if not text:
        return None
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ArgumentError(f"expires: {text!r} is not a date (YYYY-MM-DD) or ISO 8601 time", "expires") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.timestamp()


@dataclass(frozen=True)
class User:
    id: str
    name: str
    is_admin: bool
    has_password: bool
    created: float
    locked_until: float | None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "email": self.id, "name": self.name, "admin": self.is_admin,
                "password": self.has_password, "created": _iso(self.created),
                "locked_until": _iso(self.locked_until) if self.locked_until and self.locked_until > time.time() else None}


def _iso(t: float | None) -> str | None:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat() if t else None


def _user(row: sa.Row) -> User:
    return User(row.id, row.name, bool(row.is_admin), row.password_hash is not None, row.created, row.locked_until)


class UserStore:
    """The identity tables of one database."""

    def __init__(self, database: Database) -> None:
        self.engine = database.engine
        from coflows.store import migrate

        migrate(self.engine)  # our tables, even when this module was imported after the Database was made

    # -- users --------------------------------------------------------------------------------
    def add_user(self, email: str, name: str = "", password: str | None = None, admin: bool = False) -> User:
        uid = normalize_email(email)
        hashed = hash_password(password) if password is not None else None
        with self.engine.begin() as conn:
            if conn.execute(sa.select(schema.users.c.id).where(schema.users.c.id == uid)).first():
                raise Conflict(f"user {uid} already exists")
            conn.execute(schema.users.insert().values(id=uid, name=name.strip(), password_hash=hashed,
                                                      is_admin=admin, created=time.time(), failed_logins=0))
        return self.user(uid)

    def user(self, email: str) -> User:
        uid = email.strip().lower()
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(schema.users).where(schema.users.c.id == uid)).first()
        if row is None:
            raise NotFoundError(f"no user {uid}")
        return _user(row)

    def users(self, limit: int | None = None, offset: int = 0) -> list[User]:
        q = sa.select(schema.users).order_by(schema.users.c.id).offset(offset)
        with self.engine.connect() as conn:
            return [_user(r) for r in conn.execute(q.limit(limit) if limit is not None else q)]

    def count_admins(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(schema.users)
                                .where(schema.users.c.is_admin.is_(True))).scalar_one()

    def remove_user(self, email: str) -> None:
        uid = self.user(email).id
        with self.engine.begin() as conn:
            for table in (schema.memberships, schema.api_keys, schema.sessions):
                conn.execute(table.delete().where(table.c.user_id == uid))
            conn.execute(schema.users.delete().where(schema.users.c.id == uid))

    def set_password(self, email: str, password: str, keep_session: str | None = None) -> None:
        """New password: every session of the user ends (but the one of digest `keep_session`, when the
        user changes their own), the lock is lifted."""
        uid = self.user(email).id
        hashed = hash_password(password)
        with self.engine.begin() as conn:
            conn.execute(schema.users.update().where(schema.users.c.id == uid)
                         .values(password_hash=hashed, failed_logins=0, locked_until=None))
            conn.execute(schema.sessions.delete().where(schema.sessions.c.user_id == uid,
                                                        schema.sessions.c.digest != (keep_session or "")))

    def set_admin(self, email: str, admin: bool) -> None:
        uid = self.user(email).id
        with self.engine.begin() as conn:
            conn.execute(schema.users.update().where(schema.users.c.id == uid).values(is_admin=admin))

    def password_hash(self, email: str) -> tuple[str | None, float | None] | None:
        """(hash, locked until) of a user, or None when there is no such user."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(schema.users.c.password_hash, schema.users.c.locked_until)
                               .where(schema.users.c.id == email.strip().lower())).first()
        return (row[0], row[1]) if row else None

    def login_failed(self, uid: str, max_failures: int, lock_seconds: float) -> float | None:
        """Count a failed password; returns the lock's end when this failure locks the account."""
        users = schema.users
        with self.engine.begin() as conn:
            # increment first (atomic; holds the row's write lock), so concurrent failures all count
            if not conn.execute(users.update().where(users.c.id == uid)
                                .values(failed_logins=users.c.failed_logins + 1)).rowcount:
                return None
            failures = conn.execute(sa.select(users.c.failed_logins).where(users.c.id == uid)).scalar_one()
            locked = time.time() + lock_seconds if failures >= max_failures else None
            if locked:
                conn.execute(users.update().where(users.c.id == uid).values(failed_logins=0, locked_until=locked))
        return locked

    def login_succeeded(self, uid: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(schema.users.update().where(schema.users.c.id == uid)
                         .values(failed_logins=0, locked_until=None))

    # -- groups -------------------------------------------------------------------------------
    def add_group(self, group_id: str, name: str = "") -> None:
        gid = group_id.strip()
        if not _GROUP.match(gid):
            raise ArgumentError(f"group: {group_id!r} is not a group ID (letters, digits, . _ - : @ and spaces; "
                                "at most 200)", "group")
        with self.engine.begin() as conn:
            if conn.execute(sa.select(schema.groups.c.id).where(schema.groups.c.id == gid)).first():
                raise Conflict(f"group {gid} already exists")
            conn.execute(schema.groups.insert().values(id=gid, name=name.strip() or gid, created=time.time()))

    def groups(self) -> list[dict[str, Any]]:
        """Every group with its members (named groups and groups that only have members)."""
        with self.engine.connect() as conn:
            named = {r.id: r.name for r in conn.execute(sa.select(schema.groups))}
            rows = conn.execute(sa.select(schema.memberships).order_by(schema.memberships.c.group_id,
                                                                       schema.memberships.c.user_id)).all()
        out: dict[str, dict[str, Any]] = {g: {"id": g, "name": n, "members": []} for g, n in named.items()}
        for r in rows:
            g = out.setdefault(r.group_id, {"id": r.group_id, "name": "", "members": []})
            g["members"].append({"user": r.user_id, "level": LEVEL_NAMES.get(r.level, str(r.level)),
                                 "expires": _iso(r.expires)})
        return [out[k] for k in sorted(out)]

    def remove_group(self, group_id: str) -> None:
        with self.engine.begin() as conn:
            a = conn.execute(schema.groups.delete().where(schema.groups.c.id == group_id)).rowcount
            b = conn.execute(schema.memberships.delete().where(schema.memberships.c.group_id == group_id)).rowcount
        if not a and not b:
            raise NotFoundError(f"no group {group_id}")

    def grant(self, group_id: str, email: str, level: int | str, expires: float | None = None) -> None:
        """Give a user a level in a group (replacing an earlier grant); the group is any group's ID or a
        workflow's ID."""
        uid = self.user(email).id
        lvl = parse_level(level)
        if not _GROUP.match(group_id):
            raise ArgumentError(f"group: {group_id!r} is not a group ID", "group")
        with self.engine.begin() as conn:
            conn.execute(schema.memberships.delete().where(schema.memberships.c.group_id == group_id,
                                                           schema.memberships.c.user_id == uid))
            conn.execute(schema.memberships.insert().values(group_id=group_id, user_id=uid, level=lvl,
                                                            expires=expires))

    def revoke(self, group_id: str, email: str) -> None:
        uid = email.strip().lower()
        with self.engine.begin() as conn:
            n = conn.execute(schema.memberships.delete().where(schema.memberships.c.group_id == group_id,
                                                               schema.memberships.c.user_id == uid)).rowcount
        if not n:
            raise NotFoundError(f"{uid} is not in group {group_id}")

    # -- principals ---------------------------------------------------------------------------
    def principal(self, uid: str, now: float | None = None) -> tuple[Principal, float] | None:
        """The user's Principal with its unexpired memberships, and until when that holds (the
        earliest expiry); None for an unknown user."""
        now = time.time() if now is None else now
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(schema.users.c.id, schema.users.c.name, schema.users.c.is_admin)
                               .where(schema.users.c.id == uid)).first()
            if row is None:
                return None
            ms = conn.execute(sa.select(schema.memberships.c.group_id, schema.memberships.c.level,
                                        schema.memberships.c.expires)
                              .where(schema.memberships.c.user_id == uid)).all()
        valid_until = float("inf")
        groups: dict[str, int] = {}
        for g, level, expires in ms:
            if expires is not None:
                if expires <= now:
                    continue
                valid_until = min(valid_until, expires)
            groups[g] = level
        return Principal(row.id, is_admin=bool(row.is_admin), groups=groups, name=row.name), valid_until

    # -- API keys -----------------------------------------------------------------------------
    def new_key(self, email: str, label: str = "") -> tuple[str, str]:
        """(key ID, the key): the key is shown once; only its digest is kept."""
        uid = self.user(email).id
        key = new_token(KEY_PREFIX)
        kid = secrets.token_hex(6)
        with self.engine.begin() as conn:
            conn.execute(schema.api_keys.insert().values(id=kid, user_id=uid, digest=digest(key),
                                                         label=label[:200], created=time.time()))
        return kid, key

    def keys(self, email: str | None = None) -> list[dict[str, Any]]:
        q = sa.select(schema.api_keys).order_by(schema.api_keys.c.created)
        if email is not None:
            q = q.where(schema.api_keys.c.user_id == email.strip().lower())
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return [{"id": r.id, "user": r.user_id, "label": r.label, "created": _iso(r.created),
                 "last_used": _iso(r.last_used), "revoked": _iso(r.revoked)} for r in rows]

    def revoke_key(self, key_id: str) -> str:
        """Revoke a key by its ID; returns its digest (to drop it from caches)."""
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(schema.api_keys.c.digest).where(schema.api_keys.c.id == key_id)).first()
            if row is None:
                raise NotFoundError(f"no API key {key_id}")
            conn.execute(schema.api_keys.update().where(schema.api_keys.c.id == key_id).values(revoked=time.time()))
        return row[0]

    def key_user(self, key_digest: str) -> str | None:
        """The user of an unrevoked key, by its digest."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(schema.api_keys.c.user_id).where(
                schema.api_keys.c.digest == key_digest, schema.api_keys.c.revoked.is_(None))).first()
        return row[0] if row else None

    def touch_keys(self, used: dict[str, float]) -> None:
        """Record last-used times (digest → time), batched by the caller."""
        if not used:
            return
        with self.engine.begin() as conn:
            for d, t in used.items():
                conn.execute(schema.api_keys.update().where(schema.api_keys.c.digest == d).values(last_used=t))

    # -- sessions -----------------------------------------------------------------------------
    def new_session(self, uid: str, lifetime: float, via: str = "password") -> tuple[str, str, float]:
        """(token, CSRF token, expiry) of a new session; only the token's digest is kept."""
        token = new_token(SESSION_PREFIX)
        csrf = secrets.token_urlsafe(24)
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(schema.sessions.delete().where(schema.sessions.c.expires < now))  # tidy as we go
            conn.execute(schema.sessions.insert().values(digest=digest(token), user_id=uid, csrf=csrf, created=now,
                                                         expires=now + lifetime, via=via))
        return token, csrf, now + lifetime

    def session(self, session_digest: str) -> tuple[str, str, float] | None:
        """(user, CSRF token, expiry) of a live session."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(schema.sessions.c.user_id, schema.sessions.c.csrf, schema.sessions.c.expires)
                               .where(schema.sessions.c.digest == session_digest)).first()
        if row is None or row[2] <= time.time():
            return None
        return row[0], row[1], row[2]

    def end_session(self, session_digest: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(schema.sessions.delete().where(schema.sessions.c.digest == session_digest))
