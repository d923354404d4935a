"""The supervisor: `coflows server` runs the real server as a child process and restarts it when it dies.

Why a parent: user code runs in the server's process (four languages in one
address space), so `os._exit`, a segfault in a native library or the OOM killer
in any function ends the process. The parent loads no engine and no workspace
code, so nothing a call does can take it down; it only:

- binds the listening socket once and hands it to each child (`--listen-fd`):
  the port stays held across restarts (connections wait in the kernel's backlog
  while a new child starts, instead of being refused), and a second server on a
  busy port fails at once (exit 2), before loading any engine;
- restarts a child that dies (an exit code, a signal, its memory limit) after a
  back-off (0.5 s doubling to 30 s, reset once a child has served for a minute)
  and logs why, in one line;
- stops at once, with exit code 2, when a child fails its start-up with a config
  error (exit 2 before it reported ready): restarting cannot fix a config;
- forwards SIGTERM/SIGINT to the child, waits for it (up to `STOP_GRACE`, then
  SIGKILL), and ends the same way the child did;
- kills a child whose resident memory runs far past `Server.MemoryLimit` (the
  child drains and exits itself at the limit: see `server/memory.py`; this is
  the backstop for a child too busy to notice);
- with `Server.LetsEncrypt`, holds `HttpPort` too, answers HTTP-01 and redirects
  there, and gets and renews the certificate in a thread (`coflows/tls`, started
  by `cli._acme`); the child serves HTTPS with whatever certificate is stored.

The child tells the parent what it is doing over a pipe (`--status-fd`, also in
`COFLOWS_STATUS_FD`), one line per event: `ready`, `memory <MB>`, `restart <grace s>` (an
admin's `coflows cloud restart`: the parent stops the child as for SIGTERM,
killing it after the grace, and starts a new one at once, without back-off). The child dies with the parent
(PR_SET_PDEATHSIG), so killing the supervisor with SIGKILL leaves no orphan.
The flow engine's owner ID is kept across children (`COFLOWS_FLOW_OWNER`), so
a new child takes back the runs of the previous one at once (as after kill -9),
without waiting for their leases to expire.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field

log = logging.getLogger("coflows.supervisor")

EXIT_CONFIG = 2  # bad config or manifest, busy port, database that does not open: restarting cannot fix it
EXIT_MEMORY = 75  # EX_TEMPFAIL: the child passed Server.MemoryLimit and drained; restart it
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
HEALTHY_AFTER = 60.0  # seconds of service after which the back-off starts again from BACKOFF_FIRST
STOP_GRACE = 25.0  # seconds a stopping child may take before SIGKILL
POLL = 0.1
FLOW_OWNER_ENV = "COFLOWS_FLOW_OWNER"
STATUS_FD_ENV = "COFLOWS_STATUS_FD"  # the child's end of the status pipe (POST /flow/cloud/restart writes to it)
_PR_SET_PDEATHSIG = 1

_SIGNAL_NOTES = {signal.SIGKILL: "; the OOM killer sends this", signal.SIGSEGV: "; a crash in native code",
                 signal.SIGABRT: "; an abort in native code"}


def hard_memory_limit(limit_mb: int) -> int:
    """MB past which the parent kills a child outright: the limit plus half of it (at least 256 MB)."""
    return limit_mb + max(limit_mb // 2, 256)


def listen(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """Bind and listen once, for every child. Raises OSError (address in use, ...)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def describe_exit(returncode: int, memory_limit: int = 0, memory_note: str | None = None) -> str:
    """Why a child ended, for the log: its exit code, its signal, or its memory limit."""
    if memory_note is not None or returncode == EXIT_MEMORY:
        return f"server passed its memory limit of {memory_limit} MB" + (f" ({memory_note})" if memory_note else "")
    if returncode < 0:
        sig = -returncode
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return f"server killed by signal {sig} ({name}{_SIGNAL_NOTES.get(sig, '')})"
    return f"server exited with code {returncode}"


def rss_mb(pid: int) -> int | None:
    """Resident memory of a process in MB, from /proc (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") // (1024 * 1024)


def _die_with_parent() -> None:
    """In the child, before exec: receive SIGKILL when the supervisor dies (no orphan server)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _reap_orphans(child_pid: int) -> None:
    """As PID 1 (a container's entry point), collect the exit status of orphaned grandchildren.

    Processes started by user code whose parent died are re-parented to PID 1; left
    alone they stay zombies. Our own child is left to `Popen.wait`.
    """
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if info is None or info.si_pid in (0, child_pid):
            return
        try:
            os.waitpid(info.si_pid, 0)
        except ChildProcessError:
            return


@dataclass
class _Child:
    proc: subprocess.Popen
    status_fd: int
    started: float
    ready_at: float | None = None
    memory_note: str | None = None
    restart_asked: bool = False
    restart_grace: float = STOP_GRACE
    buffer: bytes = b""

    def read_status(self) -> None:
        """Take the lines the child has written so far (non-blocking)."""
        while True:
            try:
                chunk = os.read(self.status_fd, 4096)
            except BlockingIOError:
                return
            except OSError:
                return
            if not chunk:
                return
            self.buffer += chunk
            *lines, self.buffer = self.buffer.split(b"\n")
            for line in lines:
                word, _, rest = line.decode(errors="replace").partition(" ")
                if word == "ready" and self.ready_at is None:
                    self.ready_at = time.monotonic()
                elif word == "memory":
                    self.memory_note = f"RSS {rest} MB"
                elif word == "restart":
                    self.restart_asked = True
                    try:
                        self.restart_grace = min(max(float(rest), 1.0), 600.0)
                    except ValueError:
                        pass


