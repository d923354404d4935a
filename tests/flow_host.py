"""A process hosting a FlowEngine, for the crash (SIGKILL) and shutdown (SIGTERM) tests.

    flow_host.py DB LOG --owner ID --submit [--steps N] [--sleep S] [--grace G] [--lease L]
    flow_host.py DB LOG --owner ID --resume RUN_ID [--grace G] [--lease L]

`--submit` starts a run of N sequential steps s1..sN and prints its id; `--resume`
starts an engine (which recovers unfinished runs) and waits for RUN_ID. Either
way the process then waits for the run to end and prints its final state.

Each step appends `start <tag> <pid>` to LOG when it begins and `end <tag> <pid>`
when it is done, so a test can count executions per task. On SIGTERM the host
shuts the engine down gracefully with the given grace period and exits 0.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time


class _Term(Exception):
    pass


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("log")
    parser.add_argument("--owner", required=True)
    parser.add_argument("--submit", action="store_true")
    parser.add_argument("--resume")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--sleep", type=float, default=0.3)
    parser.add_argument("--grace", type=float, default=5.0)
    parser.add_argument("--lease", type=float, default=5.0)
    opts = parser.parse_args()

    from coflows.flows import Flow, FlowEngine, PythonResolver
    from coflows.store import Database

    def step(tag: str, sleep: float) -> str:
        with open(opts.log, "a") as f:
            f.write(f"start {tag} {os.getpid()}\n")
        time.sleep(sleep)
        with open(opts.log, "a") as f:
            f.write(f"end {tag} {os.getpid()}\n")
        return tag

    def collect(input: list) -> list:
        return input

    resolver = PythonResolver({"Steps.py/step": step, "Steps.py/collect": collect})
    engine = FlowEngine(Database(f"sqlite:///{opts.db}"), resolver, max_workers=2, owner_id=opts.owner,
                        lease_seconds=opts.lease)

    def on_term(_sig: int, _frame: object) -> None:
        raise _Term()

    signal.signal(signal.SIGTERM, on_term)
    try:
        engine.start()
        if opts.submit:
            flow = Flow("steps")
            for i in range(1, opts.steps + 1):
                flow.task(f"s{i}", "Steps.py/step", f"s{i}", opts.sleep, after=[f"s{i - 1}"] if i > 1 else [])
            run_id = engine.submit(flow)
        else:
            run_id = opts.resume
        print(run_id, flush=True)
        view = engine.wait(run_id, 60)
        print(view.state, flush=True)
        engine.shutdown(opts.grace)
        return 0
    except _Term:
        engine.shutdown(opts.grace)
        print("shutdown", flush=True)
        return 0


if __name__ == "__main__":
    sys.exit(main())
