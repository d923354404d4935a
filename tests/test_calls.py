"""The calls core over real servers: time limits (504), stuck threads replaced, bulkheads (503),
a gone client stops its call, agent hooks and flow tasks under the same limits, and the server
answering other requests while Python calls spin (the old inline policy froze it)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest

from conftest import ADMIN_KEY, Server, new_workspace

OTHER_WID = "99999999-2222-3333-4444-555555555555"

SPIN_PY = '''import time
import coflows

def Spin(n: int):
    """n == 0 loops for ever (the old finding: Spin?n=0 x40, then Spin?n=1 froze the server)."""
    i = 0
    while n == 0 or i < n:
        i += 1
    return i

def Sleep(seconds: float):
    time.sleep(seconds)  # a blocking C call: an asynchronous exception cannot stop it
    return seconds

### <api name="Documented" timeout="1"><description>loops; limited by its doc comment</description></api>
def Documented():
    while True:
        pass

@coflows.timeout(1)
def Decorated():
    while True:
        pass

def Tick(path: str):
    while True:
        with open(path, "a") as f:
            f.write("x")
        time.sleep(0.02)

def Noop(x: int):
    return x
'''


def two_workflows(root: Path, **server: object) -> object:
    """Workflow `Spin` (SPIN_PY) and workflow `Other` (a no-op), served together."""
    ws = new_workspace(root / "spin", name="Spin")
    ws.config["Server"].update(server)
    ws.add_query("Q.py", SPIN_PY)
    other = new_workspace(root / "other", name="Other", wid=OTHER_WID)
    other.add_query("O.py", "def Noop(x: int):\n    return x\n")
    ws.config["Workflow"] = [str(ws.mnt / "package.json"), str(other.mnt / "package.json")]
    ws.save()
    return ws


def in_background(server: Server, path: str, n: int, timeout: float = 120) -> tuple[list, list[threading.Thread]]:
    """`n` GETs of `path` on their own connections; returns (responses, threads)."""
    out: list = []

    def one() -> None:
        with httpx.Client(base_url=server.base, timeout=timeout) as c:
            try:
                out.append(c.get(path))
            except httpx.HTTPError as e:
                out.append(e)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    return out, threads


def max_latency(server: Server, paths: list[str], samples: int) -> dict[str, float]:
    worst = dict.fromkeys(paths, 0.0)
    for _ in range(samples):
        for p in paths:
            t = time.monotonic()
            r = server.get(p)
            worst[p] = max(worst[p], time.monotonic() - t)
            assert r.status_code == 200, (p, r.status_code, r.text)
    return worst



def assert_served_while_spinning(s, spin_url: str, settle: float, spinners: int = 4) -> None:
    """While `spinners` calls of `spin_url` spin, /health and another workflow's no-op answer within
    1 s (generous: "not frozen"); then the spinners end with 504."""
    out, threads = in_background(s, spin_url, spinners)
    time.sleep(settle)
    worst = max_latency(s, ["/health", "/flow/query/Other/O.py/Noop?x=1"], 40)
    assert all(v < 1.0 for v in worst.values()), worst
    assert not out  # still spinning
    for t in threads:
        t.join()
    assert [r.status_code for r in out] == [504] * spinners

def test_spinning_python_call_gets_504_naming_function_and_limit(tmp_path, start_server):
    s = start_server(two_workflows(tmp_path, CallTimeout=2))
    t = time.monotonic()
    r = s.get("/flow/query/Spin/Q.py/Spin?n=0")
    took = time.monotonic() - t
    assert r.status_code == 504, r.text
    err = r.json()["error"]
    assert err["type"] == "CallTimeout"
    assert "Spin/Q.py/Spin" in err["message"] and "2 s" in err["message"]
    assert 1.9 < took < 6
    # the thread was stopped (an asynchronous exception), not written off: the pool serves on
    assert s.get("/flow/query/Spin/Q.py/Noop?x=5").json() == 5
    time.sleep(2)  # past the grace period
    calls = s.get("/health", headers=s.admin()).json()["calls"]
    assert calls["stopped"] == 1 and calls["written_off"] == 0


def test_own_timeout_from_doc_comment_and_decorator(tmp_path, start_server):
    s = start_server(two_workflows(tmp_path, CallTimeout=60))
    for fn in ("Documented", "Decorated"):
        t = time.monotonic()
        r = s.get(f"/flow/query/Spin/Q.py/{fn}")
        assert r.status_code == 504, r.text
        assert f"Spin/Q.py/{fn} did not finish in 1 s" in r.json()["error"]["message"]
        assert time.monotonic() - t < 10  # its own 1 s, not CallTimeout's 60 s


def test_unstoppable_calls_are_written_off_and_replaced(tmp_path, start_server):
    """Calls stuck in a blocking C call, more of them than the pool has threads, over two rounds:
    each round's threads are written off and replaced, so the pool still serves."""
    s = start_server(two_workflows(tmp_path, CallTimeout=1, Threads=3, WorkflowConcurrency=3))
    for _ in range(2):
        out, threads = in_background(s, "/flow/query/Spin/Q.py/Sleep?seconds=30", 3)
        for t in threads:
            t.join()
        assert sorted(r.status_code for r in out) == [504, 504, 504]
        time.sleep(2)  # past the grace period: the stuck threads are written off, their slots given back
    calls = s.get("/health", headers=s.admin()).json()["calls"]
    assert calls["written_off"] == 6
    assert calls["threads"] <= 6  # live threads, up to twice Threads; written-off ones do not count
    for _ in range(5):  # both workflows are served at once by fresh threads
        assert s.get("/flow/query/Spin/Q.py/Noop?x=1").json() == 1
        assert s.get("/flow/query/Other/O.py/Noop?x=2").json() == 2


