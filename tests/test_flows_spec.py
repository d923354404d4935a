"""Flow spec forms (graph string, YAML, ColonyOS JSON, builder) and their errors, with where."""

from __future__ import annotations

import json

import pytest

from coflows.errors import CoflowsError
from coflows.flows import Flow, FlowSpecError, PythonResolver, parse_spec


def _fn(*args, **kwargs):
    return None


RESOLVER = PythonResolver({ref: _fn for ref in (
    "Data.py/fetch", "Data.py/clean", "Data.py/enrich", "Data.py/report", "Calc.py/Add", "Shell.py/echo",
    "wf/Calc.py/Add")})

DATA = {"fetch": "Data.py/fetch", "clean": "Data.py/clean", "enrich": "Data.py/enrich", "report": "Data.py/report"}


def deps(spec):
    return {n.name: n.after for n in spec.nodes}


# --- graph string ------------------------------------------------------------------------------

def test_graph_string_sequence_and_parallel_groups():
    spec = parse_spec("fetch; (clean || enrich); report", aliases=DATA, resolver=RESOLVER)
    assert spec.format == "graph"
    assert deps(spec) == {"fetch": [], "clean": ["fetch"], "enrich": ["fetch"], "report": ["clean", "enrich"]}
    assert spec.node("clean").ref == "Data.py/clean"


def test_graph_string_refs_and_repeated_function_get_unique_names():
    spec = parse_spec("Calc.py/Add; Calc.py/Add || Data.py/fetch; wf/Calc.py/Add", resolver=RESOLVER)
    assert [n.name for n in spec.nodes] == ["Add", "Add#2", "fetch", "Add#3"]
    assert deps(spec) == {"Add": [], "Add#2": ["Add"], "fetch": ["Add"], "Add#3": ["Add#2", "fetch"]}
    assert spec.node("Add#3").ref == "wf/Calc.py/Add"


def test_graph_string_multiline_and_alias_with_options():
    aliases = {"a": {"function": "Calc.py/Add", "kwargs": {"x": 1}, "retries": 2, "priority": 7}, "b": "Data.py/fetch"}
    spec = parse_spec("a\n  ; b || a", aliases=aliases, resolver=RESOLVER)
    assert deps(spec) == {"a": [], "b": ["a"], "a#2": ["a"]}
    node = spec.node("a#2")
    assert (node.ref, node.kwargs, node.retries, node.priority) == ("Calc.py/Add", {"x": 1}, 2, 7)


def test_graph_string_parallel_then_parallel_is_all_to_all():
    spec = parse_spec("(fetch || clean); (enrich || report)", aliases=DATA, resolver=RESOLVER)
    assert deps(spec)["enrich"] == ["fetch", "clean"] and deps(spec)["report"] == ["fetch", "clean"]


@pytest.mark.parametrize("text, line, column, words", [
    ("fetch;; report", 1, 7, "expected a function name"),
    ("fetch | report", 1, 7, "did you mean '||'"),
    ("(fetch; report", 1, 15, "expected ')'"),
    ("fetch; report)", 1, 14, "unexpected ')'"),
    ("fetch report", 1, 7, "unexpected 'report'"),
    ("fetch;\n  clean ||\n  ", 3, 3, "expected a function name"),
    ("fetch; ()", 1, 9, "empty parentheses"),
    ("   ", 1, 4, "empty"),
    ("fetch; nope", 1, 8, "unknown function 'nope'"),
    ("fetch;\n (clean || Calc.py/Nope)", 2, 12, "unknown function 'Calc.py/Nope'"),
])
def test_graph_string_errors_give_line_and_column(text, line, column, words):
    with pytest.raises(FlowSpecError) as err:
        parse_spec(text, format="graph", aliases=DATA, resolver=RESOLVER)
    assert (err.value.line, err.value.column) == (line, column)
    assert words in str(err.value)
    assert f"line {line}, column {column}" in str(err.value)
    assert isinstance(err.value, CoflowsError)


# --- YAML ----------------------------------------------------------------------------------------

YAML = """\
name: daily
aliases:
  fetch: Data.py/fetch
nodes:
  fetch:
    kwargs: {day: 3}
  clean:
    function: Data.py/clean
    after: [fetch]
    retries: 2
    timeout: 1.5
    priority: 4
  report:
    function: Data.py/report
    args: [1, "two"]
    depends_on: [clean, fetch]
"""


def test_yaml_mapping_form():
    spec = parse_spec(YAML, resolver=RESOLVER)
    assert spec.format == "yaml" and spec.name == "daily"
    assert deps(spec) == {"fetch": [], "clean": ["fetch"], "report": ["clean", "fetch"]}
    clean = spec.node("clean")
    assert (clean.retries, clean.timeout, clean.priority) == (2, 1.5, 4)
    assert spec.node("fetch").ref == "Data.py/fetch" and spec.node("fetch").kwargs == {"day": 3}
    assert spec.node("report").args == [1, "two"]


