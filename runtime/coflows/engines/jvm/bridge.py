"""The Python side of Java objects across languages: the "jvm" resolver and `app.quant.clr`.

* **Resolver** (`register_workflow`): `objects.resolve("javabase.javaBase")` in a workflow gives
  the JPype class from that workflow's *current* class loaders: Base and jars first, then its
  queries' loaders (a query reloaded a moment ago answers with its new class). The engine
  registers it when a workflow's Java state is made and unregisters it on unload.
* **Bridge** (`make_bridge`): Java's `app.quant.clr.CLRRuntime` / `CLRObject` call Python through
  one interface, `app.quant.clr.Bridge`, implemented here with `@jpype.JImplements` and installed
  at engine start. A `CLRObject` holds an `objects.HANDLES` id; Java's `Cleaner` releases it.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from typing import Any

from coflows import objects
from coflows.serialize import to_json_bytes

log = logging.getLogger("coflows.engines.jvm")

LANGUAGE = "jvm"
_CHUNK = 64  # items per crossing when Java iterates a foreign object (a generator runs that far ahead)
_CACHE_LIMIT = 10_000  # names remembered per workflow state (a loop over generated names cannot grow it further)


def _class_in(loader: Any, name: str) -> Any:
    """The JPype class `name` as `loader` sees it, or None (no exception for a missing class)."""
    import jpype

    try:
        cls = jpype.JClass("java.lang.Class").forName(name, True, loader)
    except Exception:  # noqa: BLE001 - ClassNotFoundException, LinkageError, a failed static init
        return None
    return jpype.JClass(cls)


def resolver(state_of: Callable[[], Any]) -> objects.resolvers.Resolver:
    """A resolver over the workflow's Java state as it is at each call (`state_of()`: `_WorkflowState | None`)."""

    def resolve(name: str) -> Any:
        state = state_of()
        if state is None:
            return None
        cache = state.names  # hits and misses: a miss costs a ClassNotFoundException per loader
        try:
            return cache[name]
        except KeyError:
            pass
        found = None
        if name and all(part.isidentifier() for part in name.split(".")):
            for loader in (state.loader, *(q.loader for q in list(state.queries.values()))):
                found = _class_in(loader, name)
                if found is not None:
                    break
        if len(cache) < _CACHE_LIMIT:
            cache[name] = found
        return found

    return resolve


def register_workflow(workflow_id: str, state_of: Callable[[], Any]) -> None:
    objects.register(workflow_id, LANGUAGE, resolver(state_of))


def unregister_workflow(workflow_id: str) -> None:
    objects.unregister(workflow_id, LANGUAGE)


# ------------------------------------------------------------------------------------ conversions


def _owner_is_foreign(obj: Any) -> bool:
    """True for .NET (pythonnet) and Java (JPype) objects and classes: their floats are doubles."""
    import jpype

    t = obj if isinstance(obj, type) else type(obj)
    return type(t).__name__ == "CLRMetatype" or isinstance(obj, (jpype.JObject, jpype.JClass))


def _is_dotnet_enum(v: Any) -> bool:
    t = type(v)
    return type(t).__name__ == "CLRMetatype" and any(
        b.__name__ == "Enum" and b.__module__ == "System" for b in t.__mro__)


