"""CoFlows-style Java: the "jvm" resolver, `app.quant.clr` (CLRRuntime, CLRObject) and Java agents.

In-process scenarios run in a child process (a process has one JVM for life: this file, run as
a script) and print their findings as JSON; the CoFlows-shaped queries and agents run over HTTP.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
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


def _runtime(config_path: Path) -> tuple[Any, Any]:
    from coflows.config import load_config
    from coflows.runtime import Runtime

    rt = Runtime(load_config(str(config_path)), with_database=False)
    return rt, rt.load()  # diagnostics by workflow


# ------------------------------------------------------------------------------ the "jvm" resolver

JAVA_BASE = '''package javabase;

import java.util.*;

public class javaBase {
    public javaBase() {}
    public String getName = "%s";
    public double getAge = 20.5;
    public List<String> getInterests() { return Arrays.asList("F#", "C#", "Java"); }
    public int Add(int x, int y) { return x + y; }
}
'''

PLAIN_QUERY = '''public class Plain {
    public static int One() { return 1; }
}
'''


def scenario_resolver(tmp: Path) -> dict[str, Any]:
    from conftest import new_workspace

    from coflows import objects

    wids = {"A": "aaaaaaaa-0000-0000-0000-000000000001", "B": "bbbbbbbb-0000-0000-0000-000000000001"}
    a = new_workspace(tmp / "a", name="A", wid=wids["A"])
    b = new_workspace(tmp / "b", name="B", wid=wids["B"])
    for ws, tag in ((a, "from A"), (b, "from B")):
        ws.add_base("javabase/javaBase.java", JAVA_BASE % tag)
        ws.add_query("Plain.java", PLAIN_QUERY)
    a.config["Workflow"] = ["mnt/package.json", str(b.mnt / "package.json")]
    a.save()
    rt, problems = _runtime(a.config_path)
    out: dict[str, Any] = {"problems": [p for ps in problems.values() for p in ps]}
    for tag, wid in wids.items():
        cls = objects.resolve("javabase.javaBase", wid)
        inst = objects.call_object(cls, [])
        out[tag] = {
            "name": str(objects.get_member(inst, "getName")),
            "add": int(objects.call_member(inst, "Add", [2, 3])),
            "query_class": str(objects.resolve("Plain", wid).One()),
            "gson_missing": isinstance(objects.resolve("com.google.gson.Gson", wid), objects.Namespace),
            "package": objects.resolve("javabase", wid) == objects.Namespace("javabase"),
            "jdk": str(objects.resolve("java.util.ArrayList", wid).class_.getName()),
        }
    with objects.loading(wids["B"]):
        out["loading"] = str(objects.get_member(objects.call_object(objects.resolve("javabase.javaBase"), []),
                                                "getName"))
    from coflows.engines.jvm import engine

    engine().unload_workflow(engine()._workflows[wids["A"]])  # what the runtime calls when a workflow goes
    out["after_unload"] = isinstance(objects.resolve("javabase.javaBase", wids["A"]), objects.Namespace)
    rt.close()
    return out


def test_resolver_gives_each_workflow_its_own_classes(tmp_path: Path) -> None:
    out = run_scenario("resolver", tmp_path)
    assert out["problems"] == []
    assert out["A"] == {"name": "from A", "add": 5, "query_class": "1", "gson_missing": True, "package": True,
                        "jdk": "java.util.ArrayList"}
    assert out["B"]["name"] == "from B"
    assert out["loading"] == "from B"
    assert out["after_unload"] is True


if __name__ == "__main__":
    result = globals()[f"scenario_{sys.argv[1]}"](Path(sys.argv[2]))
    print(json.dumps(result))
