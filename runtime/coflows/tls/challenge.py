"""The plain-HTTP listener beside HTTPS: answers HTTP-01 challenges, redirects everything else (308).

It runs in the process that talks to the ACME server (the supervisor, or the lone server with
`--no-supervisor`), on a socket bound once, so the tokens it serves are the ones that process
just received, and it keeps answering while a server child restarts. Each connection gets a
thread, at most `MAX_CONNECTIONS` at once (more are closed at once) and `TIMEOUT` seconds of
silence; nothing is read beyond the request line and headers.
"""

from __future__ import annotations

import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger("coflows.tls")

CHALLENGE_PREFIX = "/.well-known/acme-challenge/"
MAX_CONNECTIONS = 64
TIMEOUT = 10.0


class ChallengeServer:
    """HTTP-01 responses for the tokens `put` here, and `308` to `https://<domain>[:port]<path>` otherwise."""

    def __init__(self, sock: socket.socket, domains: list[str], https_port: int) -> None:
        self.domains = domains
        self.https_port = https_port
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._httpd = _HTTPServer(sock, self)
        self._thread: threading.Thread | None = None

    # -- the tokens the ACME client is answering ---------------------------------------------
    def put(self, token: str, key_authorization: str) -> None:
        with self._lock:
            self._tokens[token] = key_authorization

    def remove(self, token: str) -> None:
        with self._lock:
            self._tokens.pop(token, None)

    def lookup(self, token: str) -> str | None:
        with self._lock:
            return self._tokens.get(token)

    # -- redirects ------------------------------------------------------------------------------
    def redirect_url(self, host_header: str | None, path: str) -> str:
        """The HTTPS URL for a request: its Host when it is one of our domains (else the first one), same path."""
        host = (host_header or "").strip().lower()
        if host.startswith("["):
            host = host.split("]", 1)[0] + "]"
        else:
            host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        if host not in self.domains:
            host = self.domains[0]  # never redirect to a host the client named that is not ours
        port = "" if self.https_port == 443 else f":{self.https_port}"
        if not path.startswith("/"):
            path = "/"
        return f"https://{host}{port}{path}"

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> ChallengeServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.5},
                                        name="coflows-http01", daemon=True)
        self._thread.start()
        host, port = self._httpd.socket.getsockname()[:2]
        log.info("HTTP on %s:%d: ACME HTTP-01 challenges, and 308 to https://%s%s for everything else", host, port,
                 self.domains[0], "" if self.https_port == 443 else f":{self.https_port}")
        return self

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, sock: socket.socket, owner: ChallengeServer) -> None:
        super().__init__(sock.getsockname()[:2], _Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.owner = owner

    def process_request(self, request, client_address) -> None:  # noqa: ANN001
        if not self.owner._slots.acquire(blocking=False):
            self.shutdown_request(request)  # too many at once: close, rather than queue without bound
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address) -> None:  # noqa: ANN001
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.owner._slots.release()


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    timeout = TIMEOUT
    server_version = "coflows"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        owner = self.server.owner
        path = self.path.split("?", 1)[0]
        if path.startswith(CHALLENGE_PREFIX) and self.command in ("GET", "HEAD"):
            token = path[len(CHALLENGE_PREFIX):]
            answer = owner.lookup(token)
            body = (answer or "no such challenge\n").encode()
            self.send_response(200 if answer else 404)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command == "GET":
                self.wfile.write(body)
            log.info("HTTP-01: %s %s from %s", "answered" if answer else "unknown token", token,
                     self.client_address[0])
            return
        self.send_response(308)
        self.send_header("Location", owner.redirect_url(self.headers.get("Host"), self.path))
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")  # a body we did not read may follow: do not reuse
        self.close_connection = True
        self.end_headers()

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _answer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        log.debug("http: %s - %s", self.address_string(), format % args)
