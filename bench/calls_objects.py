"""Cost of holding another language's object: property get, method call, iteration of 100 items.

Run alone: `.venv/bin/python bench/calls_objects.py` (prints the table), or `measure()` for a dict;
`bench/calls.py` runs it and prints it after its own tables.

The workspace is bench/fixtures/objects: a `Thing` (property `Age`, method `Add`, `Items` of 100
ints) in C#, Java and Python, and in each language a query `Ops(owner, op, n)` that makes one
owner's Thing the way CoFlows code does (`import Bench.Base` and `qak.JVM.Runtime` in Python,
`Py.Import` and `JVM.Runtime` in C#, `CLRRuntime` in Java, `importNamespace` in JavaScript) and
does `op` n times. Beside each row, `raw` is the same operation done by Python directly on the
owner's object through the bridge (pythonnet, JPype, or plain Python): every proxy reaches the
object through Python, so `over` = proxy - raw is what the proxy adds. Medians of interleaved
rounds; one call starts each loop, amortized over n operations.
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

FIXTURE = REPO / "bench" / "fixtures" / "objects"
QUERY = {"python": "ObjPy.py", "csharp": "ObjCs.cs", "java": "ObjJava.java", "javascript": "ObjJs.js"}
PAIRS = [("python", "csharp"), ("python", "java"), ("csharp", "python"), ("csharp", "java"),
         ("java", "csharp"), ("java", "python"), ("javascript", "csharp"), ("javascript", "java"),
         ("javascript", "python")]
OPS = ("get", "call", "iter100")
OWNER_CLASS = {"csharp": "Bench.Base.Thing", "java": "benchbase.Thing"}
# operations per loop (iter100 walks 100 items per operation)
COUNT = {"get": 3000, "call": 3000, "iter100": 60}


def _workspace(root: Path) -> Path:
    mnt = root / "mnt"
    shutil.copytree(FIXTURE, mnt)
    files = sorted(p.relative_to(mnt).as_posix() for p in (mnt / "Base").rglob("*.*"))
    queries = sorted(p.name for p in (mnt / "Queries").iterdir())
    manifest = {"ID": "0b1ec75b-0000-4000-8000-00000000b0b0", "Name": "Objects",
                "Base": [{"Name": f.removeprefix("Base/"), "Content": f} for f in files],
                "Queries": [{"Name": q, "Content": f"Queries/{q}", "ID": q} for q in queries],
                "Agents": [], "Permissions": [{"ID": "Public", "Permission": 1}],
                "NuGets": [], "Pips": [], "Jars": [], "Bins": [], "Files": []}
    (mnt / "package.json").write_text(json.dumps(manifest))
    config = {"Database": {"Type": "sqlite", "Connection": "mnt/database.db"}, "Workflow": "mnt/package.json",
              "Server": {"Host": "127.0.0.1", "Port": 0, "SecretKey": "bench"}}
    path = root / "coflows_config.json"
    path.write_text(json.dumps(config))
    return path


def _expected(op: str, n: int) -> float:
    return {"get": 36.0 * n, "call": n * (n + 1) / 2, "iter100": 4950.0 * n}[op]


def _per_op(runtime: Any, caller: str, owner: str, op: str) -> float:
    n = COUNT[op] if caller != "javascript" else max(10, COUNT[op] // 2)
    start = time.perf_counter()
    got = float(runtime.call(f"{QUERY[caller]}/Ops", owner, op, n))
    elapsed = time.perf_counter() - start
    if abs(got - _expected(op, n)) > 1e-6 * max(1.0, _expected(op, n)):
        raise RuntimeError(f"{caller} → {owner} {op}: Ops returned {got}, expected {_expected(op, n)}")
    return elapsed / n * 1e6


def _raw_ops(runtime: Any, owner: str) -> dict[str, Any]:
    """The same operations done by Python on the owner's object through the bridge itself."""
    from coflows import objects

    wid = runtime.registry.workflows()[0].id
    if owner == "python":
        thing = objects.resolve("Base.pyBase.thing", wid, namespace=False).Thing()
    else:
        thing = objects.resolve(OWNER_CLASS[owner], wid, namespace=False)()

    def get(n: int) -> float:
        s = 0.0
        for _ in range(n):
            s += thing.Age
        return s

    def call(n: int) -> float:
        s = 0.0
        for i in range(n):
            s += thing.Add(i, 1)
        return s

    def iter100(n: int) -> float:
        s = 0.0
        for _ in range(n):
            for x in thing.Items:
                s += x
        return s

    return {"get": get, "call": call, "iter100": iter100}


def _raw_per_op(fn: Any, op: str) -> float:
    n = COUNT[op] * 10
    start = time.perf_counter()
    fn(n)
    return (time.perf_counter() - start) / n * 1e6


def measure(rounds: int = 5) -> dict[str, Any]:
    """{"pairs": {"caller->owner": {op: µs}}, "raw": {owner: {op: µs}}} (medians of interleaved rounds)."""
    with loaded_runtime(_workspace, "objects") as runtime:
        raw_fns = {owner: _raw_ops(runtime, owner) for owner in ("csharp", "java", "python")}
        for caller, owner in PAIRS:  # warm-up: JIT, caches, first conversions
            for op in OPS:
                _per_op(runtime, caller, owner, op)
        samples: dict[tuple[str, str, str], list[float]] = {}
        raw_samples: dict[tuple[str, str], list[float]] = {}
        for _ in range(rounds):
            for caller, owner in PAIRS:
                for op in OPS:
                    samples.setdefault((caller, owner, op), []).append(_per_op(runtime, caller, owner, op))
            for owner, fns in raw_fns.items():
                for op in OPS:
                    raw_samples.setdefault((owner, op), []).append(_raw_per_op(fns[op], op))
    pairs: dict[str, dict[str, float]] = {}
    for (caller, owner, op), values in samples.items():
        pairs.setdefault(f"{caller}->{owner}", {})[op] = statistics.median(values)
    raw: dict[str, dict[str, float]] = {}
    for (owner, op), values in raw_samples.items():
        raw.setdefault(owner, {})[op] = statistics.median(values)
    return {"pairs": pairs, "raw": raw}


RAW_WHAT = {"csharp": "pythonnet", "java": "JPype", "python": "plain Python"}


def table(result: dict[str, Any]) -> str:
    lines = ["µs per operation on another language's object (iter100: one walk over 100 items), medians;",
             "raw = Python on the same object through the bridge itself, same run; over = proxy - raw", "",
             f"{'caller -> owner':22}" + "".join(f"{op + ' proxy':>15}{'raw':>8}{'over':>8}" for op in OPS)]
    for pair, ops in result["pairs"].items():
        owner = pair.split("->")[1]
        cells = ""
        for op in OPS:
            raw = result["raw"][owner][op]
            cells += f"{ops[op]:15.2f}{raw:8.2f}{ops[op] - raw:8.2f}"
        lines.append(f"{pair:22}{cells}")
    lines.append("raw bridge: " + "; ".join(f"{o}: {w}" for o, w in RAW_WHAT.items()))
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(measure()))
