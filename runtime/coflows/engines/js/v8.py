"""A thin binding to libmini_racer's C API, for the JavaScript engine.

mini-racer's Python layer sends every call through an asyncio event loop
thread of its own (one per `MiniRacer`): a call is four thread hand-offs
(caller → loop → V8 → loop → caller) and an `ctx.call()` a few more V8 hops
to build the argument array. Worse, its promise helpers call into V8
*synchronously on that loop*, so JavaScript that never yields after an
`await` (`await x; while (true) {}`) wedges the loop for good.

This module drives the same native library directly:

- `V8Context.eval(code, timeout)` schedules the script on the context's V8
  thread and blocks the caller on a lock that the V8 thread's completion
  callback releases: two hand-offs per call, no event loop.
- a timeout cancels the V8 task (`mr_cancel_task` → `TerminateExecution`):
  the context stays usable;
- `close()` frees the context, which terminates whatever JavaScript is still
  running (also a runaway microtask, which no task cancel reaches);
- a *host function* (`mr_make_js_callback`) lets JavaScript post string
  messages to Python; they are read and handled on a per-context dispatcher
  thread, never on V8's thread (V8 is blocked while a callback runs);
- a *synchronous* host function runs a Python callable on V8's thread while
  JavaScript waits (it must not call V8), with a `SharedArrayBuffer` whose
  memory Python reads and writes directly (`shared_buffer`): sync.py builds
  the synchronous host-object calls on these two.

Only strings and other primitives cross the boundary; the engine speaks JSON.
Written against mini-racer 0.14 (the C API is internal to mini-racer, so the
version is checked when the engine starts).
"""

from __future__ import annotations

import ctypes
import itertools
import json
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("coflows.engines.js")

# Value type tags of libmini_racer (mini_racer.cc / py_mini_racer._objects._MiniRacerTypes).
_NULL, _BOOL, _INTEGER, _DOUBLE, _STR = 1, 2, 3, 4, 5
_UNDEFINED = 11
_SHARED_ARRAY_BUFFER = 101
_EXECUTE_EXC, _PARSE_EXC, _OOM_EXC, _TIMEOUT_EXC, _TERMINATED_EXC, _VALUE_EXC, _KEY_EXC = range(200, 207)


class V8Error(Exception):
    """Base of the binding's errors."""


class V8ExecuteError(V8Error):
    """A JavaScript exception escaped the script (message formatted by V8: `file:line: Type: msg…`)."""


class V8ParseError(V8ExecuteError):
    """The script does not parse."""


class V8OutOfMemory(V8Error):
    """The context's hard memory limit was reached; the script was terminated."""


class V8Terminated(V8Error):
    """The script was terminated (cancelled, or its context closed)."""


class V8Timeout(V8Error):
    """The script did not finish in time; it was cancelled."""


class V8Closed(V8Error):
    """The context was closed (it may have been replaced by a fresh one)."""


class V8Reentrant(V8Error):
    """Python code serving a synchronous host call of a context tried to run JavaScript in that same
    context, whose V8 thread is blocked until the host call returns (it would wait forever)."""


# Set by sync.py on a thread while it serves a synchronous host call of a context (see `eval`).
serving = threading.local()


_ERRORS: dict[int, type[V8Error]] = {
    _EXECUTE_EXC: V8ExecuteError,
    _PARSE_EXC: V8ParseError,
    _OOM_EXC: V8OutOfMemory,
    _TIMEOUT_EXC: V8Timeout,
    _TERMINATED_EXC: V8Terminated,
    _VALUE_EXC: V8ExecuteError,
    _KEY_EXC: V8ExecuteError,
}


class JSObjectRef:
    """An opaque V8 object handle (arrays, objects, functions); free it with `V8Context.free`."""

    __slots__ = ("raw",)

    def __init__(self, raw: Any) -> None:
        self.raw = raw


