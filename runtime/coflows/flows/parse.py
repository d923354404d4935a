"""`parse_spec`: one entry point for every spec form, detecting which one it was given.

Detection (when `format` is not given):
- a `FlowSpec` or a builder `Flow` → as is;
- a list → ColonyOS function specs; a mapping with `functionspecs` → a ColonyOS workflow;
- another mapping → the YAML/JSON mapping form (`nodes:` or `graph:`);
- text starting with `[` or `{` → JSON, then as above;
- text with a `key:` line → YAML; any other text → a graph string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from coflows.flows.documents import add_marks, load_json, load_yaml, parse_colonyos, parse_mapping, spec_with_marks
from coflows.flows.errors import FlowSpecError
from coflows.flows.graph_string import parse_graph_string
from coflows.flows.spec import FlowSpec, FunctionResolver, validate_spec

FORMATS = ("graph", "yaml", "json", "colonyos")
MAX_SPEC_CHARS = 1_000_000  # a spec's text; its nodes, edges and maps are bounded in `validate_spec`
_YAML_KEY = re.compile(r"^\s*[\w.\-]+\s*:(\s|$)", re.MULTILINE)


def parse_spec(source: Any, format: str | None = None, aliases: Mapping[str, Any] | None = None,
               resolver: FunctionResolver | None = None, name: str | None = None) -> FlowSpec:
    """Turn any spec form into a validated FlowSpec; `resolver` (if given) checks the functions exist."""
    if format is not None and format not in FORMATS:
        raise FlowSpecError(f"unknown spec format {format!r} (expected one of {', '.join(FORMATS)})")
    marks: Mapping[str, tuple[int, int]] = {}
    spec: FlowSpec
    if hasattr(source, "spec") and callable(source.spec) and not isinstance(source, FlowSpec):
        source = source.spec()  # a builder Flow
    if isinstance(source, FlowSpec):
        spec = source.model_copy()  # shallow: setting the name below must not change the caller's spec
        if aliases:
            raise FlowSpecError("aliases apply when parsing text or documents, not to a built FlowSpec")
    elif isinstance(source, (bytes, bytearray)):
        return parse_spec(source.decode("utf-8"), format, aliases, resolver, name)
    elif isinstance(source, str):
        text = source
        if len(text) > MAX_SPEC_CHARS:
            raise FlowSpecError(f"the flow spec has {len(text)} characters (at most {MAX_SPEC_CHARS})")
        stripped = text.lstrip()
        fmt = format or ("json" if stripped[:1] in ("[", "{") else
                         "yaml" if _YAML_KEY.search(text) else "graph")
        if fmt == "graph":
            spec = parse_graph_string(text, aliases)
        else:
            if fmt in ("json", "colonyos"):
                obj = load_json(text)
            else:
                obj, marks = load_yaml(text)
            try:
                spec = _from_object(obj, fmt, aliases)
            except FlowSpecError as exc:
                raise add_marks(exc, marks) from None
    elif isinstance(source, (list, Mapping)):
        spec = _from_object(source, format, aliases)
    else:
        raise FlowSpecError(f"a flow spec must be text, a list, a mapping or a FlowSpec, not {type(source).__name__}")
    if name is not None:
        spec.name = name
    if marks:
        spec_with_marks(spec, marks)
    return validate_spec(spec, resolver)


def _from_object(obj: Any, fmt: str | None, aliases: Mapping[str, Any] | None) -> FlowSpec:
    if isinstance(obj, list) or (isinstance(obj, Mapping) and "functionspecs" in obj) or fmt == "colonyos":
        if not isinstance(obj, (list, Mapping)):
            raise FlowSpecError("a ColonyOS workflow must be a list of function specs")
        return parse_colonyos(obj, aliases)
    if isinstance(obj, Mapping):
        return parse_mapping(obj, aliases, fmt="json" if fmt == "json" else "yaml")
    if isinstance(obj, str) and fmt == "yaml":
        return parse_graph_string(obj, aliases)  # a YAML document that is just a graph string
    raise FlowSpecError(f"a flow document must be a mapping or a list, not {type(obj).__name__}")
