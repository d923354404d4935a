"""Flow specs written as documents: the YAML/JSON mapping form and ColonyOS' JSON list.

YAML (or the same shape in JSON)::

    name: daily
    aliases: {fetch: Data.py/fetch}       # optional: name → ref, or name → node options
    nodes:                                 # a mapping name → node (or a list of nodes with `name:`)
      fetch: {function: fetch, kwargs: {day: 1}}
      report:
        function: Report.py/make
        depends_on: [fetch]                # or `after:`
        retries: 2
        timeout: 30                        # seconds
        priority: 5
    # or, instead of nodes:  graph: "fetch; (clean || enrich); report"

ColonyOS: a list of `{"nodename", "funcname", "args", "kwargs", "conditions":
{"dependencies": [...]}, "maxexectime", "maxretries", "priority"}` (or a
`{"functionspecs": [...]}` workflow). Fields coflows does not use (executortype,
env, maxwaittime, ...) are kept in the node's `extra`. `funcname` goes through
the aliases, so `"echo"` can be mapped to a real Function.

Errors name the path (`nodes.report.depends_on[0]`) and, when the spec came
from text, the line and column.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import yaml

from coflows.flows.errors import FlowSpecError
from coflows.flows.spec import FlowSpec, Loc, NodeSpec, make_node, node_options, resolve_name


def _join(base: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{base}[{key}]"
    return f"{base}.{key}" if base else str(key)


def _aliases(doc: Mapping[str, Any], extra: Mapping[str, Any] | None) -> dict[str, Any]:
    aliases = doc.get("aliases") or {}
    if not isinstance(aliases, Mapping):
        raise FlowSpecError("aliases must be a mapping of name to function ref or node options", path="aliases")
    return {**(extra or {}), **aliases}


def parse_mapping(doc: Mapping[str, Any], aliases: Mapping[str, Any] | None = None,
                  fmt: str = "yaml") -> FlowSpec:
    """The YAML/JSON mapping form (`nodes:` mapping or list, or `graph:` string)."""
    unknown = [k for k in doc if k not in ("name", "aliases", "nodes", "graph", "description")]
    if unknown:
        raise FlowSpecError(f"unknown field {unknown[0]!r} (expected name, aliases, nodes or graph)",
                            path=str(unknown[0]))
    all_aliases = _aliases(doc, aliases)
    name = doc.get("name")
    if name is not None and not isinstance(name, str):
        raise FlowSpecError("name must be a string", path="name")
    if "graph" in doc:
        if "nodes" in doc:
            raise FlowSpecError("give either graph or nodes, not both", path="graph")
        from coflows.flows.graph_string import parse_graph_string

        text = doc["graph"]
        if not isinstance(text, str):
            raise FlowSpecError("graph must be a graph string such as 'a; b || c'", path="graph")
        try:
            spec = parse_graph_string(text, all_aliases)
        except FlowSpecError as exc:
            raise FlowSpecError(exc.message, path="graph", line=exc.line, column=exc.column,
                                where=f"graph ({exc.where})" if exc.where else "graph") from None
        spec.name = name
        spec.format = fmt
        return spec
    nodes_doc = doc.get("nodes")
    if nodes_doc is None:
        raise FlowSpecError("the flow has no nodes (add 'nodes:' or 'graph:')", path="nodes")
    nodes: list[NodeSpec] = []
    if isinstance(nodes_doc, Mapping):
        items = [(str(k), v, _join("nodes", str(k))) for k, v in nodes_doc.items()]
    elif isinstance(nodes_doc, list):
        items = []
        for i, item in enumerate(nodes_doc):
            path = _join("nodes", i)
            if not isinstance(item, Mapping):
                raise FlowSpecError("a node must be a mapping with name and function", path=path)
            node_name = item.get("name", item.get("nodename"))
            if not isinstance(node_name, str) or not node_name:
                raise FlowSpecError("a node in a list needs a name", path=_join(path, "name"))
            items.append((node_name, item, path))
    else:
        raise FlowSpecError("nodes must be a mapping of name to node, or a list of nodes", path="nodes")
    for node_name, body, path in items:
        if isinstance(body, str):  # shorthand  `fetch: Data.py/fetch`
            body = {"function": body}
        if body is None:
            body = {"function": node_name}  # `fetch:` alone: the alias/function of that name
        if not isinstance(body, Mapping):
            raise FlowSpecError("a node must be a mapping (function, args, kwargs, after, ...)", path=path)
        if "function" not in body and not any(k in body for k in ("ref", "func", "funcname")):
            body = {**body, "function": node_name}
        opts, locs = node_options(body, Loc(path), strict=True)
        ref_loc = locs.get("ref", Loc(path))
        ref, defaults, default_locs = resolve_name(opts.pop("ref"), all_aliases, ref_loc)
        opts["ref"] = ref
        nodes.append(make_node(node_name, opts, locs, Loc(path), defaults, default_locs))
    return FlowSpec(name=name, nodes=nodes, aliases=dict(all_aliases), format=fmt)


def parse_colonyos(doc: list | Mapping[str, Any], aliases: Mapping[str, Any] | None = None) -> FlowSpec:
    """ColonyOS' workflow JSON: a list of function specs with nodename/funcname/conditions.dependencies."""
    base = ""
    name = None
    if isinstance(doc, Mapping):
        base, name = "functionspecs", doc.get("name")
        doc = doc.get("functionspecs")
        if not isinstance(doc, list):
            raise FlowSpecError("functionspecs must be a list of function specs", path=base)
    all_aliases = dict(aliases or {})
    nodes: list[NodeSpec] = []
    for i, item in enumerate(doc):
        path = f"{base}[{i}]"
        if not isinstance(item, Mapping):
            raise FlowSpecError("a function spec must be an object with nodename and funcname", path=path)
        node_name = item.get("nodename")
        if not isinstance(node_name, str) or not node_name:
            raise FlowSpecError("nodename is missing or empty", path=f"{path}.nodename")
        if "funcname" not in item:
            raise FlowSpecError("funcname is missing", path=f"{path}.funcname")
        conditions = item.get("conditions") or {}
        if not isinstance(conditions, Mapping):
            raise FlowSpecError("conditions must be an object", path=f"{path}.conditions")
        body = {k: v for k, v in item.items() if k not in ("conditions",)}
        opts, locs = node_options(body, Loc(path), strict=False)
        cond_opts, cond_locs = node_options(
            {"dependencies": conditions.get("dependencies")}, Loc(f"{path}.conditions"), strict=True)
        opts["after"] = cond_opts["after"]
        locs.update(cond_locs)
        rest = {k: v for k, v in conditions.items() if k != "dependencies"}
        if rest:
            opts.setdefault("extra", {})["conditions"] = rest
        ref, defaults, default_locs = resolve_name(opts.pop("ref"), all_aliases, locs["ref"])
        opts["ref"] = ref
        nodes.append(make_node(node_name, opts, locs, Loc(path), defaults, default_locs))
    return FlowSpec(name=name if isinstance(name, str) else None, nodes=nodes, aliases=all_aliases,
                    format="colonyos")


