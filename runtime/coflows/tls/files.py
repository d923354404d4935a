"""Where the ACME account key, the certificate and its key live, and how they are written (0600, whole).

Layout, under the state dir (`<workspace>/.coflows/acme/`, 0700):
- `account.key`: the ACME account's private key (PEM), made once and kept;
- `key.pem`: the certificate's private key; `cert.pem`: the certificate with its chain (full chain).
A new certificate is written key first, then chain, each through a temporary file renamed into
place, so a reader sees old or new files, never a half-written one (`context.py` retries a pair
that does not match yet).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from coflows.config import Config


@dataclass(frozen=True)
class TlsFiles:
    folder: Path

    @classmethod
    def of(cls, config: Config) -> TlsFiles:
        return cls(config.state_dir() / "acme")

    @property
    def account_key(self) -> Path:
        return self.folder / "account.key"

    @property
    def key(self) -> Path:
        return self.folder / "key.pem"

    @property
    def chain(self) -> Path:
        return self.folder / "cert.pem"

    def ensure_folder(self) -> None:
        """The folder, 0700 (its parent `.coflows` too when we make it)."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        for d in (self.folder, self.folder.parent):
            if d.stat().st_mode & 0o077:
                os.chmod(d, 0o700)

    def write_private(self, path: Path, data: bytes) -> None:
        """Write a file readable by its owner only (0600), whole: temporary file, fsync, rename."""
        self.ensure_folder()
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def store_certificate(self, key_pem: bytes, chain_pem: bytes) -> None:
        self.write_private(self.key, key_pem)
        self.write_private(self.chain, chain_pem)

    def load_or_make_account_key(self) -> rsa.RSAPrivateKey:
        """The account key: read (narrowed to 0600 if it was wider), or made (RSA 2048) and stored."""
        if self.account_key.exists():
            if self.account_key.stat().st_mode & 0o077:
                os.chmod(self.account_key, 0o600)
            key = serialization.load_pem_private_key(self.account_key.read_bytes(), password=None)
            if not isinstance(key, rsa.RSAPrivateKey):
                raise ValueError(f"{self.account_key}: not an RSA private key")
            return key
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.write_private(self.account_key, private_pem(key))
        return key

    def current(self) -> x509.Certificate | None:
        """The leaf certificate on disk (None if there is none or it does not parse)."""
        try:
            certs = x509.load_pem_x509_certificates(self.chain.read_bytes())
        except (OSError, ValueError):
            return None
        return certs[0] if certs else None


def private_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def names_of(cert: x509.Certificate) -> set[str]:
    """The DNS names in a certificate's SAN."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {n.lower() for n in san.get_values_for_type(x509.DNSName)}


def seconds_left(cert: x509.Certificate, now: dt.datetime | None = None) -> float:
    now = now or dt.datetime.now(dt.timezone.utc)
    return (cert.not_valid_after_utc - now).total_seconds()
