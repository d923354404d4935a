"""The Python side of C#'s `JVM.JVMObject` (host/Jvm.cs): foreign objects as C# `dynamic`.

C# asks through `Coflows.RuntimeBridge` (`agents.runtime_call` hands every `obj.*` operation
here) with the object's `coflows.objects` handle first: get or set a member, call a method or the
object, index, iterate, convert to a number or text. Results that are values (None, bool, int,
float, str and their subclasses, as `objects.members.is_value` says) cross as .NET values; .NET objects cross as themselves;
a Java `String` crosses as a .NET string (as in CoFlows); anything else is put in the handle
table and crosses as a new `JVMObject`. Arguments from C# are
.NET values (converted with `convert.to_py`) or `JVMObject`s (their object, by handle).

This is the path of every member access from C#, so it avoids pythonnet's slow spots: a .NET
array is read by index (iterating one costs ~5 µs an element), .NET types are told apart by
their metaclass rather than `isinstance` against a .NET class, and an exhausted iterator answers
one shared `Coflows.IterationEnd` instead of a new array per step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from coflows import objects
from coflows.errors import UserCodeError
from coflows.objects.members import type_name

_proxy_class: Any = None  # pythonnet class of JVM.JVMObject
_clr_meta: Any = None  # the metaclass of every pythonnet .NET class
_end: Any = None  # Coflows.IterationEnd.Value
_int64: Any = None
_to_py: Callable[[Any], Any] | None = None
_to_net_any: Callable[[Any], Any] | None = None
_PASS = frozenset({str, float, bool, type(None)})


def _init() -> None:
    global _proxy_class, _clr_meta, _end, _int64, _to_py, _to_net_any
    import clr
    import System
    from Coflows import Host, IterationEnd

    from coflows.engines.clr.convert import py_class, to_net_any, to_py

    host_assembly = clr.GetClrType(Host).Assembly
    _clr_meta = type(System.Object)
    _end = IterationEnd.Value
    _int64 = System.Int64
    _to_py, _to_net_any = to_py, to_net_any
    _proxy_class = py_class(host_assembly.GetType("JVM.JVMObject", True))


def _to_net(x: Any) -> Any:
    t = type(x)
    if t in _PASS:
        return x
    if t is int and -(2**63) <= x < 2**63:
        return _int64(x)  # a bare Python int would reach C# as a PyInt object
    if isinstance(x, bool):
        return bool(x)
    if isinstance(x, int):  # JPype's JInt, JLong, ... (and big ints)
        return _int64(int(x)) if -(2**63) <= x < 2**63 else _to_net_any(int(x))
    if isinstance(x, float):  # JPype's JDouble, JFloat
        return float(x)
    if isinstance(x, str):
        return str(x)
    if type(t) is _clr_meta:  # a .NET object: C# gets it as itself
        return x
    if t.__name__ == "java.lang.String":  # JPype keeps Java strings as objects; CoFlows gave C# a string
        return str(x)
    return _proxy_class(objects.HANDLES.put(x))


def _from_net(x: Any) -> Any:
    t = type(x)
    if t in _PASS or t is int:
        return x
    if t is _proxy_class:
        return objects.HANDLES.get(int(x.CoflowsHandle))
    return _to_py(x)


def _convert(obj: Any, kind: str) -> Any:
    if kind == "int":
        return int(obj)
    if kind == "float":
        return float(obj)
    if kind == "bool":
        return bool(obj)
    raise objects.ForeignError(f"cannot convert {type_name(obj)} to {kind}")


def _next(it: Any) -> Any:
    try:
        return _to_net(next(it))
    except StopIteration:
        return _end


def _setitem(obj: Any, key: Any, value: Any) -> None:
    try:
        obj[key] = value
    except (TypeError, KeyError, IndexError) as exc:
        setter = getattr(obj, "set", None) or getattr(obj, "put", None)  # java.util.List / Map
        if callable(setter) and not isinstance(obj, (dict, list)):
            setter(key, value)
            return
        raise objects.ForeignError(f"{type_name(obj)}[{key!r}] = ...: {exc}") from None


# (object, member name, arguments) -> result, for operations on a handle
_ON_OBJECT: dict[str, Callable[[Any, Any, list[Any]], Any]] = {
    "obj.get": lambda o, n, a: _to_net(objects.get_member(o, n)),
    "obj.set": lambda o, n, a: objects.set_member(o, n, a[0]),
    "obj.call": lambda o, n, a: _to_net(objects.call_member(o, n, a)),
    "obj.invoke": lambda o, n, a: _to_net(objects.call_object(o, a)),
    "obj.item": lambda o, n, a: _to_net(objects.item(o, a[0])),
    "obj.setitem": lambda o, n, a: _setitem(o, a[0], a[1]),
    "obj.str": lambda o, n, a: str(o),
    "obj.convert": lambda o, n, a: _to_net(_convert(o, n or "")),
    "obj.iter": lambda o, n, a: _proxy_class(objects.HANDLES.put(objects.iterate(o))),
    "obj.next": lambda o, n, a: _next(o),
}


def _java_exception(e: BaseException) -> UserCodeError | None:
    """A Java exception (as JPype raises it) as the Java error it is, so C# and the caller see Java's type."""
    get_class = getattr(e, "getClass", None)
    stacktrace = getattr(e, "stacktrace", None)
    if get_class is None or stacktrace is None:
        return None
    try:
        message = e.getMessage()
        return UserCodeError(str(get_class().getName()), "" if message is None else str(message), str(stacktrace()),
                             language="java")
    except Exception:  # noqa: BLE001 - a broken exception object: report it as it is
        return None


def invoke(op: str, name: str | None, args: Any) -> Any:
    """One `obj.*` operation from C# (a .NET value back); errors are raised, the caller reports them."""
    try:
        return _invoke(op, name, args)
    except Exception as e:
        java = _java_exception(e)
        if java is None:
            raise
        raise java from None


def _invoke(op: str, name: str | None, args: Any) -> Any:
    if _proxy_class is None:
        _init()
    count = len(args) if args is not None else 0
    fn = _ON_OBJECT.get(op)
    if fn is not None:
        first = args[0] if count else None
        if first is None:
            raise objects.ForeignError(f"{op}: no object")
        obj = objects.HANDLES.get(int(first))
        return fn(obj, name, [_from_net(args[i]) for i in range(1, count)])
    if op == "obj.release":
        for i in range(count):
            objects.HANDLES.release(int(args[i]))
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
        return _to_net(objects.call_object(cls, [_from_net(args[i]) for i in range(1, count)]))
    raise objects.ForeignError(f"unknown object operation {op!r}")
