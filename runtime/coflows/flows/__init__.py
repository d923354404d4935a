"""Workflows as DAGs: specs (graph string, YAML, ColonyOS JSON, Python builder) → durable runs.

Data passing (the contract every task function sees; see docs/flows.md):
- the spec's explicit `args`/`kwargs` come first and are never overridden;
- a parameter named `input` gets the list of the parents' outputs, in the
  order of the node's dependencies;
- a parameter named after a parent node gets that parent's output;
- root tasks see the run's inputs (given at submit): a parameter named after an
  input key gets its value, and `input` is `[inputs]` (`[]` without inputs);
- a result `{"value": v, "status"/"color"/"shape"/"label": ...}` carries
  cloudmesh display hints: the hints are stored for the live view, only `v` is
  passed on;
- outputs are stored as JSON; children receive the decoded JSON.

Inside a task, `current_task()` gives the run id, node, attempt and the DAG
operations ColonyOS allows (`add_child`, `insert_child`).

Modules: spec (model + validation), graph_string, documents (YAML/JSON,
ColonyOS), parse (auto-detect), builder, store (tables + transactions), engine
(scheduler loop, leases), executor (LocalExecutor), context, passing, views, api.
"""

from coflows.flows.api import get_default_engine, set_default_engine
from coflows.flows.api import result, submit, wait
from coflows.flows.builder import Flow
from coflows.flows.context import TaskContext, current_task
from coflows.flows.engine import FlowEngine, RetryPolicy
from coflows.flows.errors import FlowDagError, FlowError, FlowFailed, FlowSpecError, FlowStateError, NotInTask
from coflows.flows.executor import Executor, Job, LocalExecutor, Outcome
from coflows.flows.parse import parse_spec
from coflows.flows.resolver import PythonResolver
from coflows.flows.spec import FlowSpec, FunctionResolver, NodeSpec, validate_spec
from coflows.flows.store import (
    CANCELLED, FAILED, FINISHED, INTERRUPTED, PENDING, RUNNING, SKIPPED,
)
from coflows.flows.views import RunView, TaskView

__all__ = [
    "CANCELLED", "FAILED", "FINISHED", "INTERRUPTED", "PENDING", "RUNNING", "SKIPPED",
    "Executor", "Flow", "FlowDagError", "FlowEngine", "FlowError", "FlowFailed", "FlowSpec", "FlowSpecError",
    "FlowStateError", "FunctionResolver", "Job", "LocalExecutor", "NodeSpec", "NotInTask", "Outcome",
    "PythonResolver", "RetryPolicy", "RunView", "TaskContext", "TaskView", "current_task",
    "get_default_engine", "parse_spec", "result", "set_default_engine", "submit", "validate_spec", "wait",
]
