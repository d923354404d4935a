"""`coflows user …` and `coflows group …`: users, API keys, groups and memberships from the command line.

Why a database-only command: these open the configured database (`coflows_config.json` →
`Database`) and nothing else (no engine starts, no workflow loads), so an admin can be made before
the first start and a key revoked while the server is down. A running server sees a change made here
after at most `Auth.CacheSeconds` (it caches keys, sessions and groups that long).

Bad input exits 2 with one line naming the field; a password or key is never printed, except the
new API key that `user key` prints once on stdout.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from coflows.errors import ArgumentError, CoflowsError, ConfigError, ManifestError, NotFoundError

console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

user_app = typer.Typer(help="Users: add, list, remove, passwords, admin flag and API keys.", no_args_is_help=True)
group_app = typer.Typer(help="Groups and memberships (a workflow's ID is a group too).", no_args_is_help=True)

ConfigOpt = Annotated[Optional[str], typer.Option("--config", "-c",
                                                  help="config file (default: $config_file or coflows_config.json)")]
PasswordStdin = Annotated[bool, typer.Option("--password-stdin", help="read the password from one line of stdin")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of a table (for scripts)")]
LEVEL_HELP = "view, read, write, denied or invited"


def _fail(message: str, code: int = 2) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}", highlight=False, markup=True)
    return typer.Exit(code)


@contextmanager
def _errors(field: str) -> Iterator[None]:
    """A user-caused error → one line naming `field` (ArgumentErrors already name theirs), exit 2."""
    try:
        yield
    except ArgumentError as e:
        raise _fail(str(e)) from None
    except (ConfigError, ManifestError) as e:
        raise _fail(str(e)) from None
    except CoflowsError as e:  # NotFoundError, Conflict
        raise _fail(f"{field}: {e}") from None


def _config(name: str | None):  # noqa: ANN202 - a coflows.config.Config
    from coflows.config import load_config

    with _errors("config"):
        return load_config(name)


def _store(config: str | None):  # noqa: ANN202 - a UserStore
    """The user store on the configured database (created and migrated if new, file mode 0600)."""
    import sqlalchemy.exc

    from coflows.auth.store import UserStore
    from coflows.store import Database, database_url

    cfg = _config(config)
    where = f"{cfg.source}: Database.Connection"
    try:
        url = database_url(cfg.database.type, cfg.database.connection, cfg.base_dir)
        return UserStore(Database(url, where=where))
    except (ConfigError, ManifestError) as e:
        raise _fail(str(e)) from None
    except sqlalchemy.exc.SQLAlchemyError as e:
        reason = str(getattr(e, "orig", None) or e).splitlines()[0]
        raise _fail(f"{where}: cannot open the database: {reason}") from None


def _email(text: str, field: str = "email") -> str:
    from coflows.auth.store import normalize_email

    try:
        return normalize_email(text)
    except ArgumentError:
        raise _fail(f"{field}: {text!r} is not an email address") from None


def _read_password(from_stdin: bool, required: bool) -> str | None:
    """The new password: one line of stdin, or asked twice on a terminal; None when there is neither
    (and it is not `required`)."""
    from coflows.auth.credentials import check_password_rules

    if from_stdin:
        line = sys.stdin.readline(4096)
        if not line:
            raise _fail("password: nothing on stdin (--password-stdin reads one line)")
        password = line.rstrip("\r\n")
    elif sys.stdin.isatty():
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    elif required:
        raise _fail("password: stdin is not a terminal to ask on; pass the password with --password-stdin")
    else:
        return None
    with _errors("password"):
        check_password_rules(password)
    return password


def _print_json(value: object) -> None:
    sys.stdout.write(json.dumps(value, indent=2) + "\n")


def _name(text: str) -> str:
    name = text.strip()
    if len(name) > 200:
        raise _fail("name: at most 200 characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise _fail("name: no control characters (newlines, tabs)")
    return name


def _when(iso: str | None) -> str:
    """An ISO time from the store, short and in UTC."""
    if not iso:
        return ""
    return dt.datetime.fromisoformat(iso).astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _membership(m: dict[str, Any], now: float) -> str:
    text = m["level"]
    if m["expires"]:
        expired = dt.datetime.fromisoformat(m["expires"]).timestamp() <= now
        text += f" ({'expired' if expired else 'until'} {_when(m['expires'])})"
    return text


def _workflows(cfg) -> dict[str, str]:  # noqa: ANN001 - a Config
    """Workflow ID → Name of the configured workspaces (manifests that do not load are skipped)."""
    from coflows.workspace.manifest import load_manifest

    found: dict[str, str] = {}
    for path in cfg.workflow_paths:
        try:
            m = load_manifest(path)
        except ManifestError:
            continue
        if m.ID:
            found[m.ID] = m.Name or m.ID
    return found


def _last_admin_note(store, uid: str) -> None:  # noqa: ANN001 - a UserStore
    """Say so when the last admin user goes (the admin key still administers; nothing is refused)."""
    try:
        if store.user(uid).is_admin and store.count_admins() == 1:
            console.print(f"note: {uid} is the last admin user; the admin key (Server.SecretKey) remains",
                          highlight=False, markup=False)
    except CoflowsError:
        pass


# -- users ------------------------------------------------------------------------------------
@user_app.command("add")
def user_add(
    email: Annotated[str, typer.Argument(help="the user's email (their login and ID)")],
    name: Annotated[str, typer.Option("--name", help='display name, e.g. "First Last"')] = "",
    password_stdin: PasswordStdin = False,
    admin: Annotated[bool, typer.Option("--admin", help="the user administers everything")] = False,
    config: ConfigOpt = None,
) -> None:
    """Add a user (password asked twice on a terminal, or one line of stdin with --password-stdin).

    When stdin is not a terminal and --password-stdin is not given, the user has no password: they log
    in through OpenID Connect, or an admin sets one later with `coflows user passwd`.
    """
    uid = _email(email)
    display = _name(name)
    store = _store(config)
    try:
        store.user(uid)
    except NotFoundError:
        pass
    else:  # before asking for a password that would be thrown away
        raise _fail(f"email: user {uid} already exists")
    password = _read_password(password_stdin, required=False)
    with _errors("email"):
        user = store.add_user(uid, display, password, admin=admin)
    what = ", ".join(x for x in ("admin" if user.is_admin else "", "password set" if user.has_password
                                 else "no password") if x)
    out.print(f"added user {user.id} ({what})", highlight=False, markup=False)


@user_app.command("list")
def user_list(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Every user with their groups, levels and expiry (never a password)."""
    store = _store(config)
    now = time.time()
    member_of: dict[str, list[str]] = {}
    memberships: dict[str, list[dict[str, Any]]] = {}
    for g in store.groups():
        for m in g["members"]:
            member_of.setdefault(m["user"], []).append(f"{g['id']}: {_membership(m, now)}")
            memberships.setdefault(m["user"], []).append({"group": g["id"], "level": m["level"],
                                                          "expires": m["expires"]})
    if as_json:
        _print_json([{**u.to_json(), "groups": memberships.get(u.id, [])} for u in store.users()])
        return
    table = Table(title="users")
    for col in ("email", "name", "admin", "password", "locked", "groups"):
        table.add_column(col, overflow="fold")
    for u in store.users():
        locked = _when(dt.datetime.fromtimestamp(u.locked_until, dt.timezone.utc).isoformat()) \
            if u.locked_until and u.locked_until > now else ""
        table.add_row(u.id, u.name, "yes" if u.is_admin else "", "set" if u.has_password else "",
                      f"until {locked}" if locked else "", "\n".join(member_of.get(u.id, [])))
    out.print(table)


