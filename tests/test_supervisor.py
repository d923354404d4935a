"""The supervisor (`coflows server`): a server process that dies comes back; Server.MemoryLimit; clean stops.

Each test runs the real supervisor with its real child; a crash is a real `os._exit`, segfault or SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from conftest import ADMIN_KEY, Server, free_port, new_workspace, pid_alive

CRASH = '''
import ctypes
import os
import time

def Hello():
    return "hi"

def Exit(code: int = 1):
    os._exit(code)

def Segfault():
    return ctypes.string_at(0)

def Hold(mb: int = 400, seconds: float = 3.0):
    """Hold `mb` MB (every page touched) for `seconds`, then return."""
    block = bytearray(mb * 1024 * 1024)
    for i in range(0, len(block), 4096):
        block[i] = 1
    time.sleep(seconds)
    return len(block) // (1024 * 1024)

def Grow(total_mb: int = 1500, step_mb: int = 50):
    """Allocate `total_mb` MB in steps: a runaway that never stops by itself before the machine does."""
    kept = []
    for _ in range(total_mb // step_mb):
        block = bytearray(step_mb * 1024 * 1024)
        for i in range(0, len(block), 4096):
            block[i] = 1
        kept.append(block)
        time.sleep(0.05)
    return len(kept) * step_mb

def slow(marker: str, seconds: float = 1.5):
    with open(marker, "a") as f:
        f.write("ran\\n")
    time.sleep(seconds)
    return "slow done"
'''

HELLO = "/flow/query/Test/Crash.py/Hello"
ADMIN = {"x-api-key": ADMIN_KEY}


def crash_ws(tmp_path: Path, **server: object):
    ws = new_workspace(tmp_path / "ws")
    ws.config["Server"].update(server)
    ws.add_query("Crash.py", CRASH)
    return ws


def call_that_kills(s: Server, path: str, **kw: object) -> None:
    """A call that takes its server process down gets no answer (or a 5xx), never a 200."""
    try:
        r = s.get(path, **kw)
    except httpx.HTTPError:
        return
    assert r.status_code >= 500, r.text


def wait_restarted(s: Server, old_pid: int | None, timeout: float = 90) -> int:
    """Wait until a new server process (a new pid in the supervisor's log) answers a query."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = s.child_pid()
        if pid is not None and pid != old_pid:
            try:
                if s.get(HELLO).status_code == 200:
                    return pid
            except httpx.HTTPError:
                pass
        time.sleep(0.05)
    raise AssertionError(f"the server did not come back in {timeout} s:\n{s.output()[-3000:]}")


@pytest.mark.parametrize("code", [1, 2])
def test_os_exit_in_a_function_restarts_the_server(tmp_path, start_server, code):
    """Exit code 2 from user code after start-up is a crash like any other, not a config error."""
    s = start_server(crash_ws(tmp_path))
    first = s.child_pid()
    assert first is not None and s.get(HELLO).json() == "hi"
    call_that_kills(s, f"/flow/query/Test/Crash.py/Exit?code={code}")
    second = wait_restarted(s, first)
    assert second != first and not pid_alive(first)
    assert s.proc.poll() is None  # the supervisor itself never went down
    assert f"server exited with code {code}; restarting in 0.5 s" in s.output()


def test_segfault_in_a_function_restarts_the_server(tmp_path, start_server):
    s = start_server(crash_ws(tmp_path))
    first = s.child_pid()
    call_that_kills(s, "/flow/query/Test/Crash.py/Segfault")
    wait_restarted(s, first)
    assert "server killed by signal 11 (SIGSEGV" in s.output()


def test_kill_9_of_the_server_process_and_a_durable_flow_finishes_after_the_restart(tmp_path, start_server):
    ws = crash_ws(tmp_path)
    s = start_server(ws)
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    r = s.post("/flows/Test/runs", headers=ADMIN, json={"spec": [
        {"nodename": "quick", "funcname": "Crash.py/slow", "kwargs": {"marker": str(first), "seconds": 0}},
        {"nodename": "long", "funcname": "Crash.py/slow", "kwargs": {"marker": str(second), "seconds": 2},
         "conditions": {"dependencies": ["quick"]}}]})
    assert r.status_code in (200, 201), r.text
    run_id = r.json()["run_id"]
    deadline = time.monotonic() + 30
    while not second.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert second.exists(), "the long task never started"
    pid = s.child_pid()
    os.kill(pid, signal.SIGKILL)
    wait_restarted(s, pid)
    assert "server killed by signal 9 (SIGKILL; the OOM killer sends this)" in s.output()
    deadline = time.monotonic() + 60
    while (run := s.get(f"/flows/runs/{run_id}", headers=ADMIN).json())["state"] not in (
            "finished", "failed", "cancelled") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert run["state"] == "finished", run
    assert first.read_text().count("ran") == 1  # finished before the kill: not run again
    assert second.read_text().count("ran") == 2  # interrupted by the kill: run again


def test_memory_limit_drains_lets_the_call_in_flight_finish_then_restarts(tmp_path, start_server):
    s = start_server(crash_ws(tmp_path, MemoryLimit=300))
    assert s.post("/m/add?type=notes", json={"kept": True}, headers=ADMIN).status_code == 200
    first = s.child_pid()
    held: dict[str, httpx.Response] = {}
    caller = threading.Thread(target=lambda: held.update(r=s.get("/flow/query/Test/Crash.py/Hold?mb=400&seconds=3")))
    caller.start()
    refused = None
    deadline = time.monotonic() + 30
    while refused is None and time.monotonic() < deadline:
        with httpx.Client(base_url=s.base, timeout=30) as other:  # not the client the held call uses
            r = other.get(HELLO)
        if r.status_code == 503:
            refused = r
        time.sleep(0.05)
    caller.join(60)
    assert refused is not None, "new calls were never refused while the server drained"
    assert refused.headers["retry-after"] == "5" and refused.json()["error"]["type"] == "Draining"
    assert held["r"].status_code == 200 and held["r"].json() == 400  # the call in flight finished
    wait_restarted(s, first)
    assert "server passed its memory limit of 300 MB" in s.output()
    assert s.get("/m/data?type=notes", headers=ADMIN).json() == [{"kept": True}]  # nothing committed was lost


def test_a_runaway_allocation_fails_its_call_and_the_server_comes_back(tmp_path, start_server):
    """1.5 GB in 50 MB steps against a 300 MB limit: the call does not succeed, the server restarts."""
    s = start_server(crash_ws(tmp_path, MemoryLimit=300))
    first = s.child_pid()
    call_that_kills(s, "/flow/query/Test/Crash.py/Grow?total_mb=1500")
    wait_restarted(s, first)
    assert "server passed its memory limit of 300 MB" in s.output()


def run_cli(ws_root: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "coflows", "server", *args], cwd=ws_root, capture_output=True,
                          text=True, timeout=timeout)


