"""Python proxies over .NET objects that a workflow's Python code imports (`import Cs.Base as csb`).

CoFlows ran Python through its own pythonnet fork, which converted arguments more freely than
pythonnet 3 does: `csbase.Add(csbase.getAge, 5)` passed the double 20.0 to an `int` parameter.
A proxy keeps that working: every member read, call, iteration, length and index goes through the
object core (`coflows.objects`), whose calls retry once with integral floats turned into ints when
no overload matched. What a proxy returns is proxied again when it is a .NET object (a `List<string>`
still iterates, indexes and prints), and proxies are unwrapped when passed back into .NET.

Only the user's own imports get proxies (the Python engine's per-module `__import__` calls `wrap_module`);
coflows' own use of pythonnet sees plain pythonnet objects. `unwrap(p)` gives the pythonnet object
(for `clr.GetClrType`, `isinstance` with .NET types and the like).
"""

from __future__ import annotations

import operator
import sys
from collections.abc import Callable
from typing import Any

from coflows import objects
from coflows.objects.members import _bridge_refused as bridge_refused  # noqa: PLC2701 - the core's rule
from coflows.objects.members import is_value, type_name

# pythonnet's Python-side types for namespaces, methods and .NET types (checked by name: the
# classes live in Python.Runtime and are only reachable once Mono is loaded)
_NAMESPACE = "ModuleObject"
_METHODS = ("MethodBinding", "MethodObject", "OverloadMapper")
_TYPE_META = ("CLR Metatype", "CLRMetatype", "MetaType")


_object_class: list[Any] = []  # System.Object, once pythonnet is loaded


def _net_object_class() -> Any:
    if _object_class:
        return _object_class[0]
    if "clr" not in sys.modules:
        return None
    try:
        from System import Object  # noqa: PLC0415 - only once pythonnet is loaded
    except ImportError:
        return None
    _object_class.append(Object)
    return Object


def is_net(obj: Any) -> bool:
    """A pythonnet object: a .NET namespace, type, instance or method."""
    t = type(obj)
    name = t.__name__
    if name == _NAMESPACE or name in _METHODS or type(t).__name__ in _TYPE_META:
        return True
    if isinstance(obj, type):
        base = _net_object_class()
        return base is not None and issubclass(obj, base)
    base = _net_object_class()
    return base is not None and isinstance(obj, base)


def wrap(obj: Any) -> Any:
    """A proxy for a .NET object; Python values and Python objects as they are."""
    if obj is None or is_value(obj) or isinstance(obj, NetProxy):
        return obj
    if not is_net(obj):
        return obj
    # collections (and types, for generics: `List[String]`) iterate and index; other objects
    # have no such methods, so that `hasattr(p, "__iter__")` and serializers see what is there
    if isinstance(obj, type) or hasattr(obj, "__iter__") or hasattr(obj, "__getitem__"):
        return NetCollection(obj)
    return NetProxy(obj)


def wrap_module(obj: Any) -> Any:
    """What the user's `import` gets: a proxy when the module is a .NET namespace."""
    return NetProxy(obj) if type(obj).__name__ == _NAMESPACE else obj


def unwrap(obj: Any) -> Any:
    """The pythonnet object behind a proxy (lists and tuples of proxies too)."""
    if isinstance(obj, NetProxy):
        return object.__getattribute__(obj, "_obj")
    if isinstance(obj, list):
        return [unwrap(x) for x in obj]
    if isinstance(obj, tuple):
        return tuple(unwrap(x) for x in obj)
    return obj


def _args(args: tuple[Any, ...]) -> list[Any]:
    return [unwrap(a) for a in args]


class MissingMember(objects.ForeignError, AttributeError):
    """No such member: a ForeignError naming the type, and an AttributeError for `hasattr`,
    `getattr(p, name, default)` and `from ns import *`."""


class NetProxy:
    """A .NET namespace, type or object, with CoFlows' conversions (see the module's docstring)."""

    __slots__ = ("_obj", "__weakref__")

    def __init__(self, obj: Any) -> None:
        object.__setattr__(self, "_obj", obj)

    def __getattr__(self, name: str) -> Any:
        obj = object.__getattribute__(self, "_obj")
        try:
            member = getattr(obj, name)
        except AttributeError:
            raise MissingMember(f"{type_name(obj)} has no member {name!r}") from None
        if type(member).__name__ in _METHODS:
            return _Method(obj, name, member)
        return wrap(member)

    def __setattr__(self, name: str, value: Any) -> None:
        objects.set_member(object.__getattribute__(self, "_obj"), name, unwrap(value))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        obj = object.__getattribute__(self, "_obj")
        if kwargs:
            return wrap(obj(*_args(args), **{k: unwrap(v) for k, v in kwargs.items()}))
        return wrap(objects.call_object(obj, _args(args)))

    def __str__(self) -> str:
        return str(object.__getattribute__(self, "_obj"))

    def __repr__(self) -> str:
        return f"<.NET {type_name(object.__getattribute__(self, '_obj'))}: {self}>"

    def __bool__(self) -> bool:
        return bool(object.__getattribute__(self, "_obj"))

    def __hash__(self) -> int:
        return hash(object.__getattribute__(self, "_obj"))

    def __int__(self) -> int:
        return int(object.__getattribute__(self, "_obj"))

    def __float__(self) -> float:
        return float(object.__getattribute__(self, "_obj"))

    def __index__(self) -> int:
        return operator.index(object.__getattribute__(self, "_obj"))

    def __enter__(self) -> Any:
        return wrap(object.__getattribute__(self, "_obj").__enter__())

    def __exit__(self, *exc: Any) -> Any:
        return object.__getattribute__(self, "_obj").__exit__(*exc)

    def __dir__(self) -> list[str]:
        return dir(object.__getattribute__(self, "_obj"))


