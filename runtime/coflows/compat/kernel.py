"""CoFlows' `QuantApp.Kernel` for code written against CoFlows: users, permissions, M, the JVM.

Thin over coflows' own APIs (`coflows.caller`, `coflows.m`, `coflows.objects`): nothing here keeps
state of its own. The names and shapes follow CoFlows' `QuantApp.Kernel/User.cs`:
`User.ContextUser` is a *class-level* property (C#'s static property), `User.PermissionContext`
and `User.GetContextUser` are static, and `AccessType` compares equal to the plain ints that the
other languages see.
"""

from __future__ import annotations

import dataclasses
import enum
import hmac
from typing import Any

from coflows import caller, objects
from coflows.context import CallContext, call_context, current
from coflows.agents.definition import MCallback
from coflows.m import M

__all__ = ["JVM", "M", "AccessType", "MCallback", "User", "UserData"]


class AccessType(enum.IntEnum):
    """CoFlows' permission levels; an IntEnum so `permission == 2` and JSON both work."""

    Invited = -2
    Denied = -1
    View = 0
    Read = 1
    Write = 2


@dataclasses.dataclass(slots=True, eq=False)
class UserData:
    """CoFlows' `UserData` struct: the caller as code sees it; returned from a function it is the
    JSON object `{"ID", "Email", "FirstName", "LastName"}`, as CoFlows serialized it."""

    ID: str = ""  # noqa: N815
    Email: str = ""  # noqa: N815
    FirstName: str = ""  # noqa: N815
    LastName: str = ""  # noqa: N815

    def __eq__(self, other: object) -> bool:  # CoFlows' users are equal by ID
        return isinstance(other, UserData) and other.ID == self.ID

    def __hash__(self) -> int:
        return hash(self.ID)


def _user_data(u: caller.User) -> UserData:
    """coflows' caller as CoFlows' UserData; the name splits at its first space (CoFlows stored
    first and last names apart). Strings are never None, so `FirstName + " READ"` always works."""
    if u.anonymous:
        return UserData(u.id, "", "Anonymous", "")
    first, _, last = (u.name or u.id).partition(" ")
    return UserData(u.id, u.email or "", first, last)


class _UserType(type):
    """The metaclass that makes `User.ContextUser` a property of the class itself."""

    @property
    def ContextUser(cls) -> UserData:  # noqa: N802
        return _user_data(caller.user())


class User(metaclass=_UserType):
    """`QuantApp.Kernel.User`: static members only (CoFlows' instances are stored users)."""

    @staticmethod
    def GetContextUser() -> UserData:  # noqa: N802 - Java's CLRRuntime asks for the getter by name
        return _user_data(caller.user())

    @staticmethod
    def PermissionContext(*args: str) -> AccessType:  # noqa: N802
        """`PermissionContext(groupId)`: the caller's level in the group (the workflow's ID is its
        group); `PermissionContext(secret, groupId)`: the level of the user whose API key is `secret`
        (Dash apps identify their visitor that way)."""
        if len(args) == 1:
            return AccessType(caller.permission(args[0]))
        if len(args) == 2:
            return _permission_by_secret(args[0], args[1])
        raise TypeError(f"User.PermissionContext takes (groupId) or (secret, groupId), got {len(args)} arguments")

    @staticmethod
    def ContextUserBySecret(secret: str) -> UserData:  # noqa: N802
        """The `UserData` of the user whose API key is `secret` (empty for an unknown key)."""
        principal = _principal_by_secret(secret)
        if principal is None:
            return UserData()
        with _as(principal):
            return _user_data(caller.user())


def _principal_by_secret(secret: str) -> Any:
    """The principal whose key is `secret` (a user's API key or the server's admin key), or None."""
    if not isinstance(secret, str) or not secret:
        return None
    try:
        from coflows.runtime import current_runtime

        runtime = current_runtime()
    except Exception:  # noqa: BLE001 - no runtime (a bare script): no users to look up
        return None
    admin_key = runtime.config.admin_key()
    if admin_key and hmac.compare_digest(secret.encode("utf-8", "surrogateescape"), admin_key.encode()):
        from coflows.permissions import ADMIN

        return ADMIN
    identities = getattr(runtime, "identities", None)
    return identities.resolve_key(secret) if identities is not None else None


def _as(principal: Any) -> call_context:
    """The current call, as `principal`: `coflows.caller` then answers for them (same rules)."""
    ctx = current() or CallContext("", "", "")
    return call_context(dataclasses.replace(ctx, principal=principal))


def _permission_by_secret(secret: str, group_id: str) -> AccessType:
    principal = _principal_by_secret(secret)
    if principal is None:
        return AccessType.Denied
    with _as(principal):
        return AccessType(caller.permission(group_id))


class _JvmRuntime:
    """`qak.JVM.Runtime`: Java classes of the calling workflow, by full name."""

    @staticmethod
    def GetClass(name: str) -> Any:  # noqa: N802
        try:
            return objects.resolve(name, namespace=False)
        except LookupError as e:
            raise LookupError(f"JVM.Runtime.GetClass({name!r}): {e}") from None

    @staticmethod
    def CreateInstance(name: str, *args: Any) -> Any:  # noqa: N802
        """`CreateInstance("javabase.javaBase", None)` (no arguments, as CoFlows wrote it),
        `CreateInstance(name, [a, b])` or `CreateInstance(name, a, b)`."""
        if len(args) == 1 and args[0] is None:
            values: list[Any] = []
        elif len(args) == 1 and isinstance(args[0], (list, tuple)):
            values = list(args[0])
        else:
            values = list(args)
        return objects.call_object(_JvmRuntime.GetClass(name), values)


class JVM:
    """`qak.JVM`: CoFlows' Java bridge from Python."""

    Runtime = _JvmRuntime
