"""The one validated model every spec form turns into: `FlowSpec` of `NodeSpec`s.

Why one model: the graph string, YAML, ColonyOS JSON and the Python builder
differ only in syntax; validation (duplicates, unknown dependencies, cycles,
unknown functions) and the engine work on this model alone. Each node keeps,
privately, where each of its fields came from (`Loc`: a YAML/JSON path and/or a
line and column) so that a semantic error found later still points at the text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from coflows.flows.errors import FlowSpecError


class FunctionResolver(Protocol):
    """What the flow engine needs of the function registry (implemented by the runtime)."""

    def exists(self, ref: str) -> bool: ...

    def param_names(self, ref: str) -> list[str]: ...

    def call(self, ref: str, args: list, kwargs: dict) -> Any: ...


class Loc(NamedTuple):
    """Where a piece of a spec came from: a document path, a line and column, or both."""

    path: str | None = None
    line: int | None = None
    column: int | None = None

    def error(self, message: str) -> FlowSpecError:
        return FlowSpecError(message, path=self.path, line=self.line, column=self.column,
                             where=_where(self))


def _where(loc: Loc) -> str | None:
    pos = None
    if loc.line is not None:
        pos = f"line {loc.line}, column {loc.column}" if loc.column is not None else f"line {loc.line}"
    if loc.path and pos:
        return f"{loc.path} ({pos})"
    return loc.path or pos


class NodeSpec(BaseModel):
    """One task of a flow: which function to call, with what, after which nodes, and how hard to try."""

    model_config = ConfigDict(extra="forbid")

    name: str
    ref: str
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    after: list[str] = Field(default_factory=list)
    retries: int = Field(0, ge=0)
    timeout: float | None = Field(None, gt=0)
    priority: int = 0
    # Fan-out: one task per item of a list — a parent's output (by its name), a run input (by its
    # key) or a literal list; `concurrency` caps how many items run at once. Children get the list
    # of the items' outputs in order (the reduce).
    map: str | list[Any] | None = None
    concurrency: int | None = Field(None, ge=1)
    extra: dict[str, Any] = Field(default_factory=dict)  # fields of other systems, kept (e.g. executortype)

    _locs: dict[str, Loc] = PrivateAttr(default_factory=dict)

    def loc(self, key: str = "node") -> Loc:
        """Where `key` ("node", "ref", "after[0]", ...) was written; falls back to the node itself."""
        if key in self._locs:
            return self._locs[key]
        base = self._locs.get("node")
        if base and base.path is not None:
            return Loc(f"{base.path}.{key}", base.line, base.column)
        return base or Loc(f"nodes.{self.name}.{key}" if key != "node" else f"nodes.{self.name}")

    def with_locs(self, locs: Mapping[str, Loc]) -> NodeSpec:
        self._locs.update(locs)
        return self


class FlowSpec(BaseModel):
    """A validated flow: ordered nodes plus the aliases its text used (function name → ref/options)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    nodes: list[NodeSpec]
    aliases: dict[str, Any] = Field(default_factory=dict)
    format: str = "python"

    def node(self, name: str) -> NodeSpec:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


# ---------------------------------------------------------------------------------------------
# validation


def validate_spec(spec: FlowSpec, resolver: FunctionResolver | None = None) -> FlowSpec:
    """Check a spec as a whole; raise `FlowSpecError` at the first problem, with where it is.

    Order: empty flow, duplicate names, unknown/self dependencies, cycles, unknown
    functions (only when a resolver is given), arguments that are not JSON.
    """
    if not spec.nodes:
        raise FlowSpecError("the flow has no nodes", path="nodes")
    _check_size(spec)
    seen: dict[str, NodeSpec] = {}
    for node in spec.nodes:
        if not node.name or not node.name.strip():
            raise node.loc().error("node name is empty")
        if node.name in seen:
            raise node.loc("name").error(f"duplicate node name {node.name!r}")
        seen[node.name] = node
    for node in spec.nodes:
        for i, dep in enumerate(node.after):
            if dep == node.name:
                raise node.loc(f"after[{i}]").error(f"node {node.name!r} depends on itself")
            if dep not in seen:
                raise node.loc(f"after[{i}]").error(
                    f"unknown dependency {dep!r} of node {node.name!r} (known: {', '.join(seen)})")
        if len(set(node.after)) != len(node.after):
            raise node.loc("after").error(f"node {node.name!r} lists a dependency twice")
    _check_acyclic(spec, seen)
    if resolver is not None:
        for node in spec.nodes:
            if not resolver.exists(node.ref):
                alias = f" (alias {node.extra['alias']!r})" if "alias" in node.extra else ""
                raise node.loc("ref").error(f"unknown function {node.ref!r}{alias} of node {node.name!r}")
    for node in spec.nodes:
        _check_map(node, seen)
    for node in spec.nodes:
        for key, value in (("args", node.args), ("kwargs", node.kwargs)):
            try:
                json.dumps(value)
            except (TypeError, ValueError) as exc:
                raise node.loc(key).error(f"{key} of node {node.name!r} are not JSON: {exc}") from None
    return spec


