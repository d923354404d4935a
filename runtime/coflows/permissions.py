"""Who may do what: principals, access levels and the checks every route uses.

Levels are CoFlows' AccessType: -2 invited (no access yet), -1 denied, 0 view, 1 read (call), 2 write.
A workflow's fixed permissions (package.json `Permissions`) grant levels to
users and groups; everyone is in the `Public` group, anonymous callers too.
A function's `<permissions>` block narrows who may call it; unlike CoFlows, a
function without one still needs Read on its workflow (never silently public).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from coflows.functions import Function
    from coflows.workflow import Workflow

DENIED, VIEW, READ, WRITE = -1, 0, 1, 2
NONE = -2  # no grant at all
INVITED = -2  # a membership that gives nothing yet (CoFlows' Invited)
PUBLIC = "Public"
LEVEL_NAMES = {VIEW: "View", READ: "Read", WRITE: "Write"}


@dataclass(frozen=True)
class Principal:
    """The caller: the admin (server secret key), a user (id: the email), or anonymous."""

    id: str
    is_admin: bool = False
    groups: Mapping[str, int] = field(default_factory=dict)  # group id → level (unexpired memberships)
    name: str = ""

    @property
    def is_user(self) -> bool:
        return "@" in self.id

    @property
    def is_anonymous(self) -> bool:
        return self.id == "anonymous"


ANONYMOUS = Principal("anonymous")
ADMIN = Principal("root", is_admin=True, name="admin")


# Set by the auth component (coflows.auth.component): a user id → that user's Principal, or None.
_lookup_id: Callable[[str], Principal | None] | None = None


def set_id_lookup(lookup: Callable[[str], Principal | None] | None) -> None:
    global _lookup_id
    _lookup_id = lookup


def principal_from_id(principal_id: str | None) -> Principal:
    """A stored principal id (a flow run's `submitted_by`, an M change's author) back to a Principal
    with the user's current groups.

    An id that is no longer a user (removed) gets no grants beyond `Public`, so a stored id can never
    widen what a run may do.
    """
    if principal_id == ADMIN.id:
        return ADMIN
    if not principal_id or principal_id == ANONYMOUS.id:
        return ANONYMOUS
    lookup = _lookup_id
    found = lookup(principal_id) if lookup is not None else None
    return found if found is not None else Principal(principal_id)


def workflow_level(workflow: Workflow, principal: Principal) -> int:
    """The principal's level on a workflow: the highest of its grants, unless one says Denied.

    Grants: to the user (package.json `Permissions` naming their email, or their membership of the
    group that is the workflow's ID), to a named group the user is a member of (level View or more:
    Invited and Denied members are not in), and to `Public`. A Denied grant to the user or to one of
    their groups wins; `Public: -1` only means "nothing for everyone else".
    """
    if principal.is_admin:
        return WRITE
    perms = workflow.permissions
    groups = principal.groups
    levels = [perms[g] for g, member in groups.items() if member >= VIEW and g in perms]
    if principal.id in perms:  # a user's id is their email, as package.json names them
        levels.append(perms[principal.id])
    own = groups.get(workflow.id)
    if own is not None and own != INVITED:
        levels.append(own)
    if DENIED in levels:
        return DENIED
    if PUBLIC in perms:
        levels.append(perms[PUBLIC])
    return max(levels) if levels else NONE


def group_level(workflow: Workflow, principal: Principal, group: str) -> int:
    if principal.is_admin:
        return WRITE
    if group in (workflow.id, "$WID$"):
        return workflow_level(workflow, principal)
    if group == PUBLIC:
        return READ
    return principal.groups.get(group, NONE)


def can_call(workflow: Workflow, function: Function, principal: Principal) -> bool:
    if principal.is_admin:
        return True
    if workflow_level(workflow, principal) < READ:  # `<permissions>` narrows Read on the workflow, never widens it
        return False
    required = function.docs.permissions
    if required is None:
        return True
    return any(group_level(workflow, principal, g.group) >= max(g.level, READ) for g in required)


def can_view(workflow: Workflow, principal: Principal) -> bool:
    return principal.is_admin or workflow_level(workflow, principal) >= VIEW


def denied(principal: Principal, what: str) -> Exception:
    """The refusal for `what`: 401 when a key would help (anonymous), 403 otherwise."""
    from coflows.errors import PermissionDenied, Unauthenticated

    if principal.is_anonymous:
        return Unauthenticated(f"{what}: an API key is required")
    return PermissionDenied(f"{what}: permission denied for '{principal.id}'")


def require(workflow: Workflow, principal: Principal, level: int, what: str) -> None:
    """Raise `denied(...)` unless the principal has `level` on the workflow that owns `what`."""
    if principal.is_admin or workflow_level(workflow, principal) >= level:
        return
    raise denied(principal, f"{what} needs {LEVEL_NAMES[level]} on workflow '{workflow.name}'")
