"""Read-only views of a run and its tasks, built from the database (what is stored is what is shown)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from coflows.flows.store import loads


def iso(ts: float | None) -> str | None:
    """Epoch seconds → ISO 8601 UTC with milliseconds (`2025-01-02T03:04:05.678Z`)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class TaskView:
    node: str
    ref: str
    state: str
    after: list[str]
    attempts: int
    retries: int
    timeout: float | None
    priority: int
    started_at: float | None
    finished_at: float | None
    output: Any
    hints: dict[str, Any] | None
    error: str | None
    trace: str | None
    added_by: str | None
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    retry_at: float | None = None
    lease_owner: str | None = None

    @classmethod
    def from_row(cls, r: dict[str, Any]) -> TaskView:
        return cls(node=r["node"], ref=r["ref"], state=r["state"], after=loads(r["deps"]) or [],
                   attempts=r["attempts"], retries=r["retries"], timeout=r["timeout"], priority=r["priority"],
                   started_at=r["started_at"], finished_at=r["finished_at"], output=loads(r["output"]),
                   hints=loads(r["hints"]), error=r["error"], trace=r["trace"], added_by=r["added_by"],
                   args=loads(r["args"]) or [], kwargs=loads(r["kwargs"]) or {}, extra=loads(r["extra"]) or {},
                   retry_at=r["retry_at"], lease_owner=r["lease_owner"])

    @property
    def seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return max(0.0, self.finished_at - self.started_at)

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node, "ref": self.ref, "state": self.state, "after": list(self.after),
            "attempts": self.attempts, "retries": self.retries, "timeout": self.timeout,
            "priority": self.priority, "started_at": iso(self.started_at), "finished_at": iso(self.finished_at),
            "seconds": self.seconds, "output": self.output, "hints": self.hints, "error": self.error,
            "trace": self.trace, "added_by": self.added_by, "args": self.args, "kwargs": self.kwargs,
            "extra": self.extra, "retry_at": iso(self.retry_at),
        }


@dataclass
class RunView:
    id: str
    name: str | None
    workflow: str | None
    state: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    error: str | None
    owner: str | None
    generation: int
    inputs: dict[str, Any] | None
    format: str | None
    tasks: list[TaskView] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    submitted_by: str | None = None  # principal id its tasks run as (last submit or rerun)

    @classmethod
    def from_rows(cls, run: dict[str, Any], task_rows: list[dict[str, Any]] | None,
                  counts: dict[str, int] | None = None) -> RunView:
        tasks = [TaskView.from_row(r) for r in task_rows or []]
        if counts is None:
            counts = {}
            for t in tasks:
                counts[t.state] = counts.get(t.state, 0) + 1
        return cls(id=run["id"], name=run["name"], workflow=run["workflow"], state=run["state"],
                   created_at=run["created_at"], started_at=run["started_at"], finished_at=run["finished_at"],
                   error=run["error"], owner=run["owner"], generation=run["generation"] or 0,
                   inputs=loads(run["inputs"]), format=run["format"], tasks=tasks, counts=counts,
                   submitted_by=run.get("submitted_by"))

    def task(self, node: str) -> TaskView:
        for t in self.tasks:
            if t.node == node:
                return t
        raise KeyError(node)

    @property
    def outputs(self) -> dict[str, Any]:
        """Outputs of the finished tasks, by node."""
        return {t.node: t.output for t in self.tasks if t.state == "finished"}

    @property
    def sinks(self) -> list[TaskView]:
        """Tasks nothing depends on: the run's result comes from these."""
        used = {d for t in self.tasks for d in t.after}
        return [t for t in self.tasks if t.node not in used]

    def to_dict(self, tasks: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id, "name": self.name, "workflow": self.workflow, "state": self.state,
            "created_at": iso(self.created_at), "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at), "error": self.error, "owner": self.owner,
            "generation": self.generation, "inputs": self.inputs, "format": self.format,
            "counts": dict(self.counts), "submitted_by": self.submitted_by,
        }
        if tasks:
            d["tasks"] = [t.to_dict() for t in self.tasks]
        return d