MAX_NODES = 1_000  # nodes of one spec
MAX_EDGES = 10_000  # dependencies (after) of all its nodes
MAX_MAP_ITEMS = 10_000  # items of a literal `map:` list


def _check_size(spec: FlowSpec) -> None:
    """Bound what one spec may cost to validate, store and schedule (a spec can come over HTTP)."""
    if len(spec.nodes) > MAX_NODES:
        raise FlowSpecError(f"the flow has {len(spec.nodes)} nodes (at most {MAX_NODES})", path="nodes")
    edges = sum(len(n.after) for n in spec.nodes)
    if edges > MAX_EDGES:
        raise FlowSpecError(f"the flow has {edges} dependencies (at most {MAX_EDGES})", path="nodes")
    for node in spec.nodes:
        if isinstance(node.map, list) and len(node.map) > MAX_MAP_ITEMS:
            raise node.loc("map").error(
                f"map of node {node.name!r} lists {len(node.map)} items (at most {MAX_MAP_ITEMS})")


def _check_map(node: NodeSpec, nodes: Mapping[str, NodeSpec]) -> None:
    """A map source that names a node must be one of the node's parents (else it would not be ready)."""
    if node.concurrency is not None and node.map is None:
        raise node.loc("concurrency").error(
            f"concurrency applies to a map node; node {node.name!r} has no 'map'")
    if isinstance(node.map, str):
        if not node.map:
            raise node.loc("map").error(f"map of node {node.name!r} is empty: name a parent node or a run input")
        if node.map in nodes and node.map not in node.after:
            raise node.loc("map").error(
                f"node {node.name!r} maps over the output of {node.map!r} but does not run after it; "
                f"add {node.map!r} to its after")


def _check_acyclic(spec: FlowSpec, nodes: dict[str, NodeSpec]) -> None:
    """Kahn's algorithm; on failure report one concrete cycle `a → b → a` at the edge that closes it."""
    indegree = {n.name: len(n.after) for n in spec.nodes}
    children: dict[str, list[str]] = {n.name: [] for n in spec.nodes}
    for n in spec.nodes:
        for dep in n.after:
            children[dep].append(n.name)
    queue = [name for name, d in indegree.items() if d == 0]
    done = 0
    while queue:
        name = queue.pop()
        done += 1
        for child in children[name]:
            indegree[child] -= 1
            if indegree[child] == 0:
                queue.append(child)
    if done == len(nodes):
        return
    # Walk dependencies among the blocked nodes until one repeats: that is a cycle.
    blocked = {name for name, d in indegree.items() if d > 0}
    start = next(n.name for n in spec.nodes if n.name in blocked)
    path = [start]
    index = {start: 0}
    while True:
        node = nodes[path[-1]]
        dep = next(d for d in node.after if d in blocked)
        if dep in index:
            cycle = path[index[dep]:] + [dep]
            # cycle lists dependency edges backwards (x depends on y); show it in run order, and point
            # at the edge of the node written first, so the report does not depend on the walk.
            order = {n.name: i for i, n in enumerate(spec.nodes)}
            i = min(range(len(cycle) - 1), key=lambda k: order[cycle[k]])
            x, y = nodes[cycle[i]], cycle[i + 1]
            shown = " → ".join(reversed(cycle[i:] + cycle[1:i + 1]))
            raise x.loc(f"after[{x.after.index(y)}]").error(f"cycle: {shown}")
        index[dep] = len(path)
        path.append(dep)


# ---------------------------------------------------------------------------------------------
# aliases and node options shared by every textual form

REF_KEYS = ("function", "ref", "func", "funcname")
AFTER_KEYS = ("after", "depends_on", "dependencies")
RETRY_KEYS = ("retries", "maxretries")
TIMEOUT_KEYS = ("timeout", "maxexectime")
OPTION_KEYS = ("args", "kwargs", "priority", "map", "concurrency")


def resolve_name(token: str, aliases: Mapping[str, Any], loc: Loc) -> tuple[str, dict[str, Any], dict[str, Loc]]:
    """Map a function name through the aliases: returns (ref, default node options, their locs)."""
    if token not in aliases:
        return token, {}, {}
    value = aliases[token]
    apath = f"aliases.{token}"
    if isinstance(value, str):
        return value, {"extra": {"alias": token}}, {}
    if isinstance(value, Mapping):
        opts, locs = node_options(value, Loc(apath), strict=True, allow_name=False)
        if "ref" not in opts:
            raise Loc(apath).error(f"alias {token!r} names no function (add 'function: Query.py/fn')")
        ref = opts.pop("ref")
        opts.setdefault("extra", {})["alias"] = token
        return ref, opts, locs
    raise Loc(apath).error(f"alias {token!r} must be a function ref string or a mapping of node options")


