""".NET types as ParamTypes, and values between Python and .NET, with cached converters.

Import only after Mono is loaded (`mono.mono()`): this module imports `System`.

Python → .NET (arguments): `to_net_converter(type)` gives a function, or None
when pythonnet's own conversion is right (ints, floats, strings, bools). It
handles decimal, DateTime, enums (by name or number), arrays, `List<T>`,
`Dictionary<string,T>`, `object` (JSON-like values become long, double,
string, bool, `List<object>`, `Dictionary<string,object>`) and classes (a JSON
object's keys set the public properties and fields of a new instance).

.NET → Python (results): `to_py(value)`. Primitives and strings come back from
pythonnet as Python values already and cost one set lookup; anything else is
converted by one call to `Coflows.Bridge.Values.ToPython` (host/Bridge.cs),
which walks the object graph in C# with member getters compiled once per type.
The function chosen per Python class is cached.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
from collections.abc import Callable
from typing import Any

import clr
import System
from System import (
    Activator,
    Array,
    DateTime,
    DateTimeKind,
    DateTimeOffset,
    Decimal,
    Enum,
    Guid,
    Int64,
    Object,
    String,
    TimeSpan,
)
from System.Collections.Generic import Dictionary, List
from System.Globalization import CultureInfo, NumberStyles
from System.Reflection import BindingFlags

from coflows.types import ANY, ParamType, convert_argument

INVARIANT = CultureInfo.InvariantCulture
_EPOCH = dt.datetime(1, 1, 1)
_US = dt.timedelta(microseconds=1)
_UTC = dt.timezone.utc
_INSTANCE = BindingFlags.Public | BindingFlags.Instance
NetException = System.Exception
TaskType = clr.GetClrType(System.Threading.Tasks.Task)


_class_of: Callable[[Any], Any] | None = None


def init_bridge() -> None:
    """Bind to `Coflows.Bridge` (loaded by the engine at start)."""
    global _class_of, _values_to_python
    from Coflows.Bridge import Classes, Values

    _class_of = Classes.Of
    _values_to_python = Values.ToPython


def py_class(t: Any) -> Any:
    """The Python class pythonnet uses for .NET type `t` (works for types of any assembly).

    Name lookups through pythonnet's namespace modules would find the first assembly that
    defined a name, which is the stale one after a hot reload; this asks by `System.Type`.
    """
    return _class_of(t)


# -- names ------------------------------------------------------------------------------------------
_CS_NAMES = {
    "System.Int32": "int", "System.Int64": "long", "System.Int16": "short", "System.Byte": "byte",
    "System.SByte": "sbyte", "System.UInt16": "ushort", "System.UInt32": "uint", "System.UInt64": "ulong",
    "System.Double": "double", "System.Single": "float", "System.Decimal": "decimal", "System.Boolean": "bool",
    "System.String": "string", "System.Char": "char", "System.Object": "object", "System.Void": "void",
}


def cs_name(t: Any) -> str:
    """C#-style name of a type: `int`, `List<string>`, `Dictionary<string,double>`, `Row[]`."""
    full = str(t.FullName or t.Name)
    if full in _CS_NAMES:
        return _CS_NAMES[full]
    if t.IsArray:
        return cs_name(t.GetElementType()) + "[]"
    if t.IsGenericType:
        args = t.GetGenericArguments()
        if str(t.GetGenericTypeDefinition().FullName) == "System.Nullable`1":
            return cs_name(args[0]) + "?"
        base = str(t.Name).split("`")[0]
        return f"{base}<{','.join(cs_name(a) for a in args)}>"
    return str(t.Name)


# -- type classification --------------------------------------------------------------------------
_INT = {"System.Int32", "System.Int64", "System.Int16", "System.Byte", "System.SByte", "System.UInt16",
        "System.UInt32", "System.UInt64"}
