"""The object core every cross-language proxy stands on: handles, members, conversions, names."""

from __future__ import annotations

import pytest

from coflows import objects
from coflows.context import CallContext, call_context
from coflows.objects.handles import Handles, StaleHandle
from coflows.objects.members import ForeignError, is_value


class Person:
    name = "Ada"

    def __init__(self) -> None:
        self.interests = ["C#", "Java"]

    def add(self, x: int, y: int) -> int:
        return x + y


class Refusing:
    """Stands for a bridge method that refuses non-integral floats as pythonnet and JPype do."""

    def __init__(self) -> None:
        self.calls = 0

    def Add(self, x: object, y: object) -> int:  # noqa: N802
        self.calls += 1
        if not (isinstance(x, int) and isinstance(y, int)):
            raise TypeError("No method matches given arguments for Add: (<class 'float'>, <class 'int'>)")
        return x + y


def test_handles_put_get_release_and_bound() -> None:
    table = Handles(limit=2)
    a, b = table.put("a"), table.put("b")
    assert a != b and table.get(a) == "a" and len(table) == 2
    with pytest.raises(MemoryError, match="limit 2"):
        table.put("c")
    table.release(a)
    table.release(a)  # twice is harmless
    with pytest.raises(StaleHandle, match=f"#{a}"):
        table.get(a)
    assert table.put("c") not in (a, b)  # ids are never reused


def test_members_get_set_call_iterate_length_item() -> None:
    p = Person()
    assert objects.get_member(p, "name") == "Ada"
    objects.set_member(p, "name", "Grace")
    assert p.name == "Grace"
    assert objects.call_member(p, "add", [1, 2]) == 3
    assert list(objects.iterate(p.interests)) == ["C#", "Java"]
    assert objects.length(p.interests) == 2 and objects.item(p.interests, 1) == "Java"
    with pytest.raises(ForeignError, match="Person has no member 'nope'"):
        objects.get_member(p, "nope")
    with pytest.raises(ForeignError, match="not iterable"):
        objects.iterate(p)
    assert isinstance(objects.call_object(Person, []), Person)


def test_integral_floats_retry_only_when_the_bridge_refused() -> None:
    r = Refusing()
    assert objects.call_member(r, "Add", [20.0, 5]) == 25 and r.calls == 2
    with pytest.raises(ForeignError, match="Refusing.Add"):
        objects.call_member(r, "Add", [20.5, 5])  # not integral: refused, with the member named


def test_length_falls_back_to_count_members() -> None:
    class DotNetList:
        Count = 7

    assert objects.length(DotNetList()) == 7


def test_values_cross_by_value_everything_else_by_handle() -> None:
    assert all(is_value(v) for v in (None, True, 3, 2.5, "s"))
    assert not any(is_value(v) for v in ([1], {"a": 1}, Person()))


def test_names_resolve_in_the_calling_workflow() -> None:
    objects.register("wf-a", "test", lambda name: {"x.Thing": "A"}.get(name))
    objects.register("wf-b", "test", lambda name: {"x.Thing": "B"}.get(name))
    objects.register(None, "test-global", lambda name: "G" if name == "Q.K" else None)
    try:
        with call_context(CallContext("wf-a", "q", "f")):
            assert objects.resolve("x.Thing") == "A" and objects.resolve("Q.K") == "G"
        with objects.loading("wf-b"):
            assert objects.current_workflow() == "wf-b" and objects.resolve("x.Thing") == "B"
        assert objects.resolve("x.Thing", "wf-a") == "A"
        assert objects.resolve("x.Other", "wf-a") == objects.Namespace("x.Other")
        with pytest.raises(LookupError, match="'x.Other'.*test-global, test"):
            objects.resolve("x.Other", "wf-a", namespace=False)
    finally:
        objects.unregister("wf-a")
        objects.unregister("wf-b")
        objects.unregister(None, "test-global")


def test_json_view_of_an_engine_object_else_the_object() -> None:
    from coflows.objects import members

    class NetThing:
        pass

    view = lambda o: {"shown": True} if isinstance(o, NetThing) else None  # noqa: E731
    members.json_views.append(view)
    try:
        assert members.plain(NetThing()) == {"shown": True}
        p = Person()
        assert members.plain(p) is p
    finally:
        members.json_views.remove(view)
