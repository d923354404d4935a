"""Keep API keys out of log lines and error bodies.

Why a log-record factory rather than a filter per handler: uvicorn installs its
own handlers (`uvicorn.access`, `uvicorn.error`, which logs every websocket
path with its query string), user code may add more, and a filter on one
handler misses the others. The factory sees every record once, when it is
made, whatever handler it goes to.

Redacted: the value after `_cokey` or `x-api-key` in any form we log (query
string `_cokey=K`, header `x-api-key: K`, dict/JSON `'x-api-key': 'K'`, ASGI
header tuples `(b'x-api-key', b'K')`), the password in a URL
(`https://user:***@feed`), and every secret registered with `protect` (the
admin key) wherever it appears.
"""

from __future__ import annotations

import logging
import re
import threading
import traceback
from typing import Any

MASK = "***"
_MIN_SECRET = 8  # a shorter "secret" (tests use "x") would mask ordinary words

_KEYED = r"""(?P<name>(?:_|%5f)cokey|x-api-key)   # the query parameter or header name
    (?P<sep>["']?\s*[=:,]\s*b?["']?)                  # = (query), : (header, dict, JSON), ', b' (ASGI tuple)
    (?P<value>[^\s"'&;,)\]}\#]+)"""
# The password of a URL's user info (`https://user:token@feed/…`, a private package feed).
_USERINFO = r"(?P<head>\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)(?P<password>[^/\s@]+)@"

_secrets: set[str] = set()
_lock = threading.Lock()
_installed = False


def _compile(secrets: set[str]) -> re.Pattern[str]:
    """One pattern for everything, so a log argument is scanned once."""
    parts = [_KEYED, _USERINFO]
    if secrets:
        parts.append("(?-i:(?P<secret>" + "|".join(re.escape(s) for s in sorted(secrets, key=len, reverse=True)) + "))")
    return re.compile("|".join(f"(?:{p})" for p in parts), re.IGNORECASE | re.VERBOSE)


_pattern = _compile(_secrets)


def _mask(m: re.Match[str]) -> str:
    if m.group("name") is not None:
        return m.group("name") + m.group("sep") + MASK
    if m.group("head") is not None:
        return m.group("head") + MASK + "@"
    return MASK


def redact(text: str) -> str:
    """`text` with key values, URL passwords and registered secrets replaced by `***`."""
    if not text:
        return text
    low = text.lower()  # most log text has none of these: skip the regular expression (≈ 5 times cheaper)
    if "cokey" not in low and "api-key" not in low and "://" not in text and not any(s in text for s in _secrets):
        return text
    return _pattern.sub(_mask, text)


def protect(secret: str) -> None:
    """Never log `secret` (the admin key): mask it in every log record and error body from now on."""
    global _pattern
    install()
    if len(secret) < _MIN_SECRET or secret in _secrets:
        return
    with _lock:
        _secrets.add(secret)
        _pattern = _compile(_secrets)


def _clean(value: Any) -> Any:
    """A log argument, redacted; numbers and None stay what they are (so `%d` still formats)."""
    if value is None or isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, (bytes, bytearray)):
        text = bytes(value).decode("latin-1")
        cleaned = redact(text)
        return value if cleaned == text else cleaned.encode("latin-1")
    text = str(value)
    cleaned = redact(text)
    return value if cleaned == text else cleaned


def scrub(record: logging.LogRecord) -> None:
    """Redact a record in place: its message template, its arguments and its exception text."""
    if isinstance(record.msg, str):
        record.msg = redact(record.msg)
    elif record.msg is not None and not isinstance(record.msg, (int, float)):
        record.msg = _clean(record.msg)
    args = record.args
    if isinstance(args, tuple):
        record.args = tuple(_clean(a) for a in args)
    elif isinstance(args, dict):
        record.args = {k: _clean(v) for k, v in args.items()}
    if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
        # Formatters reuse a record's exc_text when set: format once, redacted.
        record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))


def install() -> None:
    """Redact every log record made in this process from now on (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            try:
                scrub(record)
            except Exception:  # noqa: BLE001 - a log line must never fail because of redaction
                record.msg, record.args = redact(str(record.msg)), None
            return record

        logging.setLogRecordFactory(factory)
