"""In-process cost of one call through the registry, per language, against the raw bridge call.

Each language is measured by its own module (`calls_clr.py`, `calls_jvm.py`,
`calls_js.py`: raw bridge call and registry call of the same function,
interleaved rounds, medians) in its own subprocess of this one run, so the
engines' start order never depends on the order here. Prints one table, with a Python row (a
plain Python call against the registry call of a Python `Add`, from the same runs) and, per
language, `over` = registry - raw: the target is at most 1.0 µs for Python, C# and Java
(docs/performance.md).

Then (unless `--no-matrix`) `calls_matrix.py`, in one more subprocess, measures every caller →
callee pair of the four languages (a call from X's code to Y's function through X's own API)
and prints the 4×4 table with the raw bridge cost of each callee language from this same run
beneath it (Python's: a plain function call).

Then (unless `--no-objects`) `calls_objects.py`, in one more subprocess, measures code holding
another language's *objects* (property get, method call, iteration of 100 items) for every pair
CoFlows code uses, beside the raw bridge cost of the same operation from the same run.

    .venv/bin/python bench/calls.py [--only csharp,java,javascript] [--no-matrix] [--no-objects]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

LANGUAGES = {
    # language: (module, raw key, what the raw call is, target for registry / raw)
    "csharp": ("calls_clr", "raw_us", "pythonnet: Calc.Add(1, 2)", 1.5),
    "java": ("calls_jvm", "raw_us", "JPype: Calc.Add(1, 2)", 1.5),
    "javascript": ("calls_js", "raw_call_us", "mini-racer: ctx.call('Add', 1, 2)", 1.3),
}
# issue 21: a call through the registry costs at most this much over the raw bridge call
OVERHEAD_TARGET_US = 1.0
OVERHEAD_LANGUAGES = ("python", "csharp", "java")

_CHILD = """
import json, sys
sys.path.insert(0, {here!r})
import {module} as m
kwargs = {{"http": False}} if {module!r} == "calls_js" else {{}}
print("@@" + json.dumps(m.measure(**kwargs)))
"""


_OBJECTS_CHILD = """
import json, sys
sys.path.insert(0, {here!r})
import calls_objects
print("@@" + json.dumps(calls_objects.measure()))
"""


_MATRIX_CHILD = """
import json, sys
sys.path.insert(0, {here!r})
import calls_matrix
print("@@" + json.dumps(calls_matrix.measure()))
"""


def _child(code: str, module: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("@@")), None)
    if line is None:
        raise RuntimeError(f"{module} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return json.loads(line[2:])


def measure(language: str) -> dict:
    module = LANGUAGES[language][0]
    return _child(_CHILD.format(here=str(HERE), module=module), module)


def plain_python_call_us(n: int = 500_000) -> float:
    """µs per call of a plain Python function: the "raw bridge" of Python → Python."""
    import time

    def add(x: int, y: int) -> int:
        return x + y

    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n):
            add(1, 2)
        best = min(best, (time.perf_counter() - start) / n * 1e6)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=",".join(LANGUAGES))
    ap.add_argument("--no-matrix", action="store_true", help="skip the 4×4 caller → callee table")
    ap.add_argument("--no-objects", action="store_true", help="skip the table of cross-language object use")
    args = ap.parse_args()
    rows = []
    for language in args.only.split(","):
        r = measure(language)
        _, raw_key, raw_what, target = LANGUAGES[language]
        rows.append((language, raw_what, r[raw_key], r["registry_us"], r.get("python_registry_us"), target))
    py = [r[4] for r in rows if r[4]]
    if py:  # Python's raw bridge is a plain function call; its registry figure from the other runs
        rows.insert(0, ("python", "a plain Python call: add(1, 2)", plain_python_call_us(), min(py), None, None))
    print("\nµs per call, medians of interleaved rounds (same machine, same run); over = registry - raw,"
          f" target <= {OVERHEAD_TARGET_US} µs for {', '.join(OVERHEAD_LANGUAGES)}\n")
    print(f"{'language':11} {'raw bridge call':38} {'raw':>8} {'registry':>9} {'over':>6} {'ratio':>6} {'target':>9}")
    for language, what, raw, reg, _, target in rows:
        over = reg - raw
        want = f"<= {OVERHEAD_TARGET_US}" if language in OVERHEAD_LANGUAGES else f"x <= {target}"
        print(f"{language:11} {what:38} {raw:8.2f} {reg:9.2f} {over:6.2f} {reg / raw:6.2f} {want:>9}")
    if not args.no_matrix:
        sys.path.insert(0, str(HERE))
        from calls_matrix import table

        matrix = _child(_MATRIX_CHILD.format(here=str(HERE)), "calls_matrix")
        raw = {"python": plain_python_call_us()}
        for language, what, raw_us, *_ in rows:
            raw.setdefault(language, raw_us)
        print()
        print(table(matrix, raw))
        print("raw bridge: " + "; ".join(f"{lang}: {what}" for lang, what, *_ in rows))
    if not args.no_objects:
        sys.path.insert(0, str(HERE))
        from calls_objects import table as objects_table

        print()
        print(objects_table(_child(_OBJECTS_CHILD.format(here=str(HERE)), "calls_objects")))


if __name__ == "__main__":
    main()
