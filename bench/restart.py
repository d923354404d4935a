"""How long the server is gone after its process dies: kill -9 of the supervisor's child → first answered query.

Runs `coflows server` (supervised) on a copy of the example workspace (Python, C#, Java and JavaScript
queries and agents), kills the server process `--rounds` times, and times until a query in each
language answers again. The supervisor waits its back-off (0.5 s, then 1 s, 2 s, …: the rounds
are spaced by 65 s with --reset so every kill is a first one; by default the back-off grows and is
reported apart). Usage: .venv/bin/python bench/restart.py [--rounds 3] [--python-only]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PY, REPO, dumps, free_port, python_env, stop, wait_ready, write_workspace  # noqa: E402

QUERIES = {"python": "/flow/query/Example/PythonQuery.py/Add?x=1&y=2",
           "csharp": "/flow/query/Example/CSharpQuery.cs/Add?x=1&y=2",
           "java": "/flow/query/Example/JavaQuery.java/Add?x=1&y=2",
           "javascript": "/flow/query/Example/JsQuery.js/Prices?days=1"}
BACKOFF = re.compile(r"restarting in ([\d.]+) s")


def child_pid(log: Path) -> int:
    return int(re.findall(r"server started \(pid (\d+)\)", log.read_text())[-1])


def example_workspace(root: Path) -> Path:
    shutil.copytree(REPO / "mnt", root / "mnt", ignore=shutil.ignore_patterns("database.db*", ".coflows"))
    config = root / "coflows_config.json"
    config.write_text('{"Database": {"Type": "sqlite", "Connection": "mnt/database.db"}, "Workflow": '
                      '"mnt/package.json", "Server": {"Host": "127.0.0.1", "Port": 0, "SecretKey": "bench"}}')
    return config


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--python-only", action="store_true", help="a one-query Python workspace instead")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="coflows-restart-"))
    if args.python_only:
        config = write_workspace(root, "Example", {"PythonQuery.py": "def Add(x: int, y: int):\n    return x + y\n"})
        queries = {"python": QUERIES["python"]}
    else:
        config = example_workspace(root)
        queries = QUERIES
    port = free_port()
    log = root / "server.log"
    base = f"http://127.0.0.1:{port}"
    with open(log, "wb") as out:
        proc = subprocess.Popen([PY, "-m", "coflows", "server", str(config), "--port", str(port)], cwd=root,
                                stdout=out, stderr=subprocess.STDOUT, env=python_env())
    results = []
    try:
        wait_ready(f"{base}/health", proc, timeout=180)
        with httpx.Client(base_url=base, timeout=60) as client:
            for q in queries.values():
                assert client.get(q).status_code == 200, q
            for _ in range(args.rounds):
                pid = child_pid(log)
                killed = time.perf_counter()
                os.kill(pid, signal.SIGKILL)
                first: dict[str, float] = {}
                while len(first) < len(queries):
                    for lang, q in queries.items():
                        if lang in first:
                            continue
                        try:
                            if client.get(q).status_code == 200:
                                first[lang] = round(time.perf_counter() - killed, 2)
                        except httpx.HTTPError:
                            time.sleep(0.02)
                backoff = float(BACKOFF.findall(log.read_text())[-1])
                results.append({"backoff_s": backoff, "first_answer_s": first,
                                "without_backoff_s": round(max(first.values()) - backoff, 2)})
    finally:
        stop(proc)
        shutil.rmtree(root, ignore_errors=True)
    print(dumps({"workspace": "python-only" if args.python_only else "example (py, cs, java, js)",
                 "rounds": results}))


if __name__ == "__main__":
    main()
