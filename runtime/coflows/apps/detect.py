"""Which queries are apps: Python queries with a `run(port, path)` function (CoFlows' contract).

Kept free of heavy imports: `Workflow.status` asks it for every query of `/flow/workflows`.
"""

from __future__ import annotations

from typing import Any

RUN = "run"
PARAMS = ("port", "path")
PREFIX = "/dash"


def run_function(query: Any) -> Any:
    """The query's `run(port, path)` Function, or None when the query is not an app."""
    fn = query.functions.get(RUN)
    if fn is None or fn.language != "python":
        return None
    names = tuple(p.name for p in fn.params[:2])
    required = sum(1 for p in fn.params if p.required)
    return fn if names == PARAMS and required <= 2 else None


def app_path(workflow_id: str, query_id: str) -> str:
    """The URL prefix an app serves under (and is given as `path`): `/dash/{wid}/{qid}/`."""
    return f"{PREFIX}/{workflow_id}/{query_id}/"
