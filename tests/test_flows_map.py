"""Map/reduce fan-out on the real engine and SQLite: one task per item, a concurrency cap, a reduce in order."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import yaml

from coflows.flows import FAILED, FINISHED, SKIPPED, Flow, FlowEngine, FlowSpecError, PythonResolver, parse_spec
from coflows.store import Database
from test_flows_engine import FAST_RETRY, make_engine, run  # noqa: F401 - make_engine is a fixture


class Gauge:
    """Counts calls running at once (the concurrency a map really got)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0
        self.calls: list = []

    def __enter__(self) -> Gauge:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        return self

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self.now -= 1


def test_fan_out_125_files_to_125_tasks_and_one_combined_output(make_engine):
    """CFlow's shape: a list of 125 inputs → 125 parallel tasks (at most 8 at once) → one reduce."""
    gauge = Gauge()

    def files():
        return [f"file-{i:03}.csv" for i in range(125)]

    def size(path):
        with gauge:
            gauge.calls.append(path)
            time.sleep(0.002)
            return int(path[5:8]) * 10

    def total(size):
        return {"files": len(size), "bytes": sum(size), "first": size[:3]}

    engine = make_engine({"F.py/files": files, "F.py/size": size, "F.py/total": total}, max_workers=16)
    spec = Flow("sizes").task("files", "F.py/files").map("size", "F.py/size", over="files", concurrency=8) \
        .reduce("total", "F.py/total")
    view = run(engine, spec, timeout=30)
    assert view.state == FINISHED, view.error
    assert view.task("total").output == {"files": 125, "bytes": sum(range(125)) * 10, "first": [0, 10, 20]}
    assert view.task("size").output == [i * 10 for i in range(125)]  # the reduce input, in item order
    assert view.task("size").extra["items"] == 125
    items = [t for t in view.tasks if t.extra.get("map") == "size"]
    assert len(items) == 125 and all(t.state == FINISHED for t in items)
    assert view.task("size[7]").args == ["file-007.csv"] and view.task("size[7]").output == 70
    assert sorted(gauge.calls) == files()
    assert 1 < gauge.peak <= 8, gauge.peak


def test_map_over_a_run_input_and_over_a_literal_list(make_engine):
    engine = make_engine({"M.py/square": lambda x: x * x, "M.py/add": lambda x, y: x + y,
                          "M.py/sum": lambda input: sum(input[0])})
    view = run(engine, Flow().map("sq", "M.py/square", over="numbers").reduce("total", "M.py/sum"),
               inputs={"numbers": [1, 2, 3, 4]})
    assert view.state == FINISHED and view.task("total").output == 30

    # A literal list, with the spec's own args after the item.
    view = run(engine, Flow().map("plus", "M.py/add", 100, over=[1, 2, 3]))
    assert view.state == FINISHED and view.task("plus").output == [101, 102, 103]

    # An empty list: the map finishes at once with [] and its children run.
    view = run(engine, Flow().map("none", "M.py/square", over=[]).reduce("total", "M.py/sum"))
    assert view.state == FINISHED and view.task("none").output == [] and view.task("total").output == 0


def test_items_see_the_map_nodes_parents_by_name(make_engine):
    engine = make_engine({"M.py/factor": lambda: 3, "M.py/values": lambda: [1, 2],
                          "M.py/scale": lambda x, factor: x * factor})
    spec = Flow().task("factor", "M.py/factor").task("values", "M.py/values") \
        .map("scaled", "M.py/scale", over="values", after=["factor"])
    view = run(engine, spec)
    assert view.state == FINISHED and view.task("scaled").output == [3, 6]


def test_an_item_that_fails_once_is_retried_alone(make_engine):
    tries: dict[int, int] = {}
    lock = threading.Lock()

    def flaky(x):
        with lock:
            tries[x] = tries.get(x, 0) + 1
            if x == 3 and tries[x] == 1:
                raise RuntimeError("disk hiccup on item 3")
        return x

    engine = make_engine({"M.py/flaky": flaky, "M.py/sum": lambda input: sum(input[0])})
    view = run(engine, Flow().map("m", "M.py/flaky", over=list(range(6)), retries=2).reduce("s", "M.py/sum"))
    assert view.state == FINISHED and view.task("s").output == 15
    assert view.task("m[3]").attempts == 2 and view.task("m[2]").attempts == 1
    assert tries == {0: 1, 1: 1, 2: 1, 3: 2, 4: 1, 5: 1}


def test_partial_failure_is_visible_per_item_and_a_rerun_runs_only_the_failed_items(make_engine):
    broken = {5}
    calls: list[int] = []
    lock = threading.Lock()

    def work(x):
        with lock:
            calls.append(x)
        if x in broken:
            raise ValueError(f"cannot read item {x}")
        return x * 2

    engine = make_engine({"M.py/work": work, "M.py/sum": lambda input: sum(input[0])})
    view = run(engine, Flow().map("m", "M.py/work", over=list(range(10))).reduce("s", "M.py/sum"))
    assert view.state == FAILED
    assert view.task("m").state == FAILED
    assert view.task("m").error == "1 of 10 items failed: m[5]: ValueError: cannot read item 5"
    assert view.task("m[5]").state == FAILED and "cannot read item 5" in view.task("m[5]").error
    assert all(view.task(f"m[{i}]").state == FINISHED for i in range(10) if i != 5)
    assert view.task("s").state == SKIPPED
    assert sorted(calls) == list(range(10))

    broken.clear()
    calls.clear()
    engine.rerun(view.id)
    view = engine.wait(view.id, 10)
    assert view.state == FINISHED and view.task("s").output == sum(range(10)) * 2
    assert calls == [5]  # finished items keep their outputs
    assert len([t for t in view.tasks if t.extra.get("map") == "m"]) == 10


