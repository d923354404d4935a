"""Passwords (argon2id through argon2-cffi) and random tokens (API keys, sessions, CSRF).

Why a semaphore: one argon2 hash costs 64 MB and tens of milliseconds, by design. Without a cap a
burst of logins would cost memory in proportion; with it, logins queue (and time out) instead.
"""

from __future__ import annotations

import hashlib
import secrets
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

KEY_PREFIX = "cfk_"  # API keys: recognisable in a leak report, never stored
SESSION_PREFIX = "cfs_"

_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile (t=3, m=64 MB, p=4)
_slots = threading.BoundedSemaphore(2)
_dummy: str | None = None  # compared when the account does not exist, so timing says nothing (made once, lazily)
MIN_PASSWORD = 8


class Busy(Exception):
    """Too many password checks at once."""


def check_password_rules(password: str) -> None:
    from coflows.errors import ArgumentError

    if len(password) < MIN_PASSWORD:
        raise ArgumentError(f"password: at least {MIN_PASSWORD} characters", "password")
    if len(password) > 1024:
        raise ArgumentError("password: at most 1024 characters", "password")


def hash_password(password: str) -> str:
    check_password_rules(password)
    with _slot():
        return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """True when `password` matches; a missing hash is checked against a dummy (same cost)."""
    if len(password) > 1024:
        return False
    global _dummy
    if stored is None and _dummy is None:
        _dummy = hash_password("coflows: no such account, same cost")
    with _slot():
        try:
            return _hasher.verify(stored or _dummy, password) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


class _slot:
    def __enter__(self) -> None:
        if not _slots.acquire(timeout=10):
            raise Busy("too many logins at once; try again shortly")

    def __exit__(self, *exc: object) -> None:
        _slots.release()


def new_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
