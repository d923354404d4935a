"""Apps' lives: started on first use, restarted when their query is reloaded, stopped with the server.

`ensure` runs on a thread (never the event loop), one start at a time per app:
1. pick up edits of the query (`Workflow.refresh`, on the call pool under its time limit);
2. keep the running app when it was started by the query as loaded now and still accepts connections;
3. otherwise shut the old one down and start a new one: a free loopback port, `run(port, path)` on
   the call pool under the function's time limit (`Server.CallTimeout` unless it declares its own),
   then wait (≤ `start_timeout`) until a socket of this process listens on 127.0.0.1:port.

A failed start is an `AppFailed` (502) naming the query, remembered for `retry_after` seconds so a
crashing app is not started again on every request (an edit of the query retries at once).

Shutting an app down: if `run` returned an object with `shutdown()` (a server from werkzeug's
`make_server`), that is called; else CoFlows' convention, `GET {path}shutdown`. A reaper thread
stops apps whose query was removed or reloaded (the next request starts the new version).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from coflows.apps import ports
from coflows.apps.detect import app_path, run_function
from coflows.context import CallContext, call_context
from coflows.errors import CoflowsError, NotFoundError, UserCodeError
from coflows.jupyter.identity import new_secret

log = logging.getLogger("coflows.apps")

CHECK_EVERY = 1.0  # s between freshness checks of a running app (a request within it goes straight through)
STOP_TIMEOUT = 10.0
BLOCKING_AFTER = 3.0  # s a run() may keep going once its port listens (see _call_run)
REAP_EVERY = 5.0


class AppFailed(CoflowsError):
    """The app could not be started or does not answer: the query's fault, named in the message."""

    http_status = 502


@dataclass
class App:
    workflow_id: str
    query_id: str
    label: str  # "Workflow/App.py", for messages
    path: str
    port: int
    loaded: Any  # the LoadedSource whose run() started it: another one means the query was reloaded
    server: Any  # what run() returned
    checked: float = field(default_factory=time.monotonic)
    dead: bool = False  # a request found it not answering: the next one starts it again
    host: str = "127.0.0.1"  # ::1 for an app that bound IPv6 loopback only ("localhost" may resolve so)

    @property
    def base(self) -> str:
        return f"http://[{self.host}]:{self.port}" if ":" in self.host else f"http://{self.host}:{self.port}"

    def accepts(self, timeout: float = 0.5) -> bool:
        return ports.accepts(self.port, timeout, self.host)


@dataclass
class _Failure:
    loaded: Any
    at: float
    error: AppFailed


