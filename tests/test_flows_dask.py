"""Flows on a real Dask cluster (`distributed.LocalCluster`, worker processes) through the real server.

The server runs with `"Executor": {"Type": "dask", "Scheduler": ...}`; each worker
loads the workspace with the same engines, so tasks in Python, C#, Java and
JavaScript run in the worker processes, and their outputs come back to the run's
durable state. A worker killed mid-task has its task run again elsewhere.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

import pytest

from conftest import new_workspace
from test_flows_http import wait_run

distributed = pytest.importorskip("distributed")

TASKS = '''
import os
import time
from pathlib import Path
from coflows.flows import current_task

def pid():
    return os.getpid()

def square(x):
    return {"x": x, "square": x * x, "pid": os.getpid()}

def total(input):
    return {"sum": sum(r["square"] for r in input[0]), "pids": sorted({r["pid"] for r in input[0]})}

def flaky(x, marker: str):
    """Fails the first time it sees x == 2 (the marker file remembers, across processes)."""
    m = Path(marker) / f"flaky-{x}"
    if x == 2 and not m.exists():
        m.write_text("once")
        raise ValueError(f"item {x} failed once")
    return x

def broken(x):
    if x == 1:
        raise KeyError("no such item")
    return x

def slow(marker: str, seconds: float = 4.0):
    """Writes the pid of the process that runs it, then works for a while."""
    Path(marker, f"start-{os.getpid()}-{time.time_ns()}").write_text(str(os.getpid()))
    time.sleep(seconds)
    return os.getpid()

def grow(n: int):
    current_task().add_child("grown", "Tasks.py/square", args=[n])
    return n
'''

CALC_CS = '''
using System.Diagnostics;

public class Calc
{
    public static int Pid() { return Process.GetCurrentProcess().Id; }
    public static int Twice(int x) { return 2 * x; }
}
'''

CALC_JAVA = '''
public class JCalc {
    public static long pid() { return ProcessHandle.current().pid(); }
    public static int thrice(int x) { return 3 * x; }
}
'''

CALC_JS = '''
/** The pid of the process V8 runs in, asked of Python in the same process. */
async function pidViaPython() {
  return await coflows.call('Tasks.py', 'pid')
}
function half(x) { return x / 2 }
'''


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as c:
        yield c


@pytest.fixture(scope="module")
def dask_server(tmp_path_factory, cluster):
    from conftest import Server

    root = tmp_path_factory.mktemp("dask") / "ws"
    ws = new_workspace(root, name="Dask", Executor={"Type": "dask", "Scheduler": cluster.scheduler_address})
    ws.add_query("Tasks.py", TASKS)
    ws.add_query("Calc.cs", CALC_CS)
    ws.add_query("JCalc.java", CALC_JAVA)
    ws.add_query("calc.js", CALC_JS)
    server = Server(ws).start(timeout=180)
    yield server
    server.close()


def _pids_by_nanny(cluster) -> set[int]:
    from distributed import Client

    with Client(cluster.scheduler_address, set_as_default=False) as client:
        return set(client.run(os.getpid).values())


def submit(server, spec, **body) -> dict:
    r = server.post("/flows/Dask/runs", json={"spec": spec, **body})
    assert r.status_code == 201, r.text
    return wait_run(server, r.json()["run_id"], timeout=120)


def test_tasks_in_all_four_languages_run_on_the_workers(dask_server, cluster):
    pids = _pids_by_nanny(cluster)
    assert len(pids) == 2 and dask_server.proc.pid not in pids
    spec = {"nodes": {
        "py": {"function": "Tasks.py/pid"},
        "cs": {"function": "Calc.cs/Pid"},
        "java": {"function": "JCalc.java/pid"},
        "js": {"function": "calc.js/pidViaPython"},
        "twice": {"function": "Calc.cs/Twice", "args": [21], "after": ["cs"]},
        "thrice": {"function": "JCalc.java/thrice", "args": [7], "after": ["java"]},
        "half": {"function": "calc.js/half", "args": [9], "after": ["js", "py"]},
    }}
    run = submit(dask_server, spec)
    assert run["state"] == "finished", run
    out = {t["node"]: t["output"] for t in run["tasks"]}
    for lang in ("py", "cs", "java", "js"):
        assert out[lang] in pids, (lang, out[lang], pids)
    assert (out["twice"], out["thrice"], out["half"]) == (42, 21, 4.5)
    # The durable state is the server's: the same run read back later has the same outputs.
    again = dask_server.get(f"/flows/runs/{run['id']}").json()
    assert {t["node"]: t["output"] for t in again["tasks"]} == out


def test_map_reduce_fans_out_over_both_workers(dask_server, cluster):
    spec = {"nodes": {
        "sq": {"function": "Tasks.py/square", "map": "numbers", "concurrency": 16},
        "total": {"function": "Tasks.py/total", "after": ["sq"]},
    }}
    run = submit(dask_server, spec, inputs={"numbers": list(range(60))})
    assert run["state"] == "finished", run
    total = next(t for t in run["tasks"] if t["node"] == "total")["output"]
    assert total["sum"] == sum(i * i for i in range(60))
    assert set(total["pids"]) <= _pids_by_nanny(cluster) and len(total["pids"]) == 2  # both workers did work
    items = [t for t in run["tasks"] if t["extra"].get("map") == "sq"]
    assert len(items) == 60 and [t["output"]["x"] for t in sorted(items, key=lambda t: t["extra"]["index"])] \
        == list(range(60))


def test_errors_retries_and_dag_changes_come_home_from_the_workers(dask_server, tmp_path):
    spec = {"nodes": {"f": {"function": "Tasks.py/flaky", "map": [1, 2, 3], "kwargs": {"marker": str(tmp_path)},
                            "retries": 2}}}
    # the engine's retry backoff starts at 1 s
    run = submit(dask_server, spec)
    assert run["state"] == "finished", run
    tasks = {t["node"]: t for t in run["tasks"]}
    assert tasks["f"]["output"] == [1, 2, 3] and tasks["f[1]"]["attempts"] == 2 and tasks["f[0]"]["attempts"] == 1

    run = submit(dask_server, {"nodes": {"b": {"function": "Tasks.py/broken", "map": [0, 1, 2]}}})
    tasks = {t["node"]: t for t in run["tasks"]}
    assert run["state"] == "failed" and tasks["b[1]"]["state"] == "failed"
    assert tasks["b[1]"]["error"] == "KeyError: 'no such item'" and tasks["b[1]"]["trace"]
    assert tasks["b"]["error"].startswith("1 of 3 items failed: b[1]: KeyError")

    run = submit(dask_server, "Tasks.py/grow", inputs={"n": 5})
    assert run["state"] == "finished", run
    tasks = {t["node"]: t for t in run["tasks"]}
    assert tasks["grown"]["added_by"] == "grow" and tasks["grown"]["output"]["square"] == 25


def test_a_worker_killed_mid_task_has_its_task_run_again_elsewhere(dask_server, cluster, tmp_path):
    r = dask_server.post("/flows/Dask/runs", json={
        "spec": {"nodes": {"slow": {"function": "Tasks.py/slow", "kwargs": {"marker": str(tmp_path)}}}}})
    assert r.status_code == 201, r.text
    run_id = r.json()["run_id"]
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob("start-*")):
        assert time.monotonic() < deadline, "the task never started on a worker"
        time.sleep(0.05)
    first = next(tmp_path.glob("start-*"))
    victim = int(first.read_text())
    os.kill(victim, signal.SIGKILL)
    run = wait_run(dask_server, run_id, timeout=120)
    assert run["state"] == "finished", run
    starts = sorted(tmp_path.glob("start-*"), key=lambda p: int(p.name.split("-")[2]))  # by start time
    assert len(starts) >= 2, [p.name for p in starts]
    output = run["tasks"][0]["output"]
    assert output != victim and output == int(Path(starts[-1]).read_text())


def test_a_dask_executor_without_a_reachable_scheduler_is_a_clear_error(tmp_path):
    from coflows.config import parse_config
    from coflows.errors import CoflowsError, ConfigError
    from coflows.flows.dask_executor import DaskExecutor

    with pytest.raises(ConfigError, match=r"Executor\.Type 'dask' needs Executor\.Scheduler"):
        parse_config({"Workflow": "mnt/package.json", "Executor": {"Type": "dask"}}, "coflows_config.json", tmp_path)
    config = parse_config({"Workflow": "mnt/package.json", "Executor": {"Type": "dask", "Scheduler": "tcp://h:1"}},
                          "coflows_config.json", tmp_path)
    assert config.executor.max_workers == 1024  # tasks in flight on the cluster by default

    from conftest import free_port

    address = f"tcp://127.0.0.1:{free_port()}"
    executor = DaskExecutor(address, connect_timeout=1)
    with pytest.raises(CoflowsError, match=rf"Executor\.Scheduler: cannot reach the Dask scheduler at '{address}'"):
        executor.start(lambda job, outcome: None)