def test_server_answers_while_python_calls_spin(tmp_path, start_server):
    """/health and another workflow's trivial query stay fast while the pool spins (generous bound)."""
    s = start_server(two_workflows(tmp_path, CallTimeout=30, Threads=8))
    assert_served_while_spinning(s, "/flow/query/Spin/Q.py/Spin?n=0", settle=1.0)  # the cap: 8 // 2


def test_old_findings_fast_calls_then_a_slow_one_do_not_freeze_the_server(tmp_path, start_server):
    """Before: after 20 fast calls a function ran inline on the event loop, so `Spin?n=0` x40 then
    `Spin?n=1`... froze everything (the same for `Prices?days=1` x40 then a slow `days`)."""
    s = start_server(two_workflows(tmp_path, CallTimeout=4))
    for _ in range(40):
        assert s.get("/flow/query/Spin/Q.py/Spin?n=1").json() == 1
    out, threads = in_background(s, "/flow/query/Spin/Q.py/Spin?n=0", 1)  # loops for ever
    slow, slow_threads = in_background(s, "/flow/query/Spin/Q.py/Spin?n=300000000", 1)  # a slow, finite one
    time.sleep(0.5)
    worst = max_latency(s, ["/health", "/flow/query/Other/O.py/Noop?x=1", "/flow/query/Spin/Q.py/Noop?x=1"], 20)
    assert all(v < 1.0 for v in worst.values()), worst
    for t in threads + slow_threads:
        t.join()
    assert out[0].status_code == 504 and slow[0].status_code == 504


def test_bulkhead_refuses_with_503_and_retry_after_while_others_are_served(tmp_path, start_server):
    s = start_server(two_workflows(tmp_path, CallTimeout=10, Threads=4, WorkflowConcurrency=2))
    out, threads = in_background(s, "/flow/query/Spin/Q.py/Spin?n=0", 2)
    time.sleep(1.5)  # both spinners hold their slots (a probe running meanwhile could take one)
    deadline = time.monotonic() + 6
    while s.get("/flow/query/Spin/Q.py/Noop?x=1").status_code != 503 and time.monotonic() < deadline:
        time.sleep(0.05)  # until both spinners hold their slots
    r = s.get("/flow/query/Spin/Q.py/Noop?x=1")
    assert r.status_code == 503
    assert r.headers["retry-after"] == "1"
    err = r.json()["error"]
    assert err["type"] == "WorkflowBusy" and "'Spin'" in err["message"] and "2" in err["message"]
    assert s.get("/flow/query/Other/O.py/Noop?x=7").json() == 7  # another workflow is not held up
    assert s.get("/health").status_code == 200
    for t in threads:
        t.join()
    assert [x.status_code for x in out] == [504, 504]
    assert s.get("/flow/query/Spin/Q.py/Noop?x=1").json() == 1  # slots are given back


def test_a_disconnected_client_stops_its_call(tmp_path, start_server):
    ws = two_workflows(tmp_path, CallTimeout=120)
    s = start_server(ws)
    ticks = tmp_path / "ticks.txt"
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{s.base}/flow/query/Spin/Q.py/Tick", params={"path": str(ticks)}, timeout=1.0)
    time.sleep(1.0)  # the watch notices the disconnect; the stop fires after the running sleep
    size = ticks.stat().st_size
    assert size > 10  # it did run
    time.sleep(1.0)
    assert ticks.stat().st_size == size  # and stopped: nothing written since
    assert s.get("/health", headers=s.admin()).json()["calls"]["stopped"] == 1


