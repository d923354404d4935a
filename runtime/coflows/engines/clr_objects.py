"""The Python side of C#'s `JVM.JVMObject` (clr_host/Jvm.cs): foreign objects as C# `dynamic`.

C# asks through `Coflows.RuntimeBridge` (`clr_agents.runtime_call` hands every `obj.*` operation
here) with the object's `coflows.objects` handle first: get or set a member, call a method or the
object, index, iterate, convert to a number or text. Results that are values (None, bool, int,
float, str: `objects.members.is_value`) cross as .NET values; .NET objects cross as themselves;
anything else is put in the handle table and crosses as a new `JVMObject`. Arguments from C# are
.NET values (converted with `clr_convert.to_py`) or `JVMObject`s (their object, by handle).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from coflows import objects
from coflows.objects.members import is_value

_proxy_class: Any = None  # pythonnet class of JVM.JVMObject
_net_object: Any = None  # System.Object


def _init() -> None:
    global _proxy_class, _net_object
    if _proxy_class is None:
        import clr
        import System
        from Coflows import Host

        from coflows.engines.clr_convert import py_class

        host_assembly = clr.GetClrType(Host).Assembly
        _net_object = System.Object
        _proxy_class = py_class(host_assembly.GetType("JVM.JVMObject", True))


def _to_net(x: Any) -> Any:
    from coflows.engines.clr_convert import to_net_any

    if is_value(x):
        return to_net_any(x)
    if isinstance(x, _net_object):  # a .NET object: C# gets it as itself
        return x
    return _proxy_class(objects.HANDLES.put(x))


def _from_net(x: Any) -> Any:
    if isinstance(x, _proxy_class):
        return objects.HANDLES.get(int(x.CoflowsHandle))
    from coflows.engines.clr_convert import to_py

    return to_py(x)


def _convert(obj: Any, kind: str) -> Any:
    if kind == "int":
        return int(obj)
    if kind == "float":
        return float(obj)
    if kind == "bool":
        return bool(obj)
    raise objects.ForeignError(f"cannot convert {objects.members.type_name(obj)} to {kind}")


def _next(it: Any) -> Any:
    from System import Array, Object

    try:
        value = next(it)
    except StopIteration:
        return Array[Object]([])
    return Array[Object]([_to_net(value)])


_ON_OBJECT: dict[str, Callable[[Any, str | None, list[Any]], Any]] = {
    "obj.get": lambda o, n, a: objects.get_member(o, n),
    "obj.set": lambda o, n, a: objects.set_member(o, n, a[0]),
    "obj.call": lambda o, n, a: objects.call_member(o, n, a),
    "obj.invoke": lambda o, n, a: objects.call_object(o, a),
    "obj.item": lambda o, n, a: objects.item(o, a[0]),
    "obj.str": lambda o, n, a: str(o),
    "obj.convert": lambda o, n, a: _convert(o, n or ""),
}


def invoke(op: str, name: str | None, args: Any) -> Any:
    """One `obj.*` operation from C#; returns a .NET value (errors are raised, the caller reports them)."""
    _init()
    raw = list(args) if args is not None else []
    if op == "obj.release":
        for h in raw:
            objects.HANDLES.release(int(h))
        return None
    if op in ("obj.resolve", "obj.new"):
        if not name:
            raise objects.ForeignError(f"{op}: a class name is needed")
        try:
            cls = objects.resolve(name, namespace=False)
        except LookupError as e:
            raise objects.ForeignError(f"JVM.Runtime: {e}") from None
        if op == "obj.resolve":
            return _to_net(cls)
        return _to_net(objects.call_object(cls, [_from_net(a) for a in raw[1:]]))
    if not raw or raw[0] is None:
        raise objects.ForeignError(f"{op}: no object")
    obj = objects.HANDLES.get(int(raw[0]))
    rest = [_from_net(a) for a in raw[1:]]
    if op == "obj.iter":
        return _proxy_class(objects.HANDLES.put(objects.iterate(obj)))
    if op == "obj.next":
        return _next(obj)
    if op == "obj.setitem":
        obj[rest[0]] = rest[1]
        return None
    fn = _ON_OBJECT.get(op)
    if fn is None:
        raise objects.ForeignError(f"unknown object operation {op!r}")
    result = fn(obj, name, rest)
    if op == "obj.str":
        return str(result)
    return None if op == "obj.set" else _to_net(result)
