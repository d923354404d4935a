"""Host names a certificate may be ordered for over HTTP-01 (checked when the config is read)."""

from __future__ import annotations

import ipaddress
import re

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def check_domain(name: str) -> str:
    """A lower-cased DNS name, or ValueError saying why not (HTTP-01 proves no wildcard and no IP address)."""
    d = name.strip().lower().rstrip(".")
    if not d:
        raise ValueError("an empty domain")
    if d.startswith("*."):
        raise ValueError(f"{name!r}: a wildcard needs DNS-01; HTTP-01 (used here) proves one host name at a time")
    try:
        ipaddress.ip_address(d)
    except ValueError:
        pass
    else:
        raise ValueError(f"{name!r}: an IP address, not a host name")
    if len(d) > 253 or "." not in d or not all(_LABEL.match(label) for label in d.split(".")):
        raise ValueError(f"{name!r}: not a fully qualified host name")
    return d
