"""HTTPS with a certificate from an ACME server (Let's Encrypt), on while `Server.LetsEncrypt.Domains` is set.

Who does what (docs/tls.md):
- the process that holds the ports (the supervisor, or the lone server with `--no-supervisor`)
  binds `HttpPort`, serves HTTP-01 answers and 308 redirects there (`challenge.py`), and gets
  and renews the certificate in a thread (`renew.py`, `order.py`), stored 0600 under
  `<state dir>/acme/` (`files.py`);
- the process that serves the app wraps its listening socket with an SSLContext that follows
  the stored files (`context.py`), so a renewed certificate is served without a restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ssl

    from coflows.config import Config
    from coflows.tls.challenge import ChallengeServer
    from coflows.tls.renew import Renewer


class TlsStartError(Exception):
    """The HTTP port cannot be held or the CA bundle is missing: the server cannot start (exit 2)."""


@dataclass
class AcmeService:
    http01: ChallengeServer
    renewer: Renewer

    def close(self) -> None:
        self.renewer.close()
        self.http01.close()


def directory_url(config: Config) -> str:
    from coflows.tls.order import LETS_ENCRYPT, LETS_ENCRYPT_STAGING

    le = config.server.lets_encrypt
    return le.directory or (LETS_ENCRYPT_STAGING if le.staging else LETS_ENCRYPT)


def start_acme(config: Config, host: str, https_port: int) -> AcmeService:
    """Bind `HttpPort`, start the HTTP-01/redirect listener and the certificate thread."""
    from coflows.supervisor import listen
    from coflows.tls.challenge import ChallengeServer
    from coflows.tls.files import TlsFiles
    from coflows.tls.renew import Renewer

    le = config.server.lets_encrypt
    ca_bundle = str(config.resolve(le.ca_bundle)) if le.ca_bundle else ""
    if ca_bundle and not config.resolve(le.ca_bundle).is_file():
        raise TlsStartError(f"{config.source}: Server.LetsEncrypt.CaBundle: {ca_bundle}: file not found")
    try:
        sock = listen(host, le.http_port, backlog=128)
    except OSError as e:
        raise TlsStartError(f"{config.source}: Server.LetsEncrypt.HttpPort: cannot listen on {host}:{le.http_port}: "
                            f"{e.strerror or e} (ports below 1024 need root or CAP_NET_BIND_SERVICE; in a container "
                            f"map port 80 to another HttpPort)") from None
    sock.set_inheritable(False)  # the supervisor's child serves HTTPS only
    files = TlsFiles.of(config)
    try:
        files.ensure_folder()
    except OSError as e:
        sock.close()
        raise TlsStartError(f"cannot create {files.folder}: {e.strerror or e}") from None
    http01 = ChallengeServer(sock, le.domains, le.https_port or https_port).start()
    renewer = Renewer(directory_url=directory_url(config), email=le.email, domains=le.domains,
                      renew_before=le.renew_days * 86400, files=files, http01=http01, ca_bundle=ca_bundle).start()
    return AcmeService(http01, renewer)


def serving_context(config: Config) -> ssl.SSLContext:
    """The SSLContext to serve with, kept current with the stored certificate by a watcher thread."""
    from coflows.tls.context import ReloadingContext
    from coflows.tls.files import TlsFiles

    return ReloadingContext(TlsFiles.of(config), config.server.lets_encrypt.domains).start().context
