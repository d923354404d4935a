"""How responsive the server stays while calls of one workflow spin forever, per language.

For each language in turn, a fresh server runs two workflows: `Spin` (a function
that loops forever: `while True: pass`, `while (true) {}`) and `Other` (a
Python no-op). N spinning calls of `Spin` are started (N = the workflow cap,
`Server.WorkflowConcurrency`, threads // 2 by default), then `/health` and
`Other`'s no-op are timed one request at a time while they spin. The spinning
calls end at their time limit (`--limit`, the server's CallTimeout): 504s.

    .venv/bin/python bench/spin_health.py [--languages python,csharp,java,javascript] [--spinners 16] [--samples 200]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _common import PY, free_port, python_env, stop, wait_ready, write_workspace  # noqa: E402

SPIN = {
    "python": ("Spin.py", "Spin", "def Spin():\n    while True:\n        pass\n"),
    "csharp": ("Spin.cs", "Run", "public class Spin {\n    public static int Run() { while (true) {} }\n}\n"),
    "java": ("Spin.java", "Run", "public class Spin {\n    public static int Run() { while (true) {} }\n}\n"),
    "javascript": ("Spin.js", "Run", "function Run() { while (true) {} }\n"),
}


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def one_language(lang: str, spinners: int, samples: int, limit: float, extra: dict) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        file, fn, text = SPIN[lang]
        config = write_workspace(root / "spin", "Spin", {file: text}, CallTimeout=limit, **extra)
        other = write_workspace(root / "other", "Other", {"Noop.py": "def Noop(x: int):\n    return x\n"})
        cfg = json.loads(config.read_text())
        other_manifest = json.loads((other.parent / "mnt" / "package.json").read_text())
        other_manifest["ID"] = "bench-other-0000-0000-000000000001"
        (other.parent / "mnt" / "package.json").write_text(json.dumps(other_manifest))
        cfg["Workflow"] = [str(config.parent / "mnt" / "package.json"), str(other.parent / "mnt" / "package.json")]
        config.write_text(json.dumps(cfg))
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([PY, "-m", "coflows", "server", str(config), "--port", str(port),
                                   "--log-level", "error"], cwd=tmp, env=python_env())
        try:
            wait_ready(f"{base}/health", server)
            wait_ready(f"{base}/flow/query/Other/Noop.py/Noop?x=1", server)
            spin_url = f"{base}/flow/query/Spin/{file}/{fn}"
            statuses: list[int] = []

            def spin() -> None:
                with httpx.Client(timeout=limit + 60) as c:
                    statuses.append(c.get(spin_url).status_code)

            threads = [threading.Thread(target=spin) for _ in range(spinners)]
            started = time.monotonic()
            for t in threads:
                t.start()
            time.sleep(1.0)  # every spinner is in user code
            health, other_q = [], []
            with httpx.Client(base_url=base, timeout=60) as c:
                for _ in range(samples):
                    if time.monotonic() - started > limit - 1:
                        break  # only while they spin
                    t0 = time.perf_counter()
                    c.get("/health").raise_for_status()
                    t1 = time.perf_counter()
                    c.get("/flow/query/Other/Noop.py/Noop?x=1").raise_for_status()
                    t2 = time.perf_counter()
                    health.append((t1 - t0) * 1000)
                    other_q.append((t2 - t1) * 1000)
            for t in threads:
                t.join()
            return {"n": len(health), "health_p50": percentile(health, 0.5), "health_p99": percentile(health, 0.99),
                    "other_p50": percentile(other_q, 0.5), "other_p99": percentile(other_q, 0.99),
                    "statuses": sorted(set(statuses)), "ended_after_s": time.monotonic() - started}
        finally:
            stop(server)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--languages", default="python,csharp,java,javascript")
    ap.add_argument("--spinners", type=int, default=16)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--limit", type=float, default=12.0, help="the server's CallTimeout (seconds)")
    ap.add_argument("--threads", type=int, default=32, help="Server.Threads")
    args = ap.parse_args()
    print(f"{args.spinners} calls spinning in workflow Spin (Threads {args.threads}, CallTimeout {args.limit:g} s); "
          "requests one at a time, ms\n")
    print(f"{'language':11} {'samples':>7} {'health p50':>10} {'health p99':>10} {'other p50':>10} {'other p99':>10}  "
          "spinners got")
    for lang in [x for x in args.languages.split(",") if x]:
        r = one_language(lang, args.spinners, args.samples, args.limit, {"Threads": args.threads})
        print(f"{lang:11} {r['n']:7d} {r['health_p50']:10.2f} {r['health_p99']:10.2f} {r['other_p50']:10.2f} "
              f"{r['other_p99']:10.2f}  {r['statuses']} after {r['ended_after_s']:.1f} s", flush=True)
    print("\nTargets: /health p99 < 50 ms, another workflow's trivial query p99 < 100 ms.")


if __name__ == "__main__":
    main()