def test_a_config_error_ends_the_supervisor_with_exit_2_without_restarting(tmp_path):
    ws = crash_ws(tmp_path)
    (ws.mnt / "package.json").write_text('{"ID": ')  # found by the server process, not the supervisor
    r = run_cli(ws.root, str(ws.config_path), "--port", "0")
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("server started") == 1 and "not restarting" in r.stderr
    assert "package.json" in r.stderr
    ws.config_path.write_text('{"Server": {"Port": "eighty"}}')  # found by the supervisor: no child at all
    r = run_cli(ws.root, str(ws.config_path))
    assert r.returncode == 2 and "server started" not in r.stderr and "Server.Port" in r.stderr


def test_sigterm_stops_the_supervisor_and_its_server(tmp_path, start_server):
    s = start_server(crash_ws(tmp_path))
    child = s.child_pid()
    assert child is not None and pid_alive(child)
    code = s.stop()
    assert code == -signal.SIGTERM  # as the server ends on SIGTERM (uvicorn raises it again after a clean stop)
    assert not pid_alive(child)
    assert "Application shutdown complete" in s.output()
    assert "restarting" not in s.output()


def test_sigkill_of_the_supervisor_leaves_no_server_behind(tmp_path, start_server):
    s = start_server(crash_ws(tmp_path))
    child = s.child_pid()
    s.kill()
    deadline = time.monotonic() + 10
    while pid_alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(child)


