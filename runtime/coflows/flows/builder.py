"""The Python builder: `Flow("name").task("fetch", "Data.py/fetch", day=1).task(..., after=["fetch"])`.

Fan-out reads like CloudFlow's `Map(...).Reduce(...)`::

    Flow("sizes").task("files", "Files.py/list") \\
        .map("size", "Files.py/size", over="files", concurrency=16) \\
        .reduce("total", "Files.py/total")
"""

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
             kwargs: dict[str, Any] | None = None, map: str | list[Any] | None = None,  # noqa: A002
             concurrency: int | None = None, **kw: Any) -> Flow:
        """Add a node calling `ref`; `*args`/`**kw` are its arguments (`kwargs=` for names that clash)."""
        deps = [after] if isinstance(after, str) else list(after)
        node = NodeSpec(name=name, ref=ref, args=list(args), kwargs={**(kwargs or {}), **kw}, after=deps,
                        retries=retries, timeout=timeout, priority=priority, map=map, concurrency=concurrency)
        where = Loc(f"task {name!r}")
        node.with_locs({"node": where, "ref": where, "name": where,
                        **{f"after[{i}]": Loc(f"task {name!r} after[{i}]") for i in range(len(deps))}})
        self._nodes.append(node)
        return self

    def map(self, name: str, ref: str, *args: Any, over: str | list[Any], concurrency: int | None = None,
            after: list[str] | tuple[str, ...] | str | None = None, **options: Any) -> Flow:
        """One task per item of `over` (a parent's name, a run input key, or a list); `ref(item, *args)`.

        When `over` names a node of this flow it is added to `after` for you.
        """
        deps = [after] if isinstance(after, str) else list(after or ())
        if isinstance(over, str) and over not in deps and any(n.name == over for n in self._nodes):
            deps.append(over)
        return self.task(name, ref, *args, after=deps, map=over, concurrency=concurrency, **options)

    def reduce(self, name: str, ref: str, *args: Any, after: list[str] | tuple[str, ...] | str | None = None,
               **options: Any) -> Flow:
        """A task that gets the outputs of the previous node (by default), e.g. a map's list in item order."""
        if after is None:
            if not self._nodes:
                raise ValueError("reduce() needs a node before it (or after=...)")
            after = [self._nodes[-1].name]
        return self.task(name, ref, *args, after=after, **options)

    def spec(self) -> FlowSpec:
        return FlowSpec(name=self.name, nodes=list(self._nodes), format="python")