class Converter:
    """Values between Java and Python, as CoFlows' `app.quant.clr` converted them (see CLRRuntime.java)."""

    def __init__(self, loader: Any) -> None:
        import jpype

        def cls(name: str) -> Any:
            return jpype.JClass(name, loader=loader)

        self.jpype = jpype
        self.CLRObject = cls("app.quant.clr.CLRObject")
        self.CLRException = cls("app.quant.clr.CLRException")
        self.Integer = jpype.JClass("java.lang.Integer")
        self.Long = jpype.JClass("java.lang.Long")
        self.Float = jpype.JClass("java.lang.Float")
        self.Double = jpype.JClass("java.lang.Double")
        self.Boolean = jpype.JClass("java.lang.Boolean")
        self.String = jpype.JClass("java.lang.String")
        self.BigInteger = jpype.JClass("java.math.BigInteger")
        self.Function = jpype.JClass("java.util.function.Function")
        self.Objects = jpype.JArray(jpype.JObject)
        self.Character = jpype.JClass("java.lang.Character")
        self._by_type: dict[type, Callable[[Any], Any]] = {}
        self._integral = tuple(jpype.JClass(f"java.lang.{n}") for n in ("Integer", "Long", "Short", "Byte"))
        self._floating = (self.Double, self.Float)

    # -- Python → Java ---------------------------------------------------------------------------
    def wrap(self, v: Any) -> Any:
        """A CLRObject over `v` (a new handle, released by the proxy's Cleaner)."""
        return self.CLRObject(objects.HANDLES.put(v), objects.members.type_name(v))

    def to_java(self, v: Any, foreign: bool = False) -> Any:
        """A result for Java: `foreign` when it came from a .NET or Java object (a float is then a Double).

        JPype's primitive wrappers (`JInt`, `JFloat`, …) box to `Integer`, `Float`, … where Java
        wants an Object, at a quarter of the cost of calling the boxed type's constructor.
        """
        jp = self.jpype
        if v is None:
            return None
        t = type(v)
        if t is str:
            return jp.JString(v)
        if t is bool:
            return jp.JBoolean(v)
        if isinstance(v, int) and not isinstance(v, jp.JObject):  # int, IntEnum, JInt, JLong
            n = int(v)
            if -2**31 <= n < 2**31:
                return jp.JInt(n)
            if -2**63 <= n < 2**63:
                return jp.JLong(n)
            return self.BigInteger(str(n))
        if isinstance(v, float) and not isinstance(v, jp.JObject):
            return jp.JDouble(v) if foreign or isinstance(v, jp.JDouble) else jp.JFloat(v)
        if isinstance(v, jp.JObject):  # a Java object: itself (strings, boxed values, lists, the workflow's classes)
            return v
        if isinstance(v, str):
            return jp.JString(str(v))
        if _is_dotnet_enum(v):
            try:
                return jp.JInt(int(v))
            except (TypeError, ValueError):
                pass
        return self.wrap(v)

    # -- Java → Python ---------------------------------------------------------------------------
    def to_python(self, a: Any) -> Any:
        """An argument from Java: values by value, a CLRObject as its object, a Function as a callable."""
        if a is None:
            return None
        convert = self._by_type.get(type(a))
        if convert is None:
            convert = self._converter(a)
            if len(self._by_type) < 1000:  # lambdas have a class per site: bounded by the code, but reloads add
                self._by_type[type(a)] = convert
        return convert(a)

    def _converter(self, a: Any) -> Callable[[Any], Any]:
        if isinstance(a, self.CLRObject):
            return lambda o: objects.HANDLES.get(int(o.getHandle()))
        if not isinstance(a, self.jpype.JObject):
            return _same  # already Python (JPype converted it)
        if isinstance(a, self.Boolean):
            return bool
        if isinstance(a, self._integral):
            return int
        if isinstance(a, self._floating):
            return float
        if isinstance(a, (self.String, self.Character)):
            return str
        if isinstance(a, self.Function):
            return lambda f: JavaFunction(self, f)
        return _same  # another Java object: Python can use it as it is (JPype)

    def args(self, arr: Any) -> list[Any]:
        return [] if arr is None else [self.to_python(a) for a in arr]

    def java_args(self, values: Any) -> Any:
        return self.Objects([self.to_java(v) for v in values])


def _same(v: Any) -> Any:
    return v


class JavaFunction:
    """A Java `Function<Object[], Object>` (a lambda given to CreateDelegate) as a Python callable."""

    __slots__ = ("conv", "fn", "__weakref__")

    def __init__(self, conv: Converter, fn: Any) -> None:
        self.conv = conv
        self.fn = fn

    def __call__(self, *args: Any) -> Any:
        return self.conv.to_python(self.fn.apply(self.conv.java_args(args)))

    def __repr__(self) -> str:
        return f"<Java function {self.fn.getClass().getName()}>"


