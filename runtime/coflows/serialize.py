"""Results of any language → JSON, CSV or text.

Dicts, lists, tuples, sets, dataclasses, pydantic models, datetimes (ISO
8601), decimals, enums, bytes (base64) and, when installed, numpy arrays and
pandas frames serialize sensibly; anything else becomes an object of its
public attributes, or its `str()` as a last resort.
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import datetime as dt
import decimal
import enum
import io
import json
import math
import uuid
from collections.abc import Mapping
from typing import Any


def to_jsonable(obj: Any) -> Any:
    """The `default=` hook of json.dumps: called only for types json cannot write itself."""
    if isinstance(obj, (dt.datetime, dt.date, dt.time)):
        return obj.isoformat()
    if isinstance(obj, decimal.Decimal):
        if obj == obj.to_integral_value() and abs(obj) < 2**53:
            return int(obj)
        return float(obj)
    if isinstance(obj, dt.timedelta):
        return obj.total_seconds()
    if isinstance(obj, enum.Enum):
        return obj.name
    if isinstance(obj, uuid.UUID):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        try:
            return sorted(obj)
        except TypeError:
            return list(obj)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(obj)).decode()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if hasattr(obj, "model_dump") and callable(obj.model_dump):  # pydantic v2
        return obj.model_dump(mode="json")
    module = type(obj).__module__
    if module.startswith("pandas"):
        if hasattr(obj, "to_dict") and hasattr(obj, "columns"):
            return json.loads(obj.to_json(orient="records", date_format="iso"))
        if hasattr(obj, "to_list"):
            return obj.to_list()
        if hasattr(obj, "isoformat"):
            return obj.isoformat()
    if module == "numpy":
        if hasattr(obj, "tolist"):
            return obj.tolist()
    if isinstance(obj, Mapping):  # keys json cannot write (a Java map's java.lang.String) as text
        return {k if k is None or isinstance(k, (str, int, float, bool)) else str(k): v for k, v in obj.items()}
    if hasattr(obj, "__iter__") and not isinstance(obj, (str, bytes)):
        return list(obj)
    attrs = getattr(obj, "__dict__", None)
    if attrs:
        return {k: v for k, v in attrs.items() if not k.startswith("_")}
    return str(obj)


def to_jsonable_strict(obj: Any) -> Any:
    """Like `to_jsonable`, but an object with no data to show is an error, not its `str()`.

    For stored values (flow outputs), where `"<object at 0x…>"` passed on would be worse than failing.
    """
    value = to_jsonable(obj)
    if isinstance(value, str) and not isinstance(obj, (str, dt.date, dt.time, uuid.UUID, enum.Enum,
                                                      bytes, bytearray, memoryview)):
        raise TypeError(f"a {type(obj).__name__} is not JSON-serialisable")
    return value


def _clean_floats(obj: Any) -> Any:
    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else obj
    if isinstance(obj, dict):
        return {k: _clean_floats(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clean_floats(v) for v in obj]
    return obj


_encoder = json.JSONEncoder(default=to_jsonable, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def to_json_bytes(obj: Any) -> bytes:
    """JSON for a response body. NaN/Infinity (not JSON) become null."""
    try:
        return _encoder.encode(obj).encode()
    except ValueError:
        return _encoder.encode(_clean_floats(json.loads(json.dumps(obj, default=to_jsonable)))).encode()


def to_plain(obj: Any) -> Any:
    """The JSON data model (dicts, lists, scalars) for any result."""
    return json.loads(to_json_bytes(obj))


def to_text(obj: Any) -> str:
    """CoFlows' `.txt`: the value's text; structured values as JSON."""
    if isinstance(obj, str):
        return obj
    if obj is None:
        return ""
    if isinstance(obj, (int, float, decimal.Decimal, bool)):
        return str(obj)
    return to_json_bytes(obj).decode()


def to_csv(obj: Any) -> str:
    """A table-like result (list of dicts, list of lists, a frame) as CSV; a scalar as one cell."""
    if isinstance(obj, str):
        return obj
    data = to_plain(obj)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if isinstance(data, dict):
        data = [data]
    if isinstance(data, list):
        if data and all(isinstance(r, dict) for r in data):
            columns: list[str] = []
            for row in data:
                for k in row:
                    if k not in columns:
                        columns.append(k)
            writer.writerow(columns)
            for row in data:
                writer.writerow([_cell(row.get(c)) for c in columns])
        else:
            for row in data:
                writer.writerow([_cell(v) for v in row] if isinstance(row, list) else [_cell(row)])
    else:
        writer.writerow([_cell(data)])
    return buf.getvalue()


def _cell(v: Any) -> Any:
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return "" if v is None else v
