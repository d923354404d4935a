"""Which source files may have changed: inotify read on the server's event loop, so a call need not stat.

Hot reload promises that an edit takes effect on the next call. Checking that with
`os.stat` of the query and every Base file on each call cost the server a third of
its throughput on a no-op: the stat releases the GIL, and the worker thread then
waits for the event loop to hand it back (bench/http_query.py, docs/performance.md).

Here the kernel says instead. Every directory holding a loaded source is watched
(`watch`, called before the file's stamp is taken, so no edit falls between the
two); the inotify descriptor is read by the event loop (`attach`), and any event
on a watched file name bumps `generation`. A query remembers the generation its
last check saw (`Workflow.refresh`) and skips the stat calls while it is unchanged.

Why this keeps "the next call": an edit queues its event in the kernel when the
write returns, before the client can send the request that follows it; the loop
reads every ready descriptor of an epoll round before it starts the request's task,
so the bump is seen first. Anything doubtful bumps the generation, so every query
checks its stamps once more: lost events (a full queue), or a watched directory
moved or deleted (a cloud deploy swaps Queries/ by a rename). In that last case the
directory's watch is dropped and `epoch` moves on, and a query's next check watches
its path again (the new directory) before it stats. A directory that cannot be
watched, no inotify on this system or no loop attached leave the query unwatched
or `live` false, and the calls stat as before.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from pathlib import Path

log = logging.getLogger("coflows.workspace")

try:
    from inotify_simple import INotify, flags as _flags
except ImportError:  # pragma: no cover - inotify_simple installs everywhere, inotify exists on Linux only
    INotify = None  # type: ignore[assignment,misc]

if INotify is not None:
    _MASK = (_flags.MODIFY | _flags.ATTRIB | _flags.CLOSE_WRITE | _flags.CREATE | _flags.DELETE | _flags.MOVED_FROM
             | _flags.MOVED_TO | _flags.DELETE_SELF | _flags.MOVE_SELF)
    _GONE = _flags.IGNORED | _flags.DELETE_SELF | _flags.MOVE_SELF | _flags.UNMOUNT


class DiskChanges:
    """A change counter for the files of loaded sources, fed by inotify once `attach`ed to a running loop."""

    def __init__(self) -> None:
        self.generation = 0
        self.epoch = 0  # moves on when a watched directory is gone: queries watch their paths again
        self.broken = False  # the descriptor failed: stat on every call from now on
        self._loop: asyncio.AbstractEventLoop | None = None
        self._names: dict[int, set[str]] = {}  # watch descriptor → file names that matter in that directory
        self._dirs: dict[str, int] = {}  # directory → its watch descriptor
        self._lock = threading.Lock()
        self._inotify = None
        if INotify is not None:
            try:
                self._inotify = INotify(nonblocking=True)
            except OSError as e:  # no inotify (a container without it, too many instances)
                log.info("no inotify (%s): calls check their sources' stamps", e)

    @property
    def live(self) -> bool:
        """True while events are read (a loop is attached) and none was lost: `generation` can be trusted."""
        return self._loop is not None and not self.broken

    def watch(self, path: Path) -> bool:
        """Watch `path`'s directory for changes to `path` (before taking its stamp). False if it cannot be."""
        if self._inotify is None:
            return False
        directory, name = str(path.parent), path.name
        with self._lock:
            wd = self._dirs.get(directory)
            if wd is None:
                try:
                    wd = self._inotify.add_watch(directory, _MASK)
                except OSError as e:  # the watch limit (fs.inotify.max_user_watches), a vanished directory
                    log.info("cannot watch %s (%s): its calls check stamps", directory, e)
                    return False
                self._dirs[directory] = wd
            self._names.setdefault(wd, set()).add(name)
        return True

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Read events on `loop` (the server's), from now until `detach`."""
        if self._inotify is None or self._loop is not None:
            return
        self._drain()  # what happened before: counted once
        loop.add_reader(self._inotify.fileno(), self._drain)
        self._loop = loop

    def detach(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None and self._inotify is not None:
            loop.remove_reader(self._inotify.fileno())

    def close(self) -> None:
        self.detach()
        if self._inotify is not None:
            self._inotify.close()
            self._inotify = None

    def _drain(self) -> None:
        """Read every queued event; bump `generation` if one is about a watched file (or may have been)."""
        try:
            events = self._inotify.read(timeout=0) if self._inotify is not None else []
        except BlockingIOError:
            return
        except OSError as e:
            log.warning("reading inotify events: %s; calls check their sources' stamps from now on", e)
            self.broken = True
            self.generation += 1
            return
        bump = False
        for event in events:
            if event.mask & _flags.Q_OVERFLOW:
                bump = True  # events were lost: every query checks its stamps once
            elif event.mask & _GONE:
                self._gone(event.wd)
                bump = True
            elif not event.name or event.name in self._names.get(event.wd, ()):
                bump = True
        if bump:
            self.generation += 1

    def _gone(self, wd: int) -> None:
        """A watched directory was moved or deleted: drop its watch, so `watch` makes one on what is at the
        path now."""
        with self._lock:
            if self._names.pop(wd, None) is None:
                return
            for directory in [d for d, w in self._dirs.items() if w == wd]:
                del self._dirs[directory]
            self.epoch += 1
        try:
            if self._inotify is not None:
                self._inotify.rm_watch(wd)  # a moved directory keeps its watch: stop it
        except OSError:
            pass  # already gone (deleted, unmounted)

