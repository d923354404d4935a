"""Per-call cost of a JavaScript function through coflows, against raw mini-racer calls of the same function.

Run alone: `.venv/bin/python bench/calls_js.py` (prints a table and the ratios; target ≤ 1.3×).
`measure()` returns the figures as a dict (µs per call, medians of interleaved rounds).

What is measured, in one process and one run (same function source everywhere:
`let Add = function(x, y) { return x + y }`):
- raw_call:        `mr.call("Add", 1, 2)` on a `py_mini_racer.MiniRacer` — what a user of mini-racer writes;
- raw_eval:        `mr.eval("Add(1,2)")` — mini-racer's cheapest call (a script, primitives only);
- raw_function:    `add(1, 2)` with `add = mr.eval("Add")`, a JSFunction (builds an argv array: 3 V8 hops);
- v8_roundtrip:    the engine's binding running the script `0` (one V8 task, nothing else): the floor;
- function:        `fn.invoke(*fn.bind((1, 2), {}))` — the registry's Function (JSON in/out, protocol);
- registry:        `runtime.call("Calc.js/Add", 1, 2)` — lookup, hot-reload check, binding, call context;
- python_registry: the same `runtime.call` to a Python function, for scale.
The V8 round trip is then split into its phases (schedule, V8 thread, wake the caller), and an
HTTP call of a JS no-op is compared with a Python no-op and /health on a real server (every
call hops to the worker pool: user code never runs on the event loop).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import interleaved_samples, loaded_runtime, write_workspace  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
JS = """\
let Add = function(x, y) { return x + y }
function Noop() {}
"""
PY = """\
def Add(x: int, y: int) -> int:
    return x + y

def Noop():
    return None
"""
WID = "BenchJs"  # the workspace's Name (see _workspace); URLs take a Name or an ID


def _workspace(root: Path) -> Path:
    return write_workspace(root, "BenchJs", {"Calc.js": JS, "Calc.py": PY})


def _interleaved(paths: dict[str, Any], calls: int, rounds: int) -> dict[str, float]:
    samples = interleaved_samples(paths, calls, rounds, warmup=max(200, calls // 10))
    return {k: round(statistics.median(v), 2) for k, v in samples.items()}


def _v8_phases(ctx: Any, n: int) -> dict[str, float]:
    """Split one V8 task into: schedule (Python → task queued), V8 thread (wake, compile, run, callback
    entry with the GIL), wake caller (callback → the waiting thread runs again)."""
    from coflows.engines.js import v8

    class Stamped(v8._Waiter):
        __slots__ = ("t_cb",)

        def deliver(self, callback_id: int, raw: Any) -> None:
            self.t_cb = time.perf_counter()
            super().deliver(callback_id, raw)

    dll = ctx._dll
    phases: dict[str, list[float]] = {"schedule": [], "v8_thread": [], "wake_caller": [], "decode": []}
    for i in range(n + 200):
        w = Stamped(ctx)
        cid = next(v8._ids)
        v8._handlers[cid] = w
        ctx._ids.add(cid)
        t0 = time.perf_counter()
        h = ctx._alloc_str("0")
        dll.mr_eval(ctx._ctx, h, cid)
        dll.mr_free_value(ctx._ctx, h)
        t1 = time.perf_counter()
        w.lock.acquire()
        t2 = time.perf_counter()
        ctx._take(w.raw, False)
        t3 = time.perf_counter()
        if i >= 200:
            phases["schedule"].append(t1 - t0)
            phases["v8_thread"].append(w.t_cb - t1)
            phases["wake_caller"].append(t2 - w.t_cb)
            phases["decode"].append(t3 - t2)
    return {k: round(statistics.median(v) * 1e6, 2) for k, v in phases.items()}


def _after_idle(ctx: Any, n: int = 300) -> dict[str, float]:
    """The same V8 round trip when the threads have been idle for a while before each call (as
    between HTTP requests): waking a sleeping thread, on a vCPU that may be halted, costs more."""
    out = {}
    for gap in (0.0003, 0.001, 0.005):
        xs = []
        for _ in range(n):
            time.sleep(gap)
            t = time.perf_counter()
            ctx.eval("0")
            xs.append(time.perf_counter() - t)
        out[f"v8_roundtrip_after_{gap * 1000:g}ms_idle_us"] = round(statistics.median(xs) * 1e6, 2)
    return out


class _Http:
    """A keep-alive HTTP/1.1 client with TCP_NODELAY (ENGINES.md: without it, ~44 ms per request)."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.conn.connect()
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def get(self, path: str) -> bytes:
        self.conn.request("GET", path)
        r = self.conn.getresponse()
        body = r.read()
        if r.status != 200:
            raise RuntimeError(f"GET {path}: {r.status} {body[:200]!r}")
        return body


