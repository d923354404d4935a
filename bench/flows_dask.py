"""1,000 no-op tasks on a Dask `LocalCluster` of 2 worker processes: through coflows against straight Dask.

    .venv/bin/python bench/flows_dask.py [--tasks 1000] [--rounds 3]

coflows: one flow run whose map node fans out into `--tasks` items, each a call
of a Python query function (`Bench.py/noop`) on a worker that loaded the
workspace; the engine keeps durable state in SQLite (every item's state and
output is stored). Timed from submit until the run is finished.
Dask: `client.map(noop, range(n))` and `gather`, on the same cluster.
Rounds alternate between the two; medians are compared. Target: ratio
(Dask time / coflows time) ≥ 0.5.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import write_workspace  # noqa: E402

NOOP = "def noop(x=None):\n    return x\n"


def measure(tasks: int = 1000, rounds: int = 3) -> dict:
    from distributed import Client, LocalCluster

    from coflows.config import load_config
    from coflows.flows import Flow, FlowEngine
    from coflows.flows.dask_executor import DaskExecutor
    from coflows.flows.dask_worker import CoflowsWorkerPlugin
    from coflows.flows.registry_resolver import RegistryResolver
    from coflows.runtime import Runtime

    root = Path(tempfile.mkdtemp(prefix="coflows-bench-dask-"))
    config = load_config(write_workspace(root, "DaskBench", {"Bench.py": NOOP}))
    runtime = Runtime(config)
    runtime.load()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, \
            Client(cluster.scheduler_address, set_as_default=False) as client:
        executor = DaskExecutor(cluster.scheduler_address, CoflowsWorkerPlugin(config))
        engine = FlowEngine(runtime.database, RegistryResolver(runtime.registry), max_workers=1024,
                            executor=executor).start()
        spec = Flow("fan-out").map("noop", "Bench.py/noop", over=list(range(tasks))).spec()

        def via_coflows() -> float:
            t0 = time.perf_counter()
            run_id = engine.submit(spec)
            view = engine.wait(run_id, 600)
            took = time.perf_counter() - t0
            assert view.state == "finished", (view.state, view.error)
            assert view.task("noop").output == list(range(tasks))
            return took

        noop = lambda x: x  # noqa: E731 - pickled by value, so workers need no bench module

        def via_dask() -> float:
            t0 = time.perf_counter()
            out = client.gather(client.map(noop, range(tasks), pure=False))
            took = time.perf_counter() - t0
            assert out == list(range(tasks))
            return took

        try:
            via_dask()  # warm up: connections, the plugin loaded, statement caches
            via_coflows()
            ours, theirs = [], []
            for _ in range(rounds):
                theirs.append(via_dask())
                ours.append(via_coflows())
        finally:
            engine.shutdown(5)
            runtime.close()
    c, d = statistics.median(ours), statistics.median(theirs)
    return {"tasks": tasks, "rounds": rounds, "coflows_s": c, "dask_s": d, "ratio": d / c,
            "coflows_tasks_per_s": tasks / c, "dask_tasks_per_s": tasks / d,
            "coflows_samples_s": ours, "dask_samples_s": theirs}


def report(r: dict) -> None:
    print(f"(d) {r['tasks']} no-op tasks fanned out on a LocalCluster of 2 worker processes "
          f"(median of {r['rounds']} alternating rounds)")
    print(f"    straight to Dask (client.map + gather): {r['dask_s'] * 1000:.0f} ms "
          f"({r['dask_tasks_per_s']:.0f} tasks/s)")
    print(f"    through coflows (map node, durable state on SQLite): {r['coflows_s'] * 1000:.0f} ms "
          f"({r['coflows_tasks_per_s']:.0f} tasks/s)")
    print(f"    ratio Dask / coflows: {r['ratio']:.2f}   (target ≥ 0.5)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    opts = parser.parse_args()
    r = measure(opts.tasks, opts.rounds)
    report(r)
    print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
