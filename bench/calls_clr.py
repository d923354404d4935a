"""Per-call cost of a C# function through coflows, against the raw pythonnet call of the same method.

Run alone: `.venv/bin/python bench/calls_clr.py` (prints a table and the ratio; target ≤ 1.5×).
`measure()` returns the figures as a dict (µs per call, medians of several rounds).

What is measured, in one process and one run:
- raw:            `Calc.Add(1, 2)` — the class imported through pythonnet as a user would
                  (`clr.AddReference(dll)`, `from BenchCalc import Calc`), attribute lookup included;
- raw_bound:      `add(1, 2)` with `add = Calc.Add` looked up once (pythonnet's fastest path);
- function:       `fn.invoke(*fn.bind((1, 2), {}))` — the registry's Function with argument binding
                  and conversion, the path every caller ends in;
- registry:       `runtime.call("Calc.cs/Add", 1, 2)` — lookup by reference, hot-reload check (a
                  few `stat` calls), overload choice, binding, call context, call;
- python_registry: the same `runtime.call` to a Python function, for scale.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PY_ADD, interleaved_samples, loaded_runtime, write_workspace  # noqa: E402

CALC = """\
using System;
namespace BenchCalc {
    public class Calc {
        public static int Add(int x, int y) { return x + y; }
    }
}
"""


def _workspace(root: Path) -> Path:
    return write_workspace(root, "Bench", {"Calc.cs": CALC, "Calc.py": PY_ADD})


def measure(calls: int = 20_000, rounds: int = 7) -> dict[str, float]:
    """µs per call for each path (median of `rounds` interleaved rounds of `calls` calls)."""
    with loaded_runtime(_workspace, "clr") as runtime:
        wf, fn = runtime.registry.resolve_ref("Calc.cs/Add")
        handle = wf.queries["Calc.cs"].loaded.handle  # the engine's LoadedAssembly

        import clr

        clr.AddReference(str(handle.path))
        from BenchCalc import Calc  # the raw pythonnet view of the same class

        add = Calc.Add
        assert Calc.Add(1, 2) == add(1, 2) == fn.invoke(*fn.bind((1, 2), {})) == runtime.call("Calc.cs/Add", 1, 2) == 3
        call = runtime.call

        paths = {
            "raw": lambda: Calc.Add(1, 2),
            "raw_bound": lambda: add(1, 2),
            "function": lambda: fn.invoke(*fn.bind((1, 2), {})),
            "registry": lambda: call("Calc.cs/Add", 1, 2),
            "python_registry": lambda: call("Calc.py/Add", 1, 2),
        }
        samples = interleaved_samples(paths, calls, rounds, warmup=2_000)
        out = {f"{k}_us": round(statistics.median(v), 3) for k, v in samples.items()}
        out["ratio_function_vs_raw"] = round(out["function_us"] / out["raw_us"], 3)
        out["ratio_function_vs_raw_bound"] = round(out["function_us"] / out["raw_bound_us"], 3)
        out["ratio_registry_vs_raw"] = round(out["registry_us"] / out["raw_us"], 3)
        out["ratio_registry_vs_raw_bound"] = round(out["registry_us"] / out["raw_bound_us"], 3)
        return out


def main() -> None:
    r = measure()
    print("C# static method int Add(int, int), µs per call (median):")
    for k in ("raw", "raw_bound", "function", "registry", "python_registry"):
        print(f"  {k:<16} {r[k + '_us']:8.3f}")
    print(f"  function / raw        {r['ratio_function_vs_raw']:.2f}x   (target <= 1.5x)")
    print(f"  function / raw_bound  {r['ratio_function_vs_raw_bound']:.2f}x")
    print(f"  registry / raw        {r['ratio_registry_vs_raw']:.2f}x")
    print(f"  registry / raw_bound  {r['ratio_registry_vs_raw_bound']:.2f}x")


if __name__ == "__main__":
    main()