PROBE = """
import json, statistics, sys, time
out_path = sys.argv[1]
sys.argv = ["coflows"] + sys.argv[2:]
from coflows.server import queries
from coflows.engines import js as jsmod
from coflows.engines.js import v8

stats = {}

def rec(qid, phase, seconds):
    stats.setdefault(f"{qid}:{phase}", []).append(seconds)

def dump():
    with open(out_path, "w") as f:
        json.dump({k: statistics.median(v[len(v) // 5:]) * 1e6 for k, v in stats.items() if v}, f)

orig_execute = queries.execute
def execute(runtime, principal, wid, qid, *a, **k):
    t = time.perf_counter()
    r = orig_execute(runtime, principal, wid, qid, *a, **k)
    rec(qid, "execute", time.perf_counter() - t)
    return r
queries.execute = execute

orig_handler = queries.QueryEndpoint.__call__
async def handler(self, scope, receive, send):
    if scope["path_params"].get("qid") == "__probe__":  # uvicorn re-raises SIGTERM: no atexit, so ask
        dump()
    t = time.perf_counter()
    try:
        return await orig_handler(self, scope, receive, send)
    finally:
        rec(scope["path_params"]["qid"], "handler", time.perf_counter() - t)
queries.QueryEndpoint.__call__ = handler

orig_call = jsmod._JsWorkflow.call
def call(self, m, *a, **k):
    t = time.perf_counter()
    try:
        return orig_call(self, m, *a, **k)
    finally:
        rec(m.qid, "engine", time.perf_counter() - t)
jsmod._JsWorkflow.call = call

orig_eval = v8.V8Context.eval
def v8eval(self, code, *a, **k):
    t = time.perf_counter()
    try:
        return orig_eval(self, code, *a, **k)
    finally:
        if code.startswith("__coflows.call("):
            rec("Calc.js", "v8", time.perf_counter() - t)
v8.V8Context.eval = v8eval

from coflows.cli import main
main()
"""