def test_yaml_list_form_and_graph_key():
    spec = parse_spec("nodes:\n  - name: a\n    function: Calc.py/Add\n  - {name: b, function: Data.py/fetch, after: a}\n",
                      resolver=RESOLVER)
    assert deps(spec) == {"a": [], "b": ["a"]}
    spec = parse_spec("graph: 'fetch; clean || enrich'\naliases: {fetch: Data.py/fetch, clean: Data.py/clean, "
                      "enrich: Data.py/enrich}\n", resolver=RESOLVER)
    assert deps(spec) == {"fetch": [], "clean": ["fetch"], "enrich": ["fetch"]}


@pytest.mark.parametrize("doc, path, line, words", [
    (YAML.replace("depends_on: [clean, fetch]", "depends_on: [clean, nope]"), "nodes.report.depends_on[1]", 16,
     "unknown dependency 'nope'"),
    (YAML.replace("depends_on: [clean, fetch]", "depends_on: [nope]"), "nodes.report.depends_on[0]", 16,
     "unknown dependency"),
    (YAML.replace("retries: 2", "retries: lots"), "nodes.clean.retries", 10, "whole number"),
    (YAML.replace("after: [fetch]", "aftr: [fetch]"), "nodes.clean.aftr", 9, "unknown field 'aftr'"),
    (YAML.replace("function: Data.py/report", "function: Data.py/missing"), "nodes.report.function", 14,
     "unknown function 'Data.py/missing'"),
    (YAML.replace("args: [1, \"two\"]", "args: 5"), "nodes.report.args", 15, "args must be a list"),
    (YAML.replace("after: [fetch]", "after: [report]"), "nodes.clean.after[0]", 9, "cycle: clean → report → clean"),
])
def test_yaml_errors_give_path_and_line(doc, path, line, words):
    with pytest.raises(FlowSpecError) as err:
        parse_spec(doc, resolver=RESOLVER)
    assert err.value.path == path
    assert err.value.line == line
    assert words in str(err.value)


def test_yaml_cycle_names_the_cycle():
    doc = "nodes:\n  a: {function: Calc.py/Add, after: [c]}\n  b: {function: Calc.py/Add, after: [a]}\n" \
          "  c: {function: Calc.py/Add, after: [b]}\n"
    with pytest.raises(FlowSpecError) as err:
        parse_spec(doc, resolver=RESOLVER)
    message = str(err.value)
    assert "cycle" in message and all(n in message for n in "abc")
    assert err.value.path.startswith("nodes.") and ".after[0]" in err.value.path


def test_yaml_syntax_error_has_line():
    with pytest.raises(FlowSpecError) as err:
        parse_spec("nodes:\n  a: {function: x\n  b: [\n", format="yaml")
    assert err.value.line is not None and "invalid YAML" in str(err.value)


def test_duplicate_node_names_in_list_form():
    doc = "nodes:\n  - {name: a, function: Calc.py/Add}\n  - {name: a, function: Calc.py/Add}\n"
    with pytest.raises(FlowSpecError) as err:
        parse_spec(doc, resolver=RESOLVER)
    assert "duplicate node name 'a'" in str(err.value)
    assert err.value.path == "nodes[1].name" and err.value.line == 3


# --- ColonyOS JSON -------------------------------------------------------------------------------

# The four-task echo workflow of ColonyOS' workflow documentation (colonyos/colonies docs/Workflows.md).
COLONYOS_ECHO = """
[
    {
        "nodename": "task_a",
        "funcname": "echo",
        "args": ["task1"],
        "conditions": {"executortype": "cli", "dependencies": null}
    },
    {
        "nodename": "task_b",
        "funcname": "echo",
        "args": ["task2"],
        "conditions": {"executortype": "cli", "dependencies": ["task_a"]}
    },
    {
        "nodename": "task_c",
        "funcname": "echo",
        "args": ["task3"],
        "conditions": {"executortype": "cli", "dependencies": ["task_a"]}
    },
    {
        "nodename": "task_d",
        "funcname": "echo",
        "args": ["task4"],
        "conditions": {"executortype": "cli", "dependencies": ["task_b", "task_c"]}
    }
]
"""


def test_colonyos_json_keeps_extra_fields():
    spec = parse_spec(COLONYOS_ECHO, aliases={"echo": "Shell.py/echo"}, resolver=RESOLVER)
    assert spec.format == "colonyos"
    assert deps(spec) == {"task_a": [], "task_b": ["task_a"], "task_c": ["task_a"], "task_d": ["task_b", "task_c"]}
    a = spec.node("task_a")
    assert a.ref == "Shell.py/echo" and a.args == ["task1"]
    assert a.extra["conditions"] == {"executortype": "cli"} and a.extra["alias"] == "echo"


def test_colonyos_limits_and_functionspecs_wrapper():
    doc = {"colonyname": "dev", "functionspecs": [
        {"nodename": "x", "funcname": "Calc.py/Add", "maxexectime": 55, "maxretries": 3, "priority": 200,
         "env": {"A": "1"}, "conditions": {"dependencies": []}},
        {"nodename": "y", "funcname": "Calc.py/Add", "maxexectime": -1, "maxretries": -1,
         "conditions": {"dependencies": ["x"]}}]}
    spec = parse_spec(doc, resolver=RESOLVER)
    x, y = spec.node("x"), spec.node("y")
    assert (x.timeout, x.retries, x.priority, x.extra["env"]) == (55.0, 3, 200, {"A": "1"})
    assert (y.timeout, y.retries, y.after) == (None, 0, ["x"])