@dataclass
class Supervisor:
    """Run `command` (+ `--listen-fd N --status-fd M`) as a child until asked to stop; see the module docstring."""

    command: list[str]
    sock: socket.socket
    memory_limit: int = 0  # MB, 0: off
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    _stop_signal: int | None = None
    _child: _Child | None = None

    def run(self) -> int:
        """Supervise until stopped; return the exit code (negative: re-raise that signal)."""
        self.env.setdefault(FLOW_OWNER_ENV, f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}")
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        delay = BACKOFF_FIRST
        try:
            while self._stop_signal is None:
                child = self._start()
                returncode = self._watch(child)
                if self._stop_signal is not None:
                    return returncode
                if child.restart_asked:
                    log.info("server stopped for the restart it was asked for (exit code %d); starting a new one",
                             returncode)
                    continue
                if returncode == EXIT_CONFIG and child.ready_at is None:
                    log.error("server failed to start with a config error (exit code 2); not restarting")
                    return EXIT_CONFIG
                if child.ready_at is not None and time.monotonic() - child.ready_at >= HEALTHY_AFTER:
                    delay = BACKOFF_FIRST
                why = describe_exit(returncode, self.memory_limit, child.memory_note)
                if returncode == 0:
                    why += " without being asked to"
                log.error("%s; restarting in %.1f s", why, delay)
                self._sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)
            return 0
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.sock.close()

    # -- internals ------------------------------------------------------------------------------
    def _start(self) -> _Child:
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        fd = self.sock.fileno()
        cmd = [*self.command, "--listen-fd", str(fd), "--status-fd", str(write_fd)]
        env = {**self.env, STATUS_FD_ENV: str(write_fd)}
        proc = subprocess.Popen(cmd, pass_fds=(fd, write_fd), env=env, process_group=0,
                                preexec_fn=_die_with_parent)
        os.close(write_fd)
        log.info("server started (pid %d)", proc.pid)
        self._child = _Child(proc, read_fd, time.monotonic())
        return self._child

    def _watch(self, child: _Child) -> int:
        """Wait for the child to end; enforce the hard memory limit and the stop grace."""
        hard = hard_memory_limit(self.memory_limit) if self.memory_limit else 0
        stop_deadline: float | None = None
        try:
            while True:
                try:
                    returncode = child.proc.wait(POLL)
                    child.read_status()
                    return returncode
                except subprocess.TimeoutExpired:
                    pass
                child.read_status()
                if (self._stop_signal is not None or child.restart_asked) and stop_deadline is None:
                    child.proc.send_signal(signal.SIGTERM)  # again, if it came before the child was known
                    grace = STOP_GRACE if self._stop_signal is not None else child.restart_grace
                    stop_deadline = time.monotonic() + grace
                if os.getpid() == 1:
                    _reap_orphans(child.proc.pid)
                if stop_deadline is not None and time.monotonic() > stop_deadline:
                    log.error("server did not stop within %.0f s; killing it", STOP_GRACE)
                    child.proc.kill()
                    stop_deadline = float("inf")
                if hard:
                    rss = rss_mb(child.proc.pid)
                    if rss is not None and rss > hard:
                        child.memory_note = f"RSS {rss} MB, past {hard} MB: killed"
                        child.proc.kill()
                        hard = 0
        finally:
            os.close(child.status_fd)
            self._child = None

    @property
    def stop_signal(self) -> int | None:
        """The signal that asked us to stop (None while running)."""
        return self._stop_signal

    def _on_signal(self, sig: int, frame: object) -> None:
        first = self._stop_signal is None
        self._stop_signal = sig
        child = self._child
        if child is not None and child.proc.poll() is None:
            # SIGINT (Ctrl+C) asks for the same graceful stop as SIGTERM; a second one is forwarded
            # as is, so uvicorn stops waiting for open connections.
            child.proc.send_signal(signal.SIGTERM if first or sig == signal.SIGTERM else sig)
        if first:
            log.info("stopping (%s)", signal.Signals(sig).name)

    def _sleep(self, seconds: float) -> None:
        until = time.monotonic() + seconds
        while self._stop_signal is None and time.monotonic() < until:
            time.sleep(POLL)


def exit_like(returncode: int, stop_signal: int | None) -> None:
    """End the supervisor the way its child ended (a signal is raised again on ourselves)."""
    logging.shutdown()
    if returncode == -signal.SIGTERM and stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, signal.SIG_DFL)  # stopped as asked: end by the same signal
        os.kill(os.getpid(), stop_signal)
        time.sleep(1)  # delivered before this returns
    sys.exit(returncode if returncode >= 0 else 128 - returncode)
