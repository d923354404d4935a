"""`python -m coflows.healthcheck [PORT]`: exit 0 when the local server answers `/health` with 200.

The container's HEALTHCHECK. Why not a plain HTTP call: with `Server.LetsEncrypt` the server's port
speaks HTTPS only (with a certificate for its domains, not for 127.0.0.1), so a plain request fails
there; this asks over HTTP first, then over HTTPS without checking the certificate's name (the
question is "does the local process answer", not "is this the right host").
"""

from __future__ import annotations

import ssl
import sys
import urllib.request


def healthy(port: int, timeout: float = 8.0) -> bool:
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    for url, context in ((f"http://127.0.0.1:{port}/health", None), (f"https://127.0.0.1:{port}/health", unverified)):
        try:
            with urllib.request.urlopen(url, timeout=timeout, context=context) as r:  # noqa: S310 - fixed local URL
                if r.status == 200:
                    return True
        except Exception:  # noqa: BLE001 - any failure: try the other scheme, then report unhealthy
            continue
    return False


if __name__ == "__main__":
    sys.exit(0 if healthy(int(sys.argv[1]) if len(sys.argv) > 1 else 8080) else 1)