def _server(config: Path, probe_out: Path) -> tuple[subprocess.Popen, int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(REPO / "runtime") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    probe = config.parent / "probe.py"  # patches this process: the server runs in it (no supervisor)
    probe.write_text(PROBE)
    proc = subprocess.Popen([sys.executable, str(probe), str(probe_out), "server", str(config), "--port", str(port),
                             "--log-level", "warning", "--no-supervisor"], cwd=config.parent, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"bench server exited with {proc.returncode}")
        try:
            _Http(port).get("/health")
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("bench server did not start")


def _http(root: Path, calls: int, rounds: int) -> dict[str, float]:
    """Client-side µs per request, plus the server's own phases (medians, measured inside the server):
    handler (the ASGI endpoint), execute (lookup + bind + call + JSON), engine
    (the JS engine's call), v8 (the V8 task)."""
    probe_out = root / "probe.json"
    proc, port = _server(_workspace(root), probe_out)
    try:
        c = _Http(port)
        paths = {
            "health": lambda: c.get("/health"),
            "py_noop": lambda: c.get(f"/flow/query/{WID}/Calc.py/Noop"),
            "js_noop": lambda: c.get(f"/flow/query/{WID}/Calc.js/Noop"),
        }
        out = _interleaved(paths, calls, rounds)
        c.conn.request("GET", f"/flow/query/{WID}/__probe__/dump")
        c.conn.getresponse().read()
    finally:
        proc.terminate()
        proc.wait(30)
    phases = json.loads(probe_out.read_text()) if probe_out.exists() else {}
    for key, us in phases.items():
        qid, phase = key.split(":")
        out[f"{'js' if qid.endswith('.js') else 'py'}_server_{phase}"] = round(us, 2)
    return out


def measure(calls: int = 3_000, rounds: int = 7, http: bool = True) -> dict[str, float]:
    """µs per call for each path (median of `rounds` interleaved rounds of `calls` calls)."""
    sys.path.insert(0, str(REPO / "runtime"))
    from py_mini_racer import MiniRacer

    with loaded_runtime(_workspace, "js") as runtime, contextlib.closing(MiniRacer()) as mr:
        wf, fn = runtime.registry.resolve_ref("Calc.js/Add")
        ctx = wf.ctx.state["javascript"].ctx  # the engine's V8 context of this workflow
        mr.eval(JS)
        add = mr.eval("Add")
        call = runtime.call
        assert mr.call("Add", 1, 2) == mr.eval("Add(1,2)") == add(1, 2) == 3
        assert fn.invoke(*fn.bind((1, 2), {})) == call("Calc.js/Add", 1, 2) == 3
        paths = {
            "raw_call": lambda: mr.call("Add", 1, 2),
            "raw_eval": lambda: mr.eval("Add(1,2)"),
            "raw_function": lambda: add(1, 2),
            "v8_roundtrip": lambda: ctx.eval("0"),
            "function": lambda: fn.invoke(*fn.bind((1, 2), {})),
            "registry": lambda: call("Calc.js/Add", 1, 2),
            "registry_noop": lambda: call("Calc.js/Noop"),
            "python_registry": lambda: call("Calc.py/Add", 1, 2),
        }
        r = _interleaved(paths, calls, rounds)
        out: dict[str, float] = {f"{k}_us": v for k, v in r.items()}
        out.update({f"v8_{k}_us": v for k, v in _v8_phases(ctx, calls).items()})
        out.update(_after_idle(ctx))
        out["ratio_registry_vs_raw_call"] = round(out["registry_us"] / out["raw_call_us"], 3)
        out["ratio_registry_vs_raw_eval"] = round(out["registry_us"] / out["raw_eval_us"], 3)
        out["ratio_function_vs_raw_call"] = round(out["function_us"] / out["raw_call_us"], 3)
    if http:
        with tempfile.TemporaryDirectory(prefix="coflows-bench-js-http-") as tmp:
            h = _http(Path(tmp) / "pool", max(500, calls // 3), rounds)
            out.update({f"http_{k}_pool_us": v for k, v in h.items()})
    return out


def main() -> None:
    r = measure()
    print("JavaScript `let Add = function(x, y) { return x + y }`, µs per call (median):")
    for k in ("raw_call", "raw_eval", "raw_function", "v8_roundtrip", "function", "registry", "registry_noop",
              "python_registry"):
        print(f"  {k:<16} {r[k + '_us']:8.2f}")
    print(f"  registry / raw_call   {r['ratio_registry_vs_raw_call']:.2f}x   (target <= 1.3x)")
    print(f"  registry / raw_eval   {r['ratio_registry_vs_raw_eval']:.2f}x")
    print(f"  function / raw_call   {r['ratio_function_vs_raw_call']:.2f}x")
    print("one V8 round trip (script `0`), by phase:")
    for k in ("schedule", "v8_thread", "wake_caller", "decode"):
        print(f"  {k:<16} {r[f'v8_{k}_us']:8.2f}")
    print("  after the threads idled: " + "  ".join(
        f"{gap} {r[f'v8_roundtrip_after_{gap}_idle_us']:.1f}" for gap in ("0.3ms", "1ms", "5ms")))
    if "http_js_noop_pool_us" in r:
        print("HTTP GET over loopback (keep-alive, TCP_NODELAY), µs; server phases measured inside the server:")
        for suffix in ("pool",):
            g = lambda k: r.get(f"http_{k}_{suffix}_us", float("nan"))  # noqa: E731
            print(f"  [{suffix}] /health {g('health'):.1f}   Python no-op {g('py_noop'):.1f}   "
                  f"JS no-op {g('js_noop'):.1f}")
            for lang in ("py", "js"):
                phases = "  ".join(f"{ph} {g(f'{lang}_server_{ph}'):.1f}"
                                   for ph in ("handler", "execute", "engine", "v8")
                                   if f"http_{lang}_server_{ph}_{suffix}_us" in r)
                print(f"      {lang} inside the server: {phases}")


if __name__ == "__main__":
    main()
