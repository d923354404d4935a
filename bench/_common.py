"""Helpers shared by the benchmarks: free ports, servers as subprocesses, wrk runs, throwaway runtimes."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready after {timeout}s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    if not m:
        return float("nan")
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def wrk(url: str, seconds: int, connections: int, threads: int = 1, headers: dict[str, str] | None = None) -> dict:
    """Run wrk once; return requests/s, p50 and p99 latency in ms and the error count."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk, or run bin/setup.sh --test)")
    extra = [arg for k, v in (headers or {}).items() for arg in ("-H", f"{k}: {v}")]
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", *extra, url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    # anchored: "85.50%" in the Stdev columns must not be read as the 50th percentile
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99, "non_2xx": int(errors.group(1)) if errors else 0}


def python_env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def dumps(obj: object) -> str:
    return json.dumps(obj, indent=2)


PY = sys.executable


def per_call(fn, n: int) -> float:  # noqa: ANN001
    """µs per call of `fn()` over `n` calls."""
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def write_workspace(root: Path, name: str, queries: dict[str, str], **server: object) -> Path:
    """A throwaway workspace `root/mnt` with these query files (public); returns its config path."""
    mnt = root / "mnt"
    (mnt / "Queries").mkdir(parents=True, exist_ok=True)
    for file_name, text in queries.items():
        (mnt / "Queries" / file_name).write_text(text)
    manifest = {"ID": f"bench-{name.lower()}-0000-0000-000000000000", "Name": name,
                "Queries": [{"Name": f, "Content": f"Queries/{f}", "ID": f} for f in queries],
                "Permissions": [{"ID": "Public", "Permission": 1}]}
    (mnt / "package.json").write_text(json.dumps(manifest))
    config = {"Database": {"Type": "sqlite", "Connection": "mnt/database.db"}, "Workflow": "mnt/package.json",
              "Server": {"Host": "127.0.0.1", "Port": 0, "SecretKey": "bench", **server}}
    path = root / "coflows_config.json"
    path.write_text(json.dumps(config))
    return path


@contextlib.contextmanager
def loaded_runtime(write: Callable[[Path], Path], name: str) -> Iterator[Any]:
    """A coflows Runtime (no database) on a throwaway workspace, loaded, then closed and removed.

    `write(root)` makes the workspace under `root` and returns its config path. A source that
    fails to load is an error here, not a silently different bench.
    """
    sys.path.insert(0, str(REPO / "runtime"))
    from coflows.config import load_config
    from coflows.runtime import Runtime

    root = Path(tempfile.mkdtemp(prefix=f"coflows-bench-{name}-"))
    runtime = None
    try:
        runtime = Runtime(load_config(str(write(root))), with_database=False)
        problems = runtime.load()
        if any(problems.values()):
            raise RuntimeError(f"the {name} bench workspace did not load: {problems}")
        yield runtime
    finally:
        if runtime is not None:
            runtime.close()
        shutil.rmtree(root, ignore_errors=True)


PY_ADD = "def Add(x: int, y: int) -> int:\n    return x + y\n"  # the Python twin of each engine's Calc.Add


def interleaved_samples(paths: dict, calls: int, rounds: int, warmup: int) -> dict[str, list[float]]:
    """µs per call of each path, `rounds` times, interleaved so a burst of load hits all paths alike."""
    for f in paths.values():
        per_call(f, warmup)  # JIT, caches
    samples: dict[str, list[float]] = {k: [] for k in paths}
    for _ in range(rounds):
        for k, f in paths.items():
            samples[k].append(per_call(f, calls))
    return samples
