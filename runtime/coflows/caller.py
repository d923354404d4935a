"""Who is calling: `coflows.user()` and `coflows.permission(group)`, in every language.

The identity is the current call's principal (`coflows.context`), set by the HTTP layer, kept by
cross-language calls, agents (the writer of the M change that triggered a hook) and flow tasks
(the run's submitter). Outside any call the caller is anonymous. The C#, Java and JavaScript
bridges call `user_json()` and `permission()` here, on the calling Python thread, so the rules
live in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from coflows import permissions
from coflows.context import current
from coflows.errors import ArgumentError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from coflows.workflow import Workflow

MAX_GROUP = 255


@dataclass(frozen=True, slots=True, eq=False)
class User:
    """The caller of the running code: read-only (the groups too)."""

    id: str
    email: str | None  # None for the admin key and anonymous callers
    name: str
    admin: bool
    anonymous: bool
    groups: Mapping[str, int]  # group id → level (-2 invited … 2 write), unexpired memberships only

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "email": self.email, "name": self.name, "admin": self.admin,
                "anonymous": self.anonymous, "groups": dict(self.groups)}


CallerInfo = User


def _principal() -> permissions.Principal:
    ctx = current()
    p = ctx.principal if ctx is not None else None
    return p if isinstance(p, permissions.Principal) else permissions.ANONYMOUS


def user() -> User:
    """The current call's caller (anonymous outside a call)."""
    p = _principal()
    return User(id=p.id, email=p.id if p.is_user else None, name=p.name or "", admin=bool(p.is_admin),
                anonymous=p.is_anonymous, groups=MappingProxyType(dict(p.groups)))


def user_json() -> dict[str, Any]:
    """`user()` as JSON-able values, for the other languages' bridges."""
    return user().to_json()


def _workflow() -> Workflow | None:
    ctx = current()
    if ctx is None or not ctx.workflow:
        return None
    try:
        from coflows.runtime import current_runtime

        return current_runtime().registry.workflow(ctx.workflow)
    except Exception:  # noqa: BLE001 - no runtime, or the workflow was removed meanwhile
        return None


def permission(group_id: str) -> int:
    """The caller's level in a group, as CoFlows' `User.Permission(groupId)`.

    The running workflow's ID (or "$WID$") → the caller's level on that workflow; "Public" →
    Read; another group → the caller's membership level; admin → Write; no grant → -2.
    """
    if not isinstance(group_id, str) or not group_id or len(group_id) > MAX_GROUP:
        raise ArgumentError(f"group_id: expected a group id (a non-empty string of at most {MAX_GROUP} "
                            f"characters), got {type(group_id).__name__}", "group_id")
    p = _principal()
    wf = _workflow()
    if wf is not None:
        return permissions.group_level(wf, p, group_id)
    if p.is_admin:
        return permissions.WRITE
    if group_id == permissions.PUBLIC:
        return permissions.READ
    if group_id == "$WID$":
        return permissions.NONE  # no workflow is running
    return p.groups.get(group_id, permissions.NONE)
