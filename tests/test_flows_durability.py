"""Durable runs across processes: SIGKILL mid-run, take-over after a lease expires, SIGTERM grace."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

HOST = Path(__file__).with_name("flow_host.py")


def spawn(tmp_path: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, str(HOST), str(tmp_path / "flows.db"), str(tmp_path / "steps.log"), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def wait_for_line(tmp_path: Path, line: str, timeout: float = 15) -> None:
    log = tmp_path / "steps.log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and any(x.startswith(line) for x in log.read_text().splitlines()):
            return
        time.sleep(0.01)
    raise AssertionError(f"{line!r} never appeared in {log}")


def starts(tmp_path: Path) -> Counter:
    lines = (tmp_path / "steps.log").read_text().splitlines()
    return Counter(x.split()[1] for x in lines if x.startswith("start "))


def stored(tmp_path: Path, run_id: str) -> tuple[dict, dict[str, str]]:
    with sqlite3.connect(tmp_path / "flows.db") as conn:
        conn.row_factory = sqlite3.Row
        run = dict(conn.execute("select * from flow_runs where id = ?", (run_id,)).fetchone())
        tasks = {r["node"]: r["state"] for r in conn.execute("select node, state from flow_tasks where run_id = ?",
                                                               (run_id,))}
    return run, tasks


def finish(proc: subprocess.Popen, timeout: float = 30) -> list[str]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return out.split()


@pytest.mark.parametrize("restart_owner, lease", [("host-1", 5.0), ("host-2", 1.0)])
def test_sigkill_mid_run_then_restart_completes_without_rerunning_finished_tasks(tmp_path, restart_owner, lease):
    """Same owner id: recovered at start-up. Another owner: taken over once the dead owner's lease expires."""
    host = spawn(tmp_path, "--owner", "host-1", "--submit", "--steps", "5", "--sleep", "0.25",
                 "--lease", str(lease))
    run_id = host.stdout.readline().strip()
    assert len(run_id) == 32
    wait_for_line(tmp_path, "start s3")
    host.send_signal(signal.SIGKILL)
    host.wait(5)
    killed_at = time.monotonic()

    run, tasks = stored(tmp_path, run_id)
    assert run["state"] == "running" and run["owner"] == "host-1"
    assert tasks["s1"] == tasks["s2"] == "finished" and tasks["s3"] == "running"
    finished_before = {n for n, s in tasks.items() if s == "finished"}

    again = spawn(tmp_path, "--owner", restart_owner, "--resume", run_id, "--lease", str(lease))
    out = finish(again)
    assert out == [run_id, "finished"]
    took = time.monotonic() - killed_at

    run, tasks = stored(tmp_path, run_id)
    assert run["state"] == "finished" and run["owner"] is None
    assert set(tasks.values()) == {"finished"}
    counts = starts(tmp_path)
    assert all(counts[n] == 1 for n in finished_before), counts  # no finished task ran twice
    assert counts["s3"] == 2 and counts["s4"] == counts["s5"] == 1
    if restart_owner == "host-1":
        assert took < lease - 0.5  # did not wait for its own old lease to expire


def test_sigterm_lets_running_task_finish_within_grace(tmp_path):
    host = spawn(tmp_path, "--owner", "h", "--submit", "--steps", "3", "--sleep", "0.5", "--grace", "5")
    run_id = host.stdout.readline().strip()
    wait_for_line(tmp_path, "start s1")
    host.send_signal(signal.SIGTERM)
    assert finish(host, 10) == ["shutdown"]

    run, tasks = stored(tmp_path, run_id)
    assert run["state"] == "interrupted" and run["owner"] is None  # released, not left "running"
    assert tasks == {"s1": "finished", "s2": "pending", "s3": "pending"}

    out = finish(spawn(tmp_path, "--owner", "h", "--resume", run_id))
    assert out == [run_id, "finished"]
    assert starts(tmp_path) == Counter({"s1": 1, "s2": 1, "s3": 1})


def test_sigterm_after_grace_records_interrupted_and_resumes(tmp_path):
    host = spawn(tmp_path, "--owner", "h", "--submit", "--steps", "2", "--sleep", "1.0", "--grace", "0.1")
    run_id = host.stdout.readline().strip()
    wait_for_line(tmp_path, "start s1")
    host.send_signal(signal.SIGTERM)
    assert finish(host, 10) == ["shutdown"]
    lines = (tmp_path / "steps.log").read_text().splitlines()
    assert f"end s1 {host.pid}" not in lines  # exited without waiting for the task beyond the grace period

    run, tasks = stored(tmp_path, run_id)
    assert run["state"] == "interrupted"
    assert tasks == {"s1": "interrupted", "s2": "pending"}

    # Another engine (new owner id) picks the released run up at its start.
    out = finish(spawn(tmp_path, "--owner", "other", "--resume", run_id, "--grace", "0"))
    assert out == [run_id, "finished"]
    assert starts(tmp_path) == Counter({"s1": 2, "s2": 1})
