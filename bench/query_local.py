"""`coflows query local PythonQuery.py Add 1 2` on the example workspace: on-demand loading against
loading everything (what `query local` did before issue 19), interleaved, in one run.

Each round runs both as subprocesses on a copy of the example workspace (Python, C#, Java and
JavaScript queries and Base): `coflows query local …` as shipped, and the same call after
`Runtime.load()` (every query, so Mono, the JVM and V8 start). Reports the median wall time of
each and their ratio. Usage: .venv/bin/python bench/query_local.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PY, dumps, python_env  # noqa: E402
from restart import example_workspace  # noqa: E402

EAGER = """
import json, os, sys
from coflows.config import load_config
from coflows.runtime import Runtime
rt = Runtime(load_config(None))
rt.load()
wf = rt.registry.default_workflow()
print(json.dumps(rt.calls.run(lambda: rt.call("PythonQuery.py/Add", "1", "2", workflow=wf.id), label="x")))
sys.stdout.flush()
os._exit(0)
"""


def timed(cmd: list[str], cwd: Path) -> float:
    t = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=python_env(), timeout=300)
    elapsed = time.perf_counter() - t
    if r.returncode != 0 or r.stdout.strip() != "3":
        raise RuntimeError(f"{cmd}: {r.returncode} {r.stdout!r} {r.stderr[-2000:]}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="coflows-query-local-"))
    try:
        example_workspace(root)
        timed([PY, "-m", "coflows", "query", "local", "PythonQuery.py", "Add", "1", "2"], root)  # warm caches
        on_demand, eager = [], []
        for _ in range(args.rounds):
            on_demand.append(timed([PY, "-m", "coflows", "query", "local", "PythonQuery.py", "Add", "1", "2"], root))
            eager.append(timed([PY, "-c", EAGER], root))
        a, b = statistics.median(on_demand), statistics.median(eager)
        print(dumps({"rounds": args.rounds, "on_demand_s": [round(x, 2) for x in on_demand],
                     "load_everything_s": [round(x, 2) for x in eager], "median_on_demand_s": round(a, 2),
                     "median_load_everything_s": round(b, 2), "speedup": round(b / a, 1)}))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
