"""Python agents: from a loaded module to an `AgentDefinition`.

Two forms:

* CoFlows': a factory (manifest `Exe`, default `pkg`) returning `FPKG(...)` or a dict::

      from coflows.agents.definition import FPKG
      def pkg():
          return FPKG("$WID$-Orders", "$WID$", "Orders", "watches orders", "orders",
                      Load, Add, Exchange, Remove, Body, "0 * * ? * *", Job)

* declarative: a module-level `AGENT` dict (ID, Name, Description, MID, Schedule) with the hooks
  as module-level functions named `Load`, `Add`, `Exchange`, `Remove`, `Body`, `Job` (or given
  in the dict)::

      AGENT = {"Name": "Orders", "MID": "orders", "Schedule": "0/10 * * ? * *"}
      def Add(id, value): ...

`Body` gets the message as JSON text when its parameter is unannotated or `str` (CoFlows passed
a JSON string, and ported code calls `json.loads`), and as the parsed value otherwise.
"""

from __future__ import annotations

import inspect
import json
import types
from pathlib import Path
from typing import Any

from coflows.agents.definition import HOOKS, AgentDefinition, AgentError, definition_from
from coflows.engines.python import user_code_error
from coflows.serialize import to_jsonable


def _adapt_body(fn: Any) -> Any:
    """Body gets JSON text (CoFlows) unless its parameter is annotated with another type."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        params = None
    if params is not None and not params:
        return lambda data, _fn=fn: _fn()
    if params is not None and params[0].annotation not in (inspect.Parameter.empty, str, "str"):
        return fn

    def body(data: Any, _fn: Any = fn) -> Any:
        return _fn(json.dumps(data, default=to_jsonable))

    body.__wrapped__ = fn  # type: ignore[attr-defined]
    return body


def definition_from_module(module: types.ModuleType, exe: str | None, *, workflow_id: str, source: str,
                           file_name: str) -> AgentDefinition:
    stem = Path(file_name).stem
    factory = getattr(module, exe or "pkg", None)
    if factory is not None and callable(factory):
        try:
            spec = factory()
        except Exception as e:  # noqa: BLE001 - user code
            err = user_code_error(e)
            raise AgentError(f"{source}: {exe or 'pkg'}() failed: {err}\n{err.stack}".rstrip()) from None
        hooks = None
    elif exe not in (None, "", "pkg"):  # a factory named in package.json must exist (no silent AGENT fallback)
        raise AgentError(f"{source}: no function '{exe}()' (the agent's factory, package.json 'Exe')")
    elif isinstance(getattr(module, "AGENT", None), dict):
        spec = module.AGENT
        hooks = {h: getattr(module, h) for h in HOOKS if callable(getattr(module, h, None))}
    else:
        raise AgentError(f"{source}: defines neither a factory '{exe or 'pkg'}()' nor an AGENT dict")
    definition = definition_from(spec, workflow_id=workflow_id, default_id=f"{workflow_id}-{stem}",
                                 default_name=stem, source=source, language="python", hooks=hooks)
    if "Body" in definition.hooks:
        definition.hooks["Body"] = _adapt_body(definition.hooks["Body"])
    return definition
