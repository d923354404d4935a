"""Build an agent's definition from its source, and check every agent of a runtime without starting one.

`build_definition` is what the server does for each agent at start (`AgentManager`);
`check_agents` is what `coflows build local` does with it: load each agent file, run
its factory (package.json `Exe`, default `pkg`), parse its schedule, and report a
failing factory, an invalid cron expression or an agent ID defined twice, naming the
file and the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from coflows.agents.definition import AgentDefinition, AgentError
from coflows.agents.schedule import Schedule, ScheduleError, parse_schedule
from coflows.engines import SourceFile, language_of, no_engine_reason
from coflows.errors import CoflowsError, CompileError

if TYPE_CHECKING:
    from coflows.workflow import Workflow


def build_definition(wf: Workflow, src: SourceFile) -> AgentDefinition:
    """Load the agent file and call its factory; AgentError (or the engine's CompileError) if it cannot."""
    from coflows.agents.python_factory import definition_from_module

    rel = wf.ctx.relpath(src.path)
    language = language_of(src.path)
    if language is None:
        raise AgentError(f"{rel}: {no_engine_reason(src.path)}")
    engine = wf.engines.get(language)
    loaded = engine.load(wf.ctx, src)
    if isinstance(loaded.factory, AgentDefinition):
        return loaded.factory
    if language == "python":
        return definition_from_module(loaded.handle, src.exe or "pkg", workflow_id=wf.id, source=rel,
                                      file_name=src.name)
    raise AgentError(f"{rel}: {language} agents are not supported yet (the engine gave no agent definition)")


@dataclass
class AgentCheck:
    """One agent file, built: its definition and schedule, or the first error, naming file and field."""

    wf: Workflow
    src: SourceFile
    definition: AgentDefinition | None = None
    schedule: Schedule | None = None
    error: str | None = None


def _entry(wf: Workflow, src: SourceFile) -> str:
    """`<package.json>: Agents[i]`, the manifest entry of an agent file."""
    for i, a in enumerate(wf.manifest.Agents):
        if a.Name == src.name:
            return f"{wf.manifest_path}: Agents[{i}]"
    return f"{wf.manifest_path}: Agents"


def check_agent(wf: Workflow, src: SourceFile) -> AgentCheck:
    check = AgentCheck(wf, src)
    try:
        check.definition = build_definition(wf, src)
    except CompileError as e:
        check.error = f"{_entry(wf, src)}.Content: {e}"
        return check
    except CoflowsError as e:  # the factory is missing, fails, or returns something else
        check.error = f"{_entry(wf, src)}.Exe: {e}"
        return check
    if check.definition.schedule:
        try:
            check.schedule = parse_schedule(check.definition.schedule, owner=check.definition.id)
        except ScheduleError as e:
            check.error = f"{src.path}: ScheduleCommand: {e}"
    return check


def check_agents(workflows: list[Workflow]) -> list[AgentCheck]:
    """Build every agent of `workflows` (none is started); a second agent with an ID already seen is an error."""
    checks: list[AgentCheck] = []
    seen: dict[str, AgentCheck] = {}
    for wf in workflows:
        for src in wf.agent_sources:
            check = check_agent(wf, src)
            d = check.definition
            if check.error is None and d is not None:
                if d.id in seen:
                    check.error = (f"{src.path}: ID: duplicate agent ID '{d.id}' "
                                   f"(also {seen[d.id].src.path})")
                else:
                    seen[d.id] = check
            checks.append(check)
    return checks