@pytest.mark.parametrize("mutate, path, words", [
    (lambda d: d[3]["conditions"]["dependencies"].append("task_z"), "[3].conditions.dependencies[2]",
     "unknown dependency 'task_z'"),
    (lambda d: d[1].pop("funcname"), "[1].funcname", "funcname is missing"),
    (lambda d: d[2].update(nodename=""), "[2].nodename", "nodename is missing"),
    (lambda d: d[0].update(funcname="nope"), "[0].funcname", "unknown function 'nope'"),
    (lambda d: d[0].update(maxretries="3"), "[0].maxretries", "whole number"),
    (lambda d: d[0]["conditions"].update(dependencies=["task_d"]), "[0].conditions.dependencies[0]", "cycle"),
    (lambda d: d[3].update(nodename="task_a"), "[3].nodename", "duplicate node name"),
])
def test_colonyos_errors_give_path(mutate, path, words):
    doc = json.loads(COLONYOS_ECHO)
    mutate(doc)
    with pytest.raises(FlowSpecError) as err:
        parse_spec(json.dumps(doc, indent=2), aliases={"echo": "Shell.py/echo"}, resolver=RESOLVER)
    assert err.value.path == path, str(err.value)
    assert words in str(err.value)
    assert err.value.line is None or err.value.line > 0


def test_malformed_json_gives_line_and_column():
    with pytest.raises(FlowSpecError) as err:
        parse_spec('[\n  {"nodename": "a",\n   "funcname": }\n]')
    assert (err.value.line, err.value.column) == (3, 16)


@pytest.mark.parametrize("source, words", [
    (42, "must be text"),
    ({"nodes": 5}, "nodes must be a mapping"),
    ({"name": "x"}, "no nodes"),
    ({"nodes": {}}, "no nodes"),
    ([{"funcname": "x"}], "nodename"),
    (["not an object"], "must be an object"),
    ({"graph": "a", "nodes": {}}, "either graph or nodes"),
    ({"nodes": {"a": {"function": "Calc.py/Add"}}, "nodez": 1}, "unknown field 'nodez'"),
])
def test_malformed_documents(source, words):
    with pytest.raises(FlowSpecError) as err:
        parse_spec(source, resolver=RESOLVER)
    assert words in str(err.value)


# --- builder -------------------------------------------------------------------------------------

def test_builder_makes_the_same_spec():
    flow = (Flow("b").task("fetch", "Data.py/fetch", 1, x=2)
            .task("clean", "Data.py/clean", after=["fetch"], retries=1, timeout=2, priority=3)
            .task("report", "Data.py/report", after="clean", kwargs={"timeout": 9}))
    spec = parse_spec(flow, resolver=RESOLVER)
    assert spec.name == "b" and spec.format == "python"
    assert deps(spec) == {"fetch": [], "clean": ["fetch"], "report": ["clean"]}
    assert spec.node("fetch").args == [1] and spec.node("fetch").kwargs == {"x": 2}
    assert spec.node("report").kwargs == {"timeout": 9}
    assert (spec.node("clean").retries, spec.node("clean").timeout, spec.node("clean").priority) == (1, 2.0, 3)


def test_builder_errors_name_the_task():
    with pytest.raises(FlowSpecError) as err:
        parse_spec(Flow().task("a", "Calc.py/Add").task("b", "Calc.py/Add", after=["zz"]), resolver=RESOLVER)
    assert err.value.where == "task 'b' after[0]" and "unknown dependency 'zz'" in str(err.value)
    with pytest.raises(FlowSpecError) as err:
        parse_spec(Flow().task("a", "Calc.py/Add").task("a", "Calc.py/Add"), resolver=RESOLVER)
    assert "duplicate" in str(err.value) and err.value.where == "task 'a'"
    with pytest.raises(FlowSpecError) as err:
        parse_spec(Flow().task("a", "Nope.py/x"), resolver=RESOLVER)
    assert "unknown function 'Nope.py/x'" in str(err.value)
    with pytest.raises(FlowSpecError) as err:
        parse_spec(Flow().task("a", "Calc.py/Add", after="a"), resolver=RESOLVER)
    assert "depends on itself" in str(err.value)
    with pytest.raises(FlowSpecError) as err:
        parse_spec(Flow().task("a", "Calc.py/Add", object()), resolver=RESOLVER)
    assert "not JSON" in str(err.value)


def test_format_detection():
    assert parse_spec("fetch || clean", aliases=DATA).format == "graph"
    assert parse_spec(YAML).format == "yaml"
    assert parse_spec(COLONYOS_ECHO).format == "colonyos"
    assert parse_spec('{"nodes": {"a": "Calc.py/Add"}}').format == "json"
    with pytest.raises(FlowSpecError, match="unknown spec format"):
        parse_spec("a", format="toml")