_dll: Any = None
_callback: Any = None  # the one ctypes callback for every context; kept alive here
_handlers: dict[int, Any] = {}  # callback id → _Waiter | _Host
_ids = itertools.count(1)
_init_lock = threading.Lock()


_v8_thread = threading.local()


def _on_callback(callback_id: int, raw: Any) -> None:
    # Runs on a V8 thread, with the isolate blocked until we return: hand off, never call V8.
    if not getattr(_v8_thread, "kept", False):
        # ctypes makes a Python thread state for each callback on a foreign thread and deletes it after;
        # one more PyGILState_Ensure keeps this thread's for good (the GIL is still released on return)
        ctypes.pythonapi.PyGILState_Ensure()
        _v8_thread.kept = True
    handler = _handlers.get(callback_id)
    if handler is None:
        return  # a context that was closed; its values went with it
    handler.deliver(callback_id, raw)


def init() -> Any:
    """Load libmini_racer (V8) into the process once; return the library handle."""
    global _dll, _callback
    with _init_lock:
        if _dll is None:
            from py_mini_racer import init_mini_racer
            from py_mini_racer._dll import MR_CALLBACK  # the ctypes signature mr_init_context expects

            dll = init_mini_racer(ignore_duplicate_init=True)
            for symbol in ("mr_init_context", "mr_eval", "mr_cancel_task", "mr_make_js_callback",
                           "mr_get_object_item", "mr_set_object_item", "mr_free_value", "mr_free_context",
                           "mr_set_hard_memory_limit", "mr_hard_memory_limit_reached", "mr_heap_stats",
                           "mr_low_memory_notification"):
                if not hasattr(dll, symbol):
                    raise V8Error(f"this mini-racer build lacks {symbol}; coflows needs mini-racer 0.14")
            _callback = MR_CALLBACK(_on_callback)
            _dll = dll
        return _dll


def v8_version() -> str:
    return init().mr_v8_version().decode()


def _read(raw: Any) -> Any:
    """Convert a primitive raw value; errors raise; objects come back as `JSObjectRef` (not freed)."""
    c = raw.contents
    t = c.type
    if t == _STR:
        return c.value.bytes_val[0:c.len].decode("utf-8")
    if t == _INTEGER:
        return int(c.value.int_val)
    if t == _DOUBLE:
        return float(c.value.double_val)
    if t == _BOOL:
        return c.value.int_val == 1
    if t in (_NULL, _UNDEFINED):
        return None
    exc = _ERRORS.get(t)
    if exc is not None:
        msg = c.value.bytes_val[0:c.len].decode("utf-8", "replace") if c.len else ""
        raise exc(msg or exc.__doc__ or exc.__name__)
    return JSObjectRef(raw)


class _Waiter:
    """One pending task: the V8 thread's callback releases the lock the caller waits on."""

    __slots__ = ("ctx", "lock", "raw", "abandoned")

    def __init__(self, ctx: V8Context) -> None:
        self.ctx = ctx
        self.lock = threading.Lock()
        self.lock.acquire()
        self.raw: Any = None
        self.abandoned = False

    def deliver(self, callback_id: int, raw: Any) -> None:
        if _handlers.pop(callback_id, None) is None:
            return  # the context was closed meanwhile (close() released the waiter)
        self.ctx._ids.discard(callback_id)
        self.raw = raw
        if self.abandoned:  # the caller gave up: nobody will read (and free) the value
            self.ctx._post(("free", raw))
        self.lock.release()


class _Host:
    """The host function's callback: queue the message for the context's dispatcher thread."""

    __slots__ = ("ctx",)

    def __init__(self, ctx: V8Context) -> None:
        self.ctx = ctx

    def deliver(self, callback_id: int, raw: Any) -> None:
        self.ctx._post(("host", raw))


