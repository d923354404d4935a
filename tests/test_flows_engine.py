"""FlowEngine on real SQLite files: ColonyOS examples, data passing, dynamic DAGs, control, events."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid

import pytest

from coflows.errors import NotFoundError
from coflows.flows import (
    CANCELLED, FAILED, FINISHED, SKIPPED, Flow, FlowDagError, FlowEngine, FlowFailed, FlowSpecError,
    FlowStateError, NotInTask, PythonResolver, RetryPolicy, current_task,
)
from coflows.flows import api as flows_api
from coflows.store import Database
from test_flows_spec import COLONYOS_ECHO
from test_m_harness import postgres  # noqa: F401 - fixture (a throwaway PostgreSQL cluster)

FAST_RETRY = RetryPolicy(base=0.01, factor=2.0, max_delay=0.1)


@pytest.fixture
def make_engine(tmp_path):
    engines: list[FlowEngine] = []

    def make(functions: dict, max_workers: int = 4, **kw) -> FlowEngine:
        db = Database(f"sqlite:///{tmp_path / 'flows.db'}")
        kw.setdefault("retry", FAST_RETRY)
        engine = FlowEngine(db, PythonResolver(functions), max_workers=max_workers, **kw).start()
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.shutdown(0.5)
        engine.database.dispose()


def run(engine: FlowEngine, spec, timeout: float = 10, **kw):
    run_id = engine.submit(spec, **kw)
    view = engine.wait(run_id, timeout)
    assert view.state in (FINISHED, FAILED, CANCELLED), f"run did not end: {view.state}"
    return view


# --- ColonyOS tutorial examples ----------------------------------------------------------------

def test_colonyos_echo_workflow_runs_as_written(make_engine):
    order: list[str] = []
    lock = threading.Lock()

    def echo(*words):
        with lock:
            order.append(words[0])
        return " ".join(words)

    engine = make_engine({"Shell.py/echo": echo})
    view = run(engine, COLONYOS_ECHO, aliases={"echo": "Shell.py/echo"})
    assert view.state == FINISHED
    assert view.outputs == {"task_a": "task1", "task_b": "task2", "task_c": "task3", "task_d": "task4"}
    assert order[0] == "task1" and order[-1] == "task4" and sorted(order[1:3]) == ["task2", "task3"]
    assert view.task("task_a").extra["conditions"] == {"executortype": "cli"}


# colonyos/tutorials 5-workflows/echo_wf.json (container executor form), verbatim but for the
# whitespace; every field coflows does not use is kept in the node's `extra`.
COLONYOS_CONTAINER_ECHO = [
    {"nodename": "task_a", "funcname": "execute", "kwargs": {"cmd": "echo A", "docker-image": "ubuntu:20.04"},
     "maxexectime": 55, "maxretries": 3,
     "conditions": {"executortype": "container-executor", "executornames": ["dev-docker"], "dependencies": [],
                    "nodes": 1, "processespernode": 1, "mem": "10Gi", "cpu": "1000m", "gpu": {"count": 0},
                    "walltime": 60}},
    {"nodename": "task_b", "funcname": "execute", "kwargs": {"cmd": "echo B", "docker-image": "ubuntu:20.04"},
     "maxexectime": 55, "maxretries": 3,
     "conditions": {"executortype": "container-executor", "executornames": ["dev-docker"],
                    "dependencies": ["task_a"], "nodes": 1, "processespernode": 1, "mem": "10Gi", "cpu": "1000m",
                    "gpu": {"count": 0}, "walltime": 60}},
    {"nodename": "task_c", "funcname": "execute", "kwargs": {"cmd": "echo C", "docker-image": "ubuntu:20.04"},
     "maxexectime": 55, "maxretries": 3,
     "conditions": {"executortype": "container-executor", "executornames": ["dev-docker"],
                    "dependencies": ["task_a"], "nodes": 1, "processespernode": 1, "mem": "10Gi", "cpu": "1000m",
                    "gpu": {"count": 0}, "walltime": 60}},
    {"nodename": "task_d", "funcname": "execute", "kwargs": {"cmd": "echo D", "docker-image": "ubuntu:20.04"},
     "maxexectime": 55, "maxretries": 3,
     "conditions": {"executortype": "container-executor", "executornames": ["dev-docker"],
                    "dependencies": ["task_b", "task_c"], "nodes": 1, "processespernode": 1, "mem": "10Gi",
                    "cpu": "1000m", "gpu": {"count": 0}, "walltime": 60}},
]


def test_colonyos_container_echo_workflow_keeps_unused_fields(make_engine):
    def execute(cmd, **options):
        assert options == {"docker-image": "ubuntu:20.04"}
        return cmd.split(" ", 1)[1]

    engine = make_engine({"Shell.py/execute": execute})
    view = run(engine, COLONYOS_CONTAINER_ECHO, aliases={"execute": "Shell.py/execute"})
    assert view.state == FINISHED and view.outputs == {"task_a": "A", "task_b": "B", "task_c": "C", "task_d": "D"}
    d = view.task("task_d")
    assert (d.timeout, d.retries, d.after) == (55.0, 3, ["task_b", "task_c"])
    assert d.extra["conditions"]["executornames"] == ["dev-docker"] and d.extra["conditions"]["gpu"] == {"count": 0}


# colonyos/tutorials 5-workflows/sum_wf.json, verbatim.
COLONYOS_SUM = """
[
    {
        "nodename": "gen_node",
        "funcname": "gen",
        "conditions": {
            "executortype": "wf-executor",
            "dependencies": []
        }
    },
    {
        "nodename": "sum_node",
        "funcname": "sum",
        "conditions": {
            "executortype": "wf-executor",
            "dependencies": [
                "gen_node"
            ]
        }
    }
]
"""


def test_colonyos_gen_sum_workflow_passes_output_as_input(make_engine):
    def gen():
        return [17, 4, 93, 58, 1]  # the tutorial's executor draws 5 random ints

    def total(input):
        # ColonyOS hands a process its parents' outputs as `input`; coflows: one entry per parent.
        return sum(n for parent in input for n in parent)

    engine = make_engine({"Nums.py/gen": gen, "Nums.py/sum": total})
    view = run(engine, COLONYOS_SUM, aliases={"gen": "Nums.py/gen", "sum": "Nums.py/sum"})
    assert view.state == FINISHED
    assert engine.result(view.id) == 173
    assert engine.result(view.id, "gen_node") == [17, 4, 93, 58, 1]


# --- data passing -------------------------------------------------------------------------------

def test_input_list_follows_dependency_order_and_parent_names(make_engine):
    seen = {}

    def a():
        return "A"

    def b():
        return ("B", 2)  # a tuple arrives as a JSON list

    def join(input, a, b, sep="-"):
        seen["join"] = (input, a, b, sep)
        return sep.join(str(x) for x in input)

    engine = make_engine({"T.py/a": a, "T.py/b": b, "T.py/join": join})
    spec = (Flow().task("b", "T.py/b").task("a", "T.py/a")
            .task("join", "T.py/join", after=["b", "a"], sep="+"))
    view = run(engine, spec)
    assert view.state == FINISHED
    assert seen["join"] == ([["B", 2], "A"], "A", ["B", 2], "+")
    assert view.task("join").output == "['B', 2]+A"


def test_explicit_args_win_over_passed_data(make_engine):
    def src():
        return 5

    def use(src, input):
        return {"src": src, "input": input}

    engine = make_engine({"T.py/src": src, "T.py/use": use})
    view = run(engine, Flow().task("src", "T.py/src").task("use", "T.py/use", 99, after=["src"]))
    assert view.task("use").output == {"src": 99, "input": [5]}
    view = run(engine, Flow().task("src", "T.py/src").task("use", "T.py/use", after=["src"], input="mine"))
    assert view.task("use").output == {"src": 5, "input": "mine"}


def test_display_hints_are_stored_and_only_value_is_passed_on(make_engine):
    got = {}

    def measure():
        return {"value": {"temp": 21}, "status": "ok", "color": "green", "shape": "box", "label": "Temp"}

    def report(measure, input):
        got["args"] = (measure, input)
        return {"value": 3}  # `value` alone is not a hint dict: passed on as is

    events = []
    engine = make_engine({"T.py/measure": measure, "T.py/report": report})
    engine.subscribe(events.append)
    view = run(engine, "T.py/measure; T.py/report")
    assert got["args"] == ({"temp": 21}, [{"temp": 21}])
    m = view.task("measure")
    assert m.output == {"temp": 21}
    assert m.hints == {"status": "ok", "color": "green", "shape": "box", "label": "Temp"}
    assert view.task("report").output == {"value": 3} and view.task("report").hints is None
    finished = [e for e in events if e.get("node") == "measure" and e["state"] == FINISHED]
    assert finished and finished[0]["hints"]["color"] == "green"


def test_flow_inputs_reach_root_tasks_only(make_engine):
    got = {}

    def root(day, input, other=None):
        got["root"] = (day, input, other)
        return day * 2

    def child(day=None, input=None):
        got["child"] = (day, input)
        return input

    engine = make_engine({"T.py/root": root, "T.py/child": child})
    view = run(engine, "T.py/root; T.py/child", inputs={"day": 4, "other": "x"})
    assert got["root"] == (4, [{"day": 4, "other": "x"}], "x")
    assert got["child"] == (None, [8])
    assert view.inputs == {"day": 4, "other": "x"}
    view = run(engine, Flow().task("root", "T.py/root", day=1))
    assert got["root"] == (1, [], None)


def test_output_that_is_not_json_fails_the_task(make_engine):
    engine = make_engine({"T.py/bad": lambda: object()})
    view = run(engine, "T.py/bad")
    assert view.state == FAILED and "not JSON-serialisable" in view.task("bad").error


# --- dynamic DAGs -------------------------------------------------------------------------------

def test_running_task_adds_a_child_that_gets_its_output(make_engine):
    def parent():
        ctx = current_task()
        assert ctx.node == "parent" and ctx.attempt == 1
        ctx.add_child("extra", "T.py/child", kwargs={"k": 2})
        ctx.add_child("extra", "kid", kwargs={"k": 2})  # the same via the run's alias: a no-op
        return 10

    def child(input, k):
        return input[0] * k

    events = []
    engine = make_engine({"T.py/parent": parent, "T.py/child": child})
    engine.subscribe(events.append)
    view = run(engine, "T.py/parent", aliases={"kid": "T.py/child"})
    assert view.state == FINISHED
    assert [t.node for t in view.tasks] == ["parent", "extra"]
    extra = view.task("extra")
    assert (extra.output, extra.after, extra.added_by) == (20, ["parent"], "parent")
    graph = [e for e in events if e["type"] == "graph"]
    assert len(graph) == 1 and graph[0]["node"] == "extra" and graph[0]["change"] == "add"


def test_insert_child_goes_between_a_task_and_its_children(make_engine):
    def a():
        current_task().insert_child("check", "T.py/check")
        return 3

    def check(input):
        return input[0] + 100

    def c(input):
        return input

    engine = make_engine({"T.py/a": a, "T.py/check": check, "T.py/c": c})
    view = run(engine, "T.py/a; T.py/c")
    assert view.state == FINISHED
    assert view.task("check").after == ["a"] and view.task("c").after == ["check"]
    assert view.task("c").output == [103]
    assert view.task("check").started_at >= view.task("a").finished_at - 0.001


def test_dag_changes_that_are_refused(make_engine):
    refusals = {}

    def root():
        return 1

    def mid():
        ctx = current_task()
        for key, change in {
            "upstream insert": lambda: ctx.insert_child("x1", "T.py/leaf", before=["root"]),
            "upstream after": lambda: ctx.add_child("x2", "T.py/leaf", after=["root"]),
            "sibling": lambda: ctx.insert_child("x3", "T.py/leaf", before=["side"]),
            "cycle": lambda: ctx.insert_child("x4", "T.py/leaf", before=["down"], after=["last"]),
            "taken": lambda: ctx.add_child("down", "T.py/other"),
            "unknown fn": lambda: ctx.add_child("x5", "T.py/nope"),
        }.items():
            try:
                change()
            except (FlowDagError, FlowSpecError) as exc:
                refusals[key] = (type(exc).__name__, str(exc))
        return 2

    def leaf(input=None):
        return input

    engine = make_engine({"T.py/root": root, "T.py/mid": mid, "T.py/leaf": leaf, "T.py/other": leaf})
    spec = (Flow().task("root", "T.py/root").task("side", "T.py/leaf", after="root")
            .task("mid", "T.py/mid", after="root").task("down", "T.py/leaf", after="mid")
            .task("last", "T.py/leaf", after="down"))
    view = run(engine, spec)
    assert view.state == FINISHED
    assert set(refusals) == {"upstream insert", "upstream after", "sibling", "cycle", "taken", "unknown fn"}
    assert all(kind == "FlowDagError" for key, (kind, _m) in refusals.items() if key != "unknown fn")
    assert "upstream" in refusals["upstream insert"][1] and "cycle" in refusals["cycle"][1]
    assert refusals["unknown fn"][0] == "FlowSpecError"
    assert [t.node for t in view.tasks] == ["root", "side", "mid", "down", "last"]  # nothing was added


def test_current_task_outside_a_task():
    with pytest.raises(NotInTask):
        current_task()


# --- control ------------------------------------------------------------------------------------

def test_retries_fail_twice_then_succeed(make_engine):
    calls = []

    def flaky():
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise RuntimeError(f"boom {len(calls)}")
        return "ok"

    engine = make_engine({"T.py/flaky": flaky}, retry=RetryPolicy(base=0.05, factor=2.0, max_delay=1))
    view = run(engine, Flow().task("f", "T.py/flaky", retries=2))
    t = view.task("f")
    assert (view.state, t.state, t.attempts, t.output, t.error) == (FINISHED, FINISHED, 3, "ok", None)
    gaps = [b - a for a, b in zip(calls, calls[1:])]
    assert gaps[0] >= 0.045 and gaps[1] >= 0.095  # exponential backoff: 0.05 s, then 0.1 s


def test_retries_exhausted_fail_the_run_and_skip_descendants(make_engine):
    def bad():
        raise ValueError("always")

    engine = make_engine({"T.py/bad": bad, "T.py/ok": lambda: 1})
    spec = (Flow().task("bad", "T.py/bad", retries=1).task("after", "T.py/ok", after="bad")
            .task("free", "T.py/ok"))
    view = run(engine, spec)
    assert view.state == FAILED and "bad: ValueError: always" in view.error
    assert (view.task("bad").state, view.task("bad").attempts) == (FAILED, 2)
    assert "Traceback" in view.task("bad").trace
    assert view.task("after").state == SKIPPED
    assert view.task("free").state == FINISHED  # independent branches still run
    with pytest.raises(FlowFailed, match="always"):
        engine.result(view.id, "bad")
    with pytest.raises(FlowFailed):
        engine.result(view.id)


def test_timeout_fails_the_attempt_and_ignores_the_late_result(make_engine):
    release = threading.Event()

    def slow():
        release.wait(5)
        return "late"

    engine = make_engine({"T.py/slow": slow, "T.py/ok": lambda: "ok"})
    started = time.monotonic()
    view = run(engine, Flow().task("slow", "T.py/slow", timeout=0.2, retries=1).task("n", "T.py/ok", after="slow"))
    elapsed = time.monotonic() - started
    t = view.task("slow")
    assert view.state == FAILED and t.state == FAILED and t.attempts == 2
    assert "CallTimeout" in t.error and "0.2 s" in t.error
    assert elapsed < 2.0
    release.set()
    time.sleep(0.2)
    after = engine.get(view.id).task("slow")
    assert after.state == FAILED and after.output is None
    # the pool was not starved by the stuck threads
    assert run(engine, "T.py/ok").state == FINISHED


def test_cancel_a_run(make_engine):
    gate = threading.Event()
    entered = threading.Event()

    def block():
        entered.set()
        gate.wait(5)
        return 1

    engine = make_engine({"T.py/block": block, "T.py/ok": lambda: 2})
    run_id = engine.submit("T.py/block; T.py/ok")
    assert entered.wait(5)
    assert engine.cancel(run_id) is True
    view = engine.wait(run_id, 2)
    assert view.state == CANCELLED
    assert view.task("block").state == CANCELLED and view.task("ok").state == CANCELLED
    gate.set()
    time.sleep(0.1)
    assert engine.get(run_id).task("block").state == CANCELLED  # late result ignored
    assert engine.cancel(run_id) is False
    with pytest.raises(FlowFailed):
        engine.result(run_id)


def test_rerun_from_failed_tasks_keeps_finished_outputs(make_engine):
    calls = {"a": 0, "b": 0, "c": 0}
    broken = {"b": True}

    def a():
        calls["a"] += 1
        return 1

    def b(a):
        calls["b"] += 1
        if broken["b"]:
            raise RuntimeError("b broken")
        return a + 1

    def c(b):
        calls["c"] += 1
        return b + 1

    engine = make_engine({"T.py/a": a, "T.py/b": b, "T.py/c": c})
    view = run(engine, "T.py/a; T.py/b; T.py/c")
    assert view.state == FAILED and view.task("c").state == SKIPPED
    first_a = view.task("a").finished_at
    with pytest.raises(FlowStateError, match="nothing to re-run"):
        engine.rerun(run(engine, "T.py/a").id)
    broken["b"] = False
    assert engine.rerun(view.id) == view.id
    view = engine.wait(view.id, 5)
    assert view.state == FINISHED and view.generation == 1
    assert engine.result(view.id) == 3
    assert calls["a"] == 2 and calls["b"] == 2 and calls["c"] == 1  # a ran once per run, never again
    assert view.task("a").finished_at == first_a and view.task("b").attempts == 2


def test_priority_orders_ready_tasks_with_one_worker(make_engine):
    order = []

    def work(tag):
        order.append(tag)
        return tag

    engine = make_engine({"T.py/work": work}, max_workers=1)
    flow = Flow().task("root", "T.py/work", "root")
    for name, prio in [("low", 1), ("high", 9), ("mid", 5), ("mid2", 5), ("neg", -3)]:
        flow.task(name, "T.py/work", name, after="root", priority=prio)
    assert run(engine, flow).state == FINISHED
    assert order == ["root", "high", "mid", "mid2", "low", "neg"]


def test_concurrency_limit(make_engine):
    lock = threading.Lock()
    now = {"n": 0, "max": 0}

    def busy(i):
        with lock:
            now["n"] += 1
            now["max"] = max(now["max"], now["n"])
        time.sleep(0.05)
        with lock:
            now["n"] -= 1
        return i

    engine = make_engine({"T.py/busy": busy}, max_workers=3)
    flow = Flow()
    for i in range(9):
        flow.task(f"t{i}", "T.py/busy", i)
    started = time.monotonic()
    ids = [engine.submit(flow) for _ in range(2)]
    views = [engine.wait(i, 10) for i in ids]
    assert all(v.state == FINISHED for v in views)
    assert now["max"] == 3
    assert time.monotonic() - started >= 6 * 0.05 - 0.01  # 18 tasks, 3 at a time


# --- API surface --------------------------------------------------------------------------------

def test_events_are_announced_after_commit(make_engine):
    engine = make_engine({"T.py/a": lambda: 1, "T.py/b": lambda: 2})
    mismatches, seen = [], []
    rank = {"pending": 0, "running": 1, "finished": 2}

    def check(event):
        seen.append(event)
        # Another connection sees only committed state: it must be the event's state or later
        # (one commit may carry several steps, e.g. run pending → running).
        try:
            stored = engine.get(event["run_id"])
            state = stored.state if event["node"] is None else stored.task(event["node"]).state
        except Exception as exc:  # noqa: BLE001 - e.g. the run is not stored yet
            mismatches.append((event, repr(exc)))
            return
        if rank[state] < rank[event["state"]]:
            mismatches.append((event, state))

    unsubscribe = engine.subscribe(check)
    view = run(engine, "T.py/a; T.py/b")
    # wait() may see the committed end a moment before listeners are told of it
    deadline = time.monotonic() + 5
    while not (seen and seen[-1]["node"] is None and seen[-1]["state"] == "finished") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not mismatches
    states = [(e["node"], e["state"]) for e in seen]
    assert states == [(None, "pending"), (None, "running"), ("a", "running"), ("a", "finished"), ("b", "running"),
                      ("b", "finished"), (None, "finished")]
    assert {"type", "run_id", "node", "state", "time"} <= set(seen[-1]) and seen[-1]["run_id"] == view.id
    unsubscribe()
    count = len(seen)
    run(engine, "T.py/a")
    assert len(seen) == count


def test_views_list_and_errors(make_engine):
    engine = make_engine({"T.py/a": lambda: {"x": [1, 2]}, "T.py/bad": lambda: 1 / 0})
    ok = run(engine, "T.py/a", name="first", workflow="wf1")
    bad = run(engine, "T.py/bad")
    d = ok.to_dict()
    json.dumps(d)
    assert d["name"] == "first" and d["workflow"] == "wf1" and d["tasks"][0]["output"] == {"x": [1, 2]}
    assert d["tasks"][0]["seconds"] >= 0 and d["created_at"].endswith("Z")
    runs = engine.list_runs(10)
    assert [r.id for r in runs] == [bad.id, ok.id]
    assert runs[0].counts == {"failed": 1} and runs[1].counts == {"finished": 1}
    assert [r.id for r in engine.list_runs(10, state="failed")] == [bad.id]
    assert "ZeroDivisionError" in bad.task("bad").error
    with pytest.raises(NotFoundError):
        engine.get("nope")
    with pytest.raises(NotFoundError):
        engine.result(ok.id, "nope")
    with pytest.raises(FlowSpecError, match="unknown function"):
        engine.submit("T.py/missing")
    with pytest.raises(FlowSpecError, match="inputs are not JSON"):
        engine.submit("T.py/a", inputs={"x": object()})


def test_engine_must_be_started(tmp_path):
    engine = FlowEngine(Database(f"sqlite:///{tmp_path / 'x.db'}"), PythonResolver({"T.py/a": lambda: 1}))
    with pytest.raises(FlowStateError, match="start"):
        engine.submit("T.py/a")


def test_module_level_api_uses_the_default_engine(make_engine):
    engine = make_engine({"T.py/a": lambda: 41, "T.py/b": lambda a: a + 1})
    flows_api.set_default_engine(None)
    with pytest.raises(FlowStateError):
        flows_api.submit("T.py/a")
    flows_api.set_default_engine(engine)
    try:
        import coflows.flows as flows

        run_id = flows.submit("T.py/a; T.py/b")
        assert flows.result(run_id, timeout=5) == 42
        assert flows.wait(run_id).state == FINISHED
    finally:
        flows_api.set_default_engine(None)


# --- PostgreSQL ---------------------------------------------------------------------------------

@pytest.fixture
def pg_url(request) -> str:
    """`COFLOWS_TEST_POSTGRES_URL` if set, else a new database on the throwaway cluster of the M tests."""
    url = os.environ.get("COFLOWS_TEST_POSTGRES_URL")
    if url:
        return url
    return request.getfixturevalue("postgres").create_database(f"flows_{uuid.uuid4().hex[:8]}")


@pytest.mark.postgres
def test_the_same_engine_on_postgres(pg_url):
    gate = threading.Event()
    tries = {"n": 0}

    def flaky(x):
        tries["n"] += 1
        if tries["n"] < 2:
            raise RuntimeError("once")
        current_task().add_child("more", "T.py/inc")
        return x + 1

    def inc(input):
        return input[0] + 1

    def block():
        gate.wait(5)
        return 41

    functions = {"T.py/flaky": flaky, "T.py/inc": inc, "T.py/block": block}
    owner = f"pg-{uuid.uuid4().hex[:8]}"
    db = Database(pg_url)
    engine = FlowEngine(db, PythonResolver(functions), retry=FAST_RETRY, owner_id=owner).start()
    try:
        view = run(engine, Flow().task("f", "T.py/flaky", 1, retries=1).task("g", "T.py/inc", after="f"))
        assert view.state == FINISHED and view.task("f").attempts == 2
        assert view.task("g").output == 3 and view.task("more").output == 3
        assert engine.list_runs(5)[0].id == view.id
        blocked = engine.submit("T.py/block; T.py/inc")
        time.sleep(0.2)
    finally:
        engine.shutdown(0.05)
    assert engine.get(blocked).state == "interrupted"
    gate.set()
    engine = FlowEngine(db, PythonResolver(functions), owner_id=owner).start()
    try:
        view = engine.wait(blocked, 10)
        assert view.state == FINISHED and view.task("block").attempts == 2 and engine.result(blocked) == 42
    finally:
        engine.shutdown(1)
        db.dispose()
