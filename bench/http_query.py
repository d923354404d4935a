"""HTTP throughput of a no-op query through coflows against a bare Starlette route, in one run.

Both servers run under the same uvicorn settings (one process, uvloop/httptools
when installed, no access log), side by side, and are loaded by the same wrk
command in alternating rounds (bare, coflows, bare, coflows, …); the median
round of each is reported, so a burst of load from elsewhere on a shared
machine does not land on one side only. The baseline route is `async def` (the common bare Starlette
route); the figure for a sync route (Starlette runs it in a thread, like
coflows runs user code) is printed too, for reference.

    .venv/bin/python bench/http_query.py [--seconds 10] [--connections 32] [--languages python,csharp,java,javascript]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import PY, free_port, python_env, stop, wait_ready, write_workspace, wrk  # noqa: E402

NOOPS = {
    "python": ("Noop.py", "def Noop(x: int):\n    return x\n"),
    "csharp": ("Noop.cs", "public class Noop {\n    public static int Run(int x) { return x; }\n}\n"),
    "java": ("Noop.java", "public class Noop {\n    public static int Run(int x) { return x; }\n}\n"),
    "javascript": ("Noop.js", "/** @param {number} x */\nfunction Run(x) { return x; }\n"),
}
FUNCTION = {"python": "Noop", "csharp": "Run", "java": "Run", "javascript": "Run"}


def make_workspace(root: Path, languages: list[str], connections: int) -> Path:
    # The workflow's bulkhead admits every connection: this measures calls, not 503s (non-2xx is printed).
    return write_workspace(root, "Bench", {NOOPS[lang][0]: NOOPS[lang][1] for lang in languages},
                           WorkflowConcurrency=connections)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--languages", default="python")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    languages = [lang for lang in args.languages.split(",") if lang]

    rounds: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        bare_port, port = free_port(), free_port()
        config = make_workspace(Path(tmp), languages, args.connections)
        bare = subprocess.Popen([PY, str(Path(__file__).parent / "bare_app.py"), str(bare_port)], env=python_env())
        server = subprocess.Popen([PY, "-m", "coflows", "server", str(config), "--port", str(port), "--log-level", "warning"],
                                  cwd=tmp, env=python_env())
        try:
            targets = {
                "bare starlette (async route)": f"http://127.0.0.1:{bare_port}/noop?p[0]=1",
                "bare starlette (sync route)": f"http://127.0.0.1:{bare_port}/noop_sync?p[0]=1",
            }
            for lang in languages:
                targets[f"coflows {lang} no-op"] = (
                    f"http://127.0.0.1:{port}/flow/query/Bench/{NOOPS[lang][0]}/{FUNCTION[lang]}?p[0]=1")
            wait_ready(targets["bare starlette (async route)"], bare)
            for name, url in targets.items():
                wait_ready(url, server if name.startswith("coflows") else bare)
                wrk(url, 2, args.connections)  # warm-up (JIT, caches)
            for _ in range(args.rounds):
                for name, url in targets.items():
                    rounds.setdefault(name, []).append(wrk(url, args.seconds, args.connections))
        finally:
            stop(bare)
            stop(server)
    results = {name: sorted(rs, key=lambda r: r["rps"])[len(rs) // 2] for name, rs in rounds.items()}

    base = results["bare starlette (async route)"]["rps"]
    print(f"\nwrk -t1 -c{args.connections} -d{args.seconds}s x {args.rounds} alternating rounds (median shown), "
          "loopback, one uvicorn process each\n")
    print(f"{'target':34} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} {'ratio':>6}")
    for name, r in results.items():
        print(f"{name:34} {r['rps']:9.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['non_2xx']:8d} {r['rps'] / base:6.2f}")
    print("\nratio = req/s / bare async route in the same run. Targets: python >= 0.8, csharp >= 0.7, java >= 0.75")


if __name__ == "__main__":
    main()