class _Sync:
    """A synchronous host function: `fn()` runs on the V8 thread while JavaScript waits for it.

    `fn` must not call V8 (the isolate is blocked until it returns); the arguments array is
    freed later on the dispatcher thread.
    """

    __slots__ = ("ctx", "fn")

    def __init__(self, ctx: V8Context, fn: Callable[[], None]) -> None:
        self.ctx = ctx
        self.fn = fn

    def deliver(self, callback_id: int, raw: Any) -> None:
        try:
            self.fn()
        except BaseException:  # noqa: BLE001 - nothing may escape into V8's thread
            log.exception("synchronous host call in %s", self.ctx.name)
        garbage = self.ctx._sync_garbage
        garbage.append(raw)
        if len(garbage) >= 64:  # freed in batches: one dispatcher wake-up per 64 calls
            self.ctx._sync_garbage = []
            self.ctx._post(("free_many", garbage))


class V8Context:
    """One V8 isolate and context, with its own V8 thread (contexts run in parallel).

    Close it explicitly: there is no `__del__`, because garbage collection may run on a V8
    thread (inside a callback), and freeing a context there would join that very thread.
    """

    # Every call is a script of its own (its id and arguments are in the text), and each leaves a
    # compiled script and strings behind. V8 collects them lazily: a busy context's heap grew by
    # ~0.7 KB per call, tens of MB, before its first full GC. So every GC_CHECK_EVERY scripts the
    # engine asks `collect_garbage`, which runs a full GC once GC_SLACK_BYTES piled up.
    GC_CHECK_EVERY = 2000
    GC_SLACK_BYTES = 8 << 20

    def __init__(self, on_message: Callable[[str], None] | None = None, name: str = "") -> None:
        self._dll = init()
        self.name = name
        self._ctx = self._dll.mr_init_context(_callback)
        self._evals = 0
        self._next_gc_check = self.GC_CHECK_EVERY
        self._heap_floor: int | None = None  # used heap after the last full GC
        self._gc_lock = threading.Lock()  # collect_garbage and close never overlap
        self.collections = 0
        self._ids: set[int] = set()
        self._tasks: dict[int, Any] = {}  # thread ident → the task its eval waits for
        self._on_message = on_message
        self._sync_garbage: list[Any] = []  # argument arrays of synchronous host calls, to free
        self._queue: queue.SimpleQueue[tuple[str, Any]] | None = None
        self._dispatcher: threading.Thread | None = None
        self._qlock = threading.Lock()
        self.closed = False

    # -- evaluation ---------------------------------------------------------------------------
    def _alloc_str(self, s: str) -> Any:
        b = s.encode("utf-8")
        return self._dll.mr_alloc_string_val(self._ctx, b, len(b), _STR)

    def eval(self, code: str, timeout: float | None = None, keep_object: bool = False) -> Any:
        """Run a script; return its completion value (a primitive, or a `JSObjectRef` if `keep_object`)."""
        if self.closed:
            raise V8Closed(f"JavaScript context {self.name} is closed")
        if getattr(serving, "ctx", None) is self:
            raise V8Reentrant(f"JavaScript context {self.name} is waiting for a synchronous host call made "
                              "from it (a host object's member); that call cannot run JavaScript in the same "
                              "context")
        w = _Waiter(self)
        cid = next(_ids)
        _handlers[cid] = w
        self._ids.add(cid)
        if self.closed:  # close() ran meanwhile and may not have seen this waiter
            _handlers.pop(cid, None)
            raise V8Closed(f"JavaScript context {self.name} is closed")
        self._evals += 1
        h = self._alloc_str(code)
        try:
            task = self._dll.mr_eval(self._ctx, h, cid)
        finally:
            self._dll.mr_free_value(self._ctx, h)
        me = threading.get_ident()
        self._tasks[me] = task
        finished = cancelled = False
        try:
            finished = w.lock.acquire(timeout=-1 if timeout is None else max(timeout, 0.0))
            if not finished:
                self._dll.mr_cancel_task(self._ctx, task)
                cancelled = True
                # A running task stops at once; a queued one reports when V8 reaches it.
                finished = w.lock.acquire(timeout=0.1)
                if not finished:
                    w.abandoned = True
                    raise V8Timeout(f"JavaScript did not finish in {timeout:g} s")
                try:
                    return self._take(w.raw, keep_object)
                except V8Terminated:
                    raise V8Timeout(f"JavaScript did not finish in {timeout:g} s") from None
        except BaseException as e:
            if not finished and not isinstance(e, Exception):
                # stopped while waiting (the call watchdog's asynchronous exception): stop the
                # script too, or it would keep the context's V8 thread busy for every later call
                if not cancelled:
                    self._dll.mr_cancel_task(self._ctx, task)
                w.abandoned = True
            raise
        finally:
            self._tasks.pop(me, None)
        return self._take(w.raw, keep_object)

    def cancel_thread(self, ident: int) -> bool:
        """Cancel the script thread `ident` waits for (from another thread): its eval raises V8Terminated."""
        task = self._tasks.get(ident)
        if task is None or self.closed:
            return False
        self._dll.mr_cancel_task(self._ctx, task)
        return True

    def _take(self, raw: Any, keep_object: bool) -> Any:
        if self.closed:
            raise V8Closed(f"JavaScript context {self.name} was closed during the call")
        try:
            value = _read(raw)
        except BaseException:
            self._dll.mr_free_value(self._ctx, raw)
            raise
        if isinstance(value, JSObjectRef) and keep_object:
            return value
        self._dll.mr_free_value(self._ctx, raw)
        return None if isinstance(value, JSObjectRef) else value

    def free(self, obj: JSObjectRef) -> None:
        if not self.closed:
            self._dll.mr_free_value(self._ctx, obj.raw)

    # -- host function ------------------------------------------------------------------------
    def install_host_function(self, global_name: str, sync: Callable[[], None] | None = None) -> None:
        """Define `globalThis[global_name](message: string)`, delivered to `on_message` in order.

        With `sync`, the function instead calls `sync()` on the V8 thread and returns when it
        does (JavaScript is blocked meanwhile; `sync` must not call V8): see sync.py.
        """
        cid = next(_ids)
        _handlers[cid] = _Host(self) if sync is None else _Sync(self, sync)
        self._ids.add(cid)
        fn = self._dll.mr_make_js_callback(self._ctx, cid)
        g = self.eval("globalThis", keep_object=True)
        key = self._alloc_str(global_name)
        try:
            r = self._dll.mr_set_object_item(self._ctx, g.raw, key, fn)
            self._take(r, False)
        finally:
            for raw in (key, fn, g.raw):
                self._dll.mr_free_value(self._ctx, raw)

    def shared_buffer(self, global_name: str, size: int) -> tuple[JSObjectRef, int, int]:
        """Define `globalThis[global_name] = new SharedArrayBuffer(size)`: (its ref, address, length).

        The backing store stays at that address while the ref is kept (never free it before the
        context): Python reads and writes it without a V8 hop.
        """
        ref = self.eval(f"globalThis[{json.dumps(global_name)}] = new SharedArrayBuffer({int(size)})",
                        keep_object=True)
        if not isinstance(ref, JSObjectRef) or ref.raw.contents.type != _SHARED_ARRAY_BUFFER:
            raise V8Error("this mini-racer build does not expose SharedArrayBuffer memory")
        c = ref.raw.contents
        return ref, int(c.value.value_ptr), int(c.len)

    def post_task(self, fn: Callable[[], None]) -> bool:
        """Run `fn` on the dispatcher thread, after the host messages already queued; False if none runs."""
        if self._queue is None:
            return False
        self._queue.put(("task", fn))
        return True

    def _post(self, item: tuple[str, Any]) -> None:
        if self._queue is None:
            with self._qlock:
                if self._queue is None:
                    self._queue = queue.SimpleQueue()
                    self._dispatcher = threading.Thread(target=self._dispatch, daemon=True,
                                                        name=f"coflows-js-{self.name}")
                    self._dispatcher.start()
        self._queue.put(item)  # type: ignore[union-attr]

    def _dispatch(self) -> None:
        q = self._queue
        assert q is not None
        key = None
        while True:
            kind, raw = q.get()
            if kind == "stop":
                return
            if kind == "task":
                try:
                    raw()
                except Exception:  # noqa: BLE001
                    log.exception("JavaScript host task in %s", self.name)
                continue
            if self.closed:
                continue
            if kind == "free":
                self._dll.mr_free_value(self._ctx, raw)
                continue
            if kind == "free_many":
                for r in raw:
                    if self.closed:
                        break
                    self._dll.mr_free_value(self._ctx, r)
                continue
            try:
                # `raw` is the array of the host function's arguments: read element 0 (a V8 hop,
                # fine here: this thread is not V8's).
                if key is None:
                    key = self._dll.mr_alloc_int_val(self._ctx, 0, _INTEGER)
                item = self._dll.mr_get_object_item(self._ctx, raw, key)
                self._dll.mr_free_value(self._ctx, raw)
                message = self._take(item, False)
                if isinstance(message, str) and self._on_message is not None:
                    self._on_message(message)
            except V8Closed:
                continue
            except Exception:  # noqa: BLE001 - a bad message must not stop the dispatcher
                log.exception("JavaScript host message in %s", self.name)

    # -- memory -------------------------------------------------------------------------------
    def set_memory_limit(self, hard_bytes: int, soft_bytes: int | None = None) -> None:
        self._dll.mr_set_hard_memory_limit(self._ctx, hard_bytes)
        if soft_bytes:
            self._dll.mr_set_soft_memory_limit(self._ctx, soft_bytes)

    def memory_limit_reached(self) -> bool:
        return (not self.closed) and bool(self._dll.mr_hard_memory_limit_reached(self._ctx))

    def heap_stats(self) -> dict[str, Any]:
        if self.closed:
            return {}
        return json.loads(self._take(self._dll.mr_heap_stats(self._ctx), False))

    def gc_check_due(self) -> bool:
        """True once per GC_CHECK_EVERY scripts: time for `collect_garbage` (off the caller's thread)."""
        if self._evals < self._next_gc_check:
            return False
        self._next_gc_check = self._evals + self.GC_CHECK_EVERY
        return True

    def collect_garbage(self, force: bool = False) -> bool:
        """A full GC if the used heap grew GC_SLACK_BYTES since the last one (or `force`); True if it ran.

        It waits for the V8 thread (a running script finishes first), so call it from a thread
        that can wait.
        """
        with self._gc_lock:
            if self.closed:
                return False
            used = int(self.heap_stats().get("used_heap_size", 0))
            if not force and self._heap_floor is not None and used < self._heap_floor + self.GC_SLACK_BYTES:
                return False
            self._dll.mr_low_memory_notification(self._ctx)
            self._heap_floor = int(self.heap_stats().get("used_heap_size", used))
            self.collections += 1
            return True

    # -- teardown -----------------------------------------------------------------------------
    def close(self) -> None:
        """Free the context; terminates any JavaScript still running in it. Blocks until V8 stops."""
        if self.closed:
            return
        with self._gc_lock:  # not while collect_garbage uses the context
            self.closed = True
        for cid in list(self._ids):
            h = _handlers.pop(cid, None)
            if isinstance(h, _Waiter):  # wake the caller: it raises V8Closed
                h.raw = None
                h.lock.release()
        self._dll.mr_free_context(self._ctx)
        for cid in list(self._ids):
            _handlers.pop(cid, None)
        self._ids.clear()
        if self._queue is not None:
            self._queue.put(("stop", None))
