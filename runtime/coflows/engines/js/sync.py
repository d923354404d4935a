"""Synchronous calls from JavaScript to Python, for live host-object proxies (objects.py).

CoFlows' JavaScript (Jint) used .NET objects synchronously: `csbase.getInterests.Count`,
`qkernel.User.ContextUser.FirstName`. Our ordinary JS → Python path is asynchronous (a message
to the dispatcher thread, the answer evaluated back into the context later), so it can only
settle Promises. This module adds a synchronous one:

- each context has a `SharedArrayBuffer` (its backing store's address comes from mini-racer and
  stays put while the buffer lives) and a host function made with `mr_make_js_callback`;
- JavaScript writes the request (JSON, as UTF-16 code units: there is no TextEncoder in bare V8)
  into the buffer and calls the host function;
- the callback runs ON the context's V8 thread with the isolate blocked until it returns. It
  reads the request straight from memory (no V8 call: V8 is blocked), hands it to a worker
  thread, waits for the answer no longer than the current call's deadline, writes the answer into
  the buffer and returns; JavaScript reads it.

Layout: two int32 (request length, answer length, in UTF-16 code units), then the text. An answer
is `o<json>` (a value), `j<json>` (plain JSON) or `e<json>` (an error: name, message).

Limits: a request or answer larger than the buffer fails with a RangeError that says so. A host
call that runs JavaScript in the same context (re-entrance: impossible, its V8 thread is the one
waiting) fails at once with V8Reentrant when it happens on the serving thread, and otherwise ends
with the caller's deadline; nothing waits forever.
"""

from __future__ import annotations

import ctypes
import json
import logging
import threading
import time
from collections.abc import Callable

from coflows.engines.js.v8 import JSObjectRef, V8Context, serving

log = logging.getLogger("coflows.engines.js")

HEADER = 8  # int32 request length, int32 answer length (UTF-16 code units)
DEFAULT_SIZE = 1 << 20  # bytes: 524 284 UTF-16 code units per request or answer


def error_answer(name: str, message: str) -> str:
    return "e" + json.dumps({"name": name, "message": message})


class _Worker:
    """A thread that serves one channel's requests, one at a time, handed over with two locks
    (cheaper than an executor's futures: this is on every property read).

    A worker that overruns a deadline is abandoned (it ends after its request); the channel
    starts a fresh one for the next request.
    """

    def __init__(self, channel: SyncChannel) -> None:
        self.channel = channel
        self.go = threading.Lock()
        self.go.acquire()
        self.done = threading.Lock()
        self.done.acquire()
        self.text = ""
        self.answer: str | None = None
        self.abandoned = False
        self.thread = threading.Thread(target=self._loop, daemon=True, name=f"coflows-js-sync-{channel.ctx.name}")
        self.thread.start()

    def _loop(self) -> None:
        serving.ctx = self.channel.ctx  # a JavaScript call into this very context fails at once (V8Reentrant)
        while True:
            if not self.go.acquire(timeout=60.0):
                if self.channel.closed or self.abandoned:
                    return  # abandoned just as it answered: nobody will hand it work again
                continue
            if self.channel.closed or self.abandoned:
                return
            try:
                self.answer = self.channel._serve(self.text)
            except BaseException as e:  # noqa: BLE001 - serve() answers errors itself; a last resort
                log.exception("host object call in %s", self.channel.ctx.name)
                self.answer = error_answer(type(e).__name__, str(e))
            if self.abandoned:
                return
            self.done.release()


class SyncChannel:
    """One context's synchronous host function and shared buffer.

    `serve(request) -> answer` runs on a worker thread; `deadline(request) -> monotonic time`
    bounds the wait (the calling JavaScript call's deadline).
    """

    def __init__(self, ctx: V8Context, buffer_name: str, function_name: str, serve: Callable[[str], str],
                 deadline: Callable[[str], float], size: int = DEFAULT_SIZE) -> None:
        self.ctx = ctx
        self.ref: JSObjectRef
        self.ref, self.addr, self.size = ctx.shared_buffer(buffer_name, size)
        self.capacity = (self.size - HEADER) // 2
        self._serve = serve
        self._deadline = deadline
        self._worker: _Worker | None = None
        self.closed = False
        self.calls = 0
        ctx.install_host_function(function_name, sync=self._on_call)

    # -- on the V8 thread: never call V8 here ----------------------------------------------------
    def _on_call(self) -> None:
        self.calls += 1
        n = ctypes.c_int32.from_address(self.addr).value
        if not 0 < n <= self.capacity:
            self._write(error_answer("RangeError", f"bad host call request length {n}"))
            return
        text = ctypes.string_at(self.addr + HEADER, 2 * n).decode("utf-16-le", "surrogatepass")
        try:
            until = self._deadline(text)
        except Exception:  # noqa: BLE001 - a malformed request: serve() reports it
            until = time.monotonic() + 30.0
        answer = self._dispatch(text, until)
        self._write(answer)

    def _dispatch(self, text: str, until: float) -> str:
        w = self._worker
        if w is None:
            if self.closed:
                return error_answer("Error", "the JavaScript context is closing")
            w = self._worker = _Worker(self)
        w.text = text
        try:
            w.go.release()
        except RuntimeError:  # close() released it meanwhile
            return error_answer("Error", "the JavaScript context is closing")
        if not w.done.acquire(timeout=max(0.0, until - time.monotonic())):
            w.abandoned = True
            self._worker = None
            return error_answer("TimeoutError", "a host object call did not answer within the call's time limit "
                                "(is it calling back into this JavaScript context, or blocked?)")
        if self.closed or w.answer is None:
            return error_answer("Error", "the JavaScript context is closing")
        return w.answer

    def _write(self, answer: str) -> None:
        data = answer.encode("utf-16-le", "surrogatepass")
        if len(data) > 2 * self.capacity:
            data = error_answer("RangeError", f"a host object call's answer is {len(data) // 2} characters, more "
                                f"than the {self.capacity} the channel holds; ask for less at a time"
                                ).encode("utf-16-le")
        ctypes.memmove(self.addr + HEADER, data, len(data))
        ctypes.c_int32.from_address(self.addr + 4).value = len(data) // 2

    def close(self) -> None:
        """Stop the worker; a V8 thread waiting in a host call gets an error answer now (its context
        is about to be freed, which waits for that thread)."""
        self.closed = True
        w = self._worker
        if w is not None:
            w.abandoned = True
            try:
                w.done.release()  # wake the V8 thread if it waits for this worker
            except RuntimeError:
                pass
            try:
                w.go.release()  # let an idle worker see `closed` and end
            except RuntimeError:
                pass
