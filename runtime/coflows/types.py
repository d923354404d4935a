"""Declared parameter types, shared by every engine, and argument conversion.

Each engine maps its own types (Python annotations, .NET or Java reflection,
JSDoc, CoFlows XML `type=`) to a `ParamType`. Conversion turns what HTTP
brings (query-string text, or JSON values from a POST body) into the declared
type, and errors name the parameter and the expected type. Undeclared
parameters (`ANY`) receive strings from the query string, as in CoFlows.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from coflows.errors import ArgumentError


@dataclass(frozen=True, slots=True)
class ParamType:
    """`kind` is one of: any, str, int, float, bool, decimal, datetime, date, time, list, dict, object."""

    kind: str = "any"
    item: ParamType | None = None  # element type of list / value type of dict
    name: str = ""  # the language's own type name, for docs and errors
    factory: Callable[[Any], Any] | None = None  # for kind "object": JSON object -> instance
    schema: dict | None = None  # for kind "object": JSON schema of its properties
    nullable: bool = False
    enum: tuple[str, ...] | None = None  # allowed names (enums), converted by `factory`

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        if self.kind in ("list", "dict") and self.item is not None:
            return f"{self.kind}[{self.item.label}]"
        return self.kind

    def json_schema(self) -> dict:
        """OpenAPI 3.1 / JSON Schema for this type."""
        simple = {
            "str": {"type": "string"},
            "int": {"type": "integer"},
            "float": {"type": "number"},
            "bool": {"type": "boolean"},
            "decimal": {"type": "string", "format": "decimal"},
            "datetime": {"type": "string", "format": "date-time"},
            "date": {"type": "string", "format": "date"},
            "time": {"type": "string", "format": "time"},
            "any": {},
        }
        if self.enum:
            s: dict = {"type": "string", "enum": list(self.enum)}
        elif self.kind in simple:
            s = dict(simple[self.kind])
        elif self.kind == "list":
            s = {"type": "array", "items": self.item.json_schema() if self.item else {}}
        elif self.kind == "dict":
            s = {"type": "object", "additionalProperties": self.item.json_schema() if self.item else {}}
        else:
            s = dict(self.schema or {"type": "object"})
        if self.name and self.kind == "object":
            s.setdefault("title", self.name)
        if self.nullable and "type" in s:
            s["type"] = [s["type"], "null"]
        return s


ANY = ParamType("any")
STR = ParamType("str")
INT = ParamType("int")
FLOAT = ParamType("float")
BOOL = ParamType("bool")

# CoFlows XML `<param type="...">` and JSDoc names → ParamType
_NAMED = {
    "integer": INT, "int": INT, "long": INT, "int32": INT, "int64": INT, "short": INT,
    "number": FLOAT, "double": FLOAT, "float": FLOAT,
    "string": STR, "str": STR, "text": STR,
    "boolean": BOOL, "bool": BOOL,
    "decimal": ParamType("decimal"),
    "datetime": ParamType("datetime"), "date-time": ParamType("datetime"), "date": ParamType("date"),
    "array": ParamType("list", ANY), "list": ParamType("list", ANY),
    "object": ParamType("dict", ANY), "dict": ParamType("dict", ANY), "json": ANY,
    "any": ANY, "*": ANY,
}


def type_from_name(name: str | None) -> ParamType:
    """Map a documented type name (`integer`, `number[]`, `Array<string>`, …) to a ParamType."""
    if not name:
        return ANY
    n = name.strip().lower()
    if n.endswith("[]"):
        return ParamType("list", type_from_name(n[:-2]))
    if n.startswith("array<") and n.endswith(">"):
        return ParamType("list", type_from_name(n[6:-1]))
    return _NAMED.get(n, ANY)


_TRUE = {"true", "1", "yes", "y", "on", "t"}
_FALSE = {"false", "0", "no", "n", "off", "f", ""}


def _parse_datetime(v: str) -> dt.datetime:
    s = v.strip()
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    return dt.datetime.fromisoformat(s)


# kinds whose values are never null in any language (C# value types, Java primitives, Python
# `int`…): a JSON null for one of them, unless declared nullable, is the caller's mistake (400)
_NOT_NULL = frozenset({"int", "float", "bool", "decimal", "datetime", "date", "time"})


# fixed-width integers (C# and Java names): a value outside is the caller's mistake, not an
# overflow in the engine's binding (which would not name the parameter)
_INT_RANGES = {
    "int": (-2**31, 2**31 - 1), "long": (-2**63, 2**63 - 1), "short": (-2**15, 2**15 - 1),
    "sbyte": (-128, 127), "byte": (0, 255), "ushort": (0, 2**16 - 1), "uint": (0, 2**32 - 1), "ulong": (0, 2**64 - 1),
}


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise ValueError
    s = str(value).strip()
    try:
        return int(s)
    except ValueError:
        f = float(s)
        if f.is_integer():
            return int(f)
        raise


def _in_range(value: int, t: ParamType) -> int:
    bounds = _INT_RANGES.get(t.name) if t.name else None
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        raise OverflowError(f"out of range for {t.name}: {bounds[0]} … {bounds[1]}")
    return value


def _convert(value: Any, t: ParamType, from_text: bool) -> Any:
    kind = t.kind
    if value is None:
        if kind in _NOT_NULL and not t.nullable:
            raise ValueError  # an item of a list or dict
        return None
    if kind == "any":
        return value
    if kind == "str":
        if isinstance(value, str):
            return value
        return json.dumps(value) if isinstance(value, (dict, list)) else str(value)
    if kind == "int":
        return _in_range(_to_int(value), t)
    if kind == "float":
        if isinstance(value, bool):
            raise ValueError
        return float(value)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)):
            return bool(value)
        s = str(value).strip().lower()
        if s in _TRUE:
            return True
        if s in _FALSE:
            return False
        raise ValueError
    if kind == "decimal":
        if isinstance(value, bool):
            raise ValueError
        d = decimal.Decimal(str(value).strip())
        if not d.is_finite():
            raise ValueError
        return d
    if kind == "datetime":
        return value if isinstance(value, dt.datetime) else _parse_datetime(str(value))
    if kind == "date":
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        s = str(value).strip()
        return dt.date.fromisoformat(s) if len(s) <= 10 else _parse_datetime(s).date()
    if kind == "time":
        return dt.time.fromisoformat(str(value).strip())
    if kind == "object" and t.enum is not None and isinstance(value, str) and value.strip() in t.enum:
        return t.factory(value.strip()) if t.factory else value.strip()  # an enum by name: `?color=Red`
    if kind in ("list", "dict", "object") and isinstance(value, str):
        text = value.strip()
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            if kind == "list":  # CoFlows-friendly: ?xs=1,2,3
                value = [part for part in text.split(",")] if text else []
            else:
                raise ValueError from None
        from_text = kind == "list" and not text.startswith("[")
    if kind == "list":
        if not isinstance(value, (list, tuple)):
            raise ValueError
        item = t.item or ANY
        return [_convert(v, item, from_text) for v in value]
    if kind == "dict":
        if not isinstance(value, dict):
            raise ValueError
        item = t.item or ANY
        return {str(k): _convert(v, item, False) for k, v in value.items()}
    if kind == "object":
        if t.enum is not None or t.factory is not None:
            return t.factory(value) if t.factory else value
        if not isinstance(value, dict):
            raise ValueError
        return value
    return value


_EXACT = {"int": int, "float": float, "str": str, "bool": bool}


def passes_as_is(t: ParamType) -> tuple[type | None, tuple[int, int] | None]:
    """(the type, and for fixed-width integers the bounds) of values `convert_argument` returns
    unchanged for `t`; (None, None) when every value goes through conversion. `Function.bind`
    checks this once per argument instead of calling `convert_argument`."""
    exact = _EXACT.get(t.kind)
    if exact is int and t.name:
        return int, _INT_RANGES.get(t.name)
    return exact, None


def convert_argument(value: Any, t: ParamType, parameter: str, optional: bool = False) -> Any:
    """Convert one argument, or raise a 400 `ArgumentError` naming the parameter and the type.

    `null` is refused for a non-nullable int, float, bool, decimal, date, time or datetime
    (user code must not receive it), unless `optional` (the parameter defaults to null).
    """
    kind = t.kind
    if kind == "any" or (type(value) is _EXACT.get(kind) and not (kind == "int" and t.name)):
        return value  # the common case for calls from code: nothing to convert
    if value is None:
        if t.nullable or optional or kind not in _NOT_NULL:
            return None
        raise ArgumentError(f"parameter '{parameter}': expected {t.label}, got null", parameter)
    try:
        return _convert(value, t, isinstance(value, str))
    except ArgumentError:
        raise
    except Exception as e:  # noqa: BLE001 - any failure to convert is the caller's input
        shown = value if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        detail = f" ({e})" if str(e) and not isinstance(e, ValueError) else ""
        raise ArgumentError(
            f"parameter '{parameter}': expected {t.label}, got {shown!r}{detail}", parameter
        ) from None