@user_app.command("remove")
def user_remove(email: Annotated[str, typer.Argument(metavar="EMAIL", help="the user's email")], config: ConfigOpt = None) -> None:
    """Remove a user with their memberships, API keys and sessions."""
    uid = _email(email)
    store = _store(config)
    _last_admin_note(store, uid)
    with _errors("email"):
        store.remove_user(uid)
    out.print(f"removed user {uid}", highlight=False, markup=False)


@user_app.command("passwd")
def user_passwd(email: Annotated[str, typer.Argument(metavar="EMAIL", help="the user's email")],
                password_stdin: PasswordStdin = False, config: ConfigOpt = None) -> None:
    """Set a user's password (asked twice on a terminal, or one line of stdin with --password-stdin).

    Their sessions end, and a lock after failed logins is lifted.
    """
    uid = _email(email)
    store = _store(config)
    with _errors("email"):
        store.user(uid)
    password = _read_password(password_stdin, required=True)
    with _errors("email"):
        store.set_password(uid, password or "")
    out.print(f"password of {uid} set", highlight=False, markup=False)


@user_app.command("admin")
def user_admin(email: Annotated[str, typer.Argument(metavar="EMAIL", help="the user's email")],
               admin: Annotated[bool, typer.Option("--yes/--no", help="make the user an admin, or not")],
               config: ConfigOpt = None) -> None:
    """Make a user an admin (--yes) or take it away (--no)."""
    uid = _email(email)
    store = _store(config)
    if not admin:
        _last_admin_note(store, uid)
    with _errors("email"):
        store.set_admin(uid, admin)
    out.print(f"{uid} is {'now' if admin else 'no longer'} an admin", highlight=False, markup=False)


