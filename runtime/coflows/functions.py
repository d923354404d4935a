"""`Function`: one callable of any language, with its signature, docs and permissions.

It is what the registry holds, the server exposes as a URL, agents and flows
call, and other languages reach through `coflows.call`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from coflows.errors import ArgumentError
from coflows.types import ANY, ParamType, convert_argument, passes_as_is

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
    # `bind`'s plan for the common call (every argument by position, each already of its type),
    # made on first use from `params` and remade if `params` or `varargs` is replaced.
    _plan: _BindPlan | None = field(default=None, init=False, repr=False, compare=False)

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
        return self.binder()(positional, named)

    def binder(self) -> Callable[[Sequence[Any], dict[str, Any]], tuple[list[Any], dict[str, Any]]]:
        """`bind` as a function made once for this signature: a call with every parameter given by
        position costs one type check per typed parameter; anything else takes the general path.
        Remade when `params`, `varargs` or `name` is replaced."""
        plan = self._plan
        if plan is None or plan.params is not self.params or plan.varargs is not self.varargs \
                or plan.name is not self.name:
            plan = self._plan = _BindPlan(self.name, self.params, self.varargs)
        return plan.bind

    def bind_slow(self, positional: Sequence[Any], named: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        """`bind` for any mix of positional and named arguments (the general path)."""
        return _bind_slow(self.name, self.params, self.varargs, positional, named)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.invoke(list(args), kwargs)

    @property
    def ref(self) -> str:
        return f"{self.query_id}/{self.name}"


def _bind_slow(name: str, params: tuple[Param, ...], varargs: bool, positional: Sequence[Any],
               named: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    if len(positional) > len(params) and not varargs:
        raise ArgumentError(f"{name}() takes {len(params)} argument(s), got {len(positional) + len(named)}")
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
                raise ArgumentError(f"unknown parameter '{key}' for {name}()", key)
            kwargs[key] = convert_argument(value, p.type, key, _null_default(p))
    for p in params[len(positional):]:
        if p.required and p.name not in kwargs:
            raise ArgumentError(f"missing argument '{p.name}' ({p.type.label})", p.name)
    return args, kwargs


class _BindPlan:
    """`Function.bind` compiled for one signature (made once per Function, on first use).

    The common call, every parameter by position, is a generated function: unpack, one
    `type(a) is T` test per typed parameter (plus the bounds of a fixed-width integer), and
    `convert_argument` only for values that fail it; the result is what the general path
    returns for the same arguments. Only indices, integer bounds and names of the namespace's
    own entries are written into the generated source: parameter names and types are values.
    """

    __slots__ = ("bind", "name", "params", "varargs")

    def __init__(self, name: str, params: tuple[Param, ...], varargs: bool) -> None:
        self.name, self.params, self.varargs = name, params, varargs
        n = len(params)

        def slow(positional: Sequence[Any], named: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
            return _bind_slow(name, params, varargs, positional, named)

        ns: dict[str, Any] = {"slow": slow, "convert": convert_argument}
        lines = ["def bind(positional, named):", f"    if named or len(positional) != {n}:",
                 "        return slow(positional, named)"]
        typed = [(i, p) for i, p in enumerate(params) if p.type.kind != "any"]
        if not typed:
            lines.append("    return list(positional), {}")
        else:
            names = ", ".join(f"a{i}" for i in range(n))
            lines.append(f"    {names}, = positional")
            for i, p in typed:
                exact, bounds = passes_as_is(p.type)
                ns[f"E{i}"], ns[f"T{i}"], ns[f"N{i}"], ns[f"O{i}"] = exact or _NoExactType, p.type, p.name, \
                    _null_default(p)
                test = f"type(a{i}) is not E{i}"
                if bounds is not None:
                    test += f" or not {int(bounds[0])} <= a{i} <= {int(bounds[1])}"
                lines += [f"    if {test}:", f"        a{i} = convert(a{i}, T{i}, N{i}, O{i})"]
            lines.append(f"    return [{names}], {{}}")
        exec(compile("\n".join(lines), f"<bind {name}>", "exec"), ns)  # noqa: S102 - see the docstring
        self.bind: Callable[[Sequence[Any], dict[str, Any]], tuple[list[Any], dict[str, Any]]] = ns["bind"]


class _NoExactType:
    """Stands for "no value passes as is": `type(v) is _NoExactType` never holds."""