# ------------------------------------------------------------------------------------ the bridge


def _resolve(name: str) -> Any:
    """`name` in the calling workflow; `Base.pyBase.pybase.pybase` is the member `pybase` of a module."""
    try:
        return objects.resolve(name, namespace=False)
    except LookupError as e:
        parent, _, member = name.rpartition(".")
        if parent:
            try:
                owner = objects.resolve(parent, namespace=False)
            except LookupError:
                owner = None
            found = getattr(owner, member, None) if owner is not None else None
            if found is not None:
                return found
        raise LookupError(f"{e} (CLRRuntime)") from None


class _Items:
    """An iterator Java walks, and whether its items come from .NET or Java (their floats are doubles)."""

    __slots__ = ("it", "foreign")

    def __init__(self, it: Any, foreign: bool) -> None:
        self.it = it
        self.foreign = foreign

    def __str__(self) -> str:
        return f"<iterator over {objects.members.type_name(self.it)}>"


def _in_workflow(workflow: Any, fn: Callable[[str], Any], name: str) -> Any:
    """`fn(name)` in the Java code's workflow when this thread has no call of its own (a thread it started)."""
    if workflow is None or objects.current_workflow() is not None:
        return fn(name)
    with objects.loading(str(workflow)):
        return fn(name)


def _py_import(name: str) -> Any:
    import importlib
    import types

    found = objects.resolve(name)
    if isinstance(found, types.ModuleType):
        return found
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise LookupError(f"PyImport({name!r}): no Python module of that name in this workflow ({e})") from None


def _delegate(conv: Converter, delegate_type: str, fn: Any) -> Any:
    """CreateDelegate: the callable, made into the named delegate type when a resolver knows it."""
    callable_ = JavaFunction(conv, fn)
    try:
        kind = objects.resolve(delegate_type, namespace=False) if delegate_type else None
    except LookupError:
        kind = None
    if kind is not None and callable(kind):
        try:
            made = kind(callable_)
            if made is not None:
                return made
        except Exception:  # noqa: BLE001 - a type that cannot wrap a Python callable: the callable itself
            log.debug("CreateDelegate(%s): the type does not take a callable", delegate_type)
    return callable_