AGENT_SPIN = '''
AGENT = {"ID": "spinner", "Name": "Spinner"}

def Body(data: dict):
    if data.get("spin"):
        while True:
            pass
    return {"ok": True}
'''


def test_agent_hook_that_spins_is_stopped_by_the_limit(tmp_path, start_server):
    ws = new_workspace(tmp_path / "ws", name="Agents")
    ws.config["Server"]["CallTimeout"] = 2
    ws.add_agent("Spinner.py", AGENT_SPIN)
    s = start_server(ws)
    admin = {"x-api-key": ADMIN_KEY}
    t = time.monotonic()
    r = s.post("/flow/agent/spinner", json={"spin": True}, headers=admin)
    assert r.status_code == 504, r.text
    assert "did not finish in 2 s" in r.json()["error"]["message"]
    assert time.monotonic() - t < 8
    assert s.post("/flow/agent/spinner", json={}, headers=admin).json() == {"ok": True}  # the agent still works
    runs = s.get("/flow/agent/spinner/runs", headers=admin).json()
    assert any(run["Status"] == "error" and "CallTimeout" in (run["Error"] or "") or
               "did not finish" in (run["Error"] or "") for run in runs), runs
    assert s.get("/health", headers=s.admin()).json()["calls"]["stopped"] == 1


def wait_run(server: Server, run_id: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = server.get(f"/flows/runs/{run_id}", headers=server.admin()).json()
        if run["state"] in ("finished", "failed", "cancelled"):
            return run
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} did not end")


def test_flow_tasks_that_spin_are_stopped(tmp_path, start_server):
    s = start_server(two_workflows(tmp_path, CallTimeout=2))
    # no timeout of its own: Server.CallTimeout stops it
    spec = "nodes:\n  spin:\n    function: Q.py/Spin\n    kwargs: {n: 0}\n"
    r = s.post("/flows/Spin/runs", json={"spec": spec}, headers=s.admin())
    assert r.status_code == 201, r.text
    run = wait_run(s, r.json()["run_id"])
    assert run["state"] == "failed"
    assert "Q.py/Spin) of run" in json.dumps(run["tasks"]) and "did not finish in 2 s" in json.dumps(run["tasks"])
    # its own timeout wins (the flow engine's message), and the call is stopped too
    spec = "nodes:\n  spin:\n    function: Q.py/Spin\n    kwargs: {n: 0}\n    timeout: 1\n"
    r = s.post("/flows/Spin/runs", json={"spec": spec}, headers=s.admin())
    assert r.status_code == 201, r.text
    run = wait_run(s, r.json()["run_id"])
    assert run["state"] == "failed"
    assert "maxexectime" in json.dumps(run["tasks"])
    time.sleep(2)
    calls = s.get("/health", headers=s.admin()).json()["calls"]
    assert calls["stopped"] == 2 and calls["written_off"] == 0
    assert s.get("/flow/query/Spin/Q.py/Noop?x=3").json() == 3


def test_cli_query_local_runs_under_the_time_limit(tmp_path):
    import subprocess
    import sys

    ws = two_workflows(tmp_path, CallTimeout=60)
    t = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "coflows", "query", "local", "Q.py", "Decorated"],
                       capture_output=True, text=True, cwd=ws.root, timeout=60)
    assert r.returncode == 1, r.stderr
    assert "CallTimeout" in r.stderr and "did not finish in 1 s" in r.stderr
    assert time.monotonic() - t < 30


NATIVE_SPIN = {
    "csharp": ("Spin.cs", "public class Spin {\n    public static int Run() { while (true) {} }\n}\n"),
    "java": ("Spin.java", "public class Spin {\n    public static int Run() { while (true) {} }\n}\n"),
}


@pytest.mark.parametrize("language", ["csharp", "java"])
def test_server_answers_while_csharp_or_java_calls_spin(tmp_path, start_server, language):
    """Spinning in native code holds no GIL but takes a core each: their threads are given a low OS
    priority after 0.25 s so the event loop and other calls still get the CPU."""
    ws = two_workflows(tmp_path, CallTimeout=20, Threads=8)
    file, text = NATIVE_SPIN[language]
    ws.add_query(file, text)
    s = start_server(ws)
    assert_served_while_spinning(s, f"/flow/query/Spin/{file}/Run", settle=1.5)
