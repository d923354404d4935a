"""Users, groups, API keys, sessions and logins (password, OpenID Connect).

`component.install(runtime)` wires them into a server; `UserStore` is what the CLI uses.
"""

from coflows.auth.store import LEVELS, UserStore

__all__ = ["LEVELS", "UserStore"]
