"""The Java engine in-process: isolation between workflows, collectable class loaders, load errors.

A process has one JVM for life, so each scenario runs in a child process (this
file, run as a script) with a hard timeout; the child prints its findings as JSON.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent

pytestmark = pytest.mark.skipif(shutil.which("javac") is None, reason="needs a JDK")


def run_scenario(name: str, tmp_path: Path, timeout: float = 150) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, name, str(tmp_path)], cwd=HERE, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "PYTHONPATH": str(HERE)})
    assert proc.returncode == 0, f"scenario {name} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------ scenarios (child)

UTIL = '''package shared;

public class Util {
    public static String who() { return "%s"; }
}
'''

ONLY = '''package shared;

public class Only%s {
    public static int x() { return 1; }
}
'''

QUERY = '''public class JavaQuery {
    public static String Who() { return shared.Util.who() + "/" + Mine(); }
    public static String Mine() { return "%s"; }
    public static String Sees(String name) {
        try {
            Class.forName(name);
            return "yes";
        } catch (ClassNotFoundException e) {
            return "no";
        }
    }
}
'''


def _runtime(config_path: Path):
    from coflows.config import load_config
    from coflows.runtime import Runtime

    rt = Runtime(load_config(str(config_path)), with_database=False)
    problems = rt.load()
    return rt, problems


def scenario_isolation(tmp: Path) -> dict[str, Any]:
    from conftest import new_workspace, edit_source

    a = new_workspace(tmp / "a", name="A", wid="aaaaaaaa-0000-0000-0000-000000000000")
    b = new_workspace(tmp / "b", name="B", wid="bbbbbbbb-0000-0000-0000-000000000000")
    for ws, tag in ((a, "A"), (b, "B")):
        ws.add_base("shared/Util.java", UTIL % tag)
        ws.add_base(f"shared/Only{tag}.java", ONLY % tag)
        ws.add_query("JavaQuery.java", QUERY % tag.lower())
    a.config["Workflow"] = ["mnt/package.json", str(b.mnt / "package.json")]
    a.save()
    rt, problems = _runtime(a.config_path)
    from coflows.engines.jvm import java_class

    out = {"problems": problems}
    for wid in ("A", "B"):
        out[wid] = {
            "who": rt.call("JavaQuery.java/Who", workflow=wid),
            "sees_A": rt.call("JavaQuery.java/Sees", "shared.OnlyA", workflow=wid),
            "sees_B": rt.call("JavaQuery.java/Sees", "shared.OnlyB", workflow=wid),
            "python_view": str(java_class(wid, "shared.Util").who()),
        }
    rt.close()
    return out


LIVE = '''public class Live {
    static final byte[] BALLAST = new byte[1 << 20];
    public static int Version() { return %d; }
    public static String Item() { return new Object() { public String toString() { return "v%d"; } }.toString(); }
}
'''

BASE = '''package lib;

public class Lib {
    public static int base() { return %d; }
}
'''

USES_BASE = '''public class UsesBase {
    public static int Base() { return lib.Lib.base(); }
}
'''




def _collected(weak: Any, tries: int = 40) -> bool:
    import jpype

    System = jpype.JClass("java.lang.System")
    for _ in range(tries):
        gc.collect()
        System.gc()
        if weak.get() is None:
            return True
        time.sleep(0.05)
    return False


def scenario_reload_collects(tmp: Path) -> dict[str, Any]:
    import jpype

    from conftest import new_workspace

    ws = new_workspace(tmp / "ws", name="Reload")
    ws.add_base("lib/Lib.java", BASE % 1)
    ws.add_query("Live.java", LIVE % (1, 1))
    ws.add_query("UsesBase.java", USES_BASE)
    rt, problems = _runtime(ws.config_path)
    from coflows.engines.jvm import class_loader, engine

    WeakReference = jpype.JClass("java.lang.ref.WeakReference")
    out: dict[str, Any] = {"problems": problems, "v1": rt.call("Live.java/Version"), "item1": rt.call("Live.java/Item")}
    old_query = WeakReference(class_loader(None, "Live.java"))
    old_base = WeakReference(class_loader(None))
    from conftest import edit_source

    edit_source(ws.mnt / "Queries" / "Live.java", LIVE % (2, 2))
    out["v2"] = rt.call("Live.java/Version")
    out["item2"] = rt.call("Live.java/Item")
    out["engine_keeps_only_current"] = [q.loader.equals(old_query.get()) for q in engine().workflow_state().queries.values()]
    out["query_loader_collected"] = _collected(old_query)
    edit_source(ws.mnt / "Base" / "lib" / "Lib.java", BASE % 7)
    out["base_after_edit"] = rt.call("UsesBase.java/Base")
    out["v3"] = rt.call("Live.java/Version")
    out["base_loader_collected"] = _collected(old_base)
    rt.close()
    return out


INIT_FAILS = '''public class InitFails {
    static int x = compute();
    static int compute() {
        throw new IllegalStateException("static init failed"); // INIT-LINE
    }
    public static int X() { return x; }
}
'''

CTOR_FAILS = '''public class CtorFails {
    public CtorFails() {
        throw new UnsupportedOperationException("no instances"); // CTOR-LINE
    }
    public int Value() { return 1; }
}
'''

NO_CTOR = '''public class NoCtor {
    private final int base;
    public NoCtor(int base) { this.base = base; }
    public int Value() { return base; }
    public static int Static() { return 5; }
}
'''

PACKAGE_PRIVATE = '''import java.util.List;

class PackagePrivate {
    public static int Add(int x, int y) { return x + y; }
    public static int Add(double x, double y) { return -1; }
    public static String Join(List<String> parts) { return String.join("+", parts); }
}

class Helper {
    public static int Nope() { return 0; }
}
'''

BAD_SYNTAX = '''public class BadSyntax {
    public static int A() { return 1 }
    public static int B() { return undefined; }
}
'''


def scenario_load_errors(tmp: Path) -> dict[str, Any]:
    from conftest import new_workspace

    ws = new_workspace(tmp / "ws", name="Errors")
    for name, text in (("InitFails.java", INIT_FAILS), ("CtorFails.java", CTOR_FAILS), ("NoCtor.java", NO_CTOR),
                       ("PackagePrivate.java", PACKAGE_PRIVATE), ("BadSyntax.java", BAD_SYNTAX)):
        ws.add_query(name, text)
    rt, problems = _runtime(ws.config_path)
    wf = rt.registry.default_workflow()
    out: dict[str, Any] = {"problems": problems, "status": {q["id"]: q for q in wf.status()["queries"]}}
    out["no_ctor_static"] = rt.call("NoCtor.java/Static")
    out["package_private"] = rt.call("PackagePrivate.java/Add", 2, 3)
    out["join"] = rt.call("PackagePrivate.java/Join", ["a", "b"])
    fn = rt.registry.resolve_ref("PackagePrivate.java/Add")[1]
    out["add_params"] = [[p.name, p.type.kind] for p in fn.params]
    rt.close()
    return out


SCENARIOS = {"isolation": scenario_isolation, "reload_collects": scenario_reload_collects,
             "load_errors": scenario_load_errors}


# ------------------------------------------------------------------------------ tests (parent)


def test_two_workflows_do_not_see_each_others_classes(tmp_path):
    out = run_scenario("isolation", tmp_path)
    assert out["problems"] == {"aaaaaaaa-0000-0000-0000-000000000000": [], "bbbbbbbb-0000-0000-0000-000000000000": []}
    assert out["A"] == {"who": "A/a", "sees_A": "yes", "sees_B": "no", "python_view": "A"}
    assert out["B"] == {"who": "B/b", "sees_A": "no", "sees_B": "yes", "python_view": "B"}


def test_reload_serves_new_code_and_old_loaders_are_collected(tmp_path):
    out = run_scenario("reload_collects", tmp_path)
    assert (out["v1"], out["item1"], out["v2"], out["item2"]) == (1, "v1", 2, "v2")
    assert out["engine_keeps_only_current"] == [False, False]
    assert out["query_loader_collected"] is True
    assert (out["base_after_edit"], out["v3"]) == (7, 2)
    assert out["base_loader_collected"] is True


def test_load_errors_name_file_and_line(tmp_path):
    out = run_scenario("load_errors", tmp_path)
    status = out["status"]

    def line(text: str, marker: str) -> int:
        return next(i for i, s in enumerate(text.splitlines(), 1) if marker in s)

    assert status["InitFails.java"]["errors"] == [
        f"Queries/InitFails.java:{line(INIT_FAILS, 'INIT-LINE')}: java.lang.IllegalStateException: static init failed"]
    assert status["CtorFails.java"]["errors"] == [
        f"Queries/CtorFails.java:{line(CTOR_FAILS, 'CTOR-LINE')}: java.lang.UnsupportedOperationException: no instances"]
    bad = status["BadSyntax.java"]["errors"]
    assert bad[0] == "Queries/BadSyntax.java:2: ';' expected"
    assert status["NoCtor.java"]["functions"] == ["Static"]
    assert out["no_ctor_static"] == 5
    problems = next(iter(out["problems"].values()))
    assert any("NoCtor.java: instance methods [Value] are not served" in p for p in problems)
    assert any("overload Add(double, double) is not served: Add(int, int)" in p for p in problems)
    assert status["PackagePrivate.java"]["functions"] == ["Add", "Join"]  # the class named like the file
    assert out["package_private"] == 5 and out["join"] == "a+b"
    assert out["add_params"] == [["x", "int"], ["y", "int"]]


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    result = SCENARIOS[sys.argv[1]](Path(sys.argv[2]))
    print(json.dumps(result, default=str))
    sys.stdout.flush()
