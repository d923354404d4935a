"""The flow engine: a scheduler loop over durable runs, handing ready tasks to an `Executor`.

How it works (and why):
- One scheduler thread owns the in-memory state of the runs this engine
  drives. Everything that changes state — submissions, task outcomes,
  timeouts, retries, cancels, re-runs, DAG changes from running tasks — is a
  command posted to its inbox; posting wakes it through a condition variable
  (no polling). Each turn drains the inbox, starts ready tasks by priority up
  to `max_workers`, writes all changes in ONE transaction (`FlowStore.apply`),
  and only then answers callers, announces events and hands jobs to the
  executor. So nothing is announced or run before it is stored.
- Leases: a run is owned by one engine (`owner`, `lease_expires`), and each
  running task carries the same lease. A heartbeat thread extends them every
  `lease_seconds / 3` and takes over runs whose owner's lease expired (a
  crashed replica). On `start()` an engine also takes back runs it owned under
  the same `owner_id` before a restart. Unfinished tasks of a taken-over run
  run again; finished tasks never do (their outputs are loaded from the store).
- `shutdown(grace)`: stop starting tasks, let running ones finish within
  `grace`, record the rest as `interrupted` and release the runs (state
  `interrupted`, no owner), so the next engine to start resumes them.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from coflows.errors import CallTimeout, NotFoundError, UserCodeError
from coflows.flows.context import DagChange, TaskContext, check_change, reset_current, set_current
from coflows.flows.errors import FlowDagError, FlowFailed, FlowSpecError, FlowStateError
from coflows.flows.executor import Executor, Job, LocalExecutor, Outcome
from coflows.flows.parse import parse_spec
from coflows.flows.passing import bind_arguments
from coflows.flows.relay import Relay, request_cancel
from coflows.flows.spec import FlowSpec, FunctionResolver, validate_spec
from coflows.flows.task_call import TaskCall, TaskResult, run_call
from coflows.flows.store import (
    CANCELLED, FAILED, FINISHED, INTERRUPTED, PENDING, RUN_TERMINAL, RUNNING, SKIPPED,
    ChangeSet, FlowStore, LeaseLost, dumps, loads,
)
from coflows.flows.views import RunView, iso
from coflows.store import Database

log = logging.getLogger("coflows.flows")

_OPEN = (PENDING, RUNNING)
CANCEL_WAIT = 5.0  # seconds a replica waits for the owner of a run to cancel it (PostgreSQL)
Listener = Callable[[dict[str, Any]], None]


@dataclass(eq=False)
class _Task:
    node: str
    seq: int
    ref: str
    args: list
    kwargs: dict
    deps: list[str]
    retries: int
    timeout: float | None
    priority: int
    added_by: str | None
    state: str = PENDING
    attempts: int = 0
    failures: int = 0
    output: Any = None
    error: str | None = None
    retry_at: float | None = None
    queued: bool = False
    children: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # stored; map settings live here (see _expand)
    # a map node, once expanded in memory: its items, how many are not finished/failed, how many run
    items: list[str] | None = None
    open_items: int = 0
    running_items: int = 0

    @property
    def is_map(self) -> bool:
        return "map_over" in self.extra

    @property
    def map_of(self) -> str | None:
        """For an item of a map: the map node's name."""
        return self.extra.get("map")


@dataclass(eq=False)
class _Run:
    id: str
    name: str | None
    workflow: str | None
    state: str
    inputs: dict[str, Any] | None
    aliases: dict[str, Any]
    started_at: float | None
    generation: int
    tasks: dict[str, _Task] = field(default_factory=dict)
    submitted_by: str | None = None  # principal id: its tasks run as this caller
    open: int = 0  # tasks pending or running
    next_seq: int = 0


@dataclass
class RetryPolicy:
    """Delay before retry n (1-based): min(max_delay, base * factor ** (n - 1)) seconds."""

    base: float = 1.0
    factor: float = 2.0
    max_delay: float = 300.0

    def delay(self, failures: int) -> float:
        return min(self.max_delay, self.base * self.factor ** max(0, failures - 1))


def _node_extra(n: Any) -> dict[str, Any]:
    """What a spec node stores in its task's `extra`: other systems' fields, plus map settings."""
    extra = dict(n.extra)
    if n.map is not None:
        extra["map_over"] = n.map
        if n.concurrency:
            extra["concurrency"] = n.concurrency
    return extra


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, UserCodeError):
        return f"{exc.type_name}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"


