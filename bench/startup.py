"""Start time: `coflows server` to the first answered query, for the example workspace (four engines)
and for a Python-only workspace. Prints both.

Each workspace is a throwaway copy (the example is the repository's `mnt/`, with its Base and
agents; the Python-only one is one query file). The server runs as users start it (`python -m
coflows server <config>`, supervisor included) on a free port; the clock starts just before the
process is spawned and stops when the first query has answered 200 (for the example, then every
language's query is asked once more, and the time all four have answered is shown too). The
first start of each workspace is shown apart ("cold": nothing compiled yet, new database); the
figure is the median of the starts that follow it. Next to the wall clock, the CPU seconds the
server's processes (supervisor, server, their children) had used when the first query answered:
on a machine shared with other work the wall clock drifts with the load, the CPU time much less.

The server runs without PYTHONDONTWRITEBYTECODE (which this repository's dev shell sets): an
installed package has its bytecode compiled, and recompiling coflows' own ~200 modules at every
start (~0.2 s of CPU here) is not what a user's start costs. The cold start writes the caches.

    .venv/bin/python bench/startup.py [--starts 5] [--only example,python]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _common import PY, REPO, free_port, python_env, stop  # noqa: E402

KEY = "bench"
# The example's queries, one per language; the first is the one whose answer stops the clock.
EXAMPLE_QUERIES = {
    "python": "PythonQuery.py/Add?p[0]=1&p[1]=2",
    "csharp": "CSharpQuery.cs/Add?p[0]=1&p[1]=2",
    "java": "JavaQuery.java/Add?p[0]=1&p[1]=2",
    "javascript": "JsQuery.js/Prices?p[0]=1",
}
PY_ONLY = {"python": "Q.py/Add?p[0]=1&p[1]=2"}
TARGETS = {"example": 3.0, "python": 1.0}  # seconds (issue 21)


def example_workspace(root: Path) -> tuple[Path, str]:
    """A copy of the repository's example workspace (without its database); (config, workflow ID)."""
    shutil.copytree(REPO / "mnt", root / "mnt", ignore=shutil.ignore_patterns("database.db*", ".coflows"))
    return _config(root), json.loads((root / "mnt" / "package.json").read_text())["ID"]


def python_workspace(root: Path) -> tuple[Path, str]:
    mnt = root / "mnt"
    (mnt / "Queries").mkdir(parents=True)
    (mnt / "Queries" / "Q.py").write_text("def Add(x: int, y: int) -> int:\n    return x + y\n")
    wid = "bench-start-0000-0000-000000000000"
    manifest = {"ID": wid, "Name": "StartPy", "Queries": [{"Name": "Q.py", "Content": "Queries/Q.py", "ID": "Q.py"}],
                "Permissions": [{"ID": "Public", "Permission": 1}]}
    (mnt / "package.json").write_text(json.dumps(manifest))
    return _config(root), wid


def _config(root: Path) -> Path:
    config = {"Database": {"Type": "sqlite", "Connection": "mnt/database.db"}, "Workflow": "mnt/package.json",
              "Jupyter": False, "Server": {"Host": "127.0.0.1", "Port": 0, "SecretKey": KEY}}
    path = root / "coflows_config.json"
    path.write_text(json.dumps(config))
    return path


def tree_cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of `pid` and its live descendants (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    tree, frontier = {pid}, [pid]
    while frontier:
        p = frontier.pop()
        for child, parent in parents.items():
            if parent == p and child not in tree:
                tree.add(child)
                frontier.append(child)
    return sum(cpu.get(p, 0.0) for p in tree)


def one_start(config: Path, wid: str, queries: dict[str, str], timeout: float = 180) -> dict[str, float]:
    """Seconds from spawn to the first query answered, and to every query answered once."""
    port = free_port()
    base = f"http://127.0.0.1:{port}/flow/query/{wid}/"
    headers = {"x-api-key": KEY}
    start = time.perf_counter()
    env = python_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    proc = subprocess.Popen([PY, "-m", "coflows", "server", str(config), "--port", str(port), "--log-level", "warning"],
                            cwd=config.parent, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        first_url = base + next(iter(queries.values()))
        with httpx.Client(timeout=timeout) as client:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"server exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
                if time.perf_counter() - start > timeout:
                    raise RuntimeError(f"no answer after {timeout}s")
                try:
                    r = client.get(first_url, headers=headers)
                except httpx.TransportError:
                    time.sleep(0.01)  # not listening yet (the supervisor binds the port first)
                    continue
                if r.status_code != 200:
                    raise RuntimeError(f"{first_url}: {r.status_code} {r.text[:500]}")
                first = time.perf_counter() - start
                cpu = tree_cpu_seconds(proc.pid)
                break
            for language, query in queries.items():
                r = client.get(base + query, headers=headers)
                if r.status_code != 200:
                    raise RuntimeError(f"{language}: {query}: {r.status_code} {r.text[:500]}")
            every = time.perf_counter() - start
        return {"first": first, "all": every, "cpu": cpu}
    finally:
        stop(proc)


def measure(kind: str, starts: int) -> dict:
    make, queries = (example_workspace, EXAMPLE_QUERIES) if kind == "example" else (python_workspace, PY_ONLY)
    with tempfile.TemporaryDirectory(prefix=f"coflows-start-{kind}-") as tmp:
        config, wid = make(Path(tmp))
        cold = one_start(config, wid, queries)
        runs = [one_start(config, wid, queries) for _ in range(starts)]
    return {"cold": cold, "runs": runs, "first": statistics.median(r["first"] for r in runs),
            "all": statistics.median(r["all"] for r in runs), "cpu": statistics.median(r["cpu"] for r in runs)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--starts", type=int, default=5, help="measured starts after the cold one")
    ap.add_argument("--only", default="example,python")
    args = ap.parse_args()
    results = {kind: measure(kind, args.starts) for kind in args.only.split(",")}
    print(f"\n`coflows server` to the first answered query, seconds (median of {args.starts} starts after a cold one)\n")
    print(f"{'workspace':34} {'first query':>12} {'all answered':>13} {'CPU s':>6} {'cold':>7} {'target':>8}")
    names = {"example": "example (mnt/, four engines)", "python": "Python-only (one query)"}
    for kind, r in results.items():
        print(f"{names[kind]:34} {r['first']:12.2f} {r['all']:13.2f} {r['cpu']:6.2f} {r['cold']['first']:7.2f} "
              f"{'<= ' + str(TARGETS[kind]):>8}")
    print("\nstarts: " + "; ".join(f"{kind}: " + " ".join(f"{x['first']:.2f}" for x in r["runs"])
                                   for kind, r in results.items()))


if __name__ == "__main__":
    main()
