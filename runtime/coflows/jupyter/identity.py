"""Who runs a notebook cell: short-lived identity stamps minted by the proxy, checked by the kernel.

Why per message and not per kernel: one JupyterLab is shared by the server's allowed users and any
of them may open any kernel, so the identity that counts is the one of whoever sent the cell. The
proxy writes a stamp (user id, expiry, HMAC) into the metadata of every message a browser or
program sends to a kernel, replacing whatever the client put there; the kernel runs the cell as
that user when the stamp's HMAC and expiry hold, else as anonymous. The key is derived from a
random secret the server gives only to its JupyterLab child (and so to its kernels), never to users.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time

SECRET_ENV = "COFLOWS_JUPYTER_SECRET"  # hex; in JupyterLab's environment, inherited by its kernels
STAMP_FIELD = "coflows_identity"  # the key in a Jupyter message's metadata
STAMP_SECONDS = 300.0


def new_secret() -> str:
    return secrets.token_hex(32)


def derive(secret: str, purpose: str) -> bytes:
    """One key per purpose ("identity", "relay") from the shared secret."""
    return hmac.new(bytes.fromhex(secret), purpose.encode(), hashlib.sha256).digest()


def mint(secret: str, user_id: str, seconds: float = STAMP_SECONDS) -> str:
    body = base64.urlsafe_b64encode(json.dumps({"u": user_id, "e": time.time() + seconds}).encode()).decode()
    mac = hmac.new(derive(secret, "identity"), body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{mac}"


def verify(secret: str, stamp: object) -> str | None:
    """The user id of a valid, unexpired stamp; None otherwise."""
    if not isinstance(stamp, str) or len(stamp) > 4096 or "." not in stamp:
        return None
    body, _, mac = stamp.rpartition(".")
    want = hmac.new(derive(secret, "identity"), body.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, mac):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(body.encode()))
        user, expires = data["u"], float(data["e"])
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(user, str) or expires < time.time():
        return None
    return user