def test_a_second_server_on_a_busy_port_fails_at_once(tmp_path, start_server):
    ws = crash_ws(tmp_path)
    s = start_server(ws)
    r = run_cli(ws.root, str(ws.config_path), "--port", str(s.port))
    assert r.returncode == 2  # issue 19: a start-up precondition, like a bad config
    assert f"cannot listen on 127.0.0.1:{s.port}" in r.stderr
    assert "server started" not in r.stderr and "engine" not in r.stderr  # nothing was loaded
    assert s.get(HELLO).json() == "hi"


def test_no_supervisor_runs_one_process(tmp_path):
    ws = crash_ws(tmp_path)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "coflows", "server", str(ws.config_path), "--port", str(port),
                             "--no-supervisor"], cwd=ws.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        answer = None
        while answer is None and proc.poll() is None and time.monotonic() < deadline:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}{HELLO}").json()
            except httpx.HTTPError:
                time.sleep(0.1)
        assert answer == "hi"
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == -signal.SIGTERM
    assert "server started" not in out  # no supervisor


def test_a_memory_limit_below_the_started_server_is_a_config_error(tmp_path):
    """Not a restart loop: the limit can never be met, so the supervisor stops with exit 2 and says why."""
    ws = crash_ws(tmp_path, MemoryLimit=20)
    r = run_cli(ws.root, str(ws.config_path), "--port", "0")
    assert r.returncode == 2, r.stderr[-2000:]
    assert r.stderr.count("server started") == 1
    assert "Server.MemoryLimit 20 MB is below what the server holds after start-up" in r.stderr


def test_exit_reasons_name_the_code_the_signal_or_the_memory_limit():
    from coflows.supervisor import EXIT_MEMORY, describe_exit

    assert describe_exit(1) == "server exited with code 1"
    assert describe_exit(-9) == "server killed by signal 9 (SIGKILL; the OOM killer sends this)"
    assert describe_exit(-11) == "server killed by signal 11 (SIGSEGV; a crash in native code)"
    assert describe_exit(EXIT_MEMORY, 512) == "server passed its memory limit of 512 MB"
    assert describe_exit(-9, 512, "RSS 900 MB, past 768 MB: killed") == (
        "server passed its memory limit of 512 MB (RSS 900 MB, past 768 MB: killed)")


@pytest.mark.parametrize("method, path, refused", [
    ("GET", "/flow/query/W/Q.py/F", True), ("POST", "/flow/query/W/Q.py/F", True),
    ("POST", "/m/add", True), ("POST", "/m/addmany", True), ("GET", "/m/save", True), ("POST", "/m/remove", True),
    ("POST", "/m/exchange", True), ("POST", "/flows/W/runs", True), ("POST", "/flows/runs/r1/rerun", True),
    ("POST", "/flow/agent/a1", True), ("POST", "/flow/agent/a1/start", True), ("GET", "/flow/ActiveAgentToggle", True),
    ("GET", "/health", False), ("GET", "/m/data", False), ("GET", "/flows/runs", False), ("GET", "/flow/agents", False),
    ("GET", "/flows/runs/r1", False), ("POST", "/flows/runs/r1/cancel", False), ("GET", "/ui/flows", False), ("GET", "/flow/workflows", False),
])
def test_while_draining_only_routes_that_start_work_are_refused(method, path, refused):
    from coflows.server.draining import guarded

    assert guarded({"type": "http", "method": method, "path": path}) is refused
