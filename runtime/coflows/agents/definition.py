"""What an agent is, independent of its language: `AgentDefinition`.

An engine turns an agent source into one (the Python engine through
`coflows.agents.python_factory`; the CLR, JVM and JS engines can set
`LoadedSource.factory` to one). The runner only knows this class.

Hooks (all optional), called with JSON-able values:

* ``Load(values)``            once at start: the topic's values (None without a topic)
* ``Add(id, value)``          an entry was added to the topic
* ``Exchange(id, value)``     an entry was exchanged (the new value)
* ``Remove(id, value)``       an entry was removed (the removed value)
* ``Body(data) -> result``    a message: `POST /flow/agent/{id}`, and once at start with
                              ``{"Function": "Main", "Data": "Initial Execution"}``
* ``Job(timestamp, execution_type)``  on the schedule

For Python agents, `FPKG(...)` takes CoFlows' positional shape, and a plain dict
(`{"ID": ..., "Name": ..., "MID": ..., "Schedule": ..., "Add": fn, ...}`) works too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from coflows.errors import CoflowsError

HOOKS = ("Load", "Add", "Exchange", "Remove", "Body", "Job")
M_HOOKS = ("Add", "Exchange", "Remove")
MAIN_MESSAGE = {"Function": "Main", "Data": "Initial Execution"}
MAX_ID = 255  # as the `id` query parameter of the agent routes


class AgentError(CoflowsError):
    """An agent could not be built or started; the message names the agent and the reason."""

    http_status = 409


@dataclass
class AgentDefinition:
    id: str
    name: str
    workflow_id: str
    description: str = ""
    topic: str | None = None  # CoFlows' MID: the M topic whose changes call Add/Exchange/Remove
    schedule: str | None = None  # CoFlows' ScheduleCommand (coflows.agents.schedule)
    hooks: dict[str, Callable[..., Any]] = field(default_factory=dict)
    source: str = ""  # the file, relative to the workspace
    language: str = "python"

    def __post_init__(self) -> None:
        unknown = set(self.hooks) - set(HOOKS)
        if unknown:
            raise AgentError(f"agent '{self.id}': unknown hook(s) {sorted(unknown)} (hooks are {', '.join(HOOKS)})")
        for name, fn in self.hooks.items():
            if not callable(fn):
                raise AgentError(f"agent '{self.id}': hook {name} is a {type(fn).__name__}, not a function")


class FPKG:
    """CoFlows' agent package, positional as in CoFlows' templates::

        FPKG(ID, WorkflowID, Name, Description, MID, Load, Add, Exchange, Remove, Body,
             ScheduleCommand, Job)

    Hooks are functions or None (`Utils.SetFunction("Add", fn)` returns `fn`). Keywords work too.
    """

    __slots__ = ("ID", "WorkflowID", "Name", "Description", "MID", "Load", "Add", "Exchange", "Remove", "Body",
                 "ScheduleCommand", "Job")

    def __init__(self, ID: str | None = None, WorkflowID: str | None = None, Name: str | None = None,  # noqa: N803
                 Description: str | None = None, MID: str | None = None, Load: Any = None, Add: Any = None,  # noqa: N803
                 Exchange: Any = None, Remove: Any = None, Body: Any = None, ScheduleCommand: str | None = None,  # noqa: N803
                 Job: Any = None) -> None:  # noqa: N803
        self.ID, self.WorkflowID, self.Name, self.Description, self.MID = ID, WorkflowID, Name, Description, MID
        self.Load, self.Add, self.Exchange, self.Remove, self.Body = Load, Add, Exchange, Remove, Body
        self.ScheduleCommand, self.Job = ScheduleCommand, Job

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


class Utils:
    """CoFlows' `qae.Utils.SetFunction(name, delegate)`: here it simply returns the function."""

    @staticmethod
    def SetFunction(name: str, fn: Any) -> Any:  # noqa: N802
        return fn


def _identity(fn: Any) -> Any:
    return fn


# CoFlows' delegate wrappers (`qae.Load(f)`, `qak.MCallback(f)`, `qae.Body(f)`, `qae.Job(f)`): identity here.
Load = MCallback = Body = Job = _identity

_ALIASES = {
    "id": "ID", "workflowid": "WorkflowID", "name": "Name", "description": "Description",
    "mid": "MID", "topic": "MID", "schedule": "ScheduleCommand", "schedulecommand": "ScheduleCommand",
    **{h.lower(): h for h in HOOKS},
}


def _normalize(spec: Mapping[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in spec.items():
        canonical = _ALIASES.get(str(key).lower())
        if canonical is None:
            raise AgentError(f"{where}: unknown key {key!r} (expected ID, WorkflowID, Name, Description, MID, "
                             f"Schedule, {', '.join(HOOKS)})")
        out[canonical] = value
    return out


def _text(value: Any, key: str, where: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise AgentError(f"{where}: {key} must be a string, not {type(value).__name__}")
    return value


def definition_from(spec: Any, *, workflow_id: str, default_id: str, default_name: str, source: str = "",
                    language: str = "python", hooks: Mapping[str, Any] | None = None) -> AgentDefinition:
    """An AgentDefinition from a factory result: an AgentDefinition, an FPKG, a dict or an object
    with FPKG's attributes. `hooks` fills hooks the spec does not give (the declarative form)."""
    if isinstance(spec, AgentDefinition):
        return spec
    where = f"agent in {source}" if source else "agent"
    if isinstance(spec, FPKG):
        data = spec.as_dict()
    elif isinstance(spec, Mapping):
        data = _normalize(spec, where)
    elif spec is not None and hasattr(spec, "Name"):
        data = {k: getattr(spec, k, None) for k in FPKG.__slots__}
    else:
        raise AgentError(f"{where}: the factory returned {type(spec).__name__}; expected FPKG(...), a dict "
                         "or an AgentDefinition")
    agent_id = _text(data.get("ID"), "ID", where) or default_id
    # The ID is a URL segment (`/flow/agent/{id}`) and a key across workflows.
    if len(agent_id) > MAX_ID or "/" in agent_id or any(ord(c) < 32 for c in agent_id):
        raise AgentError(f"{where}: ID {agent_id!r}: must be at most {MAX_ID} characters, without '/' or "
                         "control characters")
    where = f"agent '{agent_id}'"
    found = {h: data.get(h) for h in HOOKS if data.get(h) is not None}
    for h, fn in (hooks or {}).items():
        found.setdefault(h, fn)
    _text(data.get("WorkflowID"), "WorkflowID", where)  # checked; the containing workflow is what counts
    return AgentDefinition(
        id=agent_id,
        name=_text(data.get("Name"), "Name", where) or default_name,
        workflow_id=workflow_id,
        description=_text(data.get("Description"), "Description", where) or "",
        topic=_text(data.get("MID"), "MID", where),
        schedule=_text(data.get("ScheduleCommand"), "Schedule", where),
        hooks=found,
        source=source,
        language=language,
    )
