"""The background thread that gets the first certificate and renews it before it expires.

It wakes when the certificate on disk is due (fewer than `RenewDays` left, names that no longer
match the config, none at all) or at least every `CHECK_EVERY` seconds, and after a failure tries
again after `RETRY_FIRST` seconds, doubling up to `RETRY_MAX` (Let's Encrypt allows 5 failed
validations per host name per hour). The serving side picks the new files up by itself
(`context.py`), so renewing never stops the server.
"""

from __future__ import annotations

import logging
import threading
import time

from coflows.tls.challenge import ChallengeServer
from coflows.tls.files import TlsFiles, names_of, seconds_left
from coflows.tls.order import AcmeFailure, obtain

log = logging.getLogger("coflows.tls")

CHECK_EVERY = 3600.0
RETRY_FIRST = 300.0
RETRY_MAX = 3600.0
ORDER_TIMEOUT = 120.0  # seconds one order may take, from the directory to the downloaded chain


class Renewer:
    def __init__(self, *, directory_url: str, email: str, domains: list[str], renew_before: float,
                 files: TlsFiles, http01: ChallengeServer, ca_bundle: str = "") -> None:
        self.directory_url = directory_url
        self.email = email
        self.domains = domains
        self.renew_before = renew_before
        self.files = files
        self.http01 = http01
        self.ca_bundle = ca_bundle
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned_short = False

    def start(self) -> Renewer:
        self._thread = threading.Thread(target=self._run, name="coflows-acme", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()

    def due_in(self) -> float:
        """Seconds until the stored certificate should be renewed (0: now)."""
        cert = self.files.current()
        if cert is None:
            return 0.0
        missing = set(self.domains) - names_of(cert)
        if missing:
            log.info("the stored certificate lacks %s: ordering a new one", ", ".join(sorted(missing)))
            return 0.0
        lifetime = (cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds()
        before = self.renew_before
        if before >= lifetime:  # e.g. RenewDays 30 with a 6-day certificate: renew at a third left instead
            before = lifetime / 3
            if not self._warned_short:
                log.warning("Server.LetsEncrypt.RenewDays is longer than the certificate's lifetime (%.1f days): "
                            "renewing when a third of it is left", lifetime / 86400)
                self._warned_short = True
        return max(0.0, seconds_left(cert) - before)

    def _run(self) -> None:
        retry = RETRY_FIRST
        while not self._stop.is_set():
            wait = self.due_in()
            if wait > 0:
                self._stop.wait(min(wait, CHECK_EVERY))
                continue
            started = time.monotonic()
            log.info("ACME: ordering a certificate for %s from %s", ", ".join(self.domains), self.directory_url)
            try:
                obtain(directory_url=self.directory_url, email=self.email, domains=self.domains, files=self.files,
                       http01=self.http01, ca_bundle=self.ca_bundle, timeout=ORDER_TIMEOUT)
            except AcmeFailure as e:
                log.error("ACME: %s; trying again in %.0f s", e, retry)
                self._stop.wait(retry)
                retry = min(retry * 2, RETRY_MAX)
                continue
            except Exception:  # a bug must not end renewals silently: log it and retry like a failure
                log.exception("ACME: ordering a certificate for %s failed; trying again in %.0f s",
                              ", ".join(self.domains), retry)
                self._stop.wait(retry)
                retry = min(retry * 2, RETRY_MAX)
                continue
            retry = RETRY_FIRST
            cert = self.files.current()
            if cert is not None:
                log.info("ACME: certificate for %s stored in %s (serial %x, valid until %s; took %.1f s)",
                         ", ".join(self.domains), self.files.chain, cert.serial_number,
                         cert.not_valid_after_utc.isoformat(), time.monotonic() - started)