# ---------------------------------------------------------------------------------------------
# text → object, keeping line/column for errors


def load_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FlowSpecError(f"invalid JSON: {exc.msg}", line=exc.lineno, column=exc.colno) from None
    except RecursionError:
        raise FlowSpecError("JSON nested too deeply") from None
    except ValueError as exc:  # e.g. an integer past Python's digit limit
        raise FlowSpecError(f"invalid JSON: {exc}") from None


MAX_YAML_NODES = 20_000  # values in a YAML document once its aliases are expanded
MAX_YAML_DEPTH = 64  # collections inside each other


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a document whose aliases expand past `MAX_YAML_NODES` (a "billion laughs" bomb), that
    refers to itself, or that nests deeper than `MAX_YAML_DEPTH`, before anything is constructed.

    The composed graph shares aliased nodes, so the expanded size is counted once per node
    (memoized): linear in the text, whatever the aliases multiply.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node, depth: int) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if depth > MAX_YAML_DEPTH:
            raise FlowSpecError(f"YAML nested deeper than {MAX_YAML_DEPTH} levels",
                                line=node.start_mark.line + 1, column=node.start_mark.column + 1)
        if key in open_nodes:
            raise FlowSpecError("a YAML alias refers to a node that contains it",
                                line=node.start_mark.line + 1, column=node.start_mark.column + 1)
        total = 1
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            open_nodes.add(key)
            children = (c for pair in node.value for c in pair) if isinstance(node, yaml.MappingNode) else node.value
            for child in children:
                total += size(child, depth + 1)
                if total > MAX_YAML_NODES:
                    raise FlowSpecError(f"YAML document too large once its aliases are expanded "
                                        f"(more than {MAX_YAML_NODES} values)")
            open_nodes.discard(key)
        sizes[key] = total
        return total

    size(root, 1)


