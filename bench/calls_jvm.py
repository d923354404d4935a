"""Per-call cost of a Java function through coflows, against the raw JPype call of the same method.

Run alone: `.venv/bin/python bench/calls_jvm.py` (prints a table and the ratios; target ≤ 1.5×).
`measure()` returns the figures as a dict (µs per call, medians of several interleaved rounds).
It starts a JVM in the calling process (one per process, for life).

What is measured, in one process and one run, for `public static int Add(int x, int y)`:
- raw:             `Calc.Add(1, 2)` — the class as a JPype user reaches it
                   (`jpype.JClass("Calc", loader=...)`), attribute lookup included; returns a `JInt`;
- raw_bound:       `add(1, 2)` with `add = Calc.Add` looked up once (JPype's fastest path);
- raw_int:         `int(add(1, 2))` — the raw call with its result made a plain Python `int`,
                   which is what the engine hands back (JSON-, pickle- and `type(x) is int`-safe);
- invoke:          `fn.invoke([1, 2], {})` — the engine's own cost: the host `Invoker`'s static
                   entry with primitive arguments, Java-side argument check, reflection call, result;
- function:        `fn.invoke(*fn.bind((1, 2), {}))` — plus the Function's argument binding and
                   conversion, the path every caller ends in;
- registry:        `runtime.call("Calc.java/Add", 1, 2)` — lookup by reference, hot-reload check (a
                   few `stat` calls), overload choice, binding, call context, call;
- python_registry: the same `runtime.call` to a Python function, for scale: the registry's own
                   cost is the same for every language.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PY_ADD, interleaved_samples, loaded_runtime, write_workspace  # noqa: E402

CALC = """\
public class Calc {
    public static int Add(int x, int y) { return x + y; }
}
"""


def _workspace(root: Path) -> Path:
    return write_workspace(root, "BenchJvm", {"Calc.java": CALC, "Calc.py": PY_ADD})


def measure(calls: int = 20_000, rounds: int = 7) -> dict[str, float]:
    """µs per call for each path (median of `rounds` interleaved rounds of `calls` calls)."""
    with loaded_runtime(_workspace, "jvm") as runtime:
        wf, fn = runtime.registry.resolve_ref("Calc.java/Add")

        from coflows.engines.jvm import java_class

        Calc = java_class(wf.id, "Calc")  # the raw JPype view of the same class (same loader)
        add = Calc.Add
        assert Calc.Add(1, 2) == add(1, 2) == fn.invoke([1, 2], {}) == runtime.call("Calc.java/Add", 1, 2) == 3
        assert type(fn.invoke([1, 2], {})) is int
        call = runtime.call
        args: list[Any] = [1, 2]
        kwargs: dict[str, Any] = {}
        invoke = fn.invoke

        paths = {
            "raw": lambda: Calc.Add(1, 2),
            "raw_bound": lambda: add(1, 2),
            "raw_int": lambda: int(add(1, 2)),
            "invoke": lambda: invoke(args, kwargs),
            "function": lambda: fn.invoke(*fn.bind((1, 2), {})),
            "registry": lambda: call("Calc.java/Add", 1, 2),
            "python_registry": lambda: call("Calc.py/Add", 1, 2),
        }
        samples = interleaved_samples(paths, calls, rounds, warmup=5_000)
        out = {f"{k}_us": round(statistics.median(v), 3) for k, v in samples.items()}
        for k in ("raw", "raw_bound", "invoke"):  # the fastest round: less sensitive to other load
            out[f"best_{k}_us"] = round(min(samples[k]), 3)
        out["ratio_best_invoke_vs_best_raw"] = round(out["best_invoke_us"] / out["best_raw_us"], 3)
        out["ratio_invoke_vs_raw"] = round(out["invoke_us"] / out["raw_us"], 3)
        out["ratio_invoke_vs_raw_bound"] = round(out["invoke_us"] / out["raw_bound_us"], 3)
        out["ratio_invoke_vs_raw_int"] = round(out["invoke_us"] / out["raw_int_us"], 3)
        out["ratio_function_vs_raw"] = round(out["function_us"] / out["raw_us"], 3)
        out["ratio_registry_vs_raw"] = round(out["registry_us"] / out["raw_us"], 3)
        out["ratio_registry_vs_python_registry"] = round(out["registry_us"] / out["python_registry_us"], 3)
        return out


def main() -> None:
    r = measure()
    print("Java static method int Add(int, int), µs per call (median):")
    for k in ("raw", "raw_bound", "raw_int", "invoke", "function", "registry", "python_registry"):
        print(f"  {k:<16} {r[k + '_us']:8.3f}")
    print(f"  invoke / raw          {r['ratio_invoke_vs_raw']:.2f}x   (target <= 1.5x)")
    print(f"  invoke / raw_bound    {r['ratio_invoke_vs_raw_bound']:.2f}x")
    print(f"  invoke / raw_int      {r['ratio_invoke_vs_raw_int']:.2f}x")
    print(f"  function / raw        {r['ratio_function_vs_raw']:.2f}x")
    print(f"  registry / raw        {r['ratio_registry_vs_raw']:.2f}x")
    print(f"  registry / python registry  {r['ratio_registry_vs_python_registry']:.2f}x")
    print(f"  fastest rounds: raw {r['best_raw_us']:.3f}, invoke {r['best_invoke_us']:.3f}"
          f" → {r['ratio_best_invoke_vs_best_raw']:.2f}x")


if __name__ == "__main__":
    main()
