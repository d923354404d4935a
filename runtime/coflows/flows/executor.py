"""Executors run task callables and report back; the scheduler (engine.py) never runs user code itself.

Why the split (as in APScheduler 3, where executors and job stores are apart):
the scheduler decides *what* runs (readiness, priority, leases, state), an
executor decides *where* (threads here; a Dask cluster in dask_executor.py). An executor gets
`Job`s, runs `job.fn()` and calls the `report` function it was started with,
exactly once per job, from any thread.
"""

from __future__ import annotations

import queue
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from coflows.flows.task_call import TaskCall


@dataclass(eq=False)
class Job:
    """One attempt of one task.

    `fn` runs it here (argument binding, the call, output encoding → a `TaskResult`);
    `prepare` binds the arguments only and returns the picklable `TaskCall`, for
    executors that run it elsewhere.
    """

    run_id: str
    node: str
    attempt: int
    ref: str
    fn: Callable[[], Any]
    prepare: Callable[[], TaskCall] | None = field(default=None, repr=False)
    abandoned: bool = field(default=False, repr=False)
    timeout: float | None = None  # the task's own `timeout`; else the call pool's Server.CallTimeout
    call: Any = field(default=None, repr=False)  # the running `coflows.calls.Call`, on the call pool


@dataclass
class Outcome:
    """What an attempt produced: `ok` and the `value` (a `TaskResult`), or the exception and its trace."""

    ok: bool
    value: Any = None
    error: BaseException | None = None
    trace: str = ""
    seconds: float = 0.0


Report = Callable[[Job, Outcome], None]


class Executor(Protocol):
    """Runs jobs; the engine counts concurrency itself and never submits more than it allows."""

    def start(self, report: Report) -> None: ...

    def submit(self, job: Job) -> None: ...

    def abandon(self, job: Job) -> None:
        """The engine stopped waiting for `job` (timeout, cancel); its late outcome will be ignored."""

    def shutdown(self, wait: float = 0.0) -> None: ...


class LocalExecutor:
    """Runs jobs in this process: on the runtime's call pool when given one (`calls`), else on threads
    of its own.

    On the call pool a job runs under a deadline (the task's `timeout`, else `Server.CallTimeout`)
    and an abandoned job (timeout, cancel) is stopped like any call: an asynchronous exception for
    Python, `Engine.interrupt` for C#/Java, the thread written off and replaced if that fails.
    Without it (unit tests, a bare engine), a job that overran its timeout keeps its thread until
    the function returns; the pool lets one extra thread live per abandoned job, and retires a
    thread whenever the pool is above its size.
    """

    def __init__(self, max_workers: int = 8, name: str = "coflows-flow", calls: Any = None):
        self.calls = calls
        self.max_workers = max_workers
        self.name = name
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = threading.Semaphore(0)  # released by a thread each time it waits for work
        self._limit = max_workers
        self._report: Report | None = None
        self._stopped = False
        self._serial = 0

    def start(self, report: Report) -> None:
        self._report = report
        self._stopped = False

    def submit(self, job: Job) -> None:
        if self._stopped:
            raise RuntimeError("executor is shut down")
        if self.calls is not None:
            # the task's own timeout is the flow engine's to enforce (its timer abandons the job, which
            # stops the call); the pool's deadline is a second later, a backstop
            limit = job.timeout + 1.0 if job.timeout else None
            job.call = self.calls.submit(job.fn, label=f"flow task {job.node} ({job.ref}) of run {job.run_id}",
                                         timeout=limit, on_done=lambda call: self._done(job, call))
            return
        self._queue.put(job)
        if self._idle.acquire(blocking=False):
            return  # an idle thread will take it
        with self._lock:
            if self._threads >= self._limit:
                return  # queued; the engine keeps within max_workers, so this is brief
            self._threads += 1
            self._serial += 1
            serial = self._serial
        threading.Thread(target=self._work, name=f"{self.name}-{serial}", daemon=True).start()

    def _done(self, job: Job, call: Any) -> None:
        """A job settled on the call pool (its result, its error, or its timeout)."""
        if call.ok:
            outcome = Outcome(True, call.value)
        else:
            exc = call.value
            trace = "".join(traceback.format_exception(exc)) if exc.__traceback__ is not None else ""
            outcome = Outcome(False, error=exc, trace=trace)
        outcome.seconds = time.monotonic() - call.started if call.started else 0.0
        report = self._report
        if report is not None:
            try:
                report(job, outcome)
            except Exception:  # noqa: BLE001 - the engine logs its own errors
                traceback.print_exc()

    def abandon(self, job: Job) -> None:
        if self.calls is not None:
            job.abandoned = True
            if job.call is not None:
                self.calls.cancel(job.call)  # stop it; its late outcome is ignored by the engine
            return
        with self._lock:
            if not job.abandoned:
                job.abandoned = True
                self._limit += 1  # the stuck thread no longer counts against the pool

    def shutdown(self, wait: float = 0.0) -> None:
        self._stopped = True
        with self._lock:
            n = self._threads
        for _ in range(n):
            self._queue.put(None)
        deadline = time.monotonic() + wait
        while wait > 0 and time.monotonic() < deadline:
            with self._lock:
                if self._threads == 0:
                    break
            time.sleep(0.01)

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                with self._lock:
                    self._threads -= 1
                return
            started = time.perf_counter()
            try:
                outcome = Outcome(True, job.fn())
            except BaseException as exc:  # noqa: BLE001 - user code may raise anything; report it
                outcome = Outcome(False, error=exc, trace=traceback.format_exc())
            outcome.seconds = time.perf_counter() - started
            report = self._report
            if report is not None:
                try:
                    report(job, outcome)
                except Exception:  # noqa: BLE001 - the engine logs its own errors; keep the thread
                    traceback.print_exc()
            with self._lock:
                if job.abandoned:
                    self._limit -= 1
                if self._threads > self._limit:
                    self._threads -= 1
                    return
            self._idle.release()


def executor_from_config(config: Any, calls: Any = None) -> Executor | None:
    """The executor `coflows_config.json` asks for: for `local`, a `LocalExecutor` on the runtime's
    call pool `calls` (None without one: the engine makes its own thread pool).

    Dask is imported only when configured (it is an optional extra and slow to import).
    """
    settings = config.executor
    if settings.executor_type != "dask":
        return None if calls is None else LocalExecutor(settings.max_workers, calls=calls)
    try:
        from coflows.flows.dask_executor import DaskExecutor
        from coflows.flows.dask_worker import CoflowsWorkerPlugin
    except ImportError as exc:
        from coflows.errors import ConfigError

        raise ConfigError(f"Executor.Type is 'dask' but Dask is not installed ({exc}); "
                          f"pip install 'coflows[dask]'") from None
    return DaskExecutor(settings.scheduler.strip(), CoflowsWorkerPlugin(config))