_BRACKETS = re.compile(r"[\[\]{}]")


def _check_flow_depth(text: str) -> None:
    """PyYAML's scanner costs O(depth) per token inside `[`/`{`: refuse deep flow nesting before it.

    Brackets inside quoted strings count too; only a text with more than `MAX_YAML_DEPTH`
    unclosed ones is refused.
    """
    if text.count("[") + text.count("{") <= MAX_YAML_DEPTH:
        return
    depth = 0
    for m in _BRACKETS.finditer(text):
        depth = depth + 1 if m.group() in "[{" else max(depth - 1, 0)
        if depth > MAX_YAML_DEPTH:
            line = text.count("\n", 0, m.start()) + 1
            raise FlowSpecError(f"YAML nested deeper than {MAX_YAML_DEPTH} levels", line=line)


def load_yaml(text: str) -> tuple[Any, dict[str, tuple[int, int]]]:
    """Parse YAML; also return path → (line, column) of every value, for errors found later.

    Aliases are expanded only within a budget (`_check_expansion`), so a small text cannot
    cost unbounded CPU or memory.
    """
    _check_flow_depth(text)
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is not None:
            _check_expansion(root)
        data = loader.construct_document(root) if root is not None else None
    except RecursionError:
        raise FlowSpecError(f"YAML nested deeper than {MAX_YAML_DEPTH} levels") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = f"invalid YAML: {exc.problem or exc.context}"
        if mark is None:
            raise FlowSpecError(message) from None
        raise FlowSpecError(message, line=mark.line + 1, column=mark.column + 1) from None
    except yaml.YAMLError as exc:
        raise FlowSpecError(f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    marks: dict[str, tuple[int, int]] = {}

    def walk(node: yaml.Node, path: str) -> None:
        marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = _join(path, str(key.value))
                marks[child] = (value.start_mark.line + 1, value.start_mark.column + 1)
                walk(value, child)
        elif isinstance(node, yaml.SequenceNode):
            for i, value in enumerate(node.value):
                walk(value, _join(path, i))

    if root is not None:
        walk(root, "")
    return data, marks


def add_marks(exc: FlowSpecError, marks: Mapping[str, tuple[int, int]]) -> FlowSpecError:
    """Give a path-only error the line/column of that path (or of its nearest parent) in the YAML text."""
    if exc.path is None or exc.line is not None:
        return exc
    path = exc.path
    while path not in marks and path:
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
    if path not in marks or not path:
        return exc
    line, column = marks[path]
    return Loc(exc.path, line, column).error(exc.message)


def spec_with_marks(spec: FlowSpec, marks: Mapping[str, tuple[int, int]]) -> FlowSpec:
    """Attach YAML line/column to every path-based loc of every node (for later semantic errors)."""
    for node in spec.nodes:
        for key, loc in list(node._locs.items()):
            if loc.path is not None and loc.line is None:
                fixed = add_marks(FlowSpecError("", path=loc.path), marks)
                node._locs[key] = Loc(loc.path, fixed.line, fixed.column)
    return spec
