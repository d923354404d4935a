"""Java compilations kept between starts (engines/jvm/cache.py): a start whose sources did not change
reads the classes back and serves the same functions; any change to a source, the Base or a jar
compiles again; a damaged entry or a folder others can write is never trusted.

A process has one JVM for life, so each scenario runs in a child process (this file as a script).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import run_script_scenario

pytestmark = pytest.mark.skipif(shutil.which("javac") is None, reason="needs a JDK")

BASE = "package shared;\npublic class Util {\n    public static int twice(int x) { return 2 * x; }\n}\n"
QUERY = ("public class Calc {\n    /** Adds. */\n    public static int Add(int x, int y) { return shared.Util.twice(x) + y + %d; }\n"
         "    public static String Hi() { return new Integer(1) > 0 ? \"hi\" : \"\"; }\n}\n")  # a removal warning


def test_a_second_start_reads_the_compilations_back(tmp_path: Path) -> None:
    r = run_script_scenario(__file__, "starts", tmp_path, 240)
    first, second = r["first"], r["second"]
    assert first["misses"] == 2 and first["hits"] == 0  # the Base and the query were compiled
    assert second["hits"] == 2 and second["misses"] == 0  # ... and read back at the next start
    assert first["answers"] == second["answers"] == [4, "hi"]
    assert second["functions"] == first["functions"] and second["warnings"] == first["warnings"]
    assert first["warnings"], "the compiler's warning is kept with the classes"
    # an edited query compiles again (the Base still comes from the cache), and serves the edit
    assert r["edited"]["answers"][0] == 104 and r["edited"]["hits"] == 1 and r["edited"]["misses"] == 1
    # a Base edit changes the key of the Base and of every query compiled against it
    assert r["base_edited"]["misses"] == 2 and r["base_edited"]["answers"][0] == 3 * 1 + 2 + 100
    # a damaged entry is dropped and compiled again
    assert r["damaged"]["answers"][0] == 104 and r["damaged"]["misses"] == 2
    # a cache folder that others may write is not used
    assert r["shared_folder"] == {"hits": 0, "misses": 0, "answers": [104, "hi"]}


# ------------------------------------------------------------------------------ scenarios (child)

def _start(ws: Any) -> dict[str, Any]:
    from coflows.config import parse_config
    from coflows.runtime import Runtime

    cfg = parse_config({"Workflow": [str(ws.mnt / "package.json")], "Database": {"Connection": ":memory:"}},
                       "test", ws.root)
    rt = Runtime(cfg, with_database=False)
    try:
        problems = rt.load()
        java = rt.engines.running("java")
        wf = rt.registry.default_workflow()
        q = wf.queries["Calc.java"]
        return {"hits": java.compiled.hits, "misses": java.compiled.misses,
                "answers": [rt.call("Calc.java/Add", 1, 2), rt.call("Calc.java/Hi")],
                "functions": sorted(q.functions), "warnings": [str(w) for w in q.loaded.warnings],
                "problems": problems}
    finally:
        rt.close()


def scenario_starts(tmp: Path) -> dict[str, Any]:
    from conftest import new_workspace

    cache = tmp / "cache"
    cache.mkdir(mode=0o700)
    os.environ["COFLOWS_JVM_CACHE"] = str(cache)
    ws = new_workspace(tmp / "ws")
    ws.add_base("Util.java", BASE)
    ws.add_query("Calc.java", QUERY % 0)
    out: dict[str, Any] = {"first": _start(ws), "second": _start(ws)}
    ws.write("Queries/Calc.java", QUERY % 100)
    out["edited"] = _start(ws)
    ws.write("Base/Util.java", BASE.replace("2 * x", "3 * x"))
    out["base_edited"] = _start(ws)
    ws.write("Base/Util.java", BASE)
    huge = b"CFJ1" + b"\x01" + (1).to_bytes(4, "big") + b"\x00\x01A" + (2**31 - 1).to_bytes(4, "big")
    for i, entry in enumerate(sorted((cache / "compiled").glob("*.cfj"))):
        entry.write_bytes(b"not a compilation" if i % 2 else huge)  # garbage, or a class 2 GB long
    out["damaged"] = _start(ws)
    shared = tmp / "shared"
    (shared / "compiled").mkdir(parents=True)
    shared.chmod(0o777)
    (shared / "compiled").chmod(0o777)
    os.environ["COFLOWS_JVM_CACHE"] = str(shared)
    s = _start(ws)
    out["shared_folder"] = {k: s[k] for k in ("hits", "misses", "answers")}
    return out


if __name__ == "__main__":
    result = globals()[f"scenario_{sys.argv[1]}"](Path(sys.argv[2]))
    print(json.dumps(result))