def test_a_map_over_something_that_is_not_a_list_fails_with_what_it_got(make_engine):
    engine = make_engine({"M.py/conf": lambda: {"a": 1}, "M.py/id": lambda x: x})
    view = run(engine, Flow().task("conf", "M.py/conf").map("m", "M.py/id", over="conf"))
    assert view.state == FAILED
    assert view.task("m").error == "node 'm' maps over the output of 'conf', which is a dict, not a list"
    view = run(engine, Flow().map("m", "M.py/id", over="missing"))
    assert "maps over 'missing', which is neither a parent nor a run input" in view.task("m").error


def test_map_in_yaml_and_graph_string_aliases_and_the_errors_of_bad_settings():
    doc = yaml.safe_load("""
nodes:
  files: {function: F.py/files}
  size: {function: F.py/size, after: files, map: files, concurrency: 4, retries: 1}
  total: {function: F.py/total, after: size}
""")
    spec = parse_spec(doc)
    node = spec.node("size")
    assert node.map == "files" and node.concurrency == 4 and node.retries == 1

    spec = parse_spec("files; each; total", aliases={
        "files": "F.py/files", "each": {"function": "F.py/size", "map": "files"}, "total": "F.py/total"})
    assert spec.node("each").map == "files" and spec.node("each").after == ["files"]

    with pytest.raises(FlowSpecError, match="concurrency applies to a map node"):
        parse_spec({"nodes": {"a": {"function": "F.py/a", "concurrency": 2}}})
    with pytest.raises(FlowSpecError, match=r"maps over the output of 'a' but does not run after it") as err:
        parse_spec({"nodes": {"a": {"function": "F.py/a"}, "b": {"function": "F.py/b", "map": "a"}}})
    assert err.value.path == "nodes.b.map"
    with pytest.raises(FlowSpecError, match="concurrency must be a whole number") as err:
        parse_spec({"nodes": {"a": {"function": "F.py/a", "map": [1], "concurrency": 0}}})
    assert err.value.path == "nodes.a.concurrency"
    with pytest.raises(FlowSpecError, match="map must name a parent node or a run input"):
        parse_spec({"nodes": {"a": {"function": "F.py/a", "map": 3}}})


def test_a_map_interrupted_by_a_stop_resumes_without_rerunning_finished_items(tmp_path):
    gate = threading.Event()
    calls: list[int] = []
    lock = threading.Lock()

    def item(x):
        with lock:
            calls.append(x)
        if x >= 3:
            gate.wait(10)
        return x + 1

    functions = {"M.py/item": item, "M.py/sum": lambda input: sum(input[0])}
    owner = f"map-{uuid.uuid4().hex[:8]}"
    db = Database(f"sqlite:///{tmp_path / 'flows.db'}")
    engine = FlowEngine(db, PythonResolver(functions), retry=FAST_RETRY, owner_id=owner, max_workers=4).start()
    try:
        run_id = engine.submit(Flow().map("m", "M.py/item", over=list(range(6)), concurrency=2)
                               .reduce("s", "M.py/sum"))
        deadline = time.monotonic() + 10
        while len([t for t in engine.get(run_id).tasks if t.state == FINISHED]) < 3:
            assert time.monotonic() < deadline, "items 0–2 did not finish"
            time.sleep(0.01)
    finally:
        engine.shutdown(0.05)
    stopped = engine.get(run_id)
    assert stopped.state == "interrupted" and stopped.task("m[0]").state == FINISHED
    gate.set()
    with lock:
        calls.clear()
    engine = FlowEngine(db, PythonResolver(functions), owner_id=owner).start()
    try:
        view = engine.wait(run_id, 10)
        assert view.state == FINISHED and view.task("s").output == sum(range(1, 7))
        assert sorted(calls) == [3, 4, 5]
    finally:
        engine.shutdown(1)
        db.dispose()


def test_a_map_that_ends_the_run_ends_it_once(make_engine):
    engine = make_engine({"M.py/id": lambda x: x, "M.py/bad": lambda x: 1 / x})
    events: list[dict] = []
    engine.subscribe(events.append)
    for spec, state in ((Flow().map("m", "M.py/id", over=[1, 2, 3]), FINISHED),
                        (Flow().map("m", "M.py/bad", over=[1, 0]), FAILED)):
        events.clear()
        view = run(engine, spec)
        assert view.state == state
        deadline = time.monotonic() + 5
        while not any(e["type"] == "run" and e["state"] == state for e in events) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        ends = [e for e in events if e["type"] == "run" and e["state"] in (FINISHED, FAILED)]
        assert len(ends) == 1, ends
