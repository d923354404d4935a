"""One server process: load the runtime, serve it with uvicorn, enforce `Server.MemoryLimit`.

Run by the supervisor (`coflows.supervisor`) as its child, on the socket the
supervisor listens on, telling it over `status_fd` when it is ready and when it
passed its memory limit; or on its own (`coflows server --no-supervisor`), on
a socket it bound itself.
"""

from __future__ import annotations

import logging
import os
import socket
import threading

import uvicorn

from coflows.config import Config
from coflows.runtime import Runtime
from coflows.server import create_app
from coflows.server.memory import MemoryMonitor, rss_mb
from coflows.supervisor import EXIT_CONFIG, EXIT_MEMORY

log = logging.getLogger("coflows")

SHUTDOWN_GRACE = 5.0  # seconds uvicorn waits for open requests when it stops after the memory limit
HARD_EXIT_AFTER = 30.0  # seconds after the memory limit at which the process exits whatever is still running


class _Status:
    """Lines to the supervisor (`ready`, `memory <MB>`); silent without one."""

    def __init__(self, fd: int | None) -> None:
        self.fd = fd

    def send(self, line: str) -> None:
        if self.fd is None:
            return
        try:
            os.write(self.fd, (line + "\n").encode())
        except OSError:
            pass


class _Uvicorn(uvicorn.Server):
    """uvicorn that calls `on_ready` once the app's start-up has run and it accepts connections."""

    def __init__(self, config: uvicorn.Config, on_ready) -> None:  # noqa: ANN001
        super().__init__(config)
        self.on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and not self.should_exit:
            self.on_ready()


def serve(config: Config, runtime: Runtime, sock: socket.socket, *, access_log: bool, log_level: str,
          status_fd: int | None = None) -> int:
    """Serve a loaded runtime on a listening socket until stopped; return the exit code (0, 2 or EXIT_MEMORY)."""
    bound = sock.getsockname()
    app = create_app(runtime)
    status = _Status(status_fd)
    ssl_context = None
    if config.server.lets_encrypt.enabled:  # HTTPS on the same socket, certificate reloaded in place (coflows/tls)
        from coflows.tls import serving_context

        ssl_context = serving_context(config)
    server = _Uvicorn(uvicorn.Config(app, log_level=log_level, access_log=access_log, lifespan="on",
                                     ssl_context_factory=(lambda _c, _d: ssl_context) if ssl_context else None),
                      on_ready=lambda: None)
    limit = config.server.memory_limit
    outcome = {"code": 0}
    monitor: MemoryMonitor | None = None

    def stop_for_memory() -> None:
        outcome["code"] = EXIT_MEMORY
        # whatever still runs then (a runaway call, a stuck shutdown), the process ends
        timer = threading.Timer(HARD_EXIT_AFTER, os._exit, (EXIT_MEMORY,))
        timer.daemon = True
        timer.start()
        server.config.timeout_graceful_shutdown = SHUTDOWN_GRACE
        server.should_exit = True

    def ready() -> None:
        nonlocal monitor
        if limit:
            rss = rss_mb()
            if rss > limit:
                log.error("Server.MemoryLimit %d MB is below what the server holds after start-up (%d MB): "
                          "raise it in %s", limit, rss, config.source)
                outcome["code"] = EXIT_CONFIG
                server.should_exit = True
                return
            log.info("memory: %d MB resident after start-up; Server.MemoryLimit %d MB", rss, limit)
            monitor = MemoryMonitor(limit, app.state.in_flight, set_draining=lambda: setattr(runtime, "draining", True),
                                    stop=stop_for_memory, notify=status.send).start()
        status.send("ready")

    server.on_ready = ready
    log.info("serving on %s://%s:%d  (API docs: /docs)", "https" if ssl_context else "http", bound[0], bound[1])
    try:
        server.run(sockets=[sock])
    finally:
        if monitor is not None:
            monitor.close()
    return outcome["code"]