_FLOAT = {"System.Double", "System.Single"}
# pythonnet returns these as Python values (int, float, bool, str, None) already
PLAIN_RESULT = _INT | _FLOAT | {"System.Boolean", "System.String", "System.Char", "System.Void"}
_LIST_GENERICS = {
    "System.Collections.Generic.List`1", "System.Collections.Generic.IList`1",
    "System.Collections.Generic.ICollection`1", "System.Collections.Generic.IEnumerable`1",
    "System.Collections.Generic.IReadOnlyList`1", "System.Collections.Generic.IReadOnlyCollection`1",
}
_DICT_GENERICS = {
    "System.Collections.Generic.Dictionary`2", "System.Collections.Generic.IDictionary`2",
    "System.Collections.Generic.IReadOnlyDictionary`2",
}


def _generic_name(t: Any) -> str | None:
    if t.IsGenericType and not t.IsGenericTypeDefinition:
        return str(t.GetGenericTypeDefinition().FullName)
    return None


def is_plain_result(t: Any) -> bool:
    full = str(t.FullName)
    if full in PLAIN_RESULT:
        return True
    if _generic_name(t) == "System.Nullable`1":
        inner = t.GetGenericArguments()[0]
        return str(inner.FullName) in PLAIN_RESULT
    return False


# -- Python → .NET --------------------------------------------------------------------------------
def datetime_to_net(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        kind = DateTimeKind.Unspecified
        if v.tzinfo is not None:
            v = v.astimezone(_UTC).replace(tzinfo=None)
            kind = DateTimeKind.Utc
        return DateTime(((v - _EPOCH) // _US) * 10, kind)
    if isinstance(v, dt.date):
        return DateTime(v.year, v.month, v.day)
    if isinstance(v, str):
        from coflows.types import _parse_datetime

        return datetime_to_net(_parse_datetime(v))
    return v


def datetimeoffset_to_net(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=_UTC)
        offset = v.utcoffset() or dt.timedelta(0)
        local = v.replace(tzinfo=None)
        return DateTimeOffset(((local - _EPOCH) // _US) * 10, TimeSpan.FromTicks((offset // _US) * 10))
    return datetimeoffset_to_net(datetime_to_net(v)) if isinstance(v, (dt.date, str)) else v


def decimal_to_net(v: Any) -> Any:
    if isinstance(v, (decimal.Decimal, int, float, str)) and not isinstance(v, bool):
        return Decimal.Parse(str(v), NumberStyles.Float, INVARIANT)
    return v


def timespan_to_net(v: Any) -> Any:
    if isinstance(v, dt.timedelta):
        return TimeSpan.FromTicks((v // _US) * 10)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return TimeSpan.FromTicks(int(round(v * 10_000_000)))
    if isinstance(v, str):
        return TimeSpan.Parse(v, INVARIANT)
    return v


def guid_to_net(v: Any) -> Any:
    return Guid.Parse(v) if isinstance(v, str) else v


def to_net_any(v: Any) -> Any:
    """A JSON-like Python value as a .NET object (for `object` parameters and Host.Call results)."""
    t = type(v)
    if v is None or t is str or t is bool or t is float:
        return v
    if t is int:
        if -(2**63) <= v < 2**63:
            return Int64(v)
        return Decimal.Parse(str(v), NumberStyles.Float, INVARIANT)
    if t is dict:
        d = Dictionary[String, Object]()
        for k, x in v.items():
            d[str(k)] = to_net_any(x)
        return d
    if t is list or t is tuple:
        lst = List[Object]()
        for x in v:
            lst.Add(to_net_any(x))
        return lst
    if isinstance(v, Object):  # already a .NET object
        return v
    if isinstance(v, dt.datetime | dt.date):
        return datetime_to_net(v)
    if isinstance(v, decimal.Decimal):
        return decimal_to_net(v)
    if isinstance(v, dt.timedelta):
        return timespan_to_net(v)
    if isinstance(v, enum.Enum):
        return v.name
    if isinstance(v, (set, frozenset)):
        return to_net_any(list(v))
    if isinstance(v, bool):
        return bool(v)
    if isinstance(v, int):
        return to_net_any(int(v))
    if isinstance(v, float):
        return float(v)
    from coflows.serialize import to_jsonable

    return to_net_any(to_jsonable(v)) if not isinstance(v, str) else str(v)


_net_converters: dict[str, Callable[[Any], Any] | None] = {}
_param_types: dict[str, ParamType] = {}


def _key(t: Any) -> str:
    return str(t.AssemblyQualifiedName or t.FullName or t.Name)


def to_net_converter(t: Any) -> Callable[[Any], Any] | None:
    """How to turn a (bound, JSON-like) Python value into .NET type `t`; None: pythonnet does it."""
    key = _key(t)
    if key in _net_converters:
        return _net_converters[key]
    _net_converters[key] = None  # provisional, breaks cycles of self-referencing classes
    conv = _make_net_converter(t)
    _net_converters[key] = conv
    return conv


_SIMPLE = _INT | _FLOAT | {"System.Boolean", "System.String", "System.Char"}


def _element_converter(t: Any) -> Callable[[Any], Any] | None:
    """The converter for elements or members of type `t`, resolved on first use (types may be recursive)."""
    if str(t.FullName) in _SIMPLE:
        return None
    cell: list[Callable[[Any], Any]] = []

    def convert(v: Any) -> Any:
        if not cell:
            cell.append(to_net_converter(t) or _identity)
        return cell[0](v)

    return convert


def _none_safe(conv: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def convert(v: Any, _c: Callable[[Any], Any] = conv) -> Any:
        return None if v is None else _c(v)

    return convert


def _make_net_converter(t: Any) -> Callable[[Any], Any] | None:
    full = str(t.FullName)
    if full in _INT or full in _FLOAT or full in ("System.Boolean", "System.String", "System.Char"):
        return None
    simple = {
        "System.Decimal": decimal_to_net,
        "System.DateTime": datetime_to_net,
        "System.DateTimeOffset": datetimeoffset_to_net,
        "System.TimeSpan": timespan_to_net,
        "System.Guid": guid_to_net,
        "System.Object": to_net_any,
    }
    if full in simple:
        return simple[full]
    if t.IsEnum:
        return _none_safe(lambda v, _t=t: _enum_to_net(_t, v))
    generic = _generic_name(t)
    if generic == "System.Nullable`1":
        inner = to_net_converter(t.GetGenericArguments()[0])
        return _none_safe(inner) if inner else None
    if t.IsArray and t.GetArrayRank() == 1:
        elem = t.GetElementType()
        item = _element_converter(elem)
        array_cls = Array[py_class(elem)]

        def to_array(v: Any, _item: Any = item, _cls: Any = array_cls) -> Any:
            if v is None or isinstance(v, Object):
                return v
            return _cls([_item(x) for x in v] if _item else list(v))

        return to_array
    if generic in _LIST_GENERICS:
        elem = t.GetGenericArguments()[0]
        item = _element_converter(elem)
        elem_cls = py_class(elem)
        list_cls, array_cls = List[elem_cls], Array[elem_cls]

        def to_list(v: Any, _item: Any = item, _l: Any = list_cls, _a: Any = array_cls) -> Any:
            if v is None or isinstance(v, Object):
                return v
            return _l(_a([_item(x) for x in v] if _item else list(v)))

        return to_list
    if generic in _DICT_GENERICS:
        k, val = t.GetGenericArguments()
        if str(k.FullName) != "System.String":
            return None
        item = _element_converter(val)
        dict_cls = Dictionary[String, py_class(val)]

        def to_dict(v: Any, _item: Any = item, _d: Any = dict_cls) -> Any:
            if v is None or isinstance(v, Object):
                return v
            d = _d()
            for key, x in v.items():
                d[str(key)] = _item(x) if _item else x
            return d

        return to_dict
    shape = class_shape(t)
    if shape is not None:
        return shape.build
    return None


def _enum_to_net(t: Any, v: Any) -> Any:
    from coflows.errors import ArgumentError

    if isinstance(v, Object):
        return v
    try:
        if isinstance(v, str):
            text = v.strip()
            if text.lstrip("-").isdigit():
                return Enum.ToObject(t, int(text))
            return Enum.Parse(t, text, True)
        if isinstance(v, int) and not isinstance(v, bool):
            return Enum.ToObject(t, v)
    except NetException:
        pass
    names = ", ".join(str(n) for n in Enum.GetNames(t))
    raise ArgumentError(f"expected one of {names} ({t.Name}), got {v!r}")


@dataclasses.dataclass
class ClassShape:
    """A class that can be built from a JSON object: its settable public properties and fields."""

    type: Any
    name: str
    members: dict[str, tuple[str, ParamType, Callable[[Any], Any] | None]]  # lower name -> (name, type, conv)

    def schema(self) -> dict:
        return {"type": "object", "title": self.name,
                "properties": {name: pt.json_schema() for name, pt, _ in self.members.values()}}

    def build(self, v: Any) -> Any:
        if v is None or isinstance(v, Object):
            return v
        if not isinstance(v, dict):
            raise ValueError(f"expected a JSON object for {self.name}")
        obj = Activator.CreateInstance(self.type)
        for key, value in v.items():
            member = self.members.get(str(key).lower())
            if member is None:
                continue  # unknown keys are ignored, as JSON.NET does
            name, ptype, conv = member
            value = convert_argument(value, ptype, f"{self.name}.{name}")
            if conv is not None and value is not None:
                value = conv(value)
            setattr(obj, name, value)
        return obj


_shapes: dict[str, ClassShape | None] = {}


def class_shape(t: Any) -> ClassShape | None:
    """The shape of a class with a public parameterless constructor and settable members, else None."""
    key = _key(t)
    if key in _shapes:
        return _shapes[key]
    _shapes[key] = None
    if not (t.IsClass or t.IsValueType) or t.IsAbstract or t.IsGenericTypeDefinition or t.IsPrimitive:
        return None
    if str(t.Namespace or "").startswith("System"):
        return None
    if t.IsClass and t.GetConstructor(System.Type.EmptyTypes) is None:
        return None
    shape = ClassShape(t, cs_name(t), {})
    _shapes[key] = shape  # visible to nested lookups of the same type
    for p in t.GetProperties(_INSTANCE):
        setter = p.GetSetMethod()
        if setter is None or p.GetIndexParameters().Length:
            continue
        shape.members[str(p.Name).lower()] = (str(p.Name), param_type(p.PropertyType),
                                             _element_converter(p.PropertyType))
    for f in t.GetFields(_INSTANCE):
        if f.IsInitOnly or f.IsLiteral:
            continue
        shape.members[str(f.Name).lower()] = (str(f.Name), param_type(f.FieldType), _element_converter(f.FieldType))
    if not shape.members:
        _shapes[key] = None
        return None
    return shape


# -- .NET types → ParamType -----------------------------------------------------------------------
def param_type(t: Any) -> ParamType:
    """The declared type of a parameter (or result) for docs, OpenAPI and argument conversion."""
    key = _key(t)
    found = _param_types.get(key)
    if found is not None:
        return found
    _param_types[key] = ParamType("any", name=cs_name(t))  # provisional (recursive classes)
    pt = _make_param_type(t)
    _param_types[key] = pt
    return pt


def _make_param_type(t: Any) -> ParamType:
    full = str(t.FullName)
    name = cs_name(t)
    if full in _INT:
        return ParamType("int", name=name)
    if full in _FLOAT:
        return ParamType("float", name=name)
    simple = {"System.Decimal": "decimal", "System.Boolean": "bool", "System.String": "str", "System.Char": "str",
              "System.DateTime": "datetime", "System.DateTimeOffset": "datetime", "System.Guid": "str"}
    if full in simple:
        return ParamType(simple[full], name=name)
    if full == "System.TimeSpan":
        return ParamType("any", name=name)
    if full == "System.Object":
        return ANY
    if t.IsEnum:
        return ParamType("str", name=name, enum=tuple(str(n) for n in Enum.GetNames(t)))
    generic = _generic_name(t)
    if generic == "System.Nullable`1":
        return dataclasses.replace(param_type(t.GetGenericArguments()[0]), nullable=True)
    if t.IsArray and t.GetArrayRank() == 1:
        return ParamType("list", param_type(t.GetElementType()), name=name)
    if generic in _LIST_GENERICS:
        return ParamType("list", param_type(t.GetGenericArguments()[0]), name=name)
    if generic in _DICT_GENERICS:
        k, v = t.GetGenericArguments()
        if str(k.FullName) == "System.String":
            return ParamType("dict", param_type(v), name=name)
        return ParamType("any", name=name)
    shape = class_shape(t)
    if shape is not None:
        return ParamType("object", name=name, schema=shape.schema(), factory=shape.build)
    return ParamType("any", name=name)


# -- .NET → Python --------------------------------------------------------------------------------
_PLAIN = frozenset({int, float, str, bool, type(None)})
_to_py: dict[type, Callable[[Any], Any]] = {}
_values_to_python: Callable[[Any], Any] | None = None


def to_py(x: Any) -> Any:
    """A .NET result (as pythonnet hands it over) as plain Python: dicts, lists, scalars, datetimes.

    Primitives and strings arrive from pythonnet as Python values (one set lookup here);
    anything else is converted in one call to `Coflows.Bridge.Values.ToPython`, which walks
    the object graph in C# with member getters compiled once per type.
    """
    t = type(x)
    if t in _PLAIN:
        return x
    conv = _to_py.get(t)
    if conv is None:
        conv = _to_py[t] = _make_to_py(t)
    return conv(x)


def _identity(x: Any) -> Any:
    return x


def _make_to_py(cls: type) -> Callable[[Any], Any]:
    try:
        t = clr.GetClrType(cls)
    except Exception:  # noqa: BLE001 - not a .NET class: a Python value (from a Python delegate, say)
        return _identity
    if TaskType.IsAssignableFrom(t):
        return _task_to_py
    if str(t.FullName) == "JVM.JVMObject":  # a foreign object C# holds (host/Jvm.cs): the object itself
        return _foreign_object
    return _values_to_python


def _foreign_object(x: Any) -> Any:
    from coflows.objects import HANDLES

    return HANDLES.get(int(x.CoflowsHandle))


def _task_to_py(task: Any) -> Any:
    """Wait for a Task (pythonnet releases the GIL meanwhile) and convert its result."""
    task.Wait()
    result = getattr(task, "Result", None) if task.GetType().IsGenericType else None
    return to_py(result)


__all__ = ["ClassShape", "INVARIANT", "NetException", "cs_name", "datetime_to_net",
           "is_plain_result", "param_type", "py_class", "to_net_any", "to_net_converter", "to_py"]


def host_error(exc: BaseException) -> Any:
    """Any failure as the C# host's `HostError` (thrown in C# as `CallException`), for `Host.Call`
    and the M bridge: the callee's type, message, language and stack; coflows' own errors (an unknown
    function, an argument that does not convert) are language "coflows"."""
    import traceback

    from Coflows import HostError

    from coflows.errors import CoflowsError, UserCodeError

    if isinstance(exc, UserCodeError):
        return HostError(exc.type_name, exc.message, exc.language, exc.stack)
    if isinstance(exc, CoflowsError):
        return HostError(type(exc).__name__, str(exc), "coflows", "")
    return HostError(type(exc).__qualname__, str(exc), "python",
                     "".join(traceback.format_exception(exc)))
