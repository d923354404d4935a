"""Flow tasks call registry Functions: the `FunctionResolver` over the runtime's registry.

A ref is `Query/function` within the run's workflow (taken from the running
task, or bound at submit) or fully qualified `Workflow/Query/function`.
Arguments are converted as declared, exactly as for an HTTP call.
"""

from __future__ import annotations

from typing import Any

from coflows.context import CallContext, call_context
from coflows.errors import NotFoundError
from coflows.flows.context import current_task, in_task
from coflows.functions import Function
from coflows.permissions import principal_from_id
from coflows.registry import Registry
from coflows.workflow import Workflow


class RegistryResolver:
    def __init__(self, registry: Registry, workflow: str | None = None) -> None:
        self.registry = registry
        self.workflow = workflow

    def bound(self, workflow: str) -> RegistryResolver:
        return RegistryResolver(self.registry, workflow)

    def resolve(self, ref: str) -> tuple[Workflow, Function]:
        workflow = self.workflow
        if workflow is None and in_task():
            workflow = current_task().workflow
        if workflow is not None:
            try:
                return self.registry.resolve_ref(ref, workflow)
            except NotFoundError:
                pass  # maybe a fully qualified ref
        return self.registry.resolve_ref(ref)

    def exists(self, ref: str) -> bool:
        try:
            self.resolve(ref)
        except NotFoundError:
            return False
        return True

    def param_names(self, ref: str) -> list[str]:
        return [p.name for p in self.resolve(ref)[1].params]

    def call(self, ref: str, args: list, kwargs: dict) -> Any:
        wf, fn = self.resolve(ref)
        fn = fn.for_arity(len(args) + len(kwargs))
        a, k = fn.bind(args, kwargs)
        submitter = current_task().principal if in_task() else None  # None: a run started by code
        principal = principal_from_id(submitter) if submitter else None
        with call_context(CallContext(wf.id, fn.query_id, fn.name, principal, wf.name)):
            return fn.invoke(a, k)

    def qualify(self, ref: str) -> str:
        """`Query/fn` → `<workflow id>/Query/fn`, so a stored run never depends on a default."""
        wf, fn = self.resolve(ref)
        return f"{wf.id}/{fn.query_id}/{fn.name}"
