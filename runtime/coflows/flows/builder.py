"""The Python builder: `Flow("name").task("fetch", "Data.py/fetch", day=1).task(..., after=["fetch"])`."""

from __future__ import annotations

from typing import Any

from coflows.flows.spec import FlowSpec, Loc, NodeSpec


class Flow:
    """Collect tasks fluently; `.spec()` gives the FlowSpec (checked in full at submit)."""

    def __init__(self, name: str | None = None):
        self.name = name
        self._nodes: list[NodeSpec] = []

    def task(self, name: str, ref: str, *args: Any, after: list[str] | tuple[str, ...] | str = (),
             retries: int = 0, timeout: float | None = None, priority: int = 0,
             kwargs: dict[str, Any] | None = None, **kw: Any) -> Flow:
        """Add a node calling `ref`; `*args`/`**kw` are its arguments (`kwargs=` for names that clash)."""
        deps = [after] if isinstance(after, str) else list(after)
        node = NodeSpec(name=name, ref=ref, args=list(args), kwargs={**(kwargs or {}), **kw}, after=deps,
                        retries=retries, timeout=timeout, priority=priority)
        where = Loc(f"task {name!r}")
        node.with_locs({"node": where, "ref": where, "name": where,
                        **{f"after[{i}]": Loc(f"task {name!r} after[{i}]") for i in range(len(deps))}})
        self._nodes.append(node)
        return self

    def spec(self) -> FlowSpec:
        return FlowSpec(name=self.name, nodes=list(self._nodes), format="python")
