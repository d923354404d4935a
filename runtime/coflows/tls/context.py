"""The server's SSLContext: the stored certificate, reloaded in place when a new one is written.

`SSLContext.load_cert_chain` on the context uvicorn serves with changes what new handshakes
present; open connections keep theirs. Until the first certificate exists, the context holds a
self-signed placeholder (made in memory, never stored), so the HTTPS port answers at once with a
certificate clients reject, instead of holding connections while the ACME order runs.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import ssl
import tempfile
import threading

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from coflows.tls.files import TlsFiles, private_pem

log = logging.getLogger("coflows.tls")

WATCH_EVERY = 5.0  # seconds between looks at the certificate file (one stat)


class ReloadingContext:
    """An SSLContext for the server and the thread that keeps its certificate current."""

    def __init__(self, files: TlsFiles, domains: list[str]) -> None:
        self.files = files
        self.domains = domains
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.context.set_alpn_protocols(["http/1.1"])
        self._seen: tuple[int, int, int] | None = None
        self._stop = threading.Event()
        if not self.reload():
            log.warning("TLS: no certificate for %s yet (%s): serving a temporary self-signed one until the "
                        "ACME order is done", ", ".join(domains), files.chain)
            self._load_placeholder()

    def reload(self) -> bool:
        """Load the stored pair if it changed since last time; True when the context holds it."""
        try:
            st = os.stat(self.files.chain)
        except FileNotFoundError:
            return False
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp == self._seen:
            return True
        try:
            self.context.load_cert_chain(self.files.chain, self.files.key)
        except (ssl.SSLError, OSError) as e:  # key and chain mid-replacement, or broken: keep what we serve
            log.warning("TLS: cannot load %s with %s yet: %s", self.files.chain, self.files.key,
                        getattr(e, "reason", None) or e)
            return False
        self._seen = stamp
        cert = self.files.current()
        if cert is not None:
            log.info("TLS: serving the certificate for %s (serial %x, valid until %s)", ", ".join(self.domains),
                     cert.serial_number, cert.not_valid_after_utc.isoformat())
        return True

    def start(self) -> ReloadingContext:
        threading.Thread(target=self._watch, name="coflows-tls-reload", daemon=True).start()
        return self

    def close(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        while not self._stop.wait(WATCH_EVERY):
            self.reload()

    def _load_placeholder(self) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.timezone.utc)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "coflows: certificate pending")])
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in self.domains]), critical=False)
                .sign(key, hashes.SHA256()))
        self.files.ensure_folder()
        # ssl loads only from files: a private temporary file (0600), removed at once
        with tempfile.NamedTemporaryFile(dir=self.files.folder, prefix=".placeholder.", suffix=".pem") as f:
            f.write(private_pem(key) + cert.public_bytes(Encoding.PEM))
            f.flush()
            self.context.load_cert_chain(f.name)
