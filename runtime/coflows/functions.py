"""`Function`: one callable of any language, with its signature, docs and permissions.

It is what the registry holds, the server exposes as a URL, agents and flows
call, and other languages reach through `coflows.call`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from coflows.errors import ArgumentError
from coflows.types import ANY, ParamType, convert_argument

_MISSING = object()


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    type: ParamType = ANY
    required: bool = True
    default: Any = None
    description: str = ""


def _null_default(p: Param) -> bool:
    """An optional parameter whose default is null accepts an explicit null."""
    return not p.required and p.default is None


@dataclass(frozen=True, slots=True)
class GroupPermission:
    """`<permissions><group id="…" permission="read"/></permissions>`; level -1 … 2."""

    group: str
    level: int


@dataclass(slots=True)
class FunctionDocs:
    description: str = ""
    returns: str = ""
    params: dict[str, str] = field(default_factory=dict)
    param_types: dict[str, str] = field(default_factory=dict)
    permissions: list[GroupPermission] | None = None  # None: no <permissions> block
    timeout: float | None = None  # per-function call timeout (engines that enforce one)
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Function:
    """A callable in a query (or Base/agent) of some workflow."""

    workflow_id: str
    query_id: str
    name: str
    language: str
    params: tuple[Param, ...]
    invoke: Callable[[list[Any], dict[str, Any]], Any]
    docs: FunctionDocs = field(default_factory=FunctionDocs)
    returns: ParamType = ANY
    varargs: bool = False  # accepts any number of extra positional arguments
    overloads: tuple[Function, ...] = ()  # same name, other parameter counts (C#, Java)

    @property
    def raw_body(self) -> bool:
        """CoFlows compatibility: one parameter declared as a string gets a POST body's raw JSON."""
        return len(self.params) == 1 and self.params[0].type.kind == "str"

    def for_arity(self, n: int) -> Function:
        """Pick the overload that takes `n` arguments (itself if none matches better)."""
        if not self.overloads:
            return self
        for f in (self, *self.overloads):
            required = sum(1 for p in f.params if p.required)
            if required <= n <= len(f.params) or (f.varargs and n >= required):
                return f
        return self

    def bind(self, positional: Sequence[Any], named: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        """Match and convert arguments to the declared parameters.

        Positional values fill parameters in order; named values go to the
        parameter of that name. Missing required, unknown or doubly given
        arguments are `ArgumentError`s (HTTP 400).
        """
        params = self.params
        if len(positional) > len(params) and not self.varargs:
            raise ArgumentError(
                f"{self.name}() takes {len(params)} argument(s), got {len(positional) + len(named)}"
            )
        args: list[Any] = []
        for i, value in enumerate(positional):
            if i < len(params):
                p = params[i]
                if p.name in named:
                    raise ArgumentError(f"parameter '{p.name}' given both by position and by name", p.name)
                args.append(convert_argument(value, p.type, p.name, _null_default(p)))
            else:
                args.append(value)
        kwargs: dict[str, Any] = {}
        if named:
            by_name = {p.name: p for p in params}
            for key, value in named.items():
                p = by_name.get(key)
                if p is None:
                    raise ArgumentError(f"unknown parameter '{key}' for {self.name}()", key)
                kwargs[key] = convert_argument(value, p.type, key, _null_default(p))
        for p in params[len(positional):]:
            if p.required and p.name not in kwargs:
                raise ArgumentError(f"missing argument '{p.name}' ({p.type.label})", p.name)
        return args, kwargs

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.invoke(list(args), kwargs)

    @property
    def ref(self) -> str:
        return f"{self.query_id}/{self.name}"
