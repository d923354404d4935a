"""Progress reporting for installs: a tiny protocol, a no-op and a rich view.

Installers only ever call `start`, `advance` and `done` with an item name (a
file, an artifact, a phase such as "pip: resolve"); `total` is in bytes when
known. The CLI passes a `RichProgress`; the server can pass its own object that
writes log lines. Calls may come from several threads at once.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Progress(Protocol):
    """Receives the life of each item: started (with a byte total if known), advanced, done."""

    def start(self, item: str, total: int | None = None) -> None: ...

    def advance(self, item: str, n: int) -> None: ...

    def done(self, item: str, status: str) -> None: ...


class NullProgress:
    """The default: reports nothing."""

    def start(self, item: str, total: int | None = None) -> None:
        pass

    def advance(self, item: str, n: int) -> None:
        pass

    def done(self, item: str, status: str) -> None:
        pass


NULL_PROGRESS = NullProgress()


def or_null(progress: Progress | None) -> Progress:
    return NULL_PROGRESS if progress is None else progress


class RecordingProgress:
    """Keeps every call, for tests and for a server's status page."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, Any]] = []
        self._lock = threading.Lock()

    def start(self, item: str, total: int | None = None) -> None:
        with self._lock:
            self.events.append(("start", item, total))

    def advance(self, item: str, n: int) -> None:
        with self._lock:
            self.events.append(("advance", item, n))

    def done(self, item: str, status: str) -> None:
        with self._lock:
            self.events.append(("done", item, status))

    def statuses(self) -> dict[str, str]:
        return {item: status for kind, item, status in self.events if kind == "done"}


class RichProgress:
    """Rich progress bars: one per item in flight (bytes) and one overall (items done).

    Use as a context manager around an install::

        with RichProgress() as p:
            resolve_jars(entries, ws, progress=p)
    """

    def __init__(self, console: Any = None, description: str = "packages") -> None:
        from rich.progress import BarColumn, DownloadColumn, Progress as _Rich, ProgressColumn, TextColumn
        from rich.text import Text

        download = DownloadColumn()

        class _Amount(ProgressColumn):
            """Items done for the overall bar, bytes for a file."""

            def render(self, task: Any) -> Any:
                if task.fields.get("unit") == "items":
                    return Text(f"{int(task.completed)}/{int(task.total or 0)}")
                return download.render(task)

        self._rich = _Rich(TextColumn("{task.description}"), BarColumn(), _Amount(), console=console)
        self._overall = self._rich.add_task(f"[bold]{description}", total=0, unit="items")
        self._items = 0
        self._tasks: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> "RichProgress":
        self._rich.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._rich.stop()

    def start(self, item: str, total: int | None = None) -> None:
        with self._lock:
            task = self._tasks.get(item)
            if task is None:
                self._tasks[item] = self._rich.add_task(item, total=total)
                self._items += 1
                self._rich.update(self._overall, total=self._items)
            else:
                self._rich.update(task, total=total)

    def advance(self, item: str, n: int) -> None:
        with self._lock:
            task = self._tasks.get(item)
        if task is not None:
            self._rich.advance(task, n)

    def done(self, item: str, status: str) -> None:
        with self._lock:
            task = self._tasks.pop(item, None)
        if task is None:
            return
        # Finished items leave the screen; failures stay so the user sees which.
        self._rich.update(task, description=f"{item} [red]{status}", visible=status == "failed")
        self._rich.advance(self._overall, 1)
