"""Per-call cost of every caller → callee pair of languages, in one process (the 4×4 interop matrix).

Run alone: `.venv/bin/python bench/calls_matrix.py` (prints the table), or `measure()` for a dict;
`bench/calls.py` runs it and prints it beside the raw bridge costs of the same run.

The workspace is tests/fixtures/interop. Each language's `Bench(query, fn, n)` calls
`query/fn(i, 1)` (`Add`) n times from its own code, through its own API (Python `coflows.call`,
C# `Coflows.Host.Call`, Java `coflows.Host.call`, JavaScript `await coflows.call`), so the figure
for X → Y is what one call from X's code to Y's function costs, the way user code makes it
(argument conversion both ways, registry lookup, call context). The one outer call that starts
each loop is amortized over n calls. Medians of interleaved rounds.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, loaded_runtime  # noqa: E402

FIXTURE = REPO / "tests" / "fixtures" / "interop"
QUERY = {"python": "InteropPy.py", "csharp": "InteropCs.cs", "java": "InteropJava.java", "javascript": "InteropJs.js"}
LANGS = list(QUERY)
# calls per round from each caller: JavaScript's await costs a hop to a Python thread and back
CALLS = {"python": 4000, "csharp": 4000, "java": 4000, "javascript": 1000}


def _workspace(root: Path) -> Path:
    mnt = root / "mnt"
    shutil.copytree(FIXTURE, mnt)
    config = {"Database": {"Type": "sqlite", "Connection": "mnt/database.db"}, "Workflow": "mnt/package.json",
              "Server": {"Host": "127.0.0.1", "Port": 0, "SecretKey": "bench"}}
    path = root / "coflows_config.json"
    path.write_text(json.dumps(config))
    return path


def _per_call(runtime: Any, caller: str, callee: str, n: int) -> float:
    """µs per call of callee's Add from caller's code (n calls in one loop in the caller)."""
    ref = f"{QUERY[caller]}/Bench"
    start = time.perf_counter()
    total = runtime.call(ref, QUERY[callee], "Add", n)
    elapsed = time.perf_counter() - start
    if int(total) != n * (n + 1) // 2:  # sum of (i + 1): every call answered, and right
        raise RuntimeError(f"{caller} → {callee}: Bench returned {total}, expected {n * (n + 1) // 2}")
    return elapsed / n * 1e6


def measure(rounds: int = 5, scale: float = 1.0) -> dict[str, dict[str, float]]:
    """{caller: {callee: µs per call}} (median of `rounds` interleaved rounds)."""
    with loaded_runtime(_workspace, "matrix") as runtime:
        counts = {x: max(50, int(CALLS[x] * scale)) for x in LANGS}
        for x in LANGS:  # warm-up: JIT, caches, first compilations
            for y in LANGS:
                _per_call(runtime, x, y, max(50, counts[x] // 10))
        samples: dict[tuple[str, str], list[float]] = {(x, y): [] for x in LANGS for y in LANGS}
        for _ in range(rounds):
            for x in LANGS:
                for y in LANGS:
                    samples[(x, y)].append(_per_call(runtime, x, y, counts[x]))
        return {x: {y: round(statistics.median(samples[(x, y)]), 2) for y in LANGS} for x in LANGS}


def table(m: dict[str, dict[str, float]], raw: dict[str, float] | None = None) -> str:
    """The matrix as text: rows are callers, columns callees; `raw` (µs per raw bridge call of each
    callee language, from the same run) is printed as a last row."""
    w = 11
    lines = ["µs per call, caller (row) → callee (column), medians of interleaved rounds", "",
             f"{'caller':12}" + "".join(f"{y:>{w}}" for y in LANGS)]
    for x in LANGS:
        lines.append(f"{x:12}" + "".join(f"{m[x][y]:>{w}.2f}" for y in LANGS))
    if raw:
        lines.append(f"{'raw bridge':12}" + "".join(
            f"{raw[y]:>{w}.2f}" if raw.get(y) is not None else f"{'-':>{w}}" for y in LANGS))
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(measure()))
