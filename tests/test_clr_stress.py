"""Stress: 8 threads calling C# and Python (and each other) through the registry for 20 s.

The body runs in a subprocess with a hard timeout, so a deadlock (the failure mode of Mono's
default thread-suspend mode, ENGINES.md) fails the test instead of hanging the test run.
Every result is checked; C# sources are also hot-reloaded while the calls run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

DURATION = float(os.environ.get("COFLOWS_STRESS_SECONDS", "20"))
THREADS = 8

BODY = textwrap.dedent('''
    import json, os, sys, threading, time
    from pathlib import Path

    root = Path(sys.argv[1]); duration = float(sys.argv[2]); threads = int(sys.argv[3])
    mnt = root / "mnt"
    (mnt / "Queries").mkdir(parents=True)
    CALC = """
    using System;
    using System.Collections.Generic;
    public class Row { public int I { get; set; } public string S { get; set; } public DateTime D { get; set; } }
    public class Calc {
        // version %d
        public static int Add(int x, int y) { return x + y; }
        public static string Concat(string a, int n) { return a + ":" + n; }
        public static List<Row> Rows(int n) {
            var l = new List<Row>();
            for (int i = 0; i < n; i++) l.Add(new Row { I = i, S = "r" + i, D = new DateTime(2024, 1, 1 + i) });
            return l;
        }
        public static long ViaPython(int x) { return Coflows.Host.Call<long>("Py.py", "inc", x); }
        public static int Fail(int x) { return 1 / (x - x); }
    }
    """
    PY = """
    import coflows.runtime

    def add(x: int, y: int) -> int:
        return x + y

    def inc(x: int) -> int:
        return x + 1

    def via_csharp(x: int) -> int:
        return coflows.runtime.call("Calc.cs/Add", x, 1000)
    """
    (mnt / "Queries" / "Calc.cs").write_text(CALC % 0)
    (mnt / "Queries" / "Py.py").write_text(PY)
    manifest = {"ID": "stress-0000", "Name": "Stress", "Base": [], "Agents": [], "Permissions": [],
                "Queries": [{"Name": "Calc.cs", "Content": "Queries/Calc.cs", "ID": "Calc.cs"},
                            {"Name": "Py.py", "Content": "Queries/Py.py", "ID": "Py.py"}],
                "NuGets": [], "Pips": [], "Jars": [], "Bins": [], "Files": []}
    (mnt / "package.json").write_text(json.dumps(manifest))
    (root / "coflows_config.json").write_text(json.dumps({"Workflow": "mnt/package.json",
        "Database": {"Type": "sqlite", "Connection": "mnt/database.db"}, "Server": {"SecretKey": "x"}}))

    from coflows.config import load_config
    from coflows.errors import UserCodeError
    from coflows.runtime import Runtime

    rt = Runtime(load_config(str(root / "coflows_config.json")), with_database=False)
    problems = rt.load()
    assert not any(problems.values()), problems
    call = rt.call
    counts = {"calls": 0, "errors_expected": 0, "reloads": 0}
    failures = []
    lock = threading.Lock()
    stop = time.monotonic() + duration

    def worker(t):
        n = 0
        try:
            while time.monotonic() < stop:
                i = n % 1000
                k = n % 7
                if k == 0:
                    assert call("Calc.cs/Add", i, t) == i + t
                elif k == 1:
                    assert call("Calc.cs/Concat", "t%d" % t, i) == "t%d:%d" % (t, i)
                elif k == 2:
                    rows = call("Calc.cs/Rows", 3)
                    assert [r["I"] for r in rows] == [0, 1, 2] and rows[2]["S"] == "r2"
                    assert rows[1]["D"].isoformat() == "2024-01-02T00:00:00"
                elif k == 3:
                    assert call("Calc.cs/ViaPython", i) == i + 1
                elif k == 4:
                    assert call("Py.py/add", i, t) == i + t
                elif k == 5:
                    assert call("Py.py/via_csharp", i) == i + 1000
                else:
                    try:
                        call("Calc.cs/Fail", i)
                        raise AssertionError("Fail did not raise")
                    except UserCodeError as e:
                        assert e.type_name == "System.DivideByZeroException", e.type_name
                        with lock:
                            counts["errors_expected"] += 1
                n += 1
        except BaseException as e:
            with lock:
                failures.append("thread %d after %d calls: %r" % (t, n, e))
        with lock:
            counts["calls"] += n

    def reloader():
        v = 0
        while time.monotonic() < stop - 1:
            time.sleep(2)
            v += 1
            p = mnt / "Queries" / "Calc.cs"
            tmp = p.with_name("Calc.cs.tmp")  # replace atomically: a half-written file is not a version
            tmp.write_text(CALC % v)
            now = time.time_ns() + v * 1_000_000
            os.utime(tmp, ns=(now, now))
            os.replace(tmp, p)
            counts["reloads"] += 1

    ts = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    ts.append(threading.Thread(target=reloader))
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print(json.dumps({"counts": counts, "failures": failures}))
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown with Mono loaded; the result is printed
''')


@pytest.mark.slow
def test_threads_call_csharp_and_python_concurrently(tmp_path: Path) -> None:
    script = tmp_path / "stress.py"
    script.write_text(BODY)
    timeout = DURATION + 90
    try:
        proc = subprocess.run([sys.executable, str(script), str(tmp_path / "ws"), str(DURATION), str(THREADS)],
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"stress run hung (deadlock?) for {timeout:.0f}s; output:\n{(e.stdout or '')[-3000:]}"
                    f"\n{(e.stderr or '')[-3000:] if isinstance(e.stderr, str) else ''}")
    assert proc.returncode == 0, f"stress run crashed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["failures"] == [], result
    counts = result["counts"]
    assert counts["calls"] > THREADS * 200, counts
    assert counts["errors_expected"] > 0 and counts["reloads"] >= 3, counts