def node_options(d: Mapping[str, Any], loc: Loc, *, strict: bool, allow_name: bool = True,
                 extra_ok: tuple[str, ...] = ()) -> tuple[dict[str, Any], dict[str, Loc]]:
    """Normalise one node's mapping (YAML, JSON, alias) into NodeSpec fields, checking types with paths.

    `strict` rejects unknown keys (YAML: catches typos); otherwise they are kept in `extra`
    (ColonyOS carries executortype, env, ... that coflows does not use).
    """
    base = loc.path or ""
    out: dict[str, Any] = {}
    locs: dict[str, Loc] = {}

    def at(key: str) -> Loc:
        return Loc(f"{base}.{key}" if base else key, loc.line, loc.column)

    def pick(keys: tuple[str, ...]) -> tuple[str, Any] | None:
        found = [k for k in keys if k in d]
        if len(found) > 1:
            raise at(found[1]).error(f"give only one of {', '.join(found)}")
        return (found[0], d[found[0]]) if found else None

    if (hit := pick(REF_KEYS)) is not None:
        key, value = hit
        if not isinstance(value, str) or not value.strip():
            raise at(key).error(f"{key} must be a function ref such as 'Query.py/fn'")
        out["ref"] = value.strip()
        locs["ref"] = at(key)
    if "args" in d:
        value = d["args"]
        if value is None:
            value = []
        if not isinstance(value, list):
            raise at("args").error("args must be a list")
        out["args"] = value
        locs["args"] = at("args")
    if "kwargs" in d:
        value = d["kwargs"]
        if value is None:
            value = {}
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise at("kwargs").error("kwargs must be a mapping of parameter name to value")
        out["kwargs"] = dict(value)
        locs["kwargs"] = at("kwargs")
    if (hit := pick(AFTER_KEYS)) is not None:
        key, value = hit
        if value is None:
            value = []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise at(key).error(f"{key} must be a list of node names")
        for i, dep in enumerate(value):
            if not isinstance(dep, str) or not dep:
                raise at(f"{key}[{i}]").error("a dependency must be a node name")
            locs[f"after[{i}]"] = at(f"{key}[{i}]")
        out["after"] = list(value)
        locs["after"] = at(key)
    if (hit := pick(RETRY_KEYS)) is not None:
        key, value = hit
        if isinstance(value, bool) or not isinstance(value, int):
            raise at(key).error(f"{key} must be a whole number")
        out["retries"] = max(0, value)  # ColonyOS uses -1 for "none"
        locs["retries"] = at(key)
    if (hit := pick(TIMEOUT_KEYS)) is not None:
        key, value = hit
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise at(key).error(f"{key} must be a number of seconds")
        out["timeout"] = float(value) if value is not None and value > 0 else None  # -1: no limit
        locs["timeout"] = at(key)
    if "priority" in d:
        value = d["priority"]
        if isinstance(value, bool) or not isinstance(value, int):
            raise at("priority").error("priority must be a whole number (higher runs first)")
        out["priority"] = value
        locs["priority"] = at("priority")
    if "map" in d:
        value = d["map"]
        if value is not None and (not isinstance(value, (str, list)) or value == ""):
            raise at("map").error("map must name a parent node or a run input, or be a list of items")
        out["map"] = value
        locs["map"] = at("map")
    if "concurrency" in d:
        value = d["concurrency"]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise at("concurrency").error("concurrency must be a whole number ≥ 1 (items of a map run at once)")
        out["concurrency"] = value
        locs["concurrency"] = at("concurrency")
    known = set(REF_KEYS + AFTER_KEYS + RETRY_KEYS + TIMEOUT_KEYS + OPTION_KEYS)
    if allow_name:
        known |= {"name", "nodename"}
        for key in ("name", "nodename"):
            if key in d:
                locs["name"] = at(key)
    extra = {k: v for k, v in d.items() if k not in known and k not in extra_ok}
    if extra:
        if strict:
            key = next(iter(extra))
            raise at(str(key)).error(
                f"unknown field {key!r} (expected function, args, kwargs, after/depends_on, retries, timeout, "
                f"priority, map, concurrency)")
        out["extra"] = extra
    return out, locs


def make_node(name: str, opts: dict[str, Any], locs: dict[str, Loc], node_loc: Loc,
              defaults: dict[str, Any] | None = None, default_locs: dict[str, Loc] | None = None) -> NodeSpec:
    """Merge alias defaults under explicit options and build a NodeSpec with its locs."""
    merged: dict[str, Any] = dict(defaults or {})
    for key, value in opts.items():
        if key == "extra":
            merged["extra"] = {**merged.get("extra", {}), **value}
        elif key == "kwargs" and "kwargs" in merged:
            merged["kwargs"] = {**merged["kwargs"], **value}
        else:
            merged[key] = value
    if "ref" not in merged:
        raise node_loc.error(f"node {name!r} names no function (add 'function: Query.py/fn')")
    all_locs = {**(default_locs or {}), **locs, "node": node_loc}
    return NodeSpec(name=name, **merged).with_locs(all_locs)