@user_app.command("key")
def user_key(email: Annotated[str, typer.Argument(metavar="EMAIL", help="the user's email")],
             label: Annotated[str, typer.Option("--label", help="what the key is for (shown in `user keys`)")] = "",
             config: ConfigOpt = None) -> None:
    """Make a new API key for a user and print it once, alone on stdout (it is not kept: only its digest is)."""
    uid = _email(email)
    if len(label) > 200 or any(ord(c) < 32 for c in label):
        raise _fail("label: at most 200 characters, no control characters")
    store = _store(config)
    with _errors("email"):
        kid, key = store.new_key(uid, label.strip())
    console.print(f"API key {kid} for {uid}: shown once, keep it secret (send it as the x-api-key header; "
                  f"revoke with `coflows user revoke-key {kid}`)", highlight=False, markup=False)
    sys.stdout.write(key + "\n")
    sys.stdout.flush()


@user_app.command("keys")
def user_keys(email: Annotated[Optional[str], typer.Argument(help="only this user's keys")] = None,
              config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """List API keys (ID, user, label, created, last used, revoked; never the key itself)."""
    uid = _email(email) if email is not None else None
    store = _store(config)
    if uid is not None:
        with _errors("email"):
            store.user(uid)
    if as_json:
        _print_json(store.keys(uid))
        return
    table = Table(title="API keys")
    for col in ("id", "user", "label", "created", "last used", "revoked"):
        table.add_column(col, overflow="fold")
    for k in store.keys(uid):
        table.add_row(k["id"], k["user"], k["label"], _when(k["created"]), _when(k["last_used"]),
                      _when(k["revoked"]))
    out.print(table)


@user_app.command("revoke-key")
def user_revoke_key(key_id: Annotated[str, typer.Argument(help="the key's ID (from `user keys`)")],
                    config: ConfigOpt = None) -> None:
    """Revoke an API key by its ID (the server refuses it within Auth.CacheSeconds)."""
    from coflows.auth.credentials import KEY_PREFIX

    if key_id.startswith(KEY_PREFIX):  # the key itself, pasted by mistake: never echo it
        raise _fail("key: give the key's ID (from `coflows user keys`), not the key")
    store = _store(config)
    known = {k["id"]: k for k in store.keys()}
    if key_id not in known:
        shown = key_id if re.fullmatch(r"[0-9a-fA-F]{1,32}", key_id) else "with that ID"
        raise _fail(f"key: no API key {shown}")
    if known[key_id]["revoked"]:
        out.print(f"API key {key_id} was already revoked ({_when(known[key_id]['revoked'])})", highlight=False)
        return
    with _errors("key"):
        store.revoke_key(key_id)
    out.print(f"revoked API key {key_id} of {known[key_id]['user']}", highlight=False, markup=False)


# -- groups -----------------------------------------------------------------------------------
@group_app.command("add")
def group_add(group_id: Annotated[str, typer.Argument(metavar="ID", help="the group's ID")],
              name: Annotated[str, typer.Option("--name", help="display name (default: the ID)")] = "",
              config: ConfigOpt = None) -> None:
    """Add a named group (a workflow's ID needs no `group add`: it is a group already)."""
    display = _name(name)
    store = _store(config)
    with _errors("group"):
        store.add_group(group_id, display)
    out.print(f"added group {group_id.strip()}", highlight=False, markup=False)


@group_app.command("list")
def group_list(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Every group (added ones, workflows, and any group with members) with its members and levels."""
    cfg = _config(config)
    store = _store(config)
    workflows = _workflows(cfg)
    groups = {g["id"]: g for g in store.groups()}
    for wid in workflows:
        groups.setdefault(wid, {"id": wid, "name": "", "members": []})
    if as_json:
        _print_json([{**groups[gid], "workflow": gid in workflows} for gid in sorted(groups)])
        return
    now = time.time()
    table = Table(title="groups")
    for col in ("id", "name", "members"):
        table.add_column(col, overflow="fold")
    for gid in sorted(groups):
        g = groups[gid]
        name = g["name"] or (f"workflow {workflows[gid]}" if gid in workflows else "")
        table.add_row(gid, name, "\n".join(f"{m['user']}: {_membership(m, now)}" for m in g["members"]))
    out.print(table)


@group_app.command("remove")
def group_remove(group_id: Annotated[str, typer.Argument(metavar="ID", help="the group's ID")],
                 config: ConfigOpt = None) -> None:
    """Remove a group and every membership in it (for a workflow's ID: every grant made with `group grant`)."""
    store = _store(config)
    with _errors("group"):
        store.remove_group(group_id)
    out.print(f"removed group {group_id}", highlight=False, markup=False)


@group_app.command("grant")
def group_grant(
    group_id: Annotated[str, typer.Argument(metavar="GROUP", help="a group's ID or a workflow's ID")],
    user: Annotated[str, typer.Argument(metavar="USER", help="the user's email")],
    level: Annotated[str, typer.Option("--level", "-l", help=LEVEL_HELP)],
    expires: Annotated[Optional[str], typer.Option(
        "--expires", help="YYYY-MM-DD (00:00 UTC of that day) or an ISO 8601 time; default never")] = None,
    config: ConfigOpt = None,
) -> None:
    """Give a user a level in a group, replacing an earlier grant.

    The group must be added (`group add`), have members already, or be a configured workflow's ID.
    """
    from coflows.auth.store import LEVEL_NAMES, parse_expiry, parse_level

    uid = _email(user, "user")
    with _errors("level"):
        lvl = parse_level(level)
    with _errors("expires"):
        until = parse_expiry(expires)
    if until is not None and until <= time.time():
        raise _fail(f"expires: {expires!r} is in the past (use `group revoke` to end a membership)")
    cfg = _config(config)
    store = _store(config)
    known = {g["id"] for g in store.groups()} | set(_workflows(cfg))
    if group_id not in known:
        raise _fail(f"group: no group {group_id!r} (add it with `coflows group add`, or use a workflow's ID)")
    with _errors("user"):
        store.grant(group_id, uid, lvl, until)
    when = f" until {_when(dt.datetime.fromtimestamp(until, dt.timezone.utc).isoformat())}" if until else ""
    out.print(f"{uid}: {LEVEL_NAMES[lvl]} in {group_id}{when}", highlight=False, markup=False)


@group_app.command("revoke")
def group_revoke(group_id: Annotated[str, typer.Argument(metavar="GROUP", help="a group's ID or a workflow's ID")],
                 user: Annotated[str, typer.Argument(metavar="USER", help="the user's email")],
                 config: ConfigOpt = None) -> None:
    """Take a user out of a group."""
    uid = _email(user, "user")
    store = _store(config)
    with _errors("user"):
        store.revoke(group_id, uid)
    out.print(f"{uid} removed from {group_id}", highlight=False, markup=False)
