"""8 threads calling Java and Python Functions (and across: Java → Python, Python → Java) for 20 s.

The body runs in a child process (this file as a script) under a hard timeout,
so a deadlock fails the test instead of hanging it. Every result is checked.
`COFLOWS_STRESS_SECONDS` changes the duration.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
SECONDS = float(os.environ.get("COFLOWS_STRESS_SECONDS", "20"))
THREADS = 8

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("javac") is None, reason="needs a JDK")]

LIB = '''package lib;

public class Lib {
    public static class Item {
        public int id;
        public String name;
        public double[] values;
        public Item(int id) { this.id = id; this.name = "item-" + id; this.values = new double[] {id, id / 2.0}; }
    }
}
'''

JAVA = '''import java.util.*;
import lib.Lib;

public class JavaQuery {
    public static int Add(int x, int y) { return x + y; }
    public static List<Lib.Item> Items(int n) {
        List<Lib.Item> out = new ArrayList<>();
        for (int i = 0; i < n; i++) out.add(new Lib.Item(i));
        return out;
    }
    public static String Echo(String s) { return s + "|" + s.length(); }
    public static long CallPy(long x) { return coflows.Host.callAs(Long.class, "PyQuery.py", "Add", x, 100); }
    public static void Fail(String m) { throw new IllegalStateException(m); }
}
'''

PY = '''from coflows.runtime import call


def Add(x: int, y: int) -> int:
    return x + y


def CallJava(x: int) -> int:
    return call("JavaQuery.java/Add", x, 1)
'''


def body(tmp: Path, seconds: float) -> dict[str, Any]:
    sys.path.insert(0, str(HERE))
    from conftest import new_workspace

    from coflows.config import load_config
    from coflows.errors import UserCodeError
    from coflows.runtime import Runtime

    ws = new_workspace(tmp / "ws", name="Stress")
    ws.add_base("lib/Lib.java", LIB)
    ws.add_query("JavaQuery.java", JAVA)
    ws.add_query("PyQuery.py", PY)
    rt = Runtime(load_config(str(ws.config_path)), with_database=False)
    problems = rt.load()
    assert problems == {ws.manifest["ID"]: []}, problems

    def item(i: int) -> dict:
        return {"id": i, "name": f"item-{i}", "values": [float(i), i / 2]}

    def check(kind: str, i: int) -> None:
        if kind == "java_add":
            assert rt.call("JavaQuery.java/Add", i, 2) == i + 2
        elif kind == "py_add":
            assert rt.call("PyQuery.py/Add", i, 3) == i + 3
        elif kind == "java_items":
            n = i % 7
            assert rt.call("JavaQuery.java/Items", n) == [item(k) for k in range(n)]
        elif kind == "java_echo":
            s = f"héllo-{i}-✓"
            assert rt.call("JavaQuery.java/Echo", s) == f"{s}|{len(s)}"
        elif kind == "java_to_py":
            assert rt.call("JavaQuery.java/CallPy", i) == i + 100
        elif kind == "py_to_java":
            assert rt.call("PyQuery.py/CallJava", i) == i + 1
        elif kind == "java_fail":
            try:
                rt.call("JavaQuery.java/Fail", f"m{i}")
            except UserCodeError as e:
                assert (e.type_name, e.message, e.language) == ("java.lang.IllegalStateException", f"m{i}", "java")
            else:
                raise AssertionError("no exception")

    kinds = ["java_add", "py_add", "java_items", "java_echo", "java_to_py", "py_to_java", "java_fail"]
    counts = {k: 0 for k in kinds}
    errors: list[str] = []
    lock = threading.Lock()
    started = time.monotonic()  # before the deadline: the run lasts at least `seconds` from here
    deadline = started + seconds

    def worker(t: int) -> None:
        local = {k: 0 for k in kinds}
        i = t
        while time.monotonic() < deadline:
            kind = kinds[i % len(kinds)]
            try:
                check(kind, i)
                local[kind] += 1
            except Exception as e:  # noqa: BLE001 - record and go on
                with lock:
                    if len(errors) < 20:
                        errors.append(f"{kind}({i}): {type(e).__name__}: {e}")
            i += THREADS + 1
        with lock:
            for k, v in local.items():
                counts[k] += v

    threads = [threading.Thread(target=worker, args=(t,), name=f"stress-{t}") for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.monotonic() - started
    rt.close()
    return {"counts": counts, "errors": errors, "elapsed": elapsed}


def test_threads_call_java_and_python_concurrently(tmp_path):
    limit = SECONDS + 90
    try:
        proc = subprocess.run([sys.executable, __file__, str(tmp_path), str(SECONDS)], cwd=HERE, capture_output=True,
                              text=True, timeout=limit)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"no answer in {limit:.0f} s (deadlock?); the child was killed:\n{(e.stderr or b'')[-3000:]!r}")
    assert proc.returncode == 0, f"child failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["errors"] == []
    assert out["elapsed"] >= SECONDS
    assert all(n > 0 for n in out["counts"].values()), out["counts"]


if __name__ == "__main__":
    print(json.dumps(body(Path(sys.argv[1]), float(sys.argv[2]))))
    sys.stdout.flush()
