"""Tables of users, groups, memberships, API keys and sessions (migrated automatically).

Secrets are never stored: passwords as argon2 hashes, API keys and session tokens as SHA-256
digests (they are 256-bit random values, so a fast digest is enough and a lookup stays cheap).
Times are UNIX seconds (UTC) as floats, as in the M and flow tables.
"""

from __future__ import annotations

import sqlalchemy as sa

from coflows.store import Migration, register_migrations

metadata = sa.MetaData()

users = sa.Table(
    "auth_users", metadata,
    sa.Column("id", sa.String(320), primary_key=True),  # the email, lower-cased
    sa.Column("name", sa.String(200), nullable=False, default=""),
    sa.Column("password_hash", sa.String(200)),  # None: no password login (OIDC only, or not set yet)
    sa.Column("is_admin", sa.Boolean(), nullable=False, default=False),
    sa.Column("created", sa.Float(), nullable=False),
    sa.Column("failed_logins", sa.Integer(), nullable=False, default=0),
    sa.Column("locked_until", sa.Float()),
)

groups = sa.Table(
    "auth_groups", metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, default=""),
    sa.Column("created", sa.Float(), nullable=False),
)

# group_id is not a foreign key: a workflow's ID is a group without a row of its own
memberships = sa.Table(
    "auth_memberships", metadata,
    sa.Column("group_id", sa.String(200), primary_key=True),
    sa.Column("user_id", sa.String(320), sa.ForeignKey("auth_users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("level", sa.Integer(), nullable=False),
    sa.Column("expires", sa.Float()),  # None: never
)

api_keys = sa.Table(
    "auth_api_keys", metadata,
    sa.Column("id", sa.String(16), primary_key=True),  # public handle (shown in lists, used to revoke)
    sa.Column("user_id", sa.String(320), sa.ForeignKey("auth_users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False, unique=True),
    sa.Column("label", sa.String(200), nullable=False, default=""),
    sa.Column("created", sa.Float(), nullable=False),
    sa.Column("last_used", sa.Float()),
    sa.Column("revoked", sa.Float()),
)

sessions = sa.Table(
    "auth_sessions", metadata,
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(320), sa.ForeignKey("auth_users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("created", sa.Float(), nullable=False),
    sa.Column("expires", sa.Float(), nullable=False),
    sa.Column("via", sa.String(20), nullable=False, default="password"),  # password | oidc
)


def _create_v1(conn: sa.Connection) -> None:
    metadata.create_all(conn, checkfirst=True)


register_migrations("auth", [Migration(1, "users, groups, memberships, API keys, sessions", _create_v1)])
