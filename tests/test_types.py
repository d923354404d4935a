"""Argument conversion from the declared type; errors name the parameter and the type."""

import datetime as dt
import decimal

import pytest

from coflows.errors import ArgumentError
from coflows.functions import Function, Param
from coflows.types import ANY, BOOL, FLOAT, INT, STR, ParamType, convert_argument, type_from_name


@pytest.mark.parametrize("value, t, expected", [
    ("42", INT, 42), (42, INT, 42), ("3.0", INT, 3), (" 7 ", INT, 7),
    ("2.5", FLOAT, 2.5), (2, FLOAT, 2.0),
    ("true", BOOL, True), ("0", BOOL, False), (True, BOOL, True), ("Yes", BOOL, True),
    (12, STR, "12"), ("x", STR, "x"), ({"a": 1}, STR, '{"a": 1}'),
    ("1.10", ParamType("decimal"), decimal.Decimal("1.10")),
    ("2024-02-29T10:00:00Z", ParamType("datetime"), dt.datetime(2024, 2, 29, 10, tzinfo=dt.timezone.utc)),
    ("2024-02-29", ParamType("date"), dt.date(2024, 2, 29)),
    ("[1, 2]", ParamType("list", INT), [1, 2]),
    ("1,2,3", ParamType("list", INT), [1, 2, 3]),
    (["1", 2], ParamType("list", INT), [1, 2]),
    ('{"a": "1"}', ParamType("dict", INT), {"a": 1}),
    ("anything", ANY, "anything"),
    (None, ParamType("int", nullable=True), None), (None, STR, None), (None, ParamType("list", INT), None),
    ([1, None], ParamType("list", ParamType("int", nullable=True)), [1, None]),
])
def test_conversions(value, t, expected):
    assert convert_argument(value, t, "p") == expected


@pytest.mark.parametrize("value, t, label", [
    ("abc", INT, "int"), ("2.5", INT, "int"), (True, INT, "int"), ("maybe", BOOL, "bool"),
    ("x", FLOAT, "float"), ("nan", ParamType("decimal"), "decimal"), ("yesterday", ParamType("date"), "date"),
    ("[1, 'a']", ParamType("list", INT), "list[int]"), ("[1, 2]", ParamType("dict", ANY), "dict[any]"),
])
def test_conversion_errors_name_parameter_and_type(value, t, label):
    with pytest.raises(ArgumentError) as e:
        convert_argument(value, t, "amount")
    assert e.value.parameter == "amount"
    assert str(e.value).startswith(f"parameter 'amount': expected {label}")


@pytest.mark.parametrize("t", [INT, FLOAT, BOOL, ParamType("decimal"), ParamType("date"), ParamType("datetime"),
                               ParamType("time")])
def test_null_for_a_non_nullable_value_type_is_a_400(t):
    with pytest.raises(ArgumentError) as e:
        convert_argument(None, t, "n")
    assert e.value.parameter == "n" and str(e.value) == f"parameter 'n': expected {t.label}, got null"
    with pytest.raises(ArgumentError):
        convert_argument([1, None], ParamType("list", t), "n")  # nor as an item


def test_null_binds_to_an_optional_parameter_that_defaults_to_null():
    f = _fn(Param("x", INT), Param("y", INT, required=False, default=None), Param("z", INT, required=False, default=3))
    assert f.bind([], {"x": 1, "y": None}) == ([], {"x": 1, "y": None})
    for named in ({"x": None}, {"x": 1, "z": None}):
        with pytest.raises(ArgumentError):
            f.bind([], named)


def test_documented_type_names():
    assert type_from_name("integer") is INT
    assert type_from_name("number") is FLOAT
    assert type_from_name("string[]") == ParamType("list", STR)
    assert type_from_name("Array<number>") == ParamType("list", FLOAT)
    assert type_from_name("whatever") is ANY


def _fn(*params, varargs=False):
    return Function("w", "q", "f", "python", tuple(params), lambda a, k: (a, k), varargs=varargs)


def test_bind_positional_named_missing_extra():
    f = _fn(Param("x", INT), Param("y", INT, required=False, default=5))
    assert f.bind(["1"], {}) == ([1], {})
    assert f.bind([], {"x": "2", "y": "3"}) == ([], {"x": 2, "y": 3})
    with pytest.raises(ArgumentError, match="missing argument 'x'"):
        f.bind([], {})
    with pytest.raises(ArgumentError, match="unknown parameter 'z'"):
        f.bind(["1"], {"z": "1"})
    with pytest.raises(ArgumentError, match="takes 2 argument"):
        f.bind(["1", "2", "3"], {})
    with pytest.raises(ArgumentError, match="both by position and by name"):
        f.bind(["1"], {"x": "1"})
    assert _fn(Param("x", INT), varargs=True).bind(["1", "a", "b"], {}) == ([1, "a", "b"], {})


def test_overload_by_arity():
    one = _fn(Param("x", INT))
    two = _fn(Param("x", INT), Param("y", INT))
    one.overloads = (two,)
    assert one.for_arity(1) is one
    assert one.for_arity(2) is two


@pytest.mark.parametrize("name, ok, bad", [("int", 2**31 - 1, 2**31), ("long", -2**63, -2**63 - 1),
                                           ("byte", 255, -1), ("ulong", 2**64 - 1, 2**64)])
def test_fixed_width_integers_are_range_checked(name, ok, bad):
    t = ParamType("int", name=name)
    assert convert_argument(ok, t, "n") == ok and convert_argument(str(ok), t, "n") == ok
    with pytest.raises(ArgumentError) as e:
        convert_argument(bad, t, "n")
    assert e.value.parameter == "n" and f"out of range for {name}" in str(e.value)
    with pytest.raises(ArgumentError):
        convert_argument([ok, bad], ParamType("list", t), "n")
    assert convert_argument(2**70, INT, "n") == 2**70  # Python's int has no width
