"""Replicas behind HAProxy: request throughput with 1 and 3 replicas, and the takeover time of a
killed replica's agents.

One PostgreSQL cluster, three `coflows server --no-supervisor` processes on one workspace, and two
HAProxy instances: one balancing over replica 1 only, one over all three (round robin, health
checks on /health; the config of tests/replicas.py). wrk loads a no-op Python query through each,
in alternating rounds (median shown), so load from elsewhere on a shared machine does not land on
one side only.

Honest limit: on a machine with 2 cores, 3 replicas cannot scale a CPU-bound no-op: HAProxy, wrk,
PostgreSQL and the replicas share the same two cores, and one replica already keeps about one core
busy. The 3-replica figure there shows the cost of balancing, not a gain; on a machine with more
cores than replicas the throughput grows with the replicas until the balancer or the database is
the limit.

Takeover: a cron agent fires every second; the bench kills (SIGKILL) the replica that fires it
and measures the time from the kill to the first firing by another replica, twice (3 → 2 → 1
replicas). It is bounded by the agents' lease time (`Agents.LeaseSeconds`) plus one heartbeat and
the next whole second of the schedule.

    .venv/bin/python bench/replicas.py [--seconds 5] [--connections 32] [--rounds 3] [--agent-lease 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from _common import wrk  # noqa: E402

NOOP = "def Noop(x: int):\n    return x\n"
TICKER = '''
import os
import time

AGENT = {{"ID": "ticker", "Schedule": "* * * ? * *"}}

def Job(timestamp, execution_type):
    path = os.path.join({folder!r}, f"{{os.getpid()}}-{{time.time():.3f}}")
    open(path, "w").close()
'''


def firings(folder: Path) -> list[tuple[int, float]]:
    """(pid, time) of every firing so far."""
    out = []
    for p in folder.iterdir():
        pid, _, t = p.name.partition("-")
        out.append((int(pid), float(t)))
    return sorted(out, key=lambda x: x[1])


def takeover(cluster, folder: Path, timeout: float = 120) -> tuple[float, int]:  # noqa: ANN001
    """Kill the replica firing the ticker; seconds until another replica fires it; the victim's pid."""
    deadline = time.monotonic() + timeout
    while not firings(folder):
        if time.monotonic() > deadline:
            raise SystemExit("the ticker never fired")
        time.sleep(0.05)
    pid = firings(folder)[-1][0]
    victim = cluster.by_pid(pid)
    killed = time.time()
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait(10)
    while time.monotonic() < deadline:
        after = [t for p, t in firings(folder) if p != pid and t > killed]
        if after:
            return after[0] - killed, pid
        time.sleep(0.02)
    raise SystemExit(f"no other replica fired the ticker within {timeout}s of the kill")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--agent-lease", type=float, default=3.0, help="Agents.LeaseSeconds of the replicas")
    args = ap.parse_args()

    from conftest import ADMIN_KEY
    from replicas import Cluster, HAProxy, replica_workspace  # tests/replicas.py
    from test_m_harness import _start_postgres

    pg = _start_postgres()
    tmp = Path(tempfile.mkdtemp(prefix="coflows-bench-replicas-"))
    folder = tmp / "firings"
    folder.mkdir()
    cluster = None
    one = None
    try:
        url = pg.create_database(f"bench_{uuid.uuid4().hex[:8]}")
        ws = replica_workspace(tmp / "ws", url, Agents={"LeaseSeconds": args.agent_lease},
                               Server={"Host": "127.0.0.1", "Port": 0, "SecretKey": ADMIN_KEY,
                                       "WorkflowConcurrency": args.connections})
        ws.add_query("Noop.py", NOOP)
        ws.add_agent("Ticker.py", TICKER.format(folder=str(folder)))
        cluster = Cluster(ws, 3, args=("--log-level", "warning")).start()
        one = HAProxy(tmp, [cluster.replicas[0].port]).start()
        path = "/flow/query/Test/Noop.py/Noop?p[0]=1"
        targets = {"replica 1 directly": cluster.replicas[0].base + path,
                   "HAProxy over 1 replica": one.base + path,
                   "HAProxy over 3 replicas": cluster.base + path}
        for name, target in targets.items():
            r = wrk(target, 2, args.connections)  # warm-up
            if r["non_2xx"]:
                raise SystemExit(f"{name}: {r['non_2xx']} answers were not 2xx")
        rounds: dict[str, list[dict]] = {}
        for i in range(args.rounds):
            names = list(targets) if i % 2 == 0 else list(reversed(targets))
            for name in names:
                rounds.setdefault(name, []).append(wrk(targets[name], args.seconds, args.connections))
        results = {name: sorted(rs, key=lambda r: r["rps"])[len(rs) // 2] for name, rs in rounds.items()}

        cores = os.cpu_count()
        print(f"\nwrk -t1 -c{args.connections} -d{args.seconds}s x {args.rounds} alternating rounds (median shown), "
              f"loopback, {cores} cores shared by wrk, HAProxy, PostgreSQL and the replicas\n")
        print(f"{'target':26} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
        for name, r in results.items():
            print(f"{name:26} {r['rps']:9.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['non_2xx']:8d}")
        ratio = results["HAProxy over 3 replicas"]["rps"] / results["HAProxy over 1 replica"]["rps"]
        print(f"\n3 replicas / 1 replica through HAProxy: {ratio:.2f}"
              + (f" (only {cores} cores: 3 replicas cannot scale here)" if (cores or 0) < 4 else ""))

        print(f"\nagents' takeover (Agents.LeaseSeconds {args.agent_lease:g}, a firing every second):")
        for left in (2, 1):
            seconds, pid = takeover(cluster, folder)
            print(f"  SIGKILL of the firing replica (pid {pid}) -> first firing by another: {seconds:.2f} s "
                  f"({left} replica{'s' if left > 1 else ''} left)")
    finally:
        if one is not None:
            one.stop()
        if cluster is not None:
            cluster.close()
        pg.stop()
        shutil.rmtree(pg.root, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
