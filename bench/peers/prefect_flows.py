"""Prefect 3 doing bench/flows.py's measurements in-process, with an ephemeral local server on SQLite.

Run with bench/peers/.venv/bin/python (see setup.sh); prints one JSON object.
Arguments: --seq-reps N --latency-runs N --threads N --per-thread N
"""

from __future__ import annotations

import argparse
import contextvars
import json
import os
import statistics
import sys
import tempfile
import threading
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seq-reps", type=int, default=3)
    parser.add_argument("--latency-runs", type=int, default=50)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--per-thread", type=int, default=5)
    parser.add_argument("--default-heartbeats", action="store_true",
                        help="keep Prefect's flow-run heartbeat thread (its join adds up to 1 s per flow run)")
    opts = parser.parse_args()

    home = tempfile.mkdtemp(prefix="prefect-bench-")
    os.environ["PREFECT_HOME"] = home
    os.environ["PREFECT_API_DATABASE_CONNECTION_URL"] = f"sqlite+aiosqlite:///{home}/prefect.db"
    os.environ["PREFECT_SERVER_ALLOW_EPHEMERAL_MODE"] = "true"
    os.environ.pop("PREFECT_API_URL", None)
    os.environ["PREFECT_LOGGING_LEVEL"] = "ERROR"
    os.environ["PREFECT_LOGGING_TO_API_ENABLED"] = "false"
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ["DO_NOT_TRACK"] = "1"

    import prefect
    from prefect import flow, task
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    if opts.default_heartbeats:
        return measure(prefect, flow, task, opts, "default settings")
    # Prefect's best case: without the heartbeat thread, whose 1 s sleep steps delay every flow's end.
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        return measure(prefect, flow, task, opts, "flow-run heartbeats off")


def measure(prefect, flow, task, opts, settings: str) -> int:

    @task
    def noop(x=None):
        return x

    @flow
    def seq40():
        x = None
        for _ in range(40):
            x = noop(x)
        return x

    @flow
    def three():
        return noop(noop(noop(1)))

    t0 = time.perf_counter()
    three()  # starts the ephemeral server, creates the database
    startup = time.perf_counter() - t0
    seq40()

    seq = []
    for _ in range(opts.seq_reps):
        t0 = time.perf_counter()
        seq40()
        seq.append(time.perf_counter() - t0)

    lat = []
    for _ in range(opts.latency_runs):
        t0 = time.perf_counter()
        three()
        lat.append(time.perf_counter() - t0)
    lat.sort()

    def worker():
        for _ in range(opts.per_thread):
            three()

    threads = [threading.Thread(target=contextvars.copy_context().run, args=(worker,))
               for _ in range(opts.threads)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    conc = time.perf_counter() - t0

    seq_total = statistics.median(seq)
    print(json.dumps({
        "tool": f"prefect {prefect.__version__}",
        "settings": settings,
        "startup_s": startup,
        "seq40_total_ms": seq_total * 1000,
        "seq40_per_task_ms": seq_total * 1000 / 40,
        "three_median_ms": statistics.median(lat) * 1000,
        "three_p95_ms": lat[min(len(lat) - 1, int(0.95 * len(lat)))] * 1000,
        "latency_runs": len(lat),
        "flows_per_s": opts.threads * opts.per_thread / conc,
        "concurrent_runs": opts.threads * opts.per_thread,
        "threads": opts.threads,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
