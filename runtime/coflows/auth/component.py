"""The auth component: the user store on the server's database, cached identities, `/auth/*` routes.

Without a database (a runtime made without one) there are no users: only the admin key and
anonymous callers. The first admin is made by `coflows user add --admin`, or at first start from
`COFLOWS_ADMIN_EMAIL` / `COFLOWS_ADMIN_PASSWORD` when no admin exists yet (never a default one).
"""

from __future__ import annotations

import logging
import os
import threading

from starlette.routing import BaseRoute

from coflows import permissions
from coflows.auth.identity import Identities
from coflows.auth.store import UserStore
from coflows.errors import ConfigError

log = logging.getLogger("coflows.auth")

ADMIN_EMAIL_ENV, ADMIN_PASSWORD_ENV = "COFLOWS_ADMIN_EMAIL", "COFLOWS_ADMIN_PASSWORD"
USAGE_FLUSH_S = 10.0


def first_admin_from_env(store: UserStore) -> None:
    """Create the admin named by the environment when the database has no admin yet."""
    email, password = os.environ.get(ADMIN_EMAIL_ENV, ""), os.environ.get(ADMIN_PASSWORD_ENV, "")
    if not email:
        return
    if store.count_admins():
        return
    if not password:
        raise ConfigError(f"{ADMIN_EMAIL_ENV} is set but {ADMIN_PASSWORD_ENV} is not: the first admin needs a "
                          "password (no default is ever used)")
    try:
        store.add_user(email, password=password, admin=True)
    except Exception as e:  # noqa: BLE001 - an existing non-admin user of that email: make them admin
        from coflows.auth.store import Conflict

        if not isinstance(e, Conflict):
            raise ConfigError(f"{ADMIN_EMAIL_ENV}: {e}") from None
        store.set_admin(email, True)
        store.set_password(email, password)
    log.info("created the first admin %s (from %s)", email.strip().lower(), ADMIN_EMAIL_ENV)


def install(runtime) -> list[BaseRoute]:  # noqa: ANN001 - a coflows.runtime.Runtime
    if runtime.database is None:
        return []
    from coflows.auth.admin_routes import admin_routes
    from coflows.auth.oidc import oidc_routes
    from coflows.auth.routes import auth_routes

    store = UserStore(runtime.database)
    identities = Identities(store, ttl=runtime.config.auth.cache_seconds)
    runtime.users = store
    runtime.identities = identities
    permissions.set_id_lookup(identities.by_id)
    first_admin_from_env(store)
    stop = threading.Event()

    def flush_usage() -> None:
        while not stop.wait(USAGE_FLUSH_S):
            try:
                identities.flush_usage()
            except Exception:  # noqa: BLE001 - bookkeeping only
                log.exception("recording API keys' last use")

    def start() -> None:
        threading.Thread(target=flush_usage, name="coflows-key-usage", daemon=True).start()
        if not store.users():
            log.info("no users yet: create the first admin with `coflows user add EMAIL --admin` (or set %s and "
                     "%s); meanwhile the web app (/ui) shows public workflows to guests", ADMIN_EMAIL_ENV,
                     ADMIN_PASSWORD_ENV)

    def close() -> None:
        stop.set()
        try:
            identities.flush_usage()
        except Exception:  # noqa: BLE001
            pass
        permissions.set_id_lookup(None)

    runtime.startups.append(start)
    runtime.on_close(close)
    return (auth_routes(runtime, store, identities) + admin_routes(runtime, store, identities)
            + oidc_routes(runtime, store, identities))
