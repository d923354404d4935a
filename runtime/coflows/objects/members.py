"""What a proxy can do to a foreign object, in one place for every language.

The objects are Python-visible: plain Python objects, pythonnet's .NET objects and JPype's Java
objects all answer `getattr`, calls, `iter`, `len` and indexing. What this module adds is
CoFlows' argument conversion and errors that say which member of which type failed.

CoFlows ran .NET through its own pythonnet fork, which passed a Python `float` to an `int`
parameter when the value was integral (`csbase.Add(csbase.getAge, 5)` with `getAge == 20.0`).
pythonnet 3 and JPype refuse it; `call` retries once with integral floats turned into ints, and
only when the bridge said no overload matched (never after the method ran: a TypeError raised
inside user code is not retried).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

# How pythonnet and JPype say "no overload takes these arguments" (the call never started).
_NO_OVERLOAD = ("No method matches given arguments", "No matching overloads found",
                "no constructor matches given arguments", "No matching constructor",
                "No overloaded method", "takes no arguments", "argument does not match")

_VALUE_TYPES = (type(None), bool, int, float, str)


class ForeignError(Exception):
    """A member is missing or refused its arguments: says which member of which type, and why."""


def type_name(obj: Any) -> str:
    t = obj if isinstance(obj, type) else type(obj)
    return getattr(t, "__qualname__", None) or getattr(t, "__name__", None) or repr(t)


def is_value(obj: Any) -> bool:
    """True when `obj` crosses languages by value (a primitive); anything else goes by handle."""
    return isinstance(obj, _VALUE_TYPES)


def _bridge_refused(exc: TypeError) -> bool:
    text = str(exc)
    return any(marker.lower() in text.lower() for marker in _NO_OVERLOAD)


def _integral(args: list[Any]) -> list[Any] | None:
    changed = False
    out = []
    for a in args:
        if isinstance(a, float) and a.is_integer() and abs(a) < 2**63:
            out.append(int(a))
            changed = True
        else:
            out.append(a)
    return out if changed else None


def _call(fn: Callable[..., Any], args: list[Any], where: str) -> Any:
    try:
        return fn(*args)
    except TypeError as exc:
        if not _bridge_refused(exc):
            raise
        converted = _integral(args)
        if converted is None:
            raise ForeignError(f"{where}: {exc}") from None
        try:
            return fn(*converted)
        except TypeError as exc2:
            if not _bridge_refused(exc2):
                raise
            raise ForeignError(f"{where}: {exc}") from None


# Engines whose objects have a JSON view of their own (the C# engine: a .NET object's public
# members, as C# results are written) add it here: `json_views.append(fn)`, `fn(obj)` → the view,
# or None when `obj` is not theirs.
json_views: list[Callable[[Any], Any]] = []


def plain(obj: Any) -> Any:
    """What a proxy's JSON shows: the owning engine's view of `obj`, else `obj` itself (for
    `coflows.serialize`)."""
    for view in json_views:
        shown = view(obj)
        if shown is not None:
            return shown
    return obj


def get_member(obj: Any, name: str) -> Any:
    try:
        return getattr(obj, name)
    except AttributeError:
        raise ForeignError(f"{type_name(obj)} has no member {name!r}") from None


def set_member(obj: Any, name: str, value: Any) -> None:
    try:
        setattr(obj, name, value)
    except (AttributeError, TypeError) as exc:
        raise ForeignError(f"cannot set {type_name(obj)}.{name}: {exc}") from None


def call_member(obj: Any, name: str, args: list[Any]) -> Any:
    """`obj.name(*args)`, with CoFlows' integral-float conversion when no overload matched."""
    return _call(get_member(obj, name), args, f"{type_name(obj)}.{name}")


def call_object(obj: Any, args: list[Any]) -> Any:
    """Call the object itself: a class makes an instance, a function or delegate runs."""
    if not callable(obj):
        raise ForeignError(f"{type_name(obj)} is not callable")
    return _call(obj, args, type_name(obj))


def iterate(obj: Any) -> Iterator[Any]:
    try:
        return iter(obj)
    except TypeError:
        raise ForeignError(f"{type_name(obj)} is not iterable") from None


def length(obj: Any) -> int:
    try:
        return len(obj)
    except TypeError:
        for name in ("Count", "Length", "size"):  # .NET collections, arrays, Java collections
            member = getattr(obj, name, None)
            if member is not None:
                return int(member() if callable(member) else member)
        raise ForeignError(f"{type_name(obj)} has no length") from None


def item(obj: Any, key: Any) -> Any:
    try:
        return obj[key]
    except (TypeError, KeyError, IndexError) as exc:
        getter = getattr(obj, "get", None)  # java.util.List / Map
        if callable(getter) and not isinstance(obj, dict):
            try:
                return getter(key)
            except Exception:  # noqa: BLE001 - fall through to the first error, which names the key
                pass
        raise ForeignError(f"{type_name(obj)}[{key!r}]: {exc}") from None
