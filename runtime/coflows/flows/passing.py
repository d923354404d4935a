"""How a task's output becomes its children's input (see docs/flows.md).

Arguments of a task call, in order of precedence:
1. the spec's explicit `args` (positional) and `kwargs`;
2. a parameter named `input` gets the list of the parents' outputs, in the
   order of the node's dependencies (for a root task: `[inputs]` if the run was
   submitted with inputs, else `[]`);
3. a parameter named after a parent node gets that parent's output;
4. for root tasks only, a parameter named after a key of the run's inputs gets
   that value.
Parameters bound by 1 are never overridden; parameters the function does not
declare are never invented.

Display hints: a result that is a dict with a `value` key and at least one of
`status`, `color`, `shape`, `label` carries cloudmesh display hints; the hints
are stored for the live view and only `value` is passed on and stored as output.

Outputs are stored as JSON, and children receive the JSON-decoded value (so a
tuple arrives as a list) — the same whether the parent ran a second ago or
before a restart.
"""

from __future__ import annotations

import json

from coflows.serialize import to_jsonable_strict
from collections.abc import Mapping, Sequence
from typing import Any

HINT_KEYS = ("status", "color", "shape", "label")


def bind_arguments(param_names: Sequence[str], args: list, kwargs: dict[str, Any], deps: Sequence[str],
                   parent_outputs: Sequence[Any], inputs: Mapping[str, Any] | None,
                   is_root: bool) -> tuple[list, dict[str, Any]]:
    """Return the (args, kwargs) to call a task with; see the module docstring for the rules."""
    bound = set(param_names[: len(args)]) | set(kwargs)
    call_kwargs = dict(kwargs)
    by_parent = dict(zip(deps, parent_outputs))
    for p in param_names:
        if p in bound:
            continue
        if p == "input":
            if is_root:
                call_kwargs[p] = [dict(inputs)] if inputs else []
            else:
                call_kwargs[p] = list(parent_outputs)
        elif p in by_parent:
            call_kwargs[p] = by_parent[p]
        elif is_root and inputs and p in inputs:
            call_kwargs[p] = inputs[p]
    return list(args), call_kwargs


def split_hints(result: Any) -> tuple[Any, dict[str, Any] | None]:
    """Separate cloudmesh display hints from the value passed on."""
    if isinstance(result, dict) and "value" in result and any(k in result for k in HINT_KEYS):
        hints = {k: result[k] for k in HINT_KEYS if k in result}
        return result["value"], hints
    return result, None


def encode_output(value: Any) -> tuple[str, Any]:
    """JSON text of an output and the decoded value children will receive."""
    text = json.dumps(value, default=to_jsonable_strict, separators=(",", ":"), ensure_ascii=False)
    if value is None or type(value) in _SCALARS:
        return text, value
    return text, json.loads(text)


_SCALARS = (str, int, float, bool)