class FlowEngine:
    """Durable DAG runs over a function registry; see the module docstring for the model."""

    def __init__(self, database: Database, resolver: FunctionResolver, max_workers: int = 8,
                 owner_id: str | None = None, *, executor: Executor | None = None,
                 lease_seconds: float = 15.0, retry: RetryPolicy | None = None):
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self.database = database
        self.store = FlowStore(database)
        self.resolver = resolver
        self.max_workers = max_workers
        self.owner_id = owner_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.executor: Executor = executor or LocalExecutor(max_workers)
        self.lease_seconds = lease_seconds
        self.retry = retry or RetryPolicy()

        self._runs: dict[str, _Run] = {}
        self._jobs: dict[tuple[str, str], Job] = {}  # running attempts, by (run_id, node)
        self._ready: list[tuple[int, int, str, str]] = []  # (-priority, fifo, run_id, node)
        self._timers: list[tuple[float, int, str, str, str, int]] = []  # (when, n, kind, run, node, attempt)
        self._parked: dict[tuple[str, str], deque[str]] = {}  # (run, map node) -> items over its concurrency
        self._counter = itertools.count()
        self._inbox: deque[tuple[Callable[[ChangeSet], Any], Future | None]] = deque()
        self._cond = threading.Condition()
        self._listeners: list[Listener] = []
        self._waiters: dict[str, list[Any]] = {}  # run_id -> [Event, refcount]
        self._waiters_lock = threading.Lock()
        self._ended: list[str] = []
        self._idle = threading.Condition()  # notified when no job is running (for shutdown)
        self._state = "new"  # new | running | draining | stopped
        self._thread: threading.Thread | None = None
        self._beat: threading.Thread | None = None
        self._beat_stop = threading.Event()
        self._relay: Relay | None = None  # PostgreSQL: other replicas' events reach our listeners

    # ------------------------------------------------------------------------------------------
    # lifecycle

    def start(self) -> FlowEngine:
        """Start the scheduler and heartbeat, then resume the runs this engine may take over."""
        if self._state != "new":
            raise FlowStateError(f"flow engine already {self._state}")
        self._state = "running"
        self.executor.start(self._on_outcome)
        if self.store.engine.dialect.name == "postgresql":
            self._relay = Relay(self.store.engine, self.owner_id, self._remote_events, self._remote_cancel)
            self._relay.start()
        self._thread = threading.Thread(target=self._loop, name="coflows-flow-scheduler", daemon=True)
        self._thread.start()
        self._scan(include_own=True)
        self._beat = threading.Thread(target=self._heartbeat, name="coflows-flow-heartbeat", daemon=True)
        self._beat.start()
        return self

    def shutdown(self, grace: float = 10.0) -> None:
        """Stop: running tasks may finish within `grace` seconds; the rest are recorded as interrupted."""
        if self._state not in ("running", "draining"):
            return
        with self._cond:
            self._state = "draining"
            self._cond.notify()
        deadline = time.monotonic() + max(0.0, grace)
        with self._idle:
            while self._jobs and (left := deadline - time.monotonic()) > 0:
                self._idle.wait(left)
        try:
            self._call(self._cmd_interrupt_all, allow_draining=True)
        except Exception:  # noqa: BLE001 - still stop the threads
            log.exception("flows: could not record interrupted runs at shutdown")
        with self._cond:
            self._state = "stopped"
            self._cond.notify()
        self._beat_stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._beat is not None:
            self._beat.join(timeout=5)
        if self._relay is not None:
            self._relay.stop()
        self.executor.shutdown(0)

    close = shutdown

    def __enter__(self) -> FlowEngine:
        if self._state == "new":
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # ------------------------------------------------------------------------------------------
    # public API

    def submit(self, spec: FlowSpec | str | dict | list | Any, inputs: Mapping[str, Any] | None = None,
               workflow: str | None = None, name: str | None = None,
               aliases: Mapping[str, Any] | None = None, format: str | None = None,
               submitted_by: str | None = None) -> str:
        """Validate and store a new run; returns its id once it is durable. Tasks start at once.

        `submitted_by`: the principal id the tasks run as (the server checks beforehand that it may
        call every task's function)."""
        self._require_running()
        if isinstance(spec, FlowSpec) and not aliases and format is None:
            if name is not None:
                spec = spec.model_copy(update={"name": name})
            validate_spec(spec, self.resolver)
        else:
            spec = parse_spec(spec, format=format, aliases=aliases, resolver=self.resolver, name=name)
        if inputs is not None and not isinstance(inputs, Mapping):
            raise FlowSpecError("inputs must be a mapping of name to value", path="inputs")
        try:
            inputs_json = None if inputs is None else dumps(dict(inputs))
        except (TypeError, ValueError) as exc:
            raise FlowSpecError(f"inputs are not JSON: {exc}", path="inputs") from None
        run_id = uuid.uuid4().hex
        now = time.time()
        run_row = {
            "id": run_id, "name": spec.name, "workflow": workflow, "state": PENDING, "inputs": inputs_json,
            "aliases": dumps(spec.aliases) if spec.aliases else None, "spec": None, "format": spec.format,
            "error": None, "created_at": now, "started_at": None, "finished_at": None,
            "owner": self.owner_id, "lease_expires": now + self.lease_seconds, "generation": 0,
            "submitted_by": submitted_by,
        }
        try:
            run_row["spec"] = dumps(spec.to_dict())
        except (TypeError, ValueError):
            pass
        task_rows = []
        extras = [_node_extra(n) for n in spec.nodes]
        for i, n in enumerate(spec.nodes):
            task_rows.append({
                "run_id": run_id, "node": n.name, "seq": i, "ref": n.ref, "args": dumps(n.args),
                "kwargs": dumps(n.kwargs), "deps": dumps(n.after), "retries": n.retries, "timeout": n.timeout,
                "priority": n.priority, "extra": dumps(extras[i]) if extras[i] else None, "added_by": None,
                "state": PENDING, "attempts": 0, "failures": 0,
            })
        run = _Run(run_id, spec.name, workflow, PENDING, None if inputs is None else json.loads(inputs_json),
                   dict(spec.aliases), None, 0, submitted_by=submitted_by)
        for i, n in enumerate(spec.nodes):
            run.tasks[n.name] = _Task(n.name, i, n.ref, list(n.args), dict(n.kwargs), list(n.after), n.retries,
                                      n.timeout, n.priority, None, extra=extras[i])
        run.next_seq = len(spec.nodes)
        self._call(lambda cs: self._cmd_submit(run, run_row, task_rows, cs))
        return run_id

    def get(self, run_id: str) -> RunView:
        """The stored state of a run and every task (times, attempts, output, error, hints)."""
        found = self.store.run_with_tasks(run_id)
        if found is None:
            raise NotFoundError(f"unknown flow run {run_id!r}")
        return RunView.from_rows(*found)

    def wait(self, run_id: str, timeout: float | None = None) -> RunView:
        """Block until the run is finished, failed or cancelled (or `timeout` passes); return its view."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._waiters_lock:
            entry = self._waiters.setdefault(run_id, [threading.Event(), 0])
            entry[1] += 1
        try:
            while True:
                state = self.store.run_state(run_id)
                if state is None:
                    raise NotFoundError(f"unknown flow run {run_id!r}")
                if state in RUN_TERMINAL:
                    break
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                # The event is set after the run's end is committed; the cap covers runs other engines drive.
                if entry[0].wait(1.0 if left is None else min(left, 1.0)):
                    break
        finally:
            with self._waiters_lock:
                entry[1] -= 1
                if entry[1] <= 0 and self._waiters.get(run_id) is entry:
                    del self._waiters[run_id]
        return self.get(run_id)

    def result(self, run_id: str, node: str | None = None) -> Any:
        """Output of `node`, or of the run (its only sink's output, or {sink: output} for several)."""
        view = self.get(run_id)
        if node is not None:
            try:
                t = view.task(node)
            except KeyError:
                raise NotFoundError(f"run {run_id!r} has no node {node!r}") from None
            if t.state == FINISHED:
                return t.output
            if t.state in (FAILED, CANCELLED, SKIPPED):
                raise FlowFailed(f"node {node!r} of run {run_id} {t.state}: {t.error or 'no output'}")
            raise FlowStateError(f"node {node!r} of run {run_id} is {t.state}; wait for the run first")
        if view.state == FINISHED:
            sinks = view.sinks
            return sinks[0].output if len(sinks) == 1 else {t.node: t.output for t in sinks}
        if view.state in (FAILED, CANCELLED):
            raise FlowFailed(f"run {run_id} {view.state}: {view.error or ''}".rstrip(": "))
        raise FlowStateError(f"run {run_id} is {view.state}; wait for it first")

    def cancel(self, run_id: str) -> bool:
        """Cancel a run: pending tasks are cancelled, running ones abandoned. False if already over."""
        self._require_running()
        outcome = self._call(lambda cs: self._cmd_cancel(run_id, cs))
        if outcome != "elsewhere":
            return bool(outcome)
        state = self.store.run_state(run_id)
        if state is None:
            raise NotFoundError(f"unknown flow run {run_id!r}")
        if state in RUN_TERMINAL:
            return False
        if self.store.cancel_unowned(run_id, time.time()):
            self._publish([{"type": "run", "run_id": run_id, "node": None, "state": CANCELLED,
                            "time": iso(time.time())}])
            return True
        if self._relay is not None:  # another replica drives it: ask it, wait for the outcome
            request_cancel(self.store.engine, self.owner_id, run_id)
            deadline = time.monotonic() + CANCEL_WAIT
            while time.monotonic() < deadline:
                state = self.store.run_state(run_id)
                if state in RUN_TERMINAL:
                    return state == CANCELLED
                time.sleep(0.05)
        raise FlowStateError(f"run {run_id} is driven by another engine; cancel it there")

    def rerun(self, run_id: str, submitted_by: str | None = None) -> str:
        """Run a failed/cancelled/interrupted run again from its unfinished tasks; finished ones keep outputs.

        Its tasks run as `submitted_by` (the caller asking; the server checks its rights first)."""
        self._require_running()
        state = self.store.run_state(run_id)
        if state is None:
            raise NotFoundError(f"unknown flow run {run_id!r}")
        if state == FINISHED:
            raise FlowStateError(f"run {run_id} finished; there is nothing to re-run")
        expires = time.time() + self.lease_seconds
        if state in RUN_TERMINAL:
            if not self.store.claim_terminal(run_id, self.owner_id, expires):
                raise FlowStateError(f"run {run_id} changed state meanwhile; try again")
        elif self._call(lambda cs: run_id in self._runs):
            raise FlowStateError(f"run {run_id} is {state}; cancel it or wait before re-running")
        elif run_id not in self.store.claim(self.owner_id, time.time(), expires, [run_id]):
            raise FlowStateError(f"run {run_id} is driven by another engine")
        self.store.set_submitted_by(run_id, submitted_by)
        found = self.store.run_with_tasks(run_id)
        assert found is not None
        self._call(lambda cs: self._cmd_load(found[0], found[1], cs, rerun=True))
        return run_id

    def list_runs(self, limit: int = 50, state: str | None = None,
                  workflows: list[str] | None = None) -> list[RunView]:
        """Newest runs first, without their tasks (see `counts` for tasks per state); `workflows`: only theirs."""
        return [RunView.from_rows(r, None, counts) for r, counts in self.store.list_runs(limit, state, workflows)]

    def subscribe(self, callback: Listener) -> Callable[[], None]:
        """Call `callback(event)` after every stored state change; returns a function that unsubscribes.

        Callbacks run on the scheduler thread: keep them quick (e.g. hand over to an event loop).
        """
        self._listeners = [*self._listeners, callback]
        return lambda: self.unsubscribe(callback)

    def unsubscribe(self, callback: Listener) -> None:
        self._listeners = [c for c in self._listeners if c is not callback]

    # ------------------------------------------------------------------------------------------
    # plumbing: inbox, scheduler loop, heartbeat

    def _require_running(self) -> None:
        if self._state != "running":
            raise FlowStateError(f"flow engine is {self._state}; start() it first" if self._state == "new"
                                 else f"flow engine is {self._state}")

    def _post(self, fn: Callable[[ChangeSet], Any], fut: Future | None = None,
              allow_draining: bool = True) -> bool:
        with self._cond:
            if self._state == "stopped" or self._state == "new" or (self._state == "draining" and not allow_draining):
                return False
            self._inbox.append((fn, fut))
            self._cond.notify()
            return True

    def _call(self, fn: Callable[[ChangeSet], Any], allow_draining: bool = True) -> Any:
        """Run `fn` on the scheduler thread in the next turn; return its result once committed."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("flows: _call from the scheduler thread would deadlock")
        fut: Future = Future()
        if not self._post(fn, fut, allow_draining):
            raise FlowStateError(f"flow engine is {self._state}")
        return fut.result()

    def _on_outcome(self, job: Job, outcome: Outcome) -> None:
        self._post(lambda cs: self._cmd_outcome(job, outcome, cs))

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._inbox and self._state != "stopped":
                    delay = self._timers[0][0] - time.time() if self._timers else None
                    if delay is not None and delay <= 0:
                        break
                    self._cond.wait(delay)
                if self._state == "stopped" and not self._inbox:
                    break
                batch = list(self._inbox)
                self._inbox.clear()
            try:
                self._turn(batch)
            except Exception:  # noqa: BLE001 - the scheduler must not die
                log.exception("flows: scheduler turn failed")
        # Fail whatever arrived after the stop.
        with self._cond:
            leftover = list(self._inbox)
            self._inbox.clear()
        for _fn, fut in leftover:
            if fut is not None and not fut.done():
                fut.set_exception(FlowStateError("flow engine stopped"))

    def _turn(self, batch: list[tuple[Callable[[ChangeSet], Any], Future | None]]) -> None:
        cs = ChangeSet()
        replies: list[tuple[Future, Any, BaseException | None]] = []
        for fn, fut in batch:
            try:
                value = fn(cs)
            except BaseException as exc:  # noqa: BLE001 - goes back to the caller
                if fut is None:
                    log.exception("flows: command failed")
                else:
                    replies.append((fut, None, exc))
            else:
                if fut is not None:
                    replies.append((fut, value, None))
        self._fire_timers(cs)
        dispatch = self._schedule(cs) if self._state == "running" else []
        try:
            self._apply_fenced(cs, dispatch)
        except Exception as exc:  # noqa: BLE001
            log.exception("flows: storing a change set failed; reloading the runs it touched")
            for fut, _value, _err in replies:
                if not fut.done():
                    fut.set_exception(exc)
            for job in dispatch:  # never started: free their slots
                self._jobs.pop((job.run_id, job.node), None)
            self._ended.clear()
            self._reload_touched(cs)
            return
        for fut, value, err in replies:
            if err is None:
                fut.set_result(value)
            else:
                fut.set_exception(err)
        submit_many = getattr(self.executor, "submit_many", None)
        if submit_many is not None and len(dispatch) > 1:
            submit_many(dispatch)  # one message for many tasks (Dask); reports its own failures
        else:
            for job in dispatch:
                try:
                    self.executor.submit(job)
                except Exception as exc:  # noqa: BLE001 - report as the attempt's failure
                    self._on_outcome(job, Outcome(False, error=exc, trace=""))
        if cs.events:
            self._publish(cs.events)  # before waiters wake, so a waiter has seen the run's last event
        if self._ended:
            ended, self._ended = self._ended, []
            for run_id in ended:
                run = self._runs.get(run_id)
                if run is not None and run.state in RUN_TERMINAL:
                    del self._runs[run_id]
                with self._waiters_lock:
                    entry = self._waiters.get(run_id)
                if entry is not None:
                    entry[0].set()
        if not self._jobs:
            with self._idle:
                self._idle.notify_all()

    def _apply_fenced(self, cs: ChangeSet, dispatch: list[Job]) -> None:
        """Store the turn's changes under our leases; runs another engine took over are dropped from
        memory (their changes, events and new attempts with them) and the rest is stored."""
        while True:
            try:
                self.store.apply(cs, owner=self.owner_id, notify=self._relay is not None)
                return
            except LeaseLost as lost:
                self._drop_runs(lost.run_ids, cs, dispatch)

    def _drop_runs(self, run_ids: set[str], cs: ChangeSet, dispatch: list[Job]) -> None:
        """Stop driving runs we lost: abandon their running attempts (a late outcome is ignored) and
        forget their changes; the engine that owns them now runs their unfinished tasks."""
        starting = {(j.run_id, j.node) for j in dispatch}
        for run_id in run_ids:
            log.warning("flows: run %s was taken over by another engine (our lease expired); no longer "
                        "driving it here", run_id)
            self._runs.pop(run_id, None)
            for key in [k for k in self._jobs if k[0] == run_id]:
                job = self._jobs.pop(key)
                if key not in starting:  # a job of this turn was never handed to the executor
                    self.executor.abandon(job)
            for key in [k for k in self._parked if k[0] == run_id]:
                del self._parked[key]
            cs.run_updates.pop(run_id, None)
        cs.task_updates = {k: v for k, v in cs.task_updates.items() if k[0] not in run_ids}
        cs.new_tasks = {k: v for k, v in cs.new_tasks.items() if k[0] not in run_ids}
        cs.events = [e for e in cs.events if e.get("run_id") not in run_ids]
        dispatch[:] = [j for j in dispatch if j.run_id not in run_ids]
        self._ended = [r for r in self._ended if r not in run_ids]

    def _remote_events(self, events: list[dict[str, Any]]) -> None:
        """Events another replica's engine stored (relay thread): to our listeners, and a run's end
        wakes who waits for it here."""
        self._publish(events)
        for event in events:
            if event.get("type") == "run" and event.get("state") in RUN_TERMINAL:
                with self._waiters_lock:
                    entry = self._waiters.get(event.get("run_id"))
                if entry is not None:
                    entry[0].set()

    def _remote_cancel(self, run_id: str) -> None:
        """Another replica was asked to cancel a run (relay thread): cancel it if we drive it."""
        if self._state == "running":
            self._post(lambda cs: self._cmd_cancel(run_id, cs) if run_id in self._runs else None)

    def _publish(self, events: list[dict[str, Any]]) -> None:
        for callback in self._listeners:
            for event in events:
                try:
                    callback(event)
                except Exception:  # noqa: BLE001 - a listener never breaks the engine
                    log.exception("flows: event listener failed")

    def _emit(self, cs: ChangeSet, kind: str, run: _Run, node: str | None, state: str, **more: Any) -> None:
        if self._listeners or self._relay is not None:
            cs.events.append({"type": kind, "run_id": run.id, "node": node, "state": state,
                              "time": iso(time.time()), "workflow": run.workflow, "name": run.name, **more})

    def _heartbeat(self) -> None:
        interval = max(0.05, self.lease_seconds / 3)
        while not self._beat_stop.wait(interval):
            try:
                self.store.heartbeat(self.owner_id, time.time() + self.lease_seconds)
                if self._state == "running":
                    self._drop_lost()
                    self._scan(include_own=False)
            except Exception:  # noqa: BLE001 - try again next beat
                log.exception("flows: heartbeat failed")

    def _drop_lost(self) -> None:
        """Runs we drive that another engine took over (our heartbeat stalled past the lease): stop
        driving them now, so their running attempts are abandoned (stopped on the call pool)."""
        lost = self.store.lost(self.owner_id, self._call(lambda cs: list(self._runs)))
        if lost:
            self._post(lambda cs: self._drop_runs(set(lost), cs, []))

    def _scan(self, include_own: bool) -> None:
        """Take over runs nobody drives (and, at start, our own from before a restart) and resume them."""
        now = time.time()
        won = self.store.claim(self.owner_id, now, now + self.lease_seconds, include_own=include_own)
        for run_id in won:
            if not include_own and self._call(lambda cs, r=run_id: r in self._runs):
                continue
            found = self.store.run_with_tasks(run_id)
            if found is None:
                continue
            try:
                self._call(lambda cs, f=found: self._cmd_load(f[0], f[1], cs, rerun=False))
            except FlowStateError:
                return

    def _reload_touched(self, cs: ChangeSet) -> None:
        touched = set(cs.new_runs) | set(cs.run_updates) | {k[0] for k in cs.new_tasks} | {
            k[0] for k in cs.task_updates}
        for run_id in touched:
            self._runs.pop(run_id, None)
        for run_id in touched:
            found = self.store.run_with_tasks(run_id)
            if found is None:
                continue
            retry = ChangeSet()
            try:
                self._cmd_load(found[0], found[1], retry, rerun=False)
                self.store.apply(retry, owner=self.owner_id, notify=self._relay is not None)
            except Exception:  # noqa: BLE001
                log.exception("flows: could not reload run %s; the heartbeat will retry", run_id)
                self._runs.pop(run_id, None)

    # ------------------------------------------------------------------------------------------
    # commands (run on the scheduler thread; validate before mutating)

    def _cmd_submit(self, run: _Run, run_row: dict[str, Any], task_rows: list[dict[str, Any]],
                    cs: ChangeSet) -> str:
        cs.add_run(run_row)
        for row in task_rows:
            cs.add_task(row)
        for t in run.tasks.values():
            for d in t.deps:
                run.tasks[d].children.append(t.node)
        run.open = len(run.tasks)
        self._runs[run.id] = run
        for t in run.tasks.values():
            if not t.deps:
                self._enqueue(run, t)
        self._emit(cs, "run", run, None, PENDING, nodes=[t.node for t in run.tasks.values()])
        return run.id

    def _cmd_load(self, row: dict[str, Any], task_rows: list[dict[str, Any]], cs: ChangeSet, rerun: bool) -> None:
        """Bring a stored run into memory to drive it: resume (after a crash/stop) or re-run."""
        if row["id"] in self._runs:
            if rerun:
                raise FlowStateError(f"run {row['id']} is already running")
            return
        now = time.time()
        run = _Run(row["id"], row["name"], row["workflow"], row["state"], loads(row["inputs"]),
                   loads(row["aliases"]) or {}, row["started_at"], row["generation"] or 0,
                   submitted_by=row.get("submitted_by"))
        for r in task_rows:
            t = _Task(r["node"], r["seq"], r["ref"], loads(r["args"]) or [], loads(r["kwargs"]) or {},
                      loads(r["deps"]) or [], r["retries"], r["timeout"], r["priority"], r["added_by"],
                      r["state"], r["attempts"], r["failures"], None, r["error"], r["retry_at"],
                      extra=loads(r["extra"]) or {})
            if t.state == FINISHED:
                t.output = loads(r["output"])
            run.tasks[t.node] = t
            run.next_seq = max(run.next_seq, t.seq + 1)
        for t in run.tasks.values():
            for d in t.deps:
                if d in run.tasks:
                    run.tasks[d].children.append(t.node)
        reset = (FAILED, CANCELLED, SKIPPED, INTERRUPTED) if rerun else (INTERRUPTED,)
        for t in run.tasks.values():
            if t.state in reset:
                t.state, t.error, t.retry_at = PENDING, None, None
                if rerun:
                    t.failures = 0
                cs.update_task(run.id, t.node, state=PENDING, error=None, trace=None, output=None, hints=None,
                               finished_at=None, retry_at=None, failures=t.failures, lease_owner=None,
                               lease_expires=None)
                self._emit(cs, "task", run, t.node, PENDING, attempt=t.attempts, reason="rerun" if rerun else "resume")
            elif t.state == RUNNING:
                job = self._jobs.get((run.id, t.node))
                if job is not None and job.attempt == t.attempts:
                    continue  # still running here (reload after a failed commit)
                t.state = PENDING
                cs.update_task(run.id, t.node, state=PENDING, lease_owner=None, lease_expires=None)
                self._emit(cs, "task", run, t.node, PENDING, attempt=t.attempts, reason="recovered")
        run.open = sum(1 for t in run.tasks.values() if t.state in _OPEN)
        new_state = PENDING if rerun or row["state"] == INTERRUPTED else row["state"]
        run.state = new_state
        values: dict[str, Any] = {"state": new_state, "owner": self.owner_id,
                                  "lease_expires": now + self.lease_seconds}
        if rerun:
            run.generation += 1
            values.update(error=None, finished_at=None, generation=run.generation)
        cs.update_run(run.id, **values)
        self._runs[run.id] = run
        self._emit(cs, "run", run, None, new_state, reason="rerun" if rerun else "resume",
                   generation=run.generation)
        if run.open == 0:
            self._end_run(run, cs)
            return
        for t in run.tasks.values():
            if t.state == PENDING:
                if t.retry_at is not None and t.retry_at > now:
                    self._timer(t.retry_at, "retry", run.id, t.node, t.attempts)
                elif self._deps_done(run, t):
                    t.retry_at = None
                    self._enqueue(run, t)

    def _cmd_outcome(self, job: Job, outcome: Outcome, cs: ChangeSet) -> None:
        key = (job.run_id, job.node)
        if self._jobs.get(key) is not job:
            return  # abandoned (timeout, cancel, shutdown): ignore the late result
        del self._jobs[key]
        run = self._runs.get(job.run_id)
        t = run.tasks.get(job.node) if run else None
        if run is None or t is None or t.state != RUNNING or t.attempts != job.attempt:
            return
        self._item_stopped(run, t)
        if outcome.ok:
            result: TaskResult = outcome.value
            try:
                self._apply_changes(run, t, result.changes, cs)
            except (FlowDagError, FlowSpecError) as exc:
                self._fail_attempt(run, t, exc, "", cs)
                return
            self._finish(run, t, result.text, result.value, result.hints, cs)
        else:
            self._fail_attempt(run, t, outcome.error or RuntimeError("task failed"), outcome.trace, cs)

    def _cmd_cancel(self, run_id: str, cs: ChangeSet) -> bool | str:
        run = self._runs.get(run_id)
        if run is None:
            return "elsewhere"
        if run.state in RUN_TERMINAL:
            return False
        now = time.time()
        for t in run.tasks.values():
            if t.state in _OPEN:
                was_running = t.state == RUNNING
                self._move(run, t, CANCELLED)
                cs.update_task(run.id, t.node, state=CANCELLED, finished_at=now, lease_owner=None,
                               lease_expires=None, error="cancelled" if not was_running else "cancelled while running")
                job = self._jobs.pop((run.id, t.node), None)
                if job is not None:
                    self.executor.abandon(job)
                self._emit(cs, "task", run, t.node, CANCELLED, attempt=t.attempts)
        self._end_run(run, cs)
        return True

    def _cmd_interrupt_all(self, cs: ChangeSet) -> None:
        """Shutdown: record running tasks as interrupted and release every run we drive."""
        for run in list(self._runs.values()):
            if run.state in RUN_TERMINAL:
                continue
            for t in run.tasks.values():
                if t.state == RUNNING:
                    t.state = INTERRUPTED
                    cs.update_task(run.id, t.node, state=INTERRUPTED, lease_owner=None, lease_expires=None,
                                   error="interrupted by shutdown; runs again on the next start")
                    job = self._jobs.pop((run.id, t.node), None)
                    if job is not None:
                        self.executor.abandon(job)
                    self._emit(cs, "task", run, t.node, INTERRUPTED, attempt=t.attempts)
            run.state = INTERRUPTED
            cs.update_run(run.id, state=INTERRUPTED, owner=None, lease_expires=None)
            self._emit(cs, "run", run, None, INTERRUPTED)
        self._runs.clear()
        self._ready.clear()
        self._timers.clear()
        self._parked.clear()

    def _cmd_change(self, ctx: TaskContext, change: DagChange, cs: ChangeSet) -> str:
        op, name, ref, args, kwargs = change.op, change.name, change.ref, change.args, change.kwargs
        after, before = change.after, change.before
        retries, timeout, priority = change.retries, change.timeout, change.priority
        run = self._runs.get(ctx.run_id)
        me = run.tasks.get(ctx.node) if run else None
        if run is None or me is None or me.state != RUNNING or me.attempts != ctx.attempt:
            raise FlowDagError(f"task {ctx.node!r} is no longer running; its DAG cannot change")
        if name in run.tasks:
            old = run.tasks[name]
            if old.added_by == ctx.node and old.ref == ref and old.args == args and old.kwargs == kwargs:
                return name  # the same change again (e.g. this task was retried): nothing to do
            raise FlowDagError(f"run {run.id} already has a node named {name!r}")
        below = self._descendants(run, [ctx.node])
        for a in after:
            if a not in run.tasks:
                raise FlowDagError(f"unknown node {a!r} in after")
            if a not in below:
                raise FlowDagError(f"{a!r} is not downstream of {ctx.node!r}: a running task may only change "
                                   f"its own downstream, never what is upstream of it or beside it")
        targets: list[str] = []
        if op == "insert":
            targets = list(me.children) if before is None else list(before)
            for b in targets:
                if b not in run.tasks:
                    raise FlowDagError(f"unknown node {b!r} in before")
                if b not in below:
                    raise FlowDagError(f"{b!r} is not downstream of {ctx.node!r}: a running task may only insert "
                                       f"before its own descendants, never upstream")
                if run.tasks[b].state != PENDING:
                    raise FlowDagError(f"{b!r} is {run.tasks[b].state}; only pending nodes can get a new parent")
            reach = self._descendants(run, targets) | set(targets)
            for a in after:
                if a in reach:
                    raise FlowDagError(f"cycle: {name} → {' / '.join(targets)} → … → {a} → {name}")
        deps = [ctx.node] + [a for a in after if a != ctx.node]
        t = _Task(name, run.next_seq, ref, args, kwargs, deps, retries, timeout, priority, ctx.node)
        run.next_seq += 1
        run.tasks[name] = t
        run.open += 1
        for d in deps:
            run.tasks[d].children.append(name)
        for b in targets:
            bt = run.tasks[b]
            if ctx.node in bt.deps:
                bt.deps[bt.deps.index(ctx.node)] = name
                me.children.remove(b)
            else:
                bt.deps.append(name)
            t.children.append(b)
            cs.update_task(run.id, b, deps=dumps(bt.deps))
        cs.add_task({
            "run_id": run.id, "node": name, "seq": t.seq, "ref": ref, "args": dumps(args), "kwargs": dumps(kwargs),
            "deps": dumps(deps), "retries": retries, "timeout": timeout, "priority": priority, "extra": None,
            "added_by": ctx.node, "state": PENDING, "attempts": 0, "failures": 0,
        })
        self._emit(cs, "graph", run, name, PENDING, change=op, ref=ref, after=list(deps), before=targets,
                   added_by=ctx.node)
        return name

    # ------------------------------------------------------------------------------------------
    # state transitions

    def _move(self, run: _Run, t: _Task, state: str) -> None:
        was_open, is_open = t.state in _OPEN, state in _OPEN
        if was_open and not is_open:
            run.open -= 1
        elif is_open and not was_open:
            run.open += 1
        t.state = state

    def _deps_done(self, run: _Run, t: _Task) -> bool:
        tasks = run.tasks
        if t.map_of is not None:  # an item is ready once its map node has expanded
            m = tasks.get(t.map_of)
            return m is not None and m.items is not None
        return all(tasks[d].state == FINISHED for d in t.deps)

    def _enqueue(self, run: _Run, t: _Task) -> None:
        if not t.queued:
            t.queued = True
            heapq.heappush(self._ready, (-t.priority, next(self._counter), run.id, t.node))

    def _timer(self, when: float, kind: str, run_id: str, node: str, attempt: int) -> None:
        heapq.heappush(self._timers, (when, next(self._counter), kind, run_id, node, attempt))

    def _descendants(self, run: _Run, nodes: list[str]) -> set[str]:
        seen: set[str] = set()
        stack = [c for n in nodes for c in run.tasks[n].children]
        while stack:
            n = stack.pop()
            if n not in seen:
                seen.add(n)
                stack.extend(run.tasks[n].children)
        return seen

    def _schedule(self, cs: ChangeSet) -> list[Job]:
        """Start ready tasks, highest priority first, while fewer than max_workers run."""
        dispatch: list[Job] = []
        while self._ready and len(self._jobs) < self.max_workers:
            _prio, _n, run_id, node = heapq.heappop(self._ready)
            run = self._runs.get(run_id)
            t = run.tasks.get(node) if run else None
            if t is None or not t.queued:
                continue
            t.queued = False
            if t.state != PENDING or run.state in RUN_TERMINAL or not self._deps_done(run, t):
                continue
            if t.is_map:
                self._expand(run, t, cs)  # items go onto the ready heap; no worker slot used
                continue
            if t.map_of is not None:
                m = run.tasks[t.map_of]
                limit = m.extra.get("concurrency")
                if limit and m.running_items >= limit:
                    t.queued = True  # parked: _item_stopped puts it back when a slot frees
                    self._parked.setdefault((run.id, m.node), deque()).append(t.node)
                    continue
                m.running_items += 1
            dispatch.append(self._start(run, t, cs))
        return dispatch

    def _start(self, run: _Run, t: _Task, cs: ChangeSet) -> Job:
        now = time.time()
        self._mark_running(run, t, now, cs)
        if t.timeout:
            self._timer(now + t.timeout, "timeout", run.id, t.node, t.attempts)
        fn, prepare = self._task_fn(run, t)
        job = Job(run.id, t.node, t.attempts, t.ref, fn, prepare, timeout=t.timeout)
        self._jobs[(run.id, t.node)] = job
        return job

    def _mark_running(self, run: _Run, t: _Task, now: float, cs: ChangeSet, **event: Any) -> None:
        """A new attempt starts (or a map node expands): store it under our lease; the run runs too."""
        t.state = RUNNING
        t.attempts += 1
        extra = {"extra": dumps(t.extra)} if t.is_map else {}
        cs.update_task(run.id, t.node, state=RUNNING, attempts=t.attempts, started_at=now, finished_at=None,
                       retry_at=None, lease_owner=self.owner_id, lease_expires=now + self.lease_seconds, **extra)
        if run.state != RUNNING:
            run.state = RUNNING
            if run.started_at is None:
                run.started_at = now
            cs.update_run(run.id, state=RUNNING, started_at=run.started_at)
            self._emit(cs, "run", run, None, RUNNING)
        self._emit(cs, "task", run, t.node, RUNNING, attempt=t.attempts, **event)

    def _task_fn(self, run: _Run, t: _Task) -> tuple[Callable[[], TaskResult], Callable[[], TaskCall]]:
        """What an executor runs: `fn` (bind, call, encode, here) and `prepare` (bind only, to ship)."""
        resolver = self.resolver
        ref, args, kwargs = t.ref, t.args, t.kwargs
        # An item of a map sees what its map node would: the map's parents (and the run inputs at the root).
        source = run.tasks[t.map_of] if t.map_of is not None and t.map_of in run.tasks else t
        deps = list(source.deps)
        parent_outputs = [run.tasks[d].output for d in deps]
        inputs = run.inputs
        ctx = TaskContext(self, run.id, t.node, t.attempts, ref, run.workflow, inputs or {}, run.aliases,
                          principal=run.submitted_by)

        def prepare() -> TaskCall:
            token = set_current(ctx)  # refs without a workflow resolve against the run's
            try:
                call_args, call_kwargs = bind_arguments(resolver.param_names(ref), args, kwargs, deps,
                                                        parent_outputs, inputs, not deps)
            finally:
                reset_current(token)
            return TaskCall(run.id, t.node, ctx.attempt, ref, run.workflow, call_args, call_kwargs,
                            inputs or {}, run.aliases, principal=run.submitted_by)

        def fn() -> TaskResult:
            return run_call(prepare(), resolver, ctx)

        return fn, prepare

    def _finish(self, run: _Run, t: _Task, text: str, value: Any, hints: dict[str, Any] | None,
                cs: ChangeSet) -> None:
        now = time.time()
        self._move(run, t, FINISHED)
        t.output, t.error = value, None
        hints_text = json.dumps(hints, default=str) if hints else None
        cs.update_task(run.id, t.node, state=FINISHED, output=text, hints=hints_text, error=None, trace=None,
                       finished_at=now, lease_owner=None, lease_expires=None)
        self._emit(cs, "task", run, t.node, FINISHED, attempt=t.attempts, hints=hints)
        for c in t.children:
            ct = run.tasks[c]
            if ct.state == PENDING and ct.retry_at is None and self._deps_done(run, ct):
                self._enqueue(run, ct)
        if t.map_of is not None:
            self._item_done(run, t, cs)
        if run.open == 0:
            self._end_run(run, cs)

    def _fail_attempt(self, run: _Run, t: _Task, exc: BaseException, trace: str, cs: ChangeSet) -> None:
        now = time.time()
        message = _error_text(exc)
        if isinstance(exc, UserCodeError) and exc.stack:
            trace = exc.stack
        t.failures += 1
        t.error = message
        if t.failures <= t.retries:
            t.state = PENDING
            t.retry_at = now + self.retry.delay(t.failures)
            cs.update_task(run.id, t.node, state=PENDING, failures=t.failures, error=message, trace=trace or None,
                           retry_at=t.retry_at, lease_owner=None, lease_expires=None)
            self._emit(cs, "task", run, t.node, PENDING, attempt=t.attempts, error=message, retry_at=iso(t.retry_at))
            self._timer(t.retry_at, "retry", run.id, t.node, t.attempts)
            return
        self._fail_final(run, t, message, trace, cs)

    def _fail_final(self, run: _Run, t: _Task, message: str, trace: str, cs: ChangeSet) -> None:
        """The task failed for good: record it, skip what depends on it, close its map if it is an item."""
        now = time.time()
        t.error = message
        self._move(run, t, FAILED)
        cs.update_task(run.id, t.node, state=FAILED, failures=t.failures, error=message, trace=trace or None,
                       finished_at=now, lease_owner=None, lease_expires=None)
        self._emit(cs, "task", run, t.node, FAILED, attempt=t.attempts, error=message)
        for d in self._descendants(run, [t.node]):
            dt = run.tasks[d]
            if dt.state == PENDING:
                self._move(run, dt, SKIPPED)
                dt.error = f"skipped: {t.node!r} failed"
                cs.update_task(run.id, d, state=SKIPPED, error=dt.error, finished_at=now, retry_at=None)
                self._emit(cs, "task", run, d, SKIPPED)
        if t.map_of is not None:
            self._item_done(run, t, cs)
        if run.open == 0:
            self._end_run(run, cs)

    def _end_run(self, run: _Run, cs: ChangeSet) -> None:
        if run.state in RUN_TERMINAL:
            return  # already ended in this turn (the last item of a map ends the map, which ends the run)
        states = [t.state for t in run.tasks.values()]
        error = None
        if FAILED in states:
            state = FAILED
            failed = [t for t in run.tasks.values() if t.state == FAILED]
            error = "; ".join(f"{t.node}: {t.error}" for t in failed)
        elif CANCELLED in states:
            state, error = CANCELLED, "cancelled"
        elif SKIPPED in states:
            state, error = FAILED, "tasks were skipped"
        else:
            state = FINISHED
        run.state = state
        for t in run.tasks.values():
            if t.items is not None:
                self._parked.pop((run.id, t.node), None)
        cs.update_run(run.id, state=state, error=error, finished_at=time.time(), owner=None, lease_expires=None)
        self._emit(cs, "run", run, None, state, error=error)
        self._ended.append(run.id)

    def _fire_timers(self, cs: ChangeSet) -> None:
        now = time.time()
        while self._timers and self._timers[0][0] <= now:
            _when, _n, kind, run_id, node, attempt = heapq.heappop(self._timers)
            run = self._runs.get(run_id)
            t = run.tasks.get(node) if run else None
            if t is None or t.attempts != attempt:
                continue
            if kind == "timeout" and t.state == RUNNING:
                job = self._jobs.pop((run_id, node), None)
                if job is not None:
                    self.executor.abandon(job)
                self._item_stopped(run, t)
                self._fail_attempt(run, t, CallTimeout(
                    f"node {node!r} exceeded its timeout (maxexectime) of {t.timeout:g} s"), "", cs)
            elif kind == "retry" and t.state == PENDING and t.retry_at is not None:
                t.retry_at = None
                if self._deps_done(run, t):
                    self._enqueue(run, t)

    # ------------------------------------------------------------------------------------------
    # called by TaskContext (worker thread)

    def _change_dag(self, ctx: TaskContext, op: str, name: str, ref: str, args: list, kwargs: dict,
                    after: list[str], before: list[str] | None, retries: int, timeout: float | None,
                    priority: int) -> str:
        change = check_change(self.resolver, ctx.aliases, op, name, ref, args, kwargs, after, before, retries,
                              timeout, priority)
        return self._call(lambda cs: self._cmd_change(ctx, change, cs))

    def _apply_changes(self, run: _Run, t: _Task, changes: list[DagChange], cs: ChangeSet) -> None:
        """DAG changes a remote task recorded (checked there); stored with its outcome, in order."""
        if not changes:
            return
        ctx = TaskContext(self, run.id, t.node, t.attempts, t.ref, run.workflow, run.inputs or {}, run.aliases)
        for change in changes:
            self._cmd_change(ctx, change, cs)

    # ------------------------------------------------------------------------------------------
    # map / reduce: a map node expands into one item task per element of its list

    def _expand(self, run: _Run, m: _Task, cs: ChangeSet) -> None:
        """Turn a ready map node into items `m[0]`, `m[1]`, …; idempotent (a resumed run keeps its items).

        The map node is `running` while its items run and finishes with their outputs in item
        order (what its children, the reduce, receive); it fails once every item is finished or
        failed and at least one failed. Each item has the map's retries, timeout and priority.
        """
        now = time.time()
        try:
            values = self._map_values(run, m)
        except FlowDagError as exc:
            m.attempts += 1
            self._fail_final(run, m, str(exc), "", cs)
            return
        names: list[str] = []
        for i, value in enumerate(values):
            name = f"{m.node}[{i}]"
            names.append(name)
            if name in run.tasks:
                continue
            extra = {"map": m.node, "index": i}
            item = _Task(name, run.next_seq, m.ref, [value, *m.args], dict(m.kwargs), [], m.retries, m.timeout,
                         m.priority, m.node, extra=extra)
            run.next_seq += 1
            run.tasks[name] = item
            run.open += 1
            cs.add_task({
                "run_id": run.id, "node": name, "seq": item.seq, "ref": item.ref, "args": dumps(item.args),
                "kwargs": dumps(item.kwargs), "deps": "[]", "retries": item.retries, "timeout": item.timeout,
                "priority": item.priority, "extra": dumps(extra), "added_by": m.node, "state": PENDING,
                "attempts": 0, "failures": 0,
            })
            self._emit(cs, "graph", run, name, PENDING, change="map", ref=item.ref, after=[], before=[],
                       added_by=m.node, extra=extra)
        m.items = names
        m.open_items = sum(1 for n in names if run.tasks[n].state not in (FINISHED, FAILED))
        m.running_items = sum(1 for n in names if run.tasks[n].state == RUNNING)
        m.extra = {**m.extra, "items": len(names)}
        self._mark_running(run, m, now, cs, items=len(names))
        for n in names:
            item = run.tasks[n]
            if item.state == PENDING and item.retry_at is None:
                self._enqueue(run, item)
        if m.open_items == 0:
            self._close_map(run, m, cs)

    def _map_values(self, run: _Run, m: _Task) -> list[Any]:
        source = m.extra["map_over"]
        if isinstance(source, list):
            return source
        if source in m.deps:
            value, what = run.tasks[source].output, f"the output of {source!r}"
        elif run.inputs and source in run.inputs:
            value, what = run.inputs[source], f"the run input {source!r}"
        else:
            parents = f"its parents are {', '.join(m.deps)}" if m.deps else "it has no parents"
            raise FlowDagError(f"node {m.node!r} maps over {source!r}, which is neither a parent nor a run input "
                               f"({parents})")
        if not isinstance(value, list):
            raise FlowDagError(f"node {m.node!r} maps over {what}, which is a {type(value).__name__}, not a list")
        return value

    def _item_stopped(self, run: _Run, t: _Task) -> None:
        """An item left `running` (any outcome): free its map's slot and start one parked item."""
        m = run.tasks.get(t.map_of) if t.map_of is not None else None
        if m is None or m.items is None:
            return
        m.running_items = max(0, m.running_items - 1)
        parked = self._parked.get((run.id, m.node))
        if parked:
            node = parked.popleft()
            if not parked:
                del self._parked[(run.id, m.node)]
            heapq.heappush(self._ready, (-run.tasks[node].priority, next(self._counter), run.id, node))

    def _item_done(self, run: _Run, t: _Task, cs: ChangeSet) -> None:
        m = run.tasks.get(t.map_of) if t.map_of is not None else None
        if m is None or m.items is None or m.state != RUNNING:
            return
        m.open_items -= 1
        if m.open_items <= 0:
            self._close_map(run, m, cs)

    def _close_map(self, run: _Run, m: _Task, cs: ChangeSet) -> None:
        items = [run.tasks[n] for n in m.items or []]
        failed = [i for i in items if i.state == FAILED]
        if failed:
            shown = "; ".join(f"{i.node}: {i.error}" for i in failed[:3]) + ("; …" if len(failed) > 3 else "")
            m.failures += 1
            self._fail_final(run, m, f"{len(failed)} of {len(items)} items failed: {shown}", "", cs)
            return
        outputs = [i.output for i in items]
        self._finish(run, m, dumps(outputs), outputs, None, cs)
