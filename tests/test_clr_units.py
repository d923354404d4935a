"""The C# engine's parts: compiler output, lazy start, the thread-suspend check, describe(), the bench.

Anything that loads Mono runs in a subprocess: engines load once per process and in a fixed
order (a V8 or JVM started by another test in this process must not precede Mono).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from coflows.engines.clr.mono import parse_diagnostics

REPO = Path(__file__).resolve().parent.parent


def run_py(code: str, env: dict[str, str] | None = None, timeout: float = 120) -> dict:
    """Run `code` in a fresh interpreter; it prints one JSON line last."""
    full_env = {k: v for k, v in os.environ.items() if k != "MONO_THREADS_SUSPEND"}
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=full_env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_parse_compiler_output() -> None:
    out = (
        "/w/Queries/A.cs(4,37): error CS1525: Unexpected symbol `}', expecting `;'\n"
        "/w/Queries/A.cs(2,13): warning CS0168: The variable `x' is declared but never used\n"
        "error CS0006: Metadata file `Missing.dll' could not be found\n"
        "Compilation failed: 2 error(s), 1 warnings\n"
    )
    d = parse_diagnostics(out)
    assert [(x.file, x.line, x.column, x.severity, x.code) for x in d] == [
        ("/w/Queries/A.cs", 4, 37, "error", "CS1525"),
        ("/w/Queries/A.cs", 2, 13, "warning", "CS0168"),
        (None, None, None, "error", "CS0006"),
    ]
    assert d[0].message == "error CS1525: Unexpected symbol `}', expecting `;'"


def test_mono_loads_lazily(tmp_path: Path) -> None:
    """A Python-only workspace never loads Mono; the first C# source does."""
    ws = tmp_path / "ws"
    (ws / "mnt" / "Queries").mkdir(parents=True)
    (ws / "mnt" / "Queries" / "a.py").write_text("def f():\n    return 1\n")
    manifest = {"ID": "lazy", "Name": "Lazy", "Base": [], "Agents": [], "Permissions": [],
                "Queries": [{"Name": "a.py", "Content": "Queries/a.py", "ID": "a.py"}]}
    (ws / "mnt" / "package.json").write_text(json.dumps(manifest))
    (ws / "coflows_config.json").write_text(json.dumps({"Workflow": "mnt/package.json"}))
    result = run_py(f"""
        import json
        from coflows.config import load_config
        from coflows.engines.clr.mono import _libmono_mapped
        from coflows.runtime import Runtime
        rt = Runtime(load_config({str(ws / "coflows_config.json")!r}), with_database=False)
        rt.load()
        before = _libmono_mapped()
        engine = rt.engines.get("csharp")
        print(json.dumps({{"before": before, "after": _libmono_mapped(), "describe": engine.describe(),
                          "started": sorted(rt.engines.started())}}))
    """)
    assert result["before"] is False and result["after"] is True
    assert result["started"] == ["csharp", "python"]
    d = result["describe"]
    assert d["language"] == "csharp" and d["runtime"] == "mono"
    assert d["version"].startswith("6.") and d["threads_suspend"] == "preemptive" and d["problems"] == []


def test_wrong_suspend_mode_is_fixed_before_mono_loads() -> None:
    result = run_py("""
        import json, logging, os
        records = []
        logging.basicConfig(level=logging.ERROR)
        logging.getLogger().addHandler(type("H", (logging.Handler,), {"emit": lambda self, r: records.append(r.getMessage())})())
        from coflows.engines.clr import ClrEngine
        e = ClrEngine(None)
        e.start()
        print(json.dumps({"env": os.environ["MONO_THREADS_SUSPEND"], "describe": e.describe(), "log": records}))
    """, env={"MONO_THREADS_SUSPEND": "hybrid"})
    assert result["env"] == "preemptive"
    assert result["describe"]["threads_suspend"] == "preemptive"
    assert any("MONO_THREADS_SUSPEND=hybrid" in r for r in result["log"]), result["log"]


def test_mono_already_loaded_in_another_mode_is_reported() -> None:
    result = run_py("""
        import json
        from pythonnet import load
        load("mono")  # someone loaded Mono before coflows, in hybrid mode
        import clr
        from coflows.engines.clr import ClrEngine
        e = ClrEngine(None)
        e.start()
        print(json.dumps(e.describe()))
    """, env={"MONO_THREADS_SUSPEND": "hybrid"})
    assert result["problems"] and "already loaded" in result["problems"][0]
    assert "MONO_THREADS_SUSPEND=hybrid" in result["problems"][0]


def test_bench_measure_runs() -> None:
    result = run_py(f"""
        import json, sys
        sys.path.insert(0, {str(REPO / "bench")!r})
        import calls_clr
        print(json.dumps(calls_clr.measure(calls=300, rounds=1)))
    """)
    for key in ("raw_us", "raw_bound_us", "function_us", "registry_us", "ratio_function_vs_raw"):
        assert result[key] > 0