class NetCollection(NetProxy):
    """A .NET collection (or a type, for `List[String]`): iteration, `len`, indexing, `in`."""

    __slots__ = ()

    def __iter__(self) -> Any:
        for x in objects.iterate(object.__getattribute__(self, "_obj")):
            yield wrap(x)

    def __len__(self) -> int:
        return objects.length(object.__getattribute__(self, "_obj"))

    def __getitem__(self, key: Any) -> Any:
        return wrap(objects.item(object.__getattribute__(self, "_obj"), unwrap(key)))

    def __setitem__(self, key: Any, value: Any) -> None:
        object.__getattribute__(self, "_obj")[unwrap(key)] = unwrap(value)

    def __contains__(self, value: Any) -> bool:
        return unwrap(value) in object.__getattribute__(self, "_obj")


def _binary(op: Callable[[Any, Any], Any], reflected: bool = False) -> Callable[[NetProxy, Any], Any]:
    def method(self: NetProxy, other: Any) -> Any:
        a, b = object.__getattribute__(self, "_obj"), unwrap(other)
        return wrap(op(b, a) if reflected else op(a, b))

    return method


for _name, _op in (("eq", operator.eq), ("ne", operator.ne), ("lt", operator.lt), ("le", operator.le),
                   ("gt", operator.gt), ("ge", operator.ge)):
    setattr(NetProxy, f"__{_name}__", _binary(_op))
for _name, _op in (("add", operator.add), ("sub", operator.sub), ("mul", operator.mul),
                   ("truediv", operator.truediv), ("floordiv", operator.floordiv), ("mod", operator.mod),
                   ("and", operator.and_), ("or", operator.or_), ("xor", operator.xor)):
    setattr(NetProxy, f"__{_name}__", _binary(_op))
    setattr(NetProxy, f"__r{_name}__", _binary(_op, reflected=True))
for _name, _op in (("neg", operator.neg), ("pos", operator.pos), ("abs", operator.abs), ("invert", operator.invert)):
    setattr(NetProxy, f"__{_name}__", lambda self, _o=_op: wrap(_o(object.__getattribute__(self, "_obj"))))


# (type, method, argument types) whose calls needed integral floats as ints (CoFlows' conversion)
_NEEDS_INTS: set[tuple[Any, str, tuple[type, ...]]] = set()
_NEEDS_INTS_MAX = 10_000


def _integral(values: list[Any]) -> list[Any] | None:
    """`values` with integral floats as ints, or None when there is none to convert."""
    if not any(isinstance(v, float) and v.is_integer() for v in values):
        return None
    return [int(v) if isinstance(v, float) and v.is_integer() and abs(v) < 2**63 else v for v in values]


class _Method:
    """`obj.Name` for a .NET method: calls it through `objects.call_member` (overloads, CoFlows'
    integral-float retry, errors that name `Type.Name`); `m[T]` picks a generic or an overload."""

    __slots__ = ("_obj", "_name", "_member")

    def __init__(self, obj: Any, name: str, member: Any) -> None:
        self._obj, self._name, self._member = obj, name, member

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs:
            return wrap(self._member(*_args(args), **{k: unwrap(v) for k, v in kwargs.items()}))
        values = _args(args)
        key = (type(self._obj), self._name, tuple(map(type, values)))
        first = _integral(values) if key in _NEEDS_INTS else None
        try:  # the method as read: one lookup (a second getattr costs about 10 µs in pythonnet)
            return wrap(self._member(*(first or values)))
        except TypeError as exc:
            if not bridge_refused(exc):
                raise  # from inside the call: never run it twice
        # no overload took the arguments: the object core retries with integral floats as ints
        # and names `Type.Method` when that fails too
        result = objects.call_member(self._obj, self._name, values)
        if _integral(values) is not None and len(_NEEDS_INTS) < _NEEDS_INTS_MAX:
            _NEEDS_INTS.add(key)  # next time convert first: a refused call costs ~300 µs in pythonnet
        return wrap(result)

    def __getitem__(self, key: Any) -> Any:
        picked = self._member[unwrap(key)]
        return _Picked(picked, f"{type_name(self._obj)}.{self._name}")

    def __getattr__(self, name: str) -> Any:  # Overloads, __doc__ …
        return getattr(self._member, name)

    def __repr__(self) -> str:
        return f"<.NET method {type_name(self._obj)}.{self._name}>"


class _Picked:
    """A generic instantiation or an explicit overload (`m[int]`, `m.Overloads[...]`)."""

    __slots__ = ("_fn", "_where")

    def __init__(self, fn: Any, where: str) -> None:
        self._fn, self._where = fn, where

    def __call__(self, *args: Any) -> Any:
        return wrap(objects.call_object(self._fn, _args(args)))

    def __repr__(self) -> str:
        return f"<.NET method {self._where}>"
