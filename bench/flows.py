"""Flow engine overhead, with durable state on SQLite, against Prefect 3 doing the same in-process.

    .venv/bin/python bench/flows.py [--quick] [--no-peer]

(a) 40 sequential no-op Python tasks: total time and orchestration overhead per task;
(b) a 3-step trivial flow: median and p95 submit→finished latency over 200 runs,
    and flows/s with concurrent submissions (8 threads);
(c) the same measured by Prefect 3 (bench/peers/prefect_flows.py, run in
    bench/peers/.venv — create it with bench/peers/setup.sh), and the ratios;
(d) 1,000 no-op tasks fanned out on a Dask LocalCluster of 2 workers through
    coflows against the same tasks submitted straight to Dask (bench/flows_dask.py);
(e) the time to render a 500-node DAG in the live DAG page in headless Chromium,
    against a 50-node one (bench/flows_page.py).

Prints figures only; no assertions. Targets: per-task overhead ≤ 2 ms,
3-step median ≤ 5 ms, ≥ 10× faster than Prefect, Dask / coflows ≥ 0.5.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEER_PY = HERE / "peers" / ".venv" / "bin" / "python"
PEER_SCRIPT = HERE / "peers" / "prefect_flows.py"


def noop(x=None):
    return x


def measure(seq_reps: int, latency_runs: int, threads: int, per_thread: int) -> dict:
    from coflows.flows import Flow, FlowEngine, PythonResolver, parse_spec
    from coflows.store import Database

    tmp = tempfile.mkdtemp(prefix="coflows-bench-")
    db = Database(f"sqlite:///{tmp}/flows.db")
    resolver = PythonResolver({"Bench.py/noop": noop})
    engine = FlowEngine(db, resolver, max_workers=8).start()
    try:
        seq = Flow("seq40")
        for i in range(40):
            seq.task(f"t{i}", "Bench.py/noop", after=[f"t{i - 1}"] if i else [])
        seq40 = parse_spec(seq, resolver=resolver)
        three = parse_spec("Bench.py/noop; Bench.py/noop; Bench.py/noop", resolver=resolver)

        def run(spec) -> float:
            t0 = time.perf_counter()
            run_id = engine.submit(spec)
            view = engine.wait(run_id, 60)
            took = time.perf_counter() - t0
            assert view.state == "finished", view.state
            return took

        for _ in range(3):  # warm up: SQLAlchemy statement caches, threads
            run(seq40)
            run(three)
        seq = [run(seq40) for _ in range(seq_reps)]
        lat = sorted(run(three) for _ in range(latency_runs))
        text_lat = sorted(run("Bench.py/noop; Bench.py/noop; Bench.py/noop") for _ in range(latency_runs // 4))

        errors: list[BaseException] = []

        def worker() -> None:
            try:
                for _ in range(per_thread):
                    run(three)
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        pool = [threading.Thread(target=worker) for _ in range(threads)]
        t0 = time.perf_counter()
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        conc = time.perf_counter() - t0
        if errors:
            raise errors[0]

        # fire-and-forget submissions, then wait for all: the engine batches them
        t0 = time.perf_counter()
        ids = [engine.submit(three) for _ in range(threads * per_thread)]
        for run_id in ids:
            engine.wait(run_id, 60)
        burst = time.perf_counter() - t0
    finally:
        engine.shutdown(1)
        db.dispose()
    seq_total = statistics.median(seq)
    return {
        "tool": "coflows",
        "seq40_total_ms": seq_total * 1000,
        "seq40_per_task_ms": seq_total * 1000 / 40,
        "three_median_ms": statistics.median(lat) * 1000,
        "three_p95_ms": lat[min(len(lat) - 1, int(0.95 * len(lat)))] * 1000,
        "three_text_median_ms": statistics.median(text_lat) * 1000,
        "latency_runs": len(lat),
        "flows_per_s": threads * per_thread / conc,
        "burst_flows_per_s": threads * per_thread / burst,
        "concurrent_runs": threads * per_thread,
        "threads": threads,
    }


def peer(quick: bool) -> dict | None:
    if not PEER_PY.exists():
        print(f"\n(c) Prefect: skipped — create its venv with: bash {HERE / 'peers' / 'setup.sh'}")
        return None
    args = [str(PEER_PY), str(PEER_SCRIPT)]
    args += ["--seq-reps", "2", "--latency-runs", "10", "--threads", "4", "--per-thread", "2"] if quick else \
        ["--seq-reps", "3", "--latency-runs", "30", "--threads", "8", "--per-thread", "3"]
    print("\n(c) running Prefect (ephemeral server, SQLite); this takes a minute or two ...", flush=True)
    proc = subprocess.run(args, capture_output=True, text=True, timeout=1800)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("{")]
    if proc.returncode != 0 or not lines:
        print(f"    Prefect run failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
        return None
    return json.loads(lines[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--no-peer", action="store_true", help="skip Prefect")
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask fan-out comparison")
    parser.add_argument("--no-page", action="store_true", help="skip the DAG page render time")
    opts = parser.parse_args()
    ours = measure(seq_reps=3 if opts.quick else 7, latency_runs=50 if opts.quick else 200, threads=8,
                   per_thread=10 if opts.quick else 50)
    print("coflows flows, durable state on SQLite (WAL), LocalExecutor with 8 threads")
    print(f"(a) 40 sequential no-op tasks: {ours['seq40_total_ms']:.1f} ms total, "
          f"{ours['seq40_per_task_ms']:.3f} ms orchestration overhead per task   (target ≤ 2 ms)")
    print(f"(b) 3-step flow, submit→finished over {ours['latency_runs']} runs: median "
          f"{ours['three_median_ms']:.2f} ms, p95 {ours['three_p95_ms']:.2f} ms   (target median ≤ 5 ms)")
    print(f"    same with the graph string parsed at each submit: median {ours['three_text_median_ms']:.2f} ms")
    print(f"    {ours['threads']} threads submitting and waiting: {ours['flows_per_s']:.0f} flows/s; "
          f"{ours['concurrent_runs']} submitted at once: {ours['burst_flows_per_s']:.0f} flows/s")
    theirs = None if opts.no_peer else peer(opts.quick)
    if theirs:
        print(f"    {theirs['tool']} ({theirs.get('settings', '')}), ephemeral server start "
              f"{theirs['startup_s']:.1f} s (not counted)")
        print(f"    (a) 40 sequential tasks: {theirs['seq40_total_ms']:.0f} ms total, "
              f"{theirs['seq40_per_task_ms']:.2f} ms per task")
        print(f"    (b) 3-step flow over {theirs['latency_runs']} runs: median {theirs['three_median_ms']:.1f} ms, "
              f"p95 {theirs['three_p95_ms']:.1f} ms; {theirs['threads']} threads: {theirs['flows_per_s']:.2f} flows/s")
        print("ratios (Prefect / coflows; higher = coflows faster)")
        print(f"    per-task overhead  {theirs['seq40_per_task_ms'] / ours['seq40_per_task_ms']:.0f}×")
        print(f"    3-step median      {theirs['three_median_ms'] / ours['three_median_ms']:.0f}×")
        print(f"    3-step p95         {theirs['three_p95_ms'] / ours['three_p95_ms']:.0f}×")
        print(f"    flows/s (threads)  {ours['flows_per_s'] / theirs['flows_per_s']:.0f}×")
    dask = None
    if not opts.no_dask:
        import flows_dask

        dask = flows_dask.measure(tasks=1000, rounds=2 if opts.quick else 3)
        flows_dask.report(dask)
    page = None
    if not opts.no_page:
        import flows_page

        rounds = 3 if opts.quick else 7
        print("(e) ", end="")
        page = flows_page.measure(rounds)
        flows_page.report(page, rounds)
    print(json.dumps({"coflows": ours, "prefect": theirs, "dask": dask, "page": page}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