class AppManager:
    def __init__(self, runtime: Any, start_timeout: float = 30.0, retry_after: float = 10.0) -> None:
        self.runtime = runtime
        self.secret = new_secret()  # signs the proxy's X-Coflows-Identity stamps (coflows/apps/wsgi.py)
        self.start_timeout = start_timeout
        self.retry_after = retry_after
        self._apps: dict[tuple[str, str], App] = {}
        self._failures: dict[tuple[str, str], _Failure] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()
        self._stopping = threading.Event()
        self._reaper: threading.Thread | None = None

    # -- the fast path (event loop: dict lookups only) -----------------------------------------
    def current(self, workflow: Any, query: Any) -> App | None:
        """The running app when it needs no check now (started by the loaded query, checked < 1 s ago)."""
        app = self._apps.get((workflow.id, query.id))
        if app is None or app.dead or app.loaded is not query.loaded:
            return None
        return app if time.monotonic() - app.checked < CHECK_EVERY else None

    def running(self) -> list[App]:
        return list(self._apps.values())

    def mark_dead(self, app: App) -> None:
        app.dead = True

    # -- on a thread -----------------------------------------------------------------------------
    def _lock(self, key: tuple[str, str]) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def ensure(self, workflow: Any, query: Any) -> App:
        """The query's app, started (or restarted after an edit) if need be. Raises AppFailed, NotFoundError."""
        if self._stopping.is_set():
            raise AppFailed("the server is shutting down")
        key = (workflow.id, query.id)
        with self._lock(key):
            calls = self.runtime.calls
            calls.run(workflow.refresh, query, label=f"{workflow.name}/{query.id} (reload check)")
            app = self._apps.get(key)
            if app is not None:
                if app.loaded is query.loaded and not app.dead and app.accepts():
                    app.checked = time.monotonic()
                    return app
                why = "its query was reloaded" if app.loaded is not query.loaded else "it stopped answering"
                log.info("%s: restarting the app (%s)", app.label, why)
                self._stop(self._apps.pop(key))
            fn = run_function(query)
            if fn is None:
                raise NotFoundError(f"query '{query.id}' of workflow '{workflow.name}' is not an app: it has no "
                                    "run(port, path) function")
            failure = self._failures.get(key)
            if failure is not None and failure.loaded is query.loaded and \
                    time.monotonic() - failure.at < self.retry_after:
                raise failure.error
            try:
                app = self._start(workflow, query, fn)
            except AppFailed as e:
                log.error("%s", e)
                self._failures[key] = _Failure(query.loaded, time.monotonic(), e)
                raise
            self._failures.pop(key, None)
            self._apps[key] = app
            self._start_reaper()
            return app

    def _start(self, workflow: Any, query: Any, fn: Any) -> App:
        label = f"{workflow.name}/{query.id}"
        port = ports.free_port()
        path = app_path(workflow.id, query.id)

        def invoke() -> Any:
            with call_context(CallContext(workflow.id, query.id, fn.name, None, workflow.name)):
                return fn.invoke([port, path], {})

        log.info("%s: starting the app on 127.0.0.1:%d (run(%d, %r))", label, port, port, path)
        before = set(threading.enumerate())
        try:
            server = self._call_run(invoke, label, port, fn.docs.timeout)
        except AppFailed:
            raise
        except UserCodeError as e:
            raise AppFailed(f"{label}: run(port, path) failed: {e.type_name}: {e.message}") from None
        except Exception as e:  # noqa: BLE001 - a timeout, a conversion: the app did not start
            raise AppFailed(f"{label}: run(port, path) failed: {e}") from None
        spawned = [t for t in threading.enumerate() if t not in before]
        app = App(workflow.id, query.id, label, path, port, query.loaded, server)
        self._wait_listening(app, spawned)
        log.info("%s: app listening on 127.0.0.1:%d, served at %s", label, port, path)
        return app

    def _call_run(self, invoke: Any, label: str, port: int, timeout: float | None) -> Any:
        """`run` on the call pool under its time limit. A `run` that serves in its own thread (Flask's
        `app.run(…)` called directly) never returns: once the port has been listening for
        BLOCKING_AFTER seconds with `run` still going, it is stopped and said so, not waited out."""
        done = threading.Event()
        calls = self.runtime.calls
        call = calls.submit(invoke, (), label=f"{label}/run", timeout=timeout, on_done=lambda _c: done.set())
        listening_since: float | None = None
        while not done.wait(0.1):
            if listening_since is None:
                if ports.listening(port):
                    listening_since = time.monotonic()
            elif time.monotonic() - listening_since >= BLOCKING_AFTER:
                calls.cancel(call)
                done.wait(STOP_TIMEOUT)
                raise AppFailed(f"{label}: run(port, path) serves the app itself (on 127.0.0.1:{port}) and does not "
                                "return: start the server in a thread and return it (as `coflows add dash` does)")
        return call.result()

    def _wait_listening(self, app: App, spawned: list[threading.Thread]) -> None:
        check = ports.proc_available()
        deadline = time.monotonic() + self.start_timeout
        while True:
            if check:
                found = ports.listeners(app.port)
                if found:
                    self._check_listener(app, found)
                    return
            elif app.accepts(0.2):
                return
            if spawned and not any(t.is_alive() for t in spawned):
                self._stop(app)
                raise AppFailed(f"{app.label}: the thread run(port, path) started ended without listening on "
                                f"127.0.0.1:{app.port} (its error is in the server log)")
            if time.monotonic() >= deadline:
                self._stop(app)
                raise AppFailed(f"{app.label}: run(port, path) returned but nothing listens on 127.0.0.1:{app.port} "
                                f"after {self.start_timeout:g} s (run must start a server on the port it is given, "
                                "in a thread, and return)")
            time.sleep(0.05)

    def _check_listener(self, app: App, found: list[ports.Listener]) -> None:
        own = ports.own_socket_inodes()
        if not any(f.inode in own for f in found):
            raise AppFailed(f"{app.label}: another process took port {app.port} before the app could; try again")
        exposed = [f for f in found if not f.loopback]
        if exposed:
            self._stop(app)
            raise AppFailed(f"{app.label}: the app listens on {exposed[0].address}:{app.port}, reachable from other "
                            "machines without coflows' authentication: bind it to 127.0.0.1")
        if not any(f.address.startswith("127.") for f in found):
            app.host = found[0].address  # IPv6 loopback only

    def _stop(self, app: App) -> None:
        """Shut an app down: its server's shutdown(), else GET {path}shutdown; wait for the port to close."""
        shutdown = getattr(app.server, "shutdown", None)
        try:
            if callable(shutdown):
                self.runtime.calls.run(shutdown, label=f"{app.label} (shutdown)", timeout=STOP_TIMEOUT)
                closer = getattr(app.server, "server_close", None)
                if callable(closer):
                    closer()
            else:
                httpx.get(f"{app.base}{app.path}shutdown", timeout=STOP_TIMEOUT)
        except Exception as e:  # noqa: BLE001 - its own shutdown failed: said below if it still listens
            log.info("%s: shutdown: %s", app.label, e)
        deadline = time.monotonic() + STOP_TIMEOUT
        while app.accepts(0.2):
            if time.monotonic() >= deadline:
                log.warning("%s: the app still listens on 127.0.0.1:%d after its shutdown (return the server from "
                            "run(), as `coflows add dash` does, or serve GET %sshutdown)", app.label, app.port, app.path)
                return
            time.sleep(0.05)
        log.info("%s: app on port %d stopped", app.label, app.port)

    # -- housekeeping -----------------------------------------------------------------------------
    def _start_reaper(self) -> None:
        with self._guard:
            if self._reaper is None and not self._stopping.is_set():
                self._reaper = threading.Thread(target=self._reap_loop, name="coflows-apps-reaper", daemon=True)
                self._reaper.start()

    def _reap_loop(self) -> None:
        while not self._stopping.wait(REAP_EVERY):
            try:
                self.reap()
            except Exception:  # noqa: BLE001 - keep reaping
                log.exception("apps: reaping")

    def reap(self) -> None:
        """Stop apps whose query was removed or reloaded (the next request starts the new version)."""
        for key, app in list(self._apps.items()):
            query = self._query(app)
            if query is not None and query.loaded is app.loaded:
                continue
            lock = self._lock(key)
            if not lock.acquire(blocking=False):
                continue  # a request is (re)starting it
            try:
                if self._apps.get(key) is app:
                    log.info("%s: stopping the app (its query was %s)", app.label,
                             "removed" if query is None else "reloaded")
                    self._stop(self._apps.pop(key))
            finally:
                lock.release()

    def _query(self, app: App) -> Any:
        try:
            workflow = self.runtime.registry.workflow(app.workflow_id)
        except CoflowsError:
            return None
        return workflow.queries.get(app.query_id)

    def close(self) -> None:
        self._stopping.set()
        for key in list(self._apps):
            app = self._apps.pop(key, None)
            if app is not None:
                self._stop(app)
