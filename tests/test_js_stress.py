"""8 threads calling JavaScript and Python Functions concurrently through the registry for 20 s.

The body runs in a subprocess with a hard timeout, so a deadlock fails the test
instead of hanging it. Every result is checked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("py_mini_racer")

REPO = Path(__file__).resolve().parent.parent
DURATION = float(os.environ.get("COFLOWS_JS_STRESS_SECONDS", "20"))

BODY = textwrap.dedent('''
    import json, random, sys, threading, time
    from pathlib import Path
    sys.path.insert(0, sys.argv[2])  # tests/, for conftest.new_workspace
    from conftest import new_workspace
    from coflows.config import parse_config
    from coflows.runtime import Runtime

    root, duration = Path(sys.argv[1]), float(sys.argv[3])
    ws = new_workspace(root / "a", name="A")
    ws.add_base("base.js", "function twice(x) { return 2 * x }\\n")
    ws.add_query("Calc.js", """
    /** @param {number} x
     *  @param {number} y */
    let Add = function(x, y) { return x + y }
    function Echo(o) { return {o: o, n: twice(o.n)} }
    async function Later(x) { await null; return 'later ' + x }
    async function ViaPython(x) { return await coflows.call('Calc.py', 'Add', x, 1) }
    function Throw(m) { throw new RangeError(m) }
    """)
    ws.add_query("Calc.py", "import coflows.runtime as cr\\n\\n"
                            "def Add(x: int, y: int) -> int:\\n    return x + y\\n\\n"
                            "def ViaJs(x: int) -> int:\\n    return cr.call('Calc.js/Add', x, 100)\\n")
    other = new_workspace(root / "b", name="B", wid="99999999-2222-3333-4444-555555555555")
    other.add_query("Calc.js", "function Add(x, y) { return 'B' + x + y }\\n")
    cfg = parse_config({"Workflow": [str(ws.mnt / "package.json"), str(other.mnt / "package.json")],
                        "Database": {"Connection": ":memory:"}}, "stress", root)
    rt = Runtime(cfg)
    problems = rt.load()
    assert not any(problems.values()), problems

    from coflows.errors import UserCodeError
    counts = {}
    errors = []
    stop = time.monotonic() + duration

    def worker(n):
        rnd = random.Random(n)
        local = {}
        try:
            while time.monotonic() < stop:
                a, b = rnd.randint(-1000, 1000), rnd.randint(-1000, 1000)
                kind = rnd.randrange(8)
                if kind == 0:
                    assert rt.call("Calc.js/Add", a, b) == a + b
                elif kind == 1:
                    assert rt.call("Calc.py/Add", a, b) == a + b
                elif kind == 2:
                    assert rt.call("Calc.js/Echo", {"n": a, "s": "x" * (a % 50 + 50)}) == \\
                        {"o": {"n": a, "s": "x" * (a % 50 + 50)}, "n": 2 * a}
                elif kind == 3:
                    assert rt.call("Calc.js/Later", a) == f"later {a}"
                elif kind == 4:
                    assert rt.call("Calc.js/ViaPython", a) == a + 1
                elif kind == 5:
                    assert rt.call("Calc.py/ViaJs", a) == a + 100
                elif kind == 6:
                    assert rt.call("B/Calc.js/Add", a, b) == f"B{a}{b}"
                else:
                    try:
                        rt.call("Calc.js/Throw", str(a))
                        raise AssertionError("no error")
                    except UserCodeError as e:
                        assert (e.type_name, e.message) == ("RangeError", str(a)), e
                local[kind] = local.get(kind, 0) + 1
        except BaseException as e:  # noqa: BLE001
            import traceback
            errors.append(f"thread {n}: {type(e).__name__}: {e}\\n{traceback.format_exc()}")
        for k, v in local.items():
            counts[k] = counts.get(k, 0) + v

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    js = rt.engines.get("javascript").describe()
    rt.close()
    print(json.dumps({"counts": counts, "errors": errors, "elapsed": elapsed, "js": js}))
''')


def test_js_and_python_calls_from_8_threads(tmp_path):
    script = tmp_path / "stress_body.py"
    script.write_text(BODY)
    env = {**os.environ, "PYTHONPATH": str(REPO / "runtime") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    try:
        proc = subprocess.run([sys.executable, str(script), str(tmp_path), str(REPO / "tests"), str(DURATION)],
                              capture_output=True, text=True, timeout=DURATION + 60, env=env)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"deadlock: the stress run did not finish in {DURATION + 60:.0f} s\n{e.stderr or ''}")
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not result["errors"], "\n".join(result["errors"])[:4000]
    assert result["elapsed"] >= DURATION
    counts = {int(k): v for k, v in result["counts"].items()}
    assert set(counts) == set(range(8)) and all(v > 50 for v in counts.values()), counts
    assert result["js"]["restarts"] == 0