def make_bridge(loader: Any) -> Any:
    """The `app.quant.clr.Bridge` implementation (one per process), over `objects`."""
    import jpype

    conv = Converter(loader)
    Bridge = jpype.JClass("app.quant.clr.Bridge", loader=loader)
    held = objects.HANDLES.get

    def fail(e: BaseException) -> Any:
        if isinstance(e, jpype.JException):  # thrown by Java code (a lambda Python called): as it was
            return e
        return conv.CLRException(type(e).__name__, str(e))

    @jpype.JImplements(Bridge)
    class PythonBridge:
        """Every method turns a Python failure into a CLRException naming it."""

        @jpype.JOverride
        def resolve(self, workflow: Any, name: Any) -> Any:
            try:
                return conv.wrap(_in_workflow(workflow, _resolve, str(name)))
            except Exception as e:  # noqa: BLE001 - to Java
                raise fail(e) from None

        @jpype.JOverride
        def pyImport(self, workflow: Any, name: Any) -> Any:  # noqa: N802
            try:
                return conv.wrap(_in_workflow(workflow, _py_import, str(name)))
            except Exception as e:  # noqa: BLE001
                raise fail(e) from None

        @jpype.JOverride
        def call(self, target: Any, args: Any, wrap: Any) -> Any:
            try:
                obj = held(int(target))
                r = objects.call_object(obj, conv.args(args))
                if wrap:
                    return None if r is None else conv.wrap(r)
                return conv.to_java(r, _owner_is_foreign(obj))
            except Exception as e:  # noqa: BLE001
                raise fail(e) from None

        @jpype.JOverride
        def invoke(self, target: Any, name: Any, args: Any) -> Any:
            try:
                obj = held(int(target))
                return conv.to_java(objects.call_member(obj, str(name), conv.args(args)), _owner_is_foreign(obj))
            except Exception as e:  # noqa: BLE001
                raise fail(e) from None

        @jpype.JOverride
        def get(self, target: Any, name: Any) -> Any:
            try:
                obj = held(int(target))
                return conv.to_java(objects.get_member(obj, str(name)), _owner_is_foreign(obj))
            except Exception as e:  # noqa: BLE001
                raise fail(e) from None

        @jpype.JOverride
        def set(self, target: Any, name: Any, value: Any) -> None:
            try:
                objects.set_member(held(int(target)), str(name), conv.to_python(value))
            except Exception as e:  # noqa: BLE001
                raise fail(e) from None

        @jpype.JOverride
        def iterator(self, target: Any) -> Any:
            try:
                obj = held(int(target))
                return conv.wrap(_Items(objects.iterate(obj), _owner_is_foreign(obj)))
            except Exception as e:  # noqa: BLE001
                raise fail(e) from None

        @jpype.JOverride
        def next(self, it: Any) -> Any:
            try:
                items = held(int(it))
                values = list(itertools.islice(items.it, _CHUNK))
                return conv.Objects([conv.to_java(v, items.foreign) for v in values])
            except Exception as e:  # noqa: BLE001
                raise fail(e) from None

        @jpype.JOverride
        def length(self, target: Any) -> int:
            try:
                return objects.length(held(int(target)))
            except Exception as e:  # noqa: BLE001
                raise fail(e) from None

        @jpype.JOverride
        def item(self, target: Any, key: Any) -> Any:
            try:
                obj = held(int(target))
                return conv.to_java(objects.item(obj, conv.to_python(key)), _owner_is_foreign(obj))
            except Exception as e:  # noqa: BLE001
                raise fail(e) from None

        @jpype.JOverride
        def delegate(self, delegate_type: Any, fn: Any) -> Any:
            try:
                return conv.wrap(_delegate(conv, str(delegate_type), fn))
            except Exception as e:  # noqa: BLE001
                raise fail(e) from None

        @jpype.JOverride
        def str(self, target: Any) -> Any:
            try:
                return jpype.JString(builtins_str(held(int(target))))
            except Exception as e:  # noqa: BLE001
                raise fail(e) from None

        @jpype.JOverride
        def json(self, target: Any) -> Any:
            try:
                return jpype.JString(to_json_bytes(objects.members.plain(held(int(target)))).decode())
            except Exception as e:  # noqa: BLE001
                raise fail(e) from None

        @jpype.JOverride
        def same(self, a: Any, b: Any) -> bool:
            try:
                return held(int(a)) is held(int(b))
            except Exception:  # noqa: BLE001 - a released handle is equal to nothing
                return False


    return PythonBridge(), conv


builtins_str = str


def install(loader: Any) -> Converter:
    """Connect `app.quant.clr` to Python (at engine start); disconnected at exit, before the JVM goes."""
    import atexit

    import jpype

    bridge, conv = make_bridge(loader)
    runtime = jpype.JClass("app.quant.clr.CLRRuntime", loader=loader)
    runtime.install(bridge)
    _installed.append(bridge)  # JPype's proxy must outlive every Java reference to it
    atexit.register(_uninstall, runtime)
    drain = threading.Thread(target=_drain_released, args=(runtime,), name="coflows-clr-release", daemon=True)
    drain.start()
    _drains.append(drain)
    return conv


_installed: list[Any] = []
_drains: list[threading.Thread] = []


def _drain_released(runtime: Any) -> None:
    """Release the handles of collected Java proxies, from this Python thread (see CLRRuntime.takeReleased)."""
    drop = objects.HANDLES.release
    while _installed:
        try:
            batch = runtime.takeReleased(250)
        except Exception:  # noqa: BLE001 - the JVM is going away
            return
        for h in batch:
            drop(int(h))


def _uninstall(runtime: Any) -> None:
    _installed.clear()  # stops the drain loop, which must be out of Java before the JVM shuts down
    for t in _drains:
        t.join(timeout=2)
    try:
        runtime.install(None)
    except Exception:  # noqa: BLE001 - best effort at exit
        pass
