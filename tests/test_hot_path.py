"""The HTTP hot path of issue 21: `QueryFront` (query calls skip Starlette's router and wrappers) and
`DiskChanges` (inotify tells which sources may have changed, so a call need not stat them). Each must
give what the path it replaces gave: the same route matches, the same middlewares, and an edit that
reaches the very next call."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from pathlib import Path

import pytest
from starlette.routing import Match, Route

from coflows import workflow as workflow_module
from coflows.config import parse_config
from coflows.runtime import Runtime
from coflows.server.query_front import query_params
from coflows.workspace.changes import DiskChanges
from conftest import new_workspace

# -- QueryFront: the same matches as the route it stands in front of -----------------------------------

PATHS = ["/flow/query/W/Q.py/F", "/flow/query/W/sub/dir/Q.py/F", "/flow/query/W//F", "/flow/query/W/Q.py/",
         "/flow/query/W/Q.py", "/flow/query/W", "/flow/query//Q.py/F", "/flow/query/", "/flow/query/W/Q.py/F.csv",
         "/flow/query/W/a b/Q.js/F", "/flow/query/W/Q.py/F/", "/flow/query/W/Q.py//"]


@pytest.mark.parametrize("path", PATHS)
def test_query_params_match_the_starlette_route(path: str) -> None:
    route = Route("/flow/query/{wid}/{qid:path}/{fn}", lambda r: None, methods=["GET", "POST"])
    match, child = route.matches({"type": "http", "path": path, "method": "GET", "root_path": ""})
    expected = child["path_params"] if match is Match.FULL else None
    assert query_params(path) == expected


@pytest.fixture
def calc(tmp_path: Path, start_server):  # noqa: ANN001, ANN201
    ws = new_workspace(tmp_path / "ws", name="Calc")
    ws.add_query("Calc.py", "def Add(x: int, y: int):\n    return x + y\n")
    return start_server(ws)


def test_other_methods_on_a_query_url_get_what_starlette_answers(calc) -> None:  # noqa: ANN001
    url = "/flow/query/Calc/Calc.py/Add?p[0]=1&p[1]=2"
    assert calc.get(url).json() == 3
    assert calc.client.post("/flow/query/Calc/Calc.py/Add", json=[1, 2]).json() == 3
    put = calc.client.put(url)
    assert put.status_code == 405 and set(put.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}  # the router answered
    head = calc.client.head(url)
    assert head.status_code == 200 and head.content == b""
    # the middlewares are the app's: the body limit, then the key check
    big = calc.client.post("/flow/query/Calc/Calc.py/Add", content=b"[" + b"1," * 6_000_000 + b"1]",
                           headers={"content-type": "application/json"})
    assert big.status_code == 413
    bad_key = calc.client.get(url, headers={"x-api-key": "not-a-key"})
    assert bad_key.status_code == 401 and bad_key.json()["error"]["type"] == "Unauthenticated"
    nul = calc.client.get("/flow/query/Calc/Calc.py/Add%00?p[0]=1")
    assert nul.status_code == 400 and "NUL" in nul.json()["error"]["message"]


# -- DiskChanges: no stat while nothing changed, and every edit reaches the next call ------------------

def _runtime_with_changes(ws) -> tuple[Runtime, DiskChanges, asyncio.AbstractEventLoop]:  # noqa: ANN001
    cfg = parse_config({"Workflow": [str(ws.mnt / "package.json")], "Database": {"Connection": ":memory:"}},
                       "test", ws.root)
    rt = Runtime(cfg)
    rt.changes = DiskChanges()
    rt.load()
    loop = asyncio.new_event_loop()
    rt.changes.attach(loop)
    return rt, rt.changes, loop


def _events(loop: asyncio.AbstractEventLoop) -> None:
    """Let the loop read what the kernel queued (the server's loop does this between requests)."""
    loop.run_until_complete(asyncio.sleep(0.05))


def test_no_stat_while_nothing_changed_and_an_edit_is_seen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = new_workspace(tmp_path / "a")
    ws.add_query("Q.py", "def F(x: int):\n    return x + 1\n")
    ws.add_base("Util.py", "K = 1\n")
    rt, changes, loop = _runtime_with_changes(ws)
    stats: list[Path] = []
    real = workflow_module._mtime
    monkeypatch.setattr(workflow_module, "_mtime", lambda p: stats.append(p) or real(p))
    try:
        assert changes.live
        wf, fn = rt.registry.function(ws.manifest["ID"], "Q.py", "F")  # the first check after loading: stats
        assert stats
        stats.clear()
        for _ in range(5):
            rt.registry.function(ws.manifest["ID"], "Q.py", "F")
        assert stats == []  # nothing changed on disk: no stat at all
        (ws.mnt / "Queries" / "notes.txt").write_text("not a source")  # same folder, a name nobody loaded
        _events(loop)
        rt.registry.function(ws.manifest["ID"], "Q.py", "F")
        assert stats == []
        path = ws.mnt / "Queries" / "Q.py"
        path.write_text("def F(x: int):\n    return x + 2\n")
        _events(loop)
        _, fn = rt.registry.function(ws.manifest["ID"], "Q.py", "F")
        assert fn.invoke([1], {}) == 3 and stats  # the edit was seen, with a stat
        stats.clear()
        rt.registry.function(ws.manifest["ID"], "Q.py", "F")
        assert stats == []
        # a Base edit is a change too (every query reloads with it)
        (ws.mnt / "Base" / "Util.py").write_text("K = 2\n")
        _events(loop)
        rt.registry.function(ws.manifest["ID"], "Q.py", "F")
        assert stats
    finally:
        rt.close()
        loop.close()


def test_a_folder_replaced_by_a_rename_is_watched_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cloud deploy swaps Queries/ by a rename: the watch followed the old folder, so the next check
    watches the path again; edits in the new folder reach the next call and the stat-free path resumes."""
    ws = new_workspace(tmp_path / "a")
    ws.add_query("Q.py", "def F():\n    return 1\n")
    rt, changes, loop = _runtime_with_changes(ws)
    stats: list[Path] = []
    real = workflow_module._mtime
    monkeypatch.setattr(workflow_module, "_mtime", lambda p: stats.append(p) or real(p))
    wid = ws.manifest["ID"]
    try:
        rt.registry.function(wid, "Q.py", "F")
        queries = ws.mnt / "Queries"
        fresh = ws.mnt / "Queries.new"
        fresh.mkdir()
        (fresh / "Q.py").write_text("def F():\n    return 2\n")
        shutil.move(queries, ws.mnt / "Queries.old")
        os.rename(fresh, queries)
        _events(loop)
        assert changes.live
        _, fn = rt.registry.function(wid, "Q.py", "F")
        assert fn.invoke([], {}) == 2
        stats.clear()
        rt.registry.function(wid, "Q.py", "F")
        assert stats == []  # watched again: no stat while nothing changes
        (queries / "Q.py").write_text("def F():\n    return 3\n")
        (ws.mnt / "Queries.old" / "Q.py").write_text("def F():\n    return 99\n")  # the old folder: not ours
        _events(loop)
        _, fn = rt.registry.function(wid, "Q.py", "F")
        assert fn.invoke([], {}) == 3
    finally:
        rt.close()
        loop.close()


def test_without_a_loop_every_call_checks_stamps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = new_workspace(tmp_path / "a")
    ws.add_query("Q.py", "def F():\n    return 1\n")
    cfg = parse_config({"Workflow": [str(ws.mnt / "package.json")], "Database": {"Connection": ":memory:"}},
                       "test", ws.root)
    rt = Runtime(cfg)
    rt.changes = DiskChanges()  # never attached: nobody reads its events
    rt.load()
    stats: list[Path] = []
    real = workflow_module._mtime
    monkeypatch.setattr(workflow_module, "_mtime", lambda p: stats.append(p) or real(p))
    try:
        for _ in range(3):
            rt.registry.function(ws.manifest["ID"], "Q.py", "F")
        assert len(stats) >= 3
    finally:
        rt.close()


def test_every_edit_reaches_the_next_http_call(calc) -> None:  # noqa: ANN001
    """The server reads inotify on its loop: an edit written before a request is seen by that request,
    whether it is written in place or saved over the file by a rename (as editors do)."""
    path = calc.ws.mnt / "Queries" / "Calc.py"
    url = "/flow/query/Calc/Calc.py/Add?p[0]=1&p[1]=2"
    assert calc.get(url).json() == 3
    for i in range(1, 21):
        if i % 2:
            path.write_text(f"def Add(x: int, y: int):\n    return x + y + {i}\n")
        else:
            tmp = path.with_name(".Calc.py.swp")
            tmp.write_text(f"def Add(x: int, y: int):\n    return x + y + {i}\n")
            os.replace(tmp, path)
        assert calc.get(url).json() == 3 + i, f"edit {i}"
    assert not re.search(r"Traceback", calc.output())
