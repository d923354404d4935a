"""M changes made in notebooks reach the server's agents at once, on SQLite too.

On PostgreSQL every M write already NOTIFYs the other processes on the database (coflows.m.store),
so a kernel's writes reach the server's agents without help. SQLite has no cross-process
notification, so the kernel announces its committed changes to the server over a loopback
connection: the same payloads a NOTIFY would carry (topic, ids, kinds, versions, author), which the
server hands to `MStore.receive` — it re-reads the rows from the database and publishes them to its
agents and `/live` clients, exactly as for another replica's NOTIFY. The connection is
authenticated (the kernel answers an HMAC challenge with a key derived from the secret only
the server and its Jupyter child hold; 5 s to answer); messages are length-prefixed JSON text of at
most 64 KB; at most 64 connections at once.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import socket
import struct
import threading
from typing import Any

from coflows.jupyter.identity import derive

log = logging.getLogger("coflows.jupyter")

MAX_MESSAGE = 64 * 1024
MAX_CLIENTS = 64
HANDSHAKE_S = 5.0


def _read(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    return buf


class RelayServer:
    """The server side: accepts kernels' connections and publishes what they announce.

    Protocol: the server sends a 32-byte nonce; the client answers HMAC-SHA256(key, nonce) within
    5 s, then sends messages as a 4-byte big-endian length and that many UTF-8 bytes (≤ 64 KB)."""

    def __init__(self, secret: str, receive: Any) -> None:
        self._key = derive(secret, "relay")
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.address = "127.0.0.1:%d" % self._sock.getsockname()[1]
        self._receive = receive  # MStore.receive
        self._clients = threading.BoundedSemaphore(MAX_CLIENTS)
        self._closed = False
        threading.Thread(target=self._accept, name="coflows-jupyter-relay", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                if self._closed:
                    return
                continue
            if not self._clients.acquire(blocking=False):
                conn.close()
                continue
            threading.Thread(target=self._serve, args=(conn,), name="coflows-jupyter-relay-conn", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(HANDSHAKE_S)
            nonce = os.urandom(32)
            conn.sendall(nonce)
            answer = _read(conn, 32)
            if not hmac.compare_digest(answer, hmac.new(self._key, nonce, hashlib.sha256).digest()):
                log.warning("M relay: refused a connection that failed authentication")
                return
            conn.settimeout(None)
            while not self._closed:
                (size,) = struct.unpack(">I", _read(conn, 4))
                if size > MAX_MESSAGE:
                    log.warning("M relay: a message of %d bytes (limit %d); closing", size, MAX_MESSAGE)
                    return
                data = _read(conn, size)
                try:
                    self._receive(data.decode("utf-8"))
                except Exception:  # noqa: BLE001 - one bad message must not end the relay
                    log.exception("M relay: could not publish a kernel's change")
        except (EOFError, OSError, struct.error):
            return
        finally:
            conn.close()
            self._clients.release()

    def close(self) -> None:
        self._closed = True
        try:
            self._sock.close()
        except OSError:
            pass


class RelayClient:
    """The kernel side: subscribes to its own process's M changes and announces them to the server."""

    def __init__(self, address: str, secret: str, store: Any) -> None:
        host, _, port = address.rpartition(":")
        self._address = (host, int(port))
        self._key = derive(secret, "relay")
        self._store = store
        self._conn: socket.socket | None = None
        self._lock = threading.Lock()
        self.unsubscribe = store.subscribe(None, self._on_change)

    def _on_change(self, change: Any) -> None:
        if not change.local:
            return
        for payload in self._store._payloads([change]):  # the NOTIFY payload format (coflows.m.store)
            self._send(payload.encode("utf-8"))

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(self._address, timeout=HANDSHAKE_S)
        nonce = _read(sock, 32)
        sock.sendall(hmac.new(self._key, nonce, hashlib.sha256).digest())
        return sock

    def _send(self, data: bytes) -> None:
        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._conn is None:
                        self._conn = self._connect()
                    self._conn.sendall(struct.pack(">I", len(data)) + data)
                    return
                except (OSError, EOFError) as e:
                    if self._conn is not None:
                        self._conn.close()
                    self._conn = None
                    if attempt == 2:
                        log.warning("M relay: the server did not get a change (%s); its agents will not see it", e)
